-- The mobile app (PostgreSQL flavour). Keep it column-for-column identical to
-- ../sqlite/0012_mobile_devices.sql. Same conventions as 0001-0011:
-- integers BIGINT, timestamps unix seconds.

-- Mobile-app challenges: `number` (10-99) is what the application shows and
-- the user picks in the app; `source_address` is where the sign-in comes
-- from, as the application said, shown in the app. NULL for other methods.
ALTER TABLE challenges ADD COLUMN number BIGINT;
ALTER TABLE challenges ADD COLUMN source_address TEXT;

-- An activated device. `id` is 128 random bits as 32 lowercase hex digits;
-- `public_key` the raw 32-byte Ed25519 key its requests are signed with.
-- `push_kind`/`push_url`: where it wants a wake-up, both or neither.
-- `token_id` is the OATH token created with it (the app's offline codes);
-- removing the device removes it, and an administrator removing the token
-- alone leaves the device without one.
CREATE TABLE mobile_devices (
    id           TEXT    COLLATE "C" PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    public_key   BYTEA   NOT NULL,
    push_kind    TEXT    CHECK (push_kind IN ('ntfy', 'webhook')),
    push_url     TEXT,
    token_id     BIGINT REFERENCES oath_tokens (id) ON DELETE SET NULL,
    activated_at BIGINT NOT NULL,
    last_used_at BIGINT,
    CHECK ((push_kind IS NULL) = (push_url IS NULL))
);

-- A user's devices, oldest first; counting them against the limit.
CREATE INDEX mobile_devices_by_user ON mobile_devices (user_id, activated_at);
-- Deleting an OATH token looks up the device that points at it.
CREATE INDEX mobile_devices_by_token ON mobile_devices (token_id);

-- Activation codes, kept only as the SHA-256 of their digits (hex). A code
-- is used once: `used_at` is set by compare-and-set.
CREATE TABLE activation_codes (
    code_hash  TEXT    COLLATE "C" PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE INDEX activation_codes_by_user ON activation_codes (user_id, expires_at);

-- Nonces of signed device requests, remembered (by every node) until the
-- request's timestamp would be refused anyway: a replay is refused.
CREATE TABLE device_nonces (
    device_id TEXT    COLLATE "C" NOT NULL REFERENCES mobile_devices (id) ON DELETE CASCADE,
    nonce     TEXT    NOT NULL,
    seen_at   BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);

CREATE INDEX device_nonces_by_seen ON device_nonces (seen_at);
