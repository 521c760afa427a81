-- Token inventory, SQLite flavour. Keep it column-for-column identical to
-- ../postgres/0016_token_inventory.sql. Same conventions as 0001-0015:
-- integers 64-bit, timestamps unix seconds, `*_key` columns hold the
-- lowercase form used for uniqueness.
--
-- Hardware OATH tokens imported from their vendor's seed file (CSV or
-- PSKC) and not yet given to anyone. Assigning one moves it, in one
-- transaction, to oath_tokens (re-sealed for its owner) and deletes the
-- row here; a serial is in the inventory once.
CREATE TABLE token_inventory (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    serial        TEXT    NOT NULL,
    serial_key    TEXT    NOT NULL UNIQUE,
    -- Empty when the file did not say.
    manufacturer  TEXT    NOT NULL,
    model         TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('totp', 'hotp')),
    algorithm     TEXT    NOT NULL CHECK (algorithm IN ('sha1', 'sha256', 'sha512')),
    digits        INTEGER NOT NULL,
    period        INTEGER NOT NULL,
    -- The seed, sealed with the label `oath-seed:inventory:<serial_key>`.
    sealed_secret TEXT    NOT NULL,
    -- HOTP: next counter expected; TOTP: unused.
    counter       INTEGER NOT NULL,
    imported_at   INTEGER NOT NULL
);
