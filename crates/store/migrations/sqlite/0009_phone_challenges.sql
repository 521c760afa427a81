-- Phone call and text message challenges. Identical for SQLite and
-- PostgreSQL.
--
-- `destination` is the number called or texted (E.164): an inbound SMS reply
-- is matched to its pending challenge by the sender's number, and calls and
-- messages are rate limited per number and per user by counting these rows
-- (challenges are purged a day after they expire). `sealed_code` is the
-- one-time code a text message carried, sealed with the sealing key and
-- bound to the challenge id; NULL for other methods.
ALTER TABLE challenges ADD COLUMN destination TEXT;
ALTER TABLE challenges ADD COLUMN sealed_code TEXT;
CREATE INDEX challenges_by_destination ON challenges (destination, created_at);
