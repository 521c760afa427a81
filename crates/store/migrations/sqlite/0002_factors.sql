-- Twofold schema, step 2 (SQLite flavour): OATH tokens, PIN and its history,
-- security questions and answers, one-time bypass, denial counters, portal
-- sessions. Keep it column-for-column identical to ../postgres/0002_factors.sql.
-- Same conventions as 0001: integers 64-bit, booleans 0/1, timestamps unix
-- seconds, `*_key` columns hold the lowercase form used for uniqueness.

-- One-time bypass: valid while `bypass_until` is in the future, cleared when
-- used. Denial counting: `failed_count` denials since `failed_window_start`
-- (NULL: no window open). `locked_until` (0001) holds the resulting lock;
-- 9999-12-31 there means "until an administrator unblocks".
ALTER TABLE users ADD COLUMN bypass_until INTEGER;
ALTER TABLE users ADD COLUMN failed_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN failed_window_start INTEGER;

CREATE TABLE oath_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label         TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('totp', 'hotp')),
    algorithm     TEXT    NOT NULL CHECK (algorithm IN ('sha1', 'sha256', 'sha512')),
    digits        INTEGER NOT NULL,
    period        INTEGER NOT NULL,
    -- The seed, sealed with the label `oath-seed:user:<id>`.
    sealed_secret TEXT    NOT NULL,
    -- TOTP: last time step accepted; HOTP: next counter expected.
    counter       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE INDEX oath_tokens_by_user ON oath_tokens (user_id, id);

CREATE TABLE user_pins (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hash    TEXT    NOT NULL,
    set_at  INTEGER NOT NULL
);

-- Earlier PINs; the highest id is the most recent.
CREATE TABLE pin_history (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash    TEXT    NOT NULL,
    set_at  INTEGER NOT NULL
);

CREATE INDEX pin_history_by_user ON pin_history (user_id, id);

-- Listed in the order they were added (by id). `text_key` is the trimmed,
-- lowercase text: one question per language whatever its case.
CREATE TABLE security_questions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    language   TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    text_key   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (language, text_key)
);

CREATE TABLE user_answers (
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES security_questions (id) ON DELETE CASCADE,
    hash        TEXT    NOT NULL,
    PRIMARY KEY (user_id, question_id)
);

-- Deleting a question looks up its answers by question.
CREATE INDEX user_answers_by_question ON user_answers (question_id);

-- The portal's server-side sessions; `id_hash` is the SHA-256 of the id.
CREATE TABLE portal_sessions (
    id_hash    TEXT    PRIMARY KEY,
    data       TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX portal_sessions_by_expiry ON portal_sessions (expires_at);
