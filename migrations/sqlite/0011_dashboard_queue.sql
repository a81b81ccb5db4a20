-- The dashboard's negatives queue reads a period's negative ratings, and its
-- changed ratings (only those can have recovered), each by a range of rated_at.
CREATE INDEX ratings_negative_rated_at ON ratings (rated_at) WHERE sentiment = 'negative';
CREATE INDEX ratings_changed_rated_at ON ratings (rated_at) WHERE revision > 1;
