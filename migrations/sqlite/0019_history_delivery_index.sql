-- rating_history.delivery_id references deliveries ON DELETE SET NULL, so
-- deleting a raw delivery (retention.raw_deliveries, hourly) looks up the
-- history rows that name it. Without an index on the column each deleted
-- delivery read the whole history table: 1,000 deletions over 200,000
-- history rows took 11 s on SQLite, holding the write lock that webhooks
-- wait for (5 s, then 503), against 0.03 s with this index. Partial: rows
-- written without a delivery (polls, backfills) are never looked up.
CREATE INDEX rating_history_delivery ON rating_history (delivery_id) WHERE delivery_id IS NOT NULL;
