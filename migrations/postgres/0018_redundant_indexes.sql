-- Two indexes every rating or alert insert paid for and no query needed:
-- each is the leading column of a wider index that serves the same lookups.
--   ratings_rated_at (rated_at)  ⊂ ratings_report (rated_at, scale, score, sentiment)
--   alerts_rating    (rating_id) ⊂ alerts_event_key UNIQUE (rating_id, channel, kind, event_key)
-- One B-tree insert fewer per rating and per alert in the group-commit
-- writer (docs/architecture.md, "Group commit").
DROP INDEX IF EXISTS ratings_rated_at;
DROP INDEX IF EXISTS alerts_rating;
