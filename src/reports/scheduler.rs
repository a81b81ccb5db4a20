//! Runs digests and drop-alert evaluations when due, and sends the
//! messages they write. Every replica runs it; the store's unique keys
//! decide which one writes each message, and claims with a lease which one
//! sends it, so each is posted once (only a crash between Slack's answer and
//! the commit that records it could repeat one).
//!
//! A digest is written at its time, or late if csatwatch was down then,
//! within its `grace`; after that the period is skipped. A drop alert is
//! evaluated once a day, at its time (or late within 6 h).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{ReportError, digest, drops};
use crate::clock::{Clock, ms};
use crate::settings::Settings;
use crate::sinks::Sink;
use crate::store::{NewReportMessage, Store, StoreResult};

/// How late a missed drop-alert evaluation still runs.
const DROP_GRACE: Duration = Duration::from_secs(6 * 3600);
/// How often the background task looks.
const TICK: Duration = Duration::from_secs(30);
const LEASE: Duration = Duration::from_secs(60);

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub digests_written: u64,
    pub drop_messages_written: u64,
}

/// The settings in force, replaced whole by a settings reload: the
/// scheduler reads them at each tick, so new, changed and removed
/// `[[digests]]` and `[[drop_alerts]]` apply from the next tick, which a
/// replacement brings forward.
#[derive(Debug)]
pub struct LiveSettings {
    settings: std::sync::RwLock<Arc<Settings>>,
    changed: tokio::sync::Notify,
}

impl LiveSettings {
    pub fn new(settings: Arc<Settings>) -> Arc<LiveSettings> {
        Arc::new(LiveSettings {
            settings: std::sync::RwLock::new(settings),
            changed: tokio::sync::Notify::new(),
        })
    }

    /// The settings in force now.
    pub fn get(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces them and wakes the scheduler for a tick now.
    pub fn set(&self, settings: Arc<Settings>) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = settings;
        self.changed.notify_one();
    }
}

#[derive(Debug, Clone)]
pub struct Scheduler {
    store: Store,
    live: Arc<LiveSettings>,
    clock: Arc<dyn Clock>,
    sink: Sink,
}

impl Scheduler {
    pub fn new(store: Store, settings: Arc<Settings>, clock: Arc<dyn Clock>, sink: Sink) -> Self {
        Self::live(store, LiveSettings::new(settings), clock, sink)
    }

    /// A scheduler that follows `live` (what a reload replaces).
    pub fn live(store: Store, live: Arc<LiveSettings>, clock: Arc<dyn Clock>, sink: Sink) -> Self {
        Scheduler {
            store,
            live,
            clock,
            sink,
        }
    }

    /// The settings in force now.
    fn settings(&self) -> Arc<Settings> {
        self.live.get()
    }

    /// Writes the digests and evaluates the drop alerts that are due.
    pub async fn tick(&self) -> Result<TickReport, ReportError> {
        let now = self.clock.now_ms();
        // One snapshot per tick: a reload meanwhile applies from the next.
        let settings = self.settings();
        let tz = settings.reports.time_zone();
        let mut report = TickReport::default();
        for d in &settings.digests {
            let (due, due_ms) = digest::schedule(d).last_due(now, &tz);
            if now - due_ms > ms(d.grace) {
                continue;
            }
            let period = due.to_string();
            if self
                .store
                .report_message_exists("digest", &d.name, &period)
                .await?
            {
                continue;
            }
            let body = digest::build(&self.store, &settings, d, due).await?;
            let channel = d
                .channel
                .clone()
                .or_else(|| settings.slack.default_channel.clone())
                .unwrap_or_default();
            let mut tx = self.store.begin().await?;
            let written = tx
                .insert_report_message(&NewReportMessage {
                    kind: "digest",
                    name: d.name.clone(),
                    period: period.clone(),
                    channel,
                    body: body.to_string(),
                    created_at_ms: now,
                })
                .await?;
            tx.commit().await?;
            if written {
                tracing::info!(digest = %d.name, period = %period, late_ms = now - due_ms, "digest written");
                report.digests_written += 1;
            }
        }
        for d in &settings.drop_alerts {
            let (due, due_ms) = drops::schedule(d).last_due(now, &tz);
            if now - due_ms > ms(DROP_GRACE) {
                continue;
            }
            let run = format!("drop:{}", d.name);
            if !self
                .store
                .claim_report_run(&run, &due.to_string(), now)
                .await?
            {
                continue;
            }
            let evaluations = drops::evaluate(&self.store, &settings, d, due).await?;
            report.drop_messages_written +=
                drops::apply(&self.store, &settings, d, &evaluations, now).await?;
        }
        Ok(report)
    }

    /// Sends the messages due now; returns how many were sent.
    pub async fn send_due(&self) -> StoreResult<u64> {
        let now = self.clock.now_ms();
        let token = format!("report-{}", uuid::Uuid::new_v4());
        let claimed = self
            .store
            .claim_report_messages(now, ms(LEASE), &token, 20)
            .await?;
        let mut sent = 0;
        for m in claimed {
            let body: serde_json::Value = serde_json::from_str(&m.body).unwrap_or_default();
            match self.sink.post_message(&m.channel, None, body).await {
                Ok(_) => {
                    self.store
                        .finish_report_message(m.id, &token, "sent", now, now, None)
                        .await?;
                    tracing::info!(kind = %m.kind, name = %m.name, message_id = m.id, "report message sent");
                    sent += 1;
                }
                Err(e) => {
                    let give_up = now - m.created_at >= ms(self.settings().alerts.give_up_after);
                    let (state, next) = if !e.is_retryable() || give_up {
                        tracing::error!(kind = %m.kind, name = %m.name, message_id = m.id, error = %e, "a report message could not be delivered and was given up; check the Slack token and channel (check-config --online)");
                        ("dead", now)
                    } else {
                        let backoff = 30_000i64 << m.attempts.clamp(0, 7);
                        let wait = e.retry_after().map(ms).unwrap_or(0).max(backoff);
                        tracing::warn!(kind = %m.kind, name = %m.name, message_id = m.id, error = %e, "a report message will be retried");
                        ("pending", now + wait.min(3_600_000))
                    };
                    self.store
                        .finish_report_message(m.id, &token, state, now, next, Some(&e.to_string()))
                        .await?;
                }
            }
        }
        Ok(sent)
    }

    /// Ticks and sends every 30 s until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        // Runs even with no digests or drop alerts: a reload may add some.
        loop {
            let idle = {
                let settings = self.settings();
                settings.digests.is_empty() && settings.drop_alerts.is_empty()
            };
            if idle {
                // No query while there is nothing configured (as before
                // reloads existed); a reload that adds one starts it.
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(TICK) => {}
                    _ = self.live.changed.notified() => {}
                }
                continue;
            }
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "digests and drop alerts could not be evaluated; trying again shortly");
            }
            if let Err(e) = self.send_due().await {
                tracing::warn!(error = %e, "report messages could not be sent; trying again shortly");
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(TICK) => {}
                _ = self.live.changed.notified() => {}
            }
        }
    }
}

/// Lines for `check-config --explain`: each digest and drop alert and
/// when it runs next.
pub fn explain(settings: &Settings, now_ms: i64) -> Vec<String> {
    let tz = settings.reports.time_zone();
    let when = |at: i64| {
        jiff::Timestamp::from_millisecond(at)
            .map(|t| {
                t.to_zoned_datetime(tz.clone())
                    .strftime("%Y-%m-%d %H:%M %Z")
                    .to_string()
            })
            .unwrap_or_default()
    };
    let mut lines = Vec::new();
    for d in &settings.digests {
        let (due, at) = digest::schedule(d).next_due(now_ms, &tz);
        let covered = digest::covered(d, due);
        lines.push(format!(
            "digest {:?} ({} at {}{}) to {}: next {} (covers {})",
            d.name,
            d.schedule,
            d.at,
            if d.schedule == "weekly" {
                format!(" on {}", d.weekday)
            } else {
                String::new()
            },
            d.channel
                .clone()
                .or_else(|| settings.slack.default_channel.clone())
                .unwrap_or_default(),
            when(at),
            covered.label
        ));
    }
    for d in &settings.drop_alerts {
        let (_, at) = drops::schedule(d).next_due(now_ms, &tz);
        lines.push(format!(
            "drop alert {:?} ({} over {} days vs the {} days before, per {}): next evaluation {}",
            d.name,
            d.metric,
            d.window.as_secs() / 86_400,
            d.baseline.as_secs() / 86_400,
            d.per.join(", "),
            when(at)
        ));
    }
    lines
}
