-- Twofold schema, step 4 (PostgreSQL flavour): challenges, the stored state
-- machine behind the SDK's start / follow / answer authentication. Keep it
-- column-for-column identical to ../sqlite/0004_challenges.sql.
-- Same conventions as 0001-0003: integers BIGINT, timestamps unix seconds.
--
-- `id` is 128 random bits as 32 lowercase hex digits and a bearer secret:
-- only `created_by` (the actor that started it, e.g. `sdk:vpn`) may follow
-- or answer it. `state` moves only from 'pending', by compare-and-set, to a
-- final state; `completed_at` is set exactly when it does. `reason` holds a
-- stable reason name once final. `attempts` counts wrong answers.
CREATE TABLE challenges (
    id           TEXT   COLLATE "C" PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    method       TEXT   NOT NULL,
    mode         TEXT   NOT NULL,
    state        TEXT   NOT NULL CHECK (state IN ('pending', 'accepted', 'rejected', 'expired')),
    reason       TEXT,
    attempts     BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    completed_at BIGINT,
    created_by   TEXT   NOT NULL,
    CHECK ((state = 'pending') = (completed_at IS NULL))
);

-- Deleting a user cascades here.
CREATE INDEX challenges_by_user ON challenges (user_id);
