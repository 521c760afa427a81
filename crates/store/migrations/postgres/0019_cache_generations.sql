-- Generation counters of the caches every node keeps, PostgreSQL flavour.
-- Keep it column-for-column identical to ../sqlite/0019_cache_generations.sql.
-- Same conventions as 0001-0018: integers 64-bit.
--
-- One row per cache (settings, service accounts). Every change of what a
-- cache holds bumps its row in the same transaction as the change (and
-- sends a notification that arrives when it commits), so a node whose
-- listener missed the notification — it was reconnecting — still finds
-- its copy stale when it next reads these rows, at most once a second.
CREATE TABLE cache_generations (
    name       TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO cache_generations (name, generation) VALUES ('settings', 0);
INSERT INTO cache_generations (name, generation) VALUES ('service_accounts', 0);
