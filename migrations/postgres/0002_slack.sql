-- Slack alerts a team can act on: who acknowledged and followed up a rating,
-- and outbox rows of several kinds (the first post, updates of it, thread
-- replies for escalations and digests), each idempotent by its event key.
-- Column meanings: see migrations/sqlite/0002_slack.sql.

ALTER TABLE ratings
    ADD COLUMN acked_by TEXT,
    ADD COLUMN acked_by_name TEXT,
    ADD COLUMN acked_at BIGINT,
    ADD COLUMN followed_up_by TEXT,
    ADD COLUMN followed_up_by_name TEXT,
    ADD COLUMN followed_up_at BIGINT;

ALTER TABLE alerts
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'post',
    ADD COLUMN event_key TEXT,
    ADD COLUMN parent_id BIGINT,
    ADD COLUMN change TEXT,
    ADD COLUMN escalate_at BIGINT,
    ADD COLUMN escalate_to TEXT;
UPDATE alerts SET event_key = 'rev:' || revision;
ALTER TABLE alerts ALTER COLUMN event_key SET NOT NULL;
ALTER TABLE alerts DROP CONSTRAINT alerts_rating_id_revision_channel_key;
ALTER TABLE alerts ADD CONSTRAINT alerts_event_key UNIQUE (rating_id, channel, kind, event_key);
CREATE INDEX alerts_parent ON alerts (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX alerts_rating ON alerts (rating_id);
CREATE INDEX alerts_escalate ON alerts (escalate_at) WHERE escalate_at IS NOT NULL;
