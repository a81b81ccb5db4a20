//! csatwatch: a helpdesk's CSAT rating in, a Slack alert out while the
//! customer still cares.
//!
//! # Layout
//!
//! The flow is sources → pipeline → store → outbox → sinks:
//!
//! - [`sources`]: one folder per helpdesk; signatures and payload shapes.
//! - [`pipeline`]: the one place that decides: new, changed or duplicate,
//!   negative or not, which rules route it, which alerts to enqueue.
//! - [`store`]: every SQL statement, for SQLite and PostgreSQL.
//! - [`polling`]: pollers and backfills reading helpdesk APIs through the
//!   same pipeline, with cursors and a lease per source.
//! - [`dispatcher`]: claims alerts from the outbox and delivers them.
//! - [`sinks`]: Slack (Web API or incoming webhook), or the log.
//! - [`intake`]: from a parsed delivery to recorded ratings, fetching from
//!   a helpdesk's API where a delivery only names them.
//! - [`reports`]: the figures (CSAT, NPS, CES, follow-up) every report,
//!   export, digest and drop alert shares.
//! - [`http`]: the axum routes; [`app`] wires it all; [`cli`] the commands.
//! - [`telemetry`], [`exporter`], [`gauges`], [`service`]: logs, the
//!   Prometheus exporter, database-derived gauges, and systemd's readiness
//!   and watchdog protocol.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config_schema;
pub mod dispatcher;
pub mod domain;
pub mod exporter;
pub mod gauges;
pub mod http;
pub mod intake;
pub mod pipeline;
pub mod polling;
pub mod reload;
pub mod reports;
pub mod rules;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod sinks;
pub mod sources;
pub mod store;
pub mod telemetry;
