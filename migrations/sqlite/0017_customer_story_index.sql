-- Numbered as PostgreSQL's 0017, which adds id to the ratings_customer
-- index so the customer's story (ORDER BY rated_at DESC, id DESC LIMIT n)
-- is read in index order. SQLite's index already ends with the rowid (id):
-- nothing to change here.
SELECT 1;
