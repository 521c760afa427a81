-- Generation counters of the caches every node keeps, SQLite flavour. Keep
-- it column-for-column identical to ../postgres/0019_cache_generations.sql.
-- Same conventions as 0001-0018: integers 64-bit.
--
-- One row per cache (settings, service accounts). Every change of what a
-- cache holds bumps its row in the same transaction as the change, so a
-- node — or another process on the same SQLite file, such as the CLI while
-- `twofold serve` runs — that reads a different number knows its copy is
-- stale. A node reads these rows at most once a second: the safety net
-- behind the PostgreSQL notifications, and the only signal on SQLite.
CREATE TABLE cache_generations (
    name       TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
INSERT INTO cache_generations (name, generation) VALUES ('settings', 0);
INSERT INTO cache_generations (name, generation) VALUES ('service_accounts', 0);
