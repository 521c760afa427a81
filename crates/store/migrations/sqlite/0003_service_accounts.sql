-- Twofold schema, step 3 (SQLite flavour): service accounts of the Web
-- Service SDK. Keep it column-for-column identical to ../postgres/0003_service_accounts.sql.
-- The secret is high-entropy (256 random bits), so its SHA-256 is stored, not an
-- argon2 hash: nothing to brute-force, and the SDK's hot path stays cheap.
CREATE TABLE service_accounts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    name_key    TEXT    NOT NULL UNIQUE,
    secret_hash TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    rotated_at  INTEGER
);
