-- Twofold schema, step 4 (SQLite flavour): challenges, the stored state
-- machine behind the SDK's start / follow / answer authentication. Keep it
-- column-for-column identical to ../postgres/0004_challenges.sql.
-- Same conventions as 0001-0003: integers 64-bit, timestamps unix seconds.
--
-- `id` is 128 random bits as 32 lowercase hex digits and a bearer secret:
-- only `created_by` (the actor that started it, e.g. `sdk:vpn`) may follow
-- or answer it. `state` moves only from 'pending', by compare-and-set, to a
-- final state; `completed_at` is set exactly when it does. `reason` holds a
-- stable reason name once final. `attempts` counts wrong answers.
CREATE TABLE challenges (
    id           TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    method       TEXT    NOT NULL,
    mode         TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'accepted', 'rejected', 'expired')),
    reason       TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    completed_at INTEGER,
    created_by   TEXT    NOT NULL,
    CHECK ((state = 'pending') = (completed_at IS NULL))
);

-- Deleting a user cascades here.
CREATE INDEX challenges_by_user ON challenges (user_id);
