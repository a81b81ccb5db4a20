-- The alert path under load and after a crash.
--
-- in_doubt_since: when an attempt to send this row ended without an answer
-- (a timeout, a dropped connection, a process that died holding the claim),
-- so the message may have reached Slack. The next attempt looks for it in
-- the channel's recent history before posting again.
ALTER TABLE alerts ADD COLUMN in_doubt_since BIGINT;

-- The claim query walks this index in order: only pending rows, sorted as
-- they are claimed, so it never sorts the whole outbox.
CREATE INDEX alerts_pending ON alerts (next_attempt_at, id) WHERE state = 'pending';

-- One row per running dispatcher, renewed every second. Claims of a
-- dispatcher that stopped renewing are taken over within seconds; `host`
-- and `pid` let a dispatcher on the same machine see at once that a
-- previous process is gone.
CREATE TABLE dispatchers (
    instance     TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          BIGINT  NOT NULL,
    started_at   BIGINT  NOT NULL,
    heartbeat_at BIGINT  NOT NULL
);

-- Storm control counts the posts raised for each channel within the storm
-- window on every pass: a range of this index, not a scan of the outbox.
CREATE INDEX alerts_recent_posts ON alerts (created_at) WHERE kind = 'post';
