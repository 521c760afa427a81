-- Audit retention (`audit.retention_days`): pruning finds old events by
-- time without reading the whole table. Identical for SQLite and PostgreSQL.
CREATE INDEX audit_events_by_time ON audit_events (at);
