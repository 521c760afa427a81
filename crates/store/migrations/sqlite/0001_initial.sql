-- Twofold schema, SQLite flavour. Keep it column-for-column identical to
-- ../postgres/0001_initial.sql: one set of queries serves both.
--
-- Conventions (portable through sqlx's Any driver):
--   * booleans are INTEGER 0/1;
--   * user and settings timestamps are unix seconds, audit `at` is unix
--     milliseconds so events in the same second keep a meaningful time;
--   * `*_key` columns hold the lowercase form that lookups, uniqueness and
--     ordering use, so case-insensitivity does not depend on the database's
--     collation or on SQLite's ASCII-only lower().

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT    NOT NULL,
    username_key   TEXT    NOT NULL UNIQUE,
    display_name   TEXT,
    email          TEXT,
    language       TEXT,
    enabled        INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    locked_until   INTEGER,
    fraud_blocked  INTEGER NOT NULL DEFAULT 0 CHECK (fraud_blocked IN (0, 1)),
    default_method TEXT,
    default_mode   TEXT,
    password_hash  TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1,
    CHECK ((default_method IS NULL) = (default_mode IS NULL))
);

CREATE TABLE user_groups (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_name TEXT    NOT NULL,
    group_key  TEXT    NOT NULL,
    PRIMARY KEY (user_id, group_key)
);

-- Listing users by group.
CREATE INDEX user_groups_by_group ON user_groups (group_key, user_id);

CREATE TABLE settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    subject     TEXT,
    subject_key TEXT,
    event       TEXT    NOT NULL CHECK (length(event) > 0),
    method      TEXT,
    result      TEXT    NOT NULL,
    source_ip   TEXT,
    detail      TEXT
);

-- The audit log of one user, newest first.
CREATE INDEX audit_events_by_subject ON audit_events (subject_key, id);

CREATE TABLE portal_admins (
    user_id     INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    permissions TEXT    NOT NULL,
    scope_group TEXT,
    created_at  INTEGER NOT NULL
);
