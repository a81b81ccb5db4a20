-- The outcome of a follow-up, recorded from the "Followed up" modal:
-- reached_customer, resolved, compensated, no_reply or not_actionable,
-- with an optional note by the person who followed up.
ALTER TABLE ratings ADD COLUMN follow_up_outcome TEXT;
ALTER TABLE ratings ADD COLUMN follow_up_note TEXT;
