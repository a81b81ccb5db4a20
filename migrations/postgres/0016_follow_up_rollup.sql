-- The follow-up rollup: ratings that were ever negative (negative now, or
-- in an earlier version), counted per local day (in the time zone of
-- rating_rollup_state) by their follow-up state, at the same levels as
-- rating_rollup (1: no team or agent, 2: team, 3: team and agent; 11, 12,
-- 13: the same per local month). Kept in the same transaction as every
-- write that changes one of its columns (a rating write, an alert recorded
-- as sent or digested, an acknowledgement, a follow-up, an outcome);
-- rebuilt together with rating_rollup. sentiment is the rating's current
-- one (not 'negative': it recovered); alerted, acked and followed_up are
-- 0 or 1; '' stands for an unrecorded brand, team, agent or outcome.
CREATE TABLE follow_up_rollup (
    level       BIGINT  NOT NULL,
    day         BIGINT  NOT NULL,
    source      TEXT    NOT NULL,
    survey      TEXT    NOT NULL,
    sentiment   TEXT    NOT NULL,
    brand       TEXT    NOT NULL,
    team        TEXT    NOT NULL,
    agent       TEXT    NOT NULL,
    alerted     BIGINT  NOT NULL,
    acked       BIGINT  NOT NULL,
    followed_up BIGINT  NOT NULL,
    outcome     TEXT    NOT NULL,
    n           BIGINT  NOT NULL,
    PRIMARY KEY (level, day, source, survey, sentiment, brand, team, agent, alerted, acked,
                 followed_up, outcome)
);

-- Reports filtered to some agents or teams (matched case-insensitively).
CREATE INDEX follow_up_rollup_agent ON follow_up_rollup (level, LOWER(agent), day);
CREATE INDEX follow_up_rollup_team ON follow_up_rollup (level, LOWER(team), day);

-- The negatives queue's unhandled ratings (negative, not followed up),
-- oldest first: a page reads its rows and stops.
CREATE INDEX ratings_unhandled_rated_at ON ratings (rated_at, id)
    WHERE sentiment = 'negative' AND followed_up_at IS NULL;

-- The follow-up medians read each acknowledged or followed-up negative
-- rating's times: from this index alone (it holds every column a report
-- groups or filters by, except customer and tags), not from the table.
CREATE INDEX ratings_negative_handled ON ratings
    (rated_at, first_seen_at, acked_at, followed_up_at, source, survey, brand, team, agent, score)
    WHERE sentiment = 'negative' AND (acked_at IS NOT NULL OR followed_up_at IS NOT NULL);

-- Whether a rating was escalated (the queue's state), looked up per rating
-- or, on PostgreSQL, read whole into a hash: only the escalations sent.
CREATE INDEX alerts_escalations_sent ON alerts (rating_id)
    WHERE kind = 'escalation' AND state = 'sent';
