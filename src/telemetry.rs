//! Logging and metrics set-up. Logs are JSON lines in production and
//! human-readable on a terminal (`log.format`). Nothing here ever formats a
//! secret or a customer comment: callers log ids and scores.

use metrics_exporter_prometheus::PrometheusHandle;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

/// Installs the global tracing subscriber. `RUST_LOG` overrides `log.level`.
pub fn init_logging(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// The histogram of store calls' durations, labelled by `op`.
pub use crate::exporter::DB_LATENCY;

/// Records how long a store call took, from `started`.
pub fn observe_db(op: &'static str, started: std::time::Instant) {
    metrics::histogram!(DB_LATENCY, "op" => op).record(started.elapsed().as_secs_f64());
}

/// The process-wide Prometheus recorder, installed on first use (see
/// [`crate::exporter`]).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    crate::exporter::handle()
}
