-- Service accounts' last use, PostgreSQL flavour. Keep it column-for-column
-- identical to ../sqlite/0017_service_account_last_used.sql. Same
-- conventions as 0001-0016: integers 64-bit, timestamps unix seconds.
--
-- When an account last authenticated to the Web Service SDK, so an
-- administrator can tell a live integration from a forgotten one before
-- rotating or deleting it. NULL until its first use. Written at most about
-- once a minute per account (bookkeeping, not audited), so it may lag the
-- latest call by up to a minute.
ALTER TABLE service_accounts ADD COLUMN last_used_at BIGINT;
