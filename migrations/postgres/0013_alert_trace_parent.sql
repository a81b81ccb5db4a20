-- The W3C traceparent of the span that enqueued an alert (only when
-- telemetry.otlp_endpoint is set): the dispatcher's send span joins the
-- webhook's trace across the outbox. Ids only; NULL when traces are off.
ALTER TABLE alerts ADD COLUMN trace_parent TEXT;
