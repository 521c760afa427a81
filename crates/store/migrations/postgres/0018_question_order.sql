-- The order of the security questions (administrators arrange them; users
-- see them in it, and the first four are the defaults). PostgreSQL flavour;
-- keep it column-for-column identical to ../sqlite/0018_question_order.sql.
-- Existing questions keep the order they were added in.
ALTER TABLE security_questions ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
UPDATE security_questions SET position = id;
CREATE INDEX security_questions_by_position ON security_questions (language, position);
