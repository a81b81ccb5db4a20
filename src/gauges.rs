//! Gauges read from the database: the outbox's depth and age, how many
//! alerts are in each state, and how far behind each poller is. They are refreshed by a background task every
//! [`REFRESH`] (and by the dispatcher at most once a second after flushes
//! that changed the outbox: never a scan per flush), never per scrape, so a
//! scraper hitting `/metrics` often costs no queries.
//!
//! Counters and histograms are recorded where things happen; this module is
//! only for numbers that must be counted in the database because they
//! outlive the process or span replicas.

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::{Store, StoreResult};

/// How often the gauges are read and the recorder's upkeep runs.
pub const REFRESH: Duration = Duration::from_secs(15);

/// Every alert state, so each has a series even at zero (an alert rule on
/// `csatwatch_alerts_stored{state="dead"} > 0` needs the series to exist).
const STATES: [&str; 4] = ["pending", "sent", "dead", "superseded"];

/// What [`refresh`] set, for callers that want the numbers (tests, logs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    pub outbox_pending: i64,
    pub outbox_dead: i64,
    pub oldest_pending_age_seconds: f64,
    /// Alerts per state, every state in [`STATES`] order.
    pub alerts: Vec<(&'static str, i64)>,
    /// Seconds since each polling source last read a page.
    pub poll_lag_seconds: Vec<(String, f64)>,
}

/// Reads the outbox and sets the gauges.
pub async fn refresh(store: &Store, now_ms: i64) -> StoreResult<Gauges> {
    let stats = store.outbox_stats().await?;
    metrics::gauge!("csatwatch_outbox_pending").set(stats.pending as f64);
    metrics::gauge!("csatwatch_outbox_dead").set(stats.dead as f64);
    let age_ms = stats
        .oldest_pending_created_at
        .map(|created| (now_ms - created).max(0))
        .unwrap_or(0);
    let age = age_ms as f64 / 1000.0;
    metrics::gauge!("csatwatch_outbox_oldest_pending_age_seconds").set(age);
    let counts = store.alert_counts_by_state().await?;
    let mut alerts = Vec::with_capacity(STATES.len());
    for state in STATES {
        let n = counts
            .iter()
            .find(|(s, _)| s == state)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        metrics::gauge!("csatwatch_alerts_stored", "state" => state).set(n as f64);
        alerts.push((state, n));
    }
    // Poller lag: how long since each poller last read a page (its cursor
    // is saved after every page, empty or not).
    let mut poll_lag_seconds = Vec::new();
    for (source, updated_at) in store.poll_cursor_times().await? {
        let lag = (now_ms - updated_at).max(0) as f64 / 1000.0;
        metrics::gauge!("csatwatch_poll_lag_seconds", "source" => source.clone()).set(lag);
        poll_lag_seconds.push((source, lag));
    }
    Ok(Gauges {
        outbox_pending: stats.pending,
        outbox_dead: stats.dead,
        oldest_pending_age_seconds: age,
        alerts,
        poll_lag_seconds,
    })
}

/// Refreshes the gauges and runs the recorder's upkeep (which drains
/// histogram buffers so they do not grow between scrapes) every
/// [`REFRESH`], until `cancel`.
pub async fn run(
    store: Store,
    clock: std::sync::Arc<dyn Clock>,
    handle: Option<PrometheusHandle>,
    cancel: CancellationToken,
) {
    let mut ticks = tokio::time::interval(REFRESH);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ticks.tick() => {}
        }
        if let Err(e) = refresh(&store, clock.now_ms()).await {
            tracing::debug!(error = %e, "gauges not refreshed: database unavailable");
        }
        if let Some(handle) = &handle {
            handle.run_upkeep();
        }
    }
}
