-- Reports: messages csatwatch posts on a schedule (digests) or when a drop
-- alert changes state (a drop, a recovery). Each is sent once: the first
-- replica to insert its (kind, name, period) key owns it, and senders claim
-- it with a lease like the alert outbox.
CREATE TABLE report_messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'digest', 'drop' or 'recovery'
    kind            TEXT    NOT NULL,
    -- the [[digests]] or [[drop_alerts]] name
    name            TEXT    NOT NULL,
    -- a digest: the local date it is due; a drop or recovery: the group and
    -- when its episode began
    period          TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    -- the Slack message, JSON ({"text", "blocks"}); names and links only,
    -- never customer comments
    body            TEXT    NOT NULL,
    -- 'pending', 'sent' or 'dead'
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claim_token     TEXT,
    claimed_until   INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    UNIQUE (kind, name, period)
);
CREATE INDEX report_messages_due ON report_messages (state, next_attempt_at);

-- Drop alerts: each group's state, so a drop is announced once per
-- episode and its recovery once.
CREATE TABLE drop_alert_states (
    name         TEXT    NOT NULL,
    grp          TEXT    NOT NULL,
    -- 'ok' or 'alert'
    state        TEXT    NOT NULL,
    -- when the state began, Unix ms
    since        INTEGER NOT NULL,
    last_z       REAL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (name, grp)
);

-- Which scheduled evaluations ran (one replica per drop alert per day).
CREATE TABLE report_runs (
    name   TEXT    NOT NULL,
    period TEXT    NOT NULL,
    ran_at INTEGER NOT NULL,
    PRIMARY KEY (name, period)
);

-- Report queries read by time range; this index lets them find a range's
-- scores without visiting each row.
CREATE INDEX ratings_report ON ratings (rated_at, scale, score, sentiment);
