-- Challenges that prove a phone before the enrollment wizard saves it
-- ("Call Me Now to Authenticate"). Identical for SQLite and PostgreSQL.
--
-- `purpose` is 'verify' (signing in: the user's own method) or 'enroll'
-- (the number in `destination` is not the user's yet). `extension` is
-- dialled after the call connects. `sealed_pin` is the argon2id hash of the
-- PIN chosen in the wizard, sealed under the challenge's label: the call
-- (or the reply) asks for it before anything is saved.
ALTER TABLE challenges ADD COLUMN purpose TEXT NOT NULL DEFAULT 'verify' CHECK (purpose IN ('verify', 'enroll'));
ALTER TABLE challenges ADD COLUMN extension TEXT;
ALTER TABLE challenges ADD COLUMN sealed_pin TEXT;
