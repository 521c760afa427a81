-- Twofold schema, step 5: the user's phones, in E.164 (validated by the
-- engine with the phonenumber crate). Identical for SQLite and PostgreSQL.
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN phone_extension TEXT;
ALTER TABLE users ADD COLUMN backup_phone TEXT;
ALTER TABLE users ADD COLUMN mobile_phone TEXT;
