-- Pending challenges past their lifetime are found by expiry (the sweep
-- that moves them to `expired`, so none stays pending past its lifetime).
CREATE INDEX challenges_by_state_expiry ON challenges (state, expires_at);
