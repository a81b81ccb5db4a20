-- The customer's story (an alert's "earlier ratings of this customer") is
-- read newest first: ORDER BY rated_at DESC, id DESC LIMIT n. With id in
-- the index, a backward scan gives that order and stops after n rows;
-- without it PostgreSQL read every rating of the customer in the window and
-- sorted them, for every alert (a customer with 20,000 ratings: 6 ms per
-- alert, the bound of an outbox drain). SQLite's index already ends with
-- the rowid (id).
CREATE INDEX ratings_customer_story ON ratings (source, customer, rated_at, id) WHERE customer IS NOT NULL;
DROP INDEX ratings_customer;
ALTER INDEX ratings_customer_story RENAME TO ratings_customer;
