-- Directory synchronisation (SQLite flavour). Keep it column-for-column
-- identical to ../postgres/0014_directory_sync.sql. Same conventions as
-- 0001-0013: integers 64-bit, booleans 0/1, timestamps unix seconds.

-- Sync items: which people of the directory are Twofold users. `name_key`
-- is the name in lower case (unique, any case). `default_method` and
-- `default_mode` are stored as in `users`: both or neither. `gone` is what
-- happens to a user the item added once they are gone from the directory.
CREATE TABLE sync_items (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    name_key         TEXT    NOT NULL UNIQUE,
    filter           TEXT,
    group_name       TEXT,
    default_method   TEXT,
    default_mode     TEXT,
    default_language TEXT,
    gone             TEXT    NOT NULL DEFAULT 'disable' CHECK (gone IN ('disable', 'delete')),
    created_at       INTEGER NOT NULL,
    CHECK ((default_method IS NULL) = (default_mode IS NULL))
);

-- The sync item that added (or adopted) a user; NULL for everyone else.
-- Deleting the item keeps its users, no longer marked as its (the store
-- also clears them itself, in the same transaction).
ALTER TABLE users ADD COLUMN synced_by INTEGER REFERENCES sync_items (id) ON DELETE SET NULL;

-- An item's users; clearing them when the item goes.
CREATE INDEX users_by_synced_by ON users (synced_by);

-- What the cluster keeps between runs: exactly one row. The lease says
-- which node runs the sync (`lease_holder` until `lease_until`), taken by
-- compare-and-set; the rest is the last run and a run held for approval.
CREATE TABLE sync_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    lease_holder TEXT,
    lease_until  INTEGER,
    last_run_at  INTEGER,
    last_report  TEXT,
    held         TEXT,
    approved     INTEGER NOT NULL DEFAULT 0 CHECK (approved IN (0, 1))
);

INSERT INTO sync_state (id, approved) VALUES (1, 0);
