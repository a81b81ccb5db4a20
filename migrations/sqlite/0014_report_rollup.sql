-- The report rollup: rating counts per local day (in reports.timezone, the
-- one recorded in rating_rollup_state) and per level of detail. Kept in the
-- same transaction as every rating write; rebuilt at start-up when missing,
-- built for another time zone, or built by an older schema. Empty strings
-- stand for a dimension the level does not keep (and for an unrecorded
-- brand, team or agent, which the reports label "(none)" either way).
--   level 1: day, source, survey, scale, score, sentiment, brand
--   level 2: level 1 + team
--   level 3: level 2 + agent
--   levels 11, 12, 13: levels 1, 2, 3 per local month (day: its first day)
CREATE TABLE rating_rollup (
    level     INTEGER NOT NULL,
    day       INTEGER NOT NULL,
    source    TEXT    NOT NULL,
    survey    TEXT    NOT NULL,
    scale     TEXT    NOT NULL,
    score     INTEGER NOT NULL,
    sentiment TEXT    NOT NULL,
    brand     TEXT    NOT NULL,
    team      TEXT    NOT NULL,
    agent     TEXT    NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (level, day, source, survey, scale, score, sentiment, brand, team, agent)
) WITHOUT ROWID;

-- Reports filtered to some agents or teams (matched case-insensitively).
CREATE INDEX rating_rollup_agent ON rating_rollup (level, LOWER(agent), day);
CREATE INDEX rating_rollup_team ON rating_rollup (level, LOWER(team), day);

CREATE TABLE rating_rollup_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    timezone       TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    built_at       INTEGER NOT NULL,
    ratings        INTEGER NOT NULL
);

-- Drop alerts recover only after `recover_after` good evaluations in a row:
-- the good evaluations so far in the current episode.
ALTER TABLE drop_alert_states ADD COLUMN recover_streak INTEGER NOT NULL DEFAULT 0;

