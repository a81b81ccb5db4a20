//! csatwatch's integration tests: one binary that spawns the real app on
//! port 0 against a real database (SQLite always; PostgreSQL when
//! `TEST_DATABASE_URL` is set) and wiremock servers for Slack.

mod alert_path;
mod alerts;
mod bad_input;
mod cancellation;
mod cli;
mod closing_loop;
mod concurrency;
mod connections;
mod daemon;
mod dashboard;
mod dashboard_browser;
mod database_file;
mod deploy;
mod digests;
mod exporter;
mod ha;
mod helpdesks;
mod ingest;
mod ops;
mod polling;
mod postgres;
mod reload;
mod report_api;
mod reports;
mod rollup;
mod signals;
mod slack;
mod support;
mod telemetry;
mod webhooks;
