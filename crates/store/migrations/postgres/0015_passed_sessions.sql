-- Passed sessions (forward-auth), PostgreSQL flavour. Keep it column-for-column
-- identical to ../sqlite/0015_passed_sessions.sql. Same conventions as
-- 0001-0014: integers 64-bit, timestamps unix seconds.
--
-- A browser that passed the portal's sign-in carries a random token in a
-- cookie for the protected sites' domain; `id_hash` is its SHA-256, so the
-- table holds no usable token. A user's sessions go with the user.
CREATE TABLE passed_sessions (
    id_hash      TEXT    PRIMARY KEY,
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    username     TEXT    NOT NULL,
    level        TEXT    NOT NULL CHECK (level IN ('one_factor', 'two_factor')),
    via          TEXT    NOT NULL CHECK (via IN ('second_step', 'bypass', 'trusted_ip', 'enrollment')),
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);

-- Purging the expired, and ending a user's sessions with the user.
CREATE INDEX passed_sessions_by_expiry ON passed_sessions (expires_at);
CREATE INDEX passed_sessions_by_user ON passed_sessions (user_id);
