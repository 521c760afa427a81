-- Twofold schema, step 7 (postgres flavour): guessing counted per user and
-- factor (password, code, answers), so wrong passwords at the portal do
-- not block the codes a VPN checks. Keep it identical to ../sqlite/0007_guessing.sql.
--
-- streak: failures in a row (ended by a success or a quiet period), drives
-- the growing back-off; blocked_until: the factor is closed until then;
-- consecutive: failures since the last success, drives the hard lock (which
-- is users.locked_until, as before); hour_start/hour_failures: the hourly
-- bound on wrong secrets. Timestamps unix seconds.
CREATE TABLE secret_failures (
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    factor          TEXT   NOT NULL CHECK (factor IN ('password', 'code', 'answers')),
    streak          BIGINT NOT NULL DEFAULT 0,
    consecutive     BIGINT NOT NULL DEFAULT 0,
    last_failure_at BIGINT,
    blocked_until   BIGINT,
    hour_start      BIGINT,
    hour_failures   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, factor)
);

-- The single counter of step 2 is no longer written; it becomes the
-- password's record so a streak in progress survives the upgrade. (The
-- old columns stay: dropping a column rebuilds the table on SQLite.)
INSERT INTO secret_failures (user_id, factor, streak, consecutive, last_failure_at)
SELECT id, 'password', failed_count, failed_count, failed_window_start
  FROM users WHERE failed_count > 0;
UPDATE users SET failed_count = 0, failed_window_start = NULL WHERE failed_count > 0;
