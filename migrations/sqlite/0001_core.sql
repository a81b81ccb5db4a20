-- The core schema: raw deliveries, ratings, their history, and the alert outbox.
-- Timestamps are Unix milliseconds (INTEGER) so they sort and compare exactly.

CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT    NOT NULL,
    -- the helpdesk's delivery id, or sha256 of the body
    delivery_key  TEXT    NOT NULL,
    received_at   INTEGER NOT NULL,
    via           TEXT    NOT NULL,
    -- request line and non-secret headers, JSON, for reprocessing
    request_meta  TEXT    NOT NULL,
    body          BLOB    NOT NULL,
    -- 'recorded'; 'failed' (unreadable, kept for `csatwatch reprocess`); or
    -- 'pending' (it names ratings to fetch from the helpdesk's API, and a
    -- fetch failed: retried in the background at next_attempt_at)
    status        TEXT    NOT NULL,
    error         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 1,
    next_attempt_at INTEGER,
    UNIQUE (source, delivery_key)
);
CREATE INDEX deliveries_received ON deliveries (received_at);
CREATE INDEX deliveries_unrecorded ON deliveries (status, next_attempt_at) WHERE status <> 'recorded';

CREATE TABLE ratings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    source          TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    rating_key      TEXT    NOT NULL,
    survey          TEXT    NOT NULL,
    scale           TEXT    NOT NULL,
    score           INTEGER NOT NULL,
    normalised      REAL    NOT NULL,
    sentiment       TEXT    NOT NULL,
    comment         TEXT,
    agent           TEXT,
    team            TEXT,
    customer        TEXT,
    company         TEXT,
    brand           TEXT,
    tags            TEXT    NOT NULL DEFAULT '[]',
    url             TEXT,
    rated_at        INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    first_seen_at   INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    revision        INTEGER NOT NULL,
    UNIQUE (source, conversation_id, rating_key)
);
CREATE INDEX ratings_rated_at ON ratings (rated_at);

CREATE TABLE rating_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rating_id   INTEGER NOT NULL REFERENCES ratings (id) ON DELETE CASCADE,
    revision    INTEGER NOT NULL,
    score       INTEGER NOT NULL,
    sentiment   TEXT    NOT NULL,
    comment     TEXT,
    updated_at  INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    via         TEXT    NOT NULL,
    delivery_id INTEGER REFERENCES deliveries (id) ON DELETE SET NULL,
    UNIQUE (rating_id, revision)
);

CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rating_id       INTEGER NOT NULL REFERENCES ratings (id) ON DELETE CASCADE,
    revision        INTEGER NOT NULL,
    rule            TEXT,
    channel         TEXT    NOT NULL,
    mentions        TEXT    NOT NULL DEFAULT '[]',
    -- the rating's sentiment when the alert was raised
    sentiment       TEXT    NOT NULL,
    -- 'pending', 'sent', 'dead' or 'superseded' (turned positive before it went out)
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claim_token     TEXT,
    claimed_until   INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    slack_channel   TEXT,
    slack_ts        TEXT,
    UNIQUE (rating_id, revision, channel)
);
CREATE INDEX alerts_due ON alerts (state, next_attempt_at);
