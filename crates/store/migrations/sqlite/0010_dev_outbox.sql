-- The development outbox (`[delivery] provider = "outbox"`): calls and text
-- messages land here instead of at a provider, for the page /dev/outbox.
-- Keep it column-for-column identical across backends; empty unless that
-- mode is used.
--
-- `kind` is 'call' or 'sms'; `body` the text message, or the call's voice
-- language; `challenge_id` the challenge it belongs to (no foreign key: a
-- row outlives its purged challenge, and the outbox is trimmed on its own).
CREATE TABLE dev_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           BIGINT  NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('call', 'sms')),
    destination  TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    challenge_id TEXT
);
CREATE INDEX dev_outbox_by_time ON dev_outbox (at);
