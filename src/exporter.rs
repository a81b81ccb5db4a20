//! The Prometheus exporter: the recorder behind `GET /metrics`, the help
//! text of every metric family ([`FAMILIES`]), `csatwatch_build_info`, the
//! standard `process_*` metrics, and the HTTP layer that counts requests by
//! route and status.
//!
//! What is counted where stays with the code that counts it
//! (`metrics::counter!` beside the event); this module only names and
//! explains the families, so a scrape is self-describing. A family recorded
//! anywhere in `src/` but missing from [`FAMILIES`] fails a unit test.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The kind of a metric family, as Prometheus types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric family: its full name (counters with `_total`), its kind and
/// its `# HELP` text.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn family(name: &'static str, kind: Kind, help: &'static str) -> Family {
    Family { name, kind, help }
}

/// The histogram of store calls' durations, labelled by `op`.
pub const DB_LATENCY: &str = "csatwatch_db_latency_seconds";
/// The writer's time per step of a batch, labelled by `step`.
pub const WRITE_STEP: &str = "csatwatch_write_batch_step_seconds";
/// HTTP requests answered, by `route`, `method` and `status`.
pub const HTTP_REQUESTS: &str = "csatwatch_http_requests_total";
/// HTTP request durations, by `route`, `method` and `status`.
pub const HTTP_DURATION: &str = "csatwatch_http_request_duration_seconds";
/// Always 1; the labels carry the version and the commit.
pub const BUILD_INFO: &str = "csatwatch_build_info";

/// Every csatwatch metric family, with the help text a scrape shows.
/// docs/operations.md lists the same families for people.
pub const FAMILIES: &[Family] = &[
    family(
        "csatwatch_api_unauthorized_total",
        Kind::Counter,
        "Read API (/api/v1) requests refused 401 for a missing or wrong bearer token.",
    ),
    family(
        BUILD_INFO,
        Kind::Gauge,
        "Always 1; labels `version` and `commit` say which build is running.",
    ),
    family(
        "csatwatch_deliveries_total",
        Kind::Counter,
        "Webhook deliveries by source and outcome (recorded, duplicate, no_rating, unauthorized, unparseable, pending, fetch_failed, handshake).",
    ),
    family(
        "csatwatch_ratings_total",
        Kind::Counter,
        "Ratings recorded, by source, sentiment and outcome (new, changed, unchanged, stale).",
    ),
    family(
        "csatwatch_alerts_total",
        Kind::Counter,
        "Alert transitions by source and state: raised (enqueued), sent, dead (given up), superseded.",
    ),
    family(
        "csatwatch_alerts_stored",
        Kind::Gauge,
        "Alerts in the database per state (pending, sent, dead, superseded); read every 15 s, the same on every replica.",
    ),
    family(
        "csatwatch_alert_follow_ons_total",
        Kind::Counter,
        "Follow-on Slack messages sent, by kind (update, escalation, digest, digest_item) and state.",
    ),
    family(
        "csatwatch_alert_claims_total",
        Kind::Counter,
        "Alerts claimed for sending, by who claimed them: writer (in the commit that recorded the rating, the fast lane) or dispatcher (from the due rows).",
    ),
    family(
        "csatwatch_alert_latency_seconds",
        Kind::Histogram,
        "Seconds from an alert being raised (the webhook's commit) to Slack's answer, by source.",
    ),
    family(
        "csatwatch_storm_digests_total",
        Kind::Counter,
        "Digest messages that replaced a storm of alerts for one channel.",
    ),
    family(
        "csatwatch_dispatcher_takeovers_total",
        Kind::Counter,
        "Dispatchers found gone (heartbeat silent, or their process gone on this machine) whose claims were taken over.",
    ),
    family(
        "csatwatch_in_doubt_checks_total",
        Kind::Counter,
        "Retries after a send got no answer that looked for the message first, by outcome (found, absent, unchecked).",
    ),
    family(
        "csatwatch_sink_errors_total",
        Kind::Counter,
        "Slack failures by class (Slack's error code, ratelimited, HTTP or network class).",
    ),
    family(
        "csatwatch_outbox_pending",
        Kind::Gauge,
        "Alerts waiting to be delivered.",
    ),
    family(
        "csatwatch_outbox_dead",
        Kind::Gauge,
        "Alerts given up after alerts.give_up_after.",
    ),
    family(
        "csatwatch_outbox_oldest_pending_age_seconds",
        Kind::Gauge,
        "Age in seconds of the oldest alert waiting to be delivered (0 when none).",
    ),
    family(
        "csatwatch_poll_lag_seconds",
        Kind::Gauge,
        "Seconds since each source's poller last read a page of its API; stays near its poll_interval.",
    ),
    family(
        "csatwatch_polls_total",
        Kind::Counter,
        "Polls of a helpdesk API by source and outcome (ok, error).",
    ),
    family(
        "csatwatch_poll_errors_total",
        Kind::Counter,
        "API errors that ended a poll, by source; the next poll resumes from the saved cursor.",
    ),
    family(
        "csatwatch_slack_interactions_total",
        Kind::Counter,
        "Slack button clicks received, by outcome.",
    ),
    family(
        DB_LATENCY,
        Kind::Histogram,
        "Seconds per store call, by op (ping: the readiness check; record: one transaction of the writer task, holding many webhooks and poll pages).",
    ),
    family(
        "csatwatch_write_batch_size",
        Kind::Histogram,
        "Writes (deliveries, poll pages) committed per transaction by the writer task (group commit).",
    ),
    family(
        WRITE_STEP,
        Kind::Histogram,
        "Seconds the writer task spent on each step of a batch, by step (begin, deliveries, ratings, history, alerts, changed, sends, rollup, commit); every committed batch records every step once.",
    ),
    family(
        "csatwatch_retention_deleted_total",
        Kind::Counter,
        "Raw deliveries deleted by retention.raw_deliveries.",
    ),
    family(
        "csatwatch_ticket_actions_total",
        Kind::Counter,
        "Actions from an alert (note, reopen, assign, outcome), by result (done, failed).",
    ),
    family(
        "csatwatch_name_lookups_total",
        Kind::Counter,
        "Agent and team names for ids, by result (cached, fetched, failed: the id is shown).",
    ),
    family(
        "csatwatch_config_reloads_total",
        Kind::Counter,
        "Settings reloads (SIGHUP) by outcome: applied, or failed (the running settings stay).",
    ),
    family(
        "csatwatch_http_connections",
        Kind::Gauge,
        "Client connections open now.",
    ),
    family(
        "csatwatch_http_connections_max",
        Kind::Gauge,
        "The connection cap in force (server.max_connections, lowered to fit the open-file limit).",
    ),
    family(
        "csatwatch_http_connection_limit_total",
        Kind::Counter,
        "Times the connection cap was reached, by action: evicted_idle (the oldest idle connection was closed), refused (every connection was busy).",
    ),
    family(
        "csatwatch_http_panics_total",
        Kind::Counter,
        "Request handlers that panicked (answered 500; a bug: report it).",
    ),
    family(
        "csatwatch_database_file_lost_total",
        Kind::Counter,
        "Times the SQLite file was deleted or replaced under the running daemon.",
    ),
    family(
        HTTP_REQUESTS,
        Kind::Counter,
        "HTTP requests answered, by route (the matched pattern, e.g. /webhooks/{source}), method and status.",
    ),
    family(
        HTTP_DURATION,
        Kind::Histogram,
        "Seconds to answer an HTTP request, by route, method and status.",
    ),
];

/// Buckets for store calls: they take milliseconds.
const DB_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Buckets for the steps of the writer's batch: a tenth of a millisecond
/// to a few.
const STEP_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
];
/// Buckets for HTTP answers: a webhook commits in milliseconds; a request
/// that waits for the database may take up to server.request_timeout.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets for everything else measured in seconds (Slack round trips).
const SECONDS_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The commit this binary was built from (see build.rs), or "unknown".
pub const COMMIT: &str = env!("CSATWATCH_COMMIT");

/// The process-wide Prometheus recorder, installed on first use, with every
/// family described and `csatwatch_build_info` set. `None` when another
/// recorder was installed first (a test harness).
pub fn handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(DB_LATENCY.to_string()), DB_BUCKETS)
                .ok()?
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_string()), HTTP_BUCKETS)
                .ok()?
                .set_buckets_for_metric(Matcher::Full(WRITE_STEP.to_string()), STEP_BUCKETS)
                .ok()?
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), SECONDS_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => COMMIT)
                .set(1.0);
            process_collector().describe();
            Some(handle)
        })
        .clone()
}

/// Registers the help text of every family with the recorder.
fn describe() {
    for f in FAMILIES {
        // The exporter adds `_total` to nothing: counters are named in full.
        match f.kind {
            Kind::Counter => metrics::describe_counter!(f.name, f.help),
            Kind::Gauge => metrics::describe_gauge!(f.name, f.help),
            Kind::Histogram => metrics::describe_histogram!(f.name, f.help),
        }
    }
}

fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// The exposition `/metrics` answers: the `process_*` gauges are read from
/// `/proc` now (a few file reads), everything else is what was recorded.
pub fn render(handle: &PrometheusHandle) -> String {
    process_collector().collect();
    handle.render()
}

/// Axum middleware (installed with `route_layer`, so the route is known):
/// counts every answered request and its duration by matched route,
/// method and status. Unmatched paths are not counted: scanners would make
/// the label set unbounded.
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family name recorded with a string literal anywhere in `src/`.
    fn recorded_families() -> Vec<String> {
        let mut names = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for macro_name in ["counter!(", "gauge!(", "histogram!("] {
                    for (at, _) in text.match_indices(macro_name) {
                        let rest = text[at + macro_name.len()..].trim_start();
                        if let Some(rest) = rest.strip_prefix('"') {
                            let name = &rest[..rest.find('"').unwrap()];
                            names.push(name.to_string());
                        }
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn every_recorded_family_has_help_text() {
        let names = recorded_families();
        assert!(
            names.len() > 10,
            "the source scan found too little: {names:?}"
        );
        for name in names.iter().filter(|n| n.starts_with("csatwatch_")) {
            assert!(
                FAMILIES.iter().any(|f| f.name == name),
                "{name} is recorded but not in exporter::FAMILIES (add its help text)"
            );
        }
    }

    #[test]
    fn no_family_name_clashes_with_another_s_suffixed_series() {
        // OpenMetrics names a counter's family without `_total`, and a
        // histogram's series add `_bucket`, `_sum`, `_count`: a gauge called
        // `x` beside a counter `x_total` is one family twice.
        for a in FAMILIES {
            let stem = a.name.strip_suffix("_total").unwrap_or(a.name);
            for b in FAMILIES.iter().filter(|b| b.name != a.name) {
                for suffix in [
                    "", "_total", "_bucket", "_sum", "_count", "_created", "_info",
                ] {
                    assert_ne!(
                        format!("{stem}{suffix}"),
                        b.name,
                        "{} clashes with {}",
                        a.name,
                        b.name
                    );
                }
            }
            assert_eq!(
                a.kind == Kind::Counter,
                a.name.ends_with("_total"),
                "{}",
                a.name
            );
        }
    }
}
