-- What people did about a rating from its Slack alert, beyond the two
-- buttons recorded on the rating itself: a note added to the ticket, a
-- reopen, an assignment, the recorded outcome of a follow-up, a direct
-- message to the rated agent; each with who, when, and whether the
-- helpdesk accepted it. Shown in the alert's thread and kept as the
-- rating's history of actions. No customer text: a note's body is kept
-- only as its length.

CREATE TABLE rating_activity (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rating_id   INTEGER NOT NULL REFERENCES ratings (id) ON DELETE CASCADE,
    -- 'note', 'reopen', 'assign', 'outcome' or 'dm'
    kind        TEXT    NOT NULL,
    -- the Slack user id and name of who acted
    actor_id    TEXT    NOT NULL,
    actor_name  TEXT,
    -- 'done' or 'failed'
    status      TEXT    NOT NULL,
    -- what it did, in words without customer text ("assigned to agent 42"),
    -- or why it failed
    detail      TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX rating_activity_rating ON rating_activity (rating_id, id);
-- The customer's story: earlier ratings of the same customer.
CREATE INDEX ratings_customer ON ratings (source, customer, rated_at) WHERE customer IS NOT NULL;
