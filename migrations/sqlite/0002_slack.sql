-- Slack alerts a team can act on: who acknowledged and followed up a rating,
-- and outbox rows of several kinds (the first post, updates of it, thread
-- replies for escalations and digests), each idempotent by its event key.

ALTER TABLE ratings ADD COLUMN acked_by TEXT;
ALTER TABLE ratings ADD COLUMN acked_by_name TEXT;
ALTER TABLE ratings ADD COLUMN acked_at INTEGER;
ALTER TABLE ratings ADD COLUMN followed_up_by TEXT;
ALTER TABLE ratings ADD COLUMN followed_up_by_name TEXT;
ALTER TABLE ratings ADD COLUMN followed_up_at INTEGER;

-- SQLite cannot drop a table constraint, so the outbox is rebuilt with its
-- new unique key (nothing references it).
CREATE TABLE alerts_v2 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- for a digest, its worst rating
    rating_id       INTEGER NOT NULL REFERENCES ratings (id) ON DELETE CASCADE,
    revision        INTEGER NOT NULL,
    rule            TEXT,
    channel         TEXT    NOT NULL,
    mentions        TEXT    NOT NULL DEFAULT '[]',
    sentiment       TEXT    NOT NULL,
    -- 'post' (the alert message), 'update' (chat.update of the post plus a
    -- thread reply), 'escalation' (a thread reply), 'digest' (one message
    -- for a storm), 'digest_item' (one rating of a digest, in its thread)
    kind            TEXT    NOT NULL DEFAULT 'post',
    -- what makes this row unique for its rating, channel and kind:
    -- 'rev:N' (a rating revision), 'ack', 'followup', 'post:ID', 'digest:ID'
    event_key       TEXT    NOT NULL,
    -- the post an update or escalation edits or threads under; the digest a
    -- digested post or a digest item belongs to
    parent_id       INTEGER,
    -- what changed, in words without customer text, for the thread reply
    change          TEXT,
    -- a post nobody acknowledged by then gets an escalation (cleared once decided)
    escalate_at     INTEGER,
    -- JSON array of mentions for the escalation
    escalate_to     TEXT,
    -- 'pending', 'sent', 'dead', 'superseded', 'skipped' (nothing to do, e.g.
    -- an update in webhook mode) or 'digested' (replaced by a digest)
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
    UNIQUE (rating_id, channel, kind, event_key)
);
INSERT INTO alerts_v2 (id, rating_id, revision, rule, channel, mentions, sentiment, kind, event_key,
    state, attempts, next_attempt_at, claim_token, claimed_until, last_error, created_at, sent_at,
    slack_channel, slack_ts)
SELECT id, rating_id, revision, rule, channel, mentions, sentiment, 'post', 'rev:' || revision,
    state, attempts, next_attempt_at, claim_token, claimed_until, last_error, created_at, sent_at,
    slack_channel, slack_ts
FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_v2 RENAME TO alerts;
CREATE INDEX alerts_due ON alerts (state, next_attempt_at);
CREATE INDEX alerts_parent ON alerts (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX alerts_rating ON alerts (rating_id);
CREATE INDEX alerts_escalate ON alerts (escalate_at) WHERE escalate_at IS NOT NULL;
