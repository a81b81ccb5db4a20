//! Pollers and backfills: read ratings from each helpdesk's API, as a safety
//! net for webhooks that were lost and as the only path where a helpdesk
//! cannot push. Ratings go through the same pipeline as webhooks, so a
//! rating seen both ways is one rating and at most one alert.
//!
//! - A cursor is saved after every page: a restart resumes where it stopped.
//! - A lease row (`poll:<source>`) lets one replica at a time poll a source;
//!   another takes over when the holder's lease expires.
//! - A per-source request budget (`poll_requests_per_minute`, by default
//!   the source's own share of its helpdesk's rate limit) and the
//!   helpdesk's own rate-limit answers (`Retry-After` and its variants,
//!   read by each source into [`FetchError::retry_after`]) are honoured.
//! - Backfills use the same pages with their own cursor and never alert.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, ms};
use crate::domain::Via;
use crate::pipeline::{Pipeline, RatingOutcome};
use crate::settings::Settings;
use crate::sources::{ConfiguredSource, FetchError, PollRequest, SourceRegistry};
use crate::store::{Store, StoreError};

/// What one poll (or backfill) run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    pub pages: usize,
    pub ratings: usize,
    pub new: usize,
    pub changed: usize,
    pub alerts: usize,
    /// Another replica holds the source's lease: nothing was done.
    pub not_leader: bool,
}

/// Why a poll stopped early.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("{0}")]
    Api(FetchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the source {0:?} cannot poll: give it [sources.api] credentials and a poller-capable kind"
    )]
    CannotPoll(String),
    #[error("stopped")]
    Cancelled,
}

/// When a helpdesk reports this few requests left in its window, the next
/// page waits [`LOW_REMAINING_PAUSE`] (windows are a minute or less).
const LOW_REMAINING: u64 = 2;
const LOW_REMAINING_PAUSE: Duration = Duration::from_secs(10);

/// A sliding one-minute request budget.
#[derive(Debug)]
struct Budget {
    per_minute: u32,
    sent: Mutex<VecDeque<tokio::time::Instant>>,
}

impl Budget {
    fn new(per_minute: u32) -> Self {
        Budget {
            per_minute: per_minute.max(1),
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits until one more request fits in the last minute.
    async fn take(&self) {
        loop {
            let wait = {
                let mut sent = self.sent.lock().await;
                let now = tokio::time::Instant::now();
                while sent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
                {
                    sent.pop_front();
                }
                if (sent.len() as u32) < self.per_minute {
                    sent.push_back(now);
                    return;
                }
                Duration::from_secs(60) - now.duration_since(*sent.front().expect("non-empty"))
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Polls every source that can, and runs backfills.
#[derive(Debug)]
pub struct Pollers {
    store: Store,
    pipeline: Pipeline,
    sources: Arc<SourceRegistry>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
    /// This process's name in lease rows.
    pub instance: String,
    budgets: std::collections::HashMap<String, Arc<Budget>>,
    /// Longest wait on a helpdesk's `Retry-After` inside one run; longer
    /// ones end the run and the next interval resumes from the cursor.
    pub max_inline_wait: Duration,
}

impl Pollers {
    pub fn new(
        store: Store,
        pipeline: Pipeline,
        sources: Arc<SourceRegistry>,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        settings: Arc<Settings>,
    ) -> Self {
        let budgets = sources
            .iter()
            .filter_map(|s| {
                let plan = s.poll?;
                Some((
                    s.name.to_string(),
                    Arc::new(Budget::new(plan.requests_per_minute)),
                ))
            })
            .collect();
        Pollers {
            store,
            pipeline,
            sources,
            http,
            clock,
            settings,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            budgets,
            max_inline_wait: Duration::from_secs(120),
        }
    }

    /// The sources that poll: an interval is set and the source can.
    pub fn polling_sources(&self) -> Vec<(ConfiguredSource, Duration)> {
        self.sources
            .iter()
            .filter_map(|source| Some((source.clone(), source.poll?.interval?)))
            .collect()
    }

    fn lease_ttl(&self) -> i64 {
        // Long enough for a page and a short rate-limit wait; renewed every page.
        ms(self.max_inline_wait) + 60_000
    }

    /// One poll of `source`, from its saved cursor until caught up, if this
    /// replica holds (or takes) the source's lease.
    pub async fn poll_once(
        &self,
        source: &ConfiguredSource,
        cancel: &CancellationToken,
    ) -> Result<PollReport, PollError> {
        let lease = format!("poll:{}", source.name);
        let now = self.clock.now_ms();
        if !self
            .store
            .acquire_lease(&lease, &self.instance, now, now + self.lease_ttl())
            .await?
        {
            return Ok(PollReport {
                not_leader: true,
                ..PollReport::default()
            });
        }
        let Some(plan) = source.poll else {
            return Err(PollError::CannotPoll(source.name.to_string()));
        };
        let first_start = plan.start.unwrap_or(self.settings.alerts.max_age);
        let overlap = plan.overlap;
        let report = self
            .run_pages(
                source,
                &lease,
                Via::Poll,
                (now - ms(first_start), None, ms(overlap)),
                cancel,
                &mut |_| {},
            )
            .await;
        metrics::counter!("csatwatch_polls_total", "source" => source.name.to_string(), "outcome" => if report.is_ok() { "ok" } else { "error" }).increment(1);
        report
    }

    /// Imports history between `since_ms` and `until_ms` through the same
    /// pages, never alerting. Resumable: the cursor is kept under a name
    /// made of the source and the window.
    pub async fn backfill(
        &self,
        source: &ConfiguredSource,
        since_ms: i64,
        until_ms: Option<i64>,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&PollReport) + Send),
    ) -> Result<PollReport, PollError> {
        let name = format!(
            "backfill:{}:{}:{}",
            source.name,
            since_ms,
            until_ms
                .map(|u| u.to_string())
                .unwrap_or_else(|| "now".into())
        );
        self.run_pages(
            source,
            &name,
            Via::Backfill,
            (since_ms, until_ms, 0),
            cancel,
            progress,
        )
        .await
    }

    /// Reads pages from the saved cursor of `cursor_name` until caught up.
    /// `window` is (since, until, overlap) in Unix ms.
    async fn run_pages(
        &self,
        source: &ConfiguredSource,
        cursor_name: &str,
        via: Via,
        window: (i64, Option<i64>, i64),
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&PollReport) + Send),
    ) -> Result<PollReport, PollError> {
        let (since_ms, until_ms, overlap_ms) = window;
        let (Some(api), Some(plan)) = (source.api(), source.poll) else {
            return Err(PollError::CannotPoll(source.name.to_string()));
        };
        let budget = self
            .budgets
            .get(source.name.as_str())
            .cloned()
            .unwrap_or_else(|| Arc::new(Budget::new(plan.requests_per_minute)));
        let lease = format!("poll:{}", source.name);
        let mut report = PollReport::default();
        let mut cursor = self.store.poll_cursor(cursor_name).await?;
        let mut new_cycle = true;
        loop {
            if cancel.is_cancelled() {
                return Err(PollError::Cancelled);
            }
            let request = PollRequest {
                cursor: cursor.clone(),
                new_cycle,
                overlap_ms,
                since_ms,
                until_ms,
                now_ms: self.clock.now_ms(),
            };
            budget.take().await;
            let page = match api.poll_page(&self.http, &request).await {
                Ok(page) => page,
                Err(e)
                    if e.retryable && e.retry_after.is_some_and(|d| d <= self.max_inline_wait) =>
                {
                    let wait = e.retry_after.unwrap_or_default();
                    tracing::warn!(source = %source.name, wait_s = wait.as_secs(), "helpdesk API rate limit; waiting as it asks");
                    tokio::select! {
                        _ = cancel.cancelled() => return Err(PollError::Cancelled),
                        _ = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
                Err(e) => {
                    metrics::counter!("csatwatch_poll_errors_total", "source" => source.name.to_string()).increment(1);
                    return Err(PollError::Api(e));
                }
            };
            new_cycle = false;
            report.pages += 1;
            if !page.ratings.is_empty() {
                let recorded = self
                    .pipeline
                    .record(source, None, &page.ratings, via)
                    .await?;
                report.ratings += recorded.ratings.len();
                report.alerts += recorded.alerts();
                for r in &recorded.ratings {
                    match r.outcome {
                        RatingOutcome::New => report.new += 1,
                        RatingOutcome::Changed => report.changed += 1,
                        _ => {}
                    }
                }
            }
            let now = self.clock.now_ms();
            self.store
                .save_poll_cursor(cursor_name, &page.cursor, now)
                .await?;
            cursor = Some(page.cursor);
            progress(&report);
            if via == Via::Poll {
                // Renew the lease each page; losing it mid-run means another
                // replica took over (this one stalled): stop.
                if !self
                    .store
                    .acquire_lease(&lease, &self.instance, now, now + self.lease_ttl())
                    .await?
                {
                    report.not_leader = true;
                    break;
                }
            }
            if !page.more {
                break;
            }
            // The helpdesk says its window is (nearly) spent: slow down
            // rather than spend the team's last requests and hit a 429.
            if page.remaining.is_some_and(|left| left <= LOW_REMAINING) {
                tracing::info!(source = %source.name, remaining = page.remaining, "helpdesk API rate limit nearly spent; pausing between pages");
                tokio::select! {
                    _ = cancel.cancelled() => return Err(PollError::Cancelled),
                    _ = tokio::time::sleep(LOW_REMAINING_PAUSE) => {}
                }
            }
        }
        Ok(report)
    }

    /// Polls every polling source at its interval until `cancel`; releases
    /// the leases at the end so another replica takes over at once.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        for (source, interval) in self.polling_sources() {
            let this = self.clone();
            let cancel = cancel.clone();
            tasks.spawn(async move {
                loop {
                    match this.poll_once(&source, &cancel).await {
                        Ok(r) if r.not_leader => {}
                        Ok(r) => tracing::info!(source = %source.name, pages = r.pages, ratings = r.ratings, new = r.new, changed = r.changed, alerts = r.alerts, "poll done"),
                        Err(PollError::Cancelled) => break,
                        Err(e) => tracing::warn!(source = %source.name, error = %e, "poll failed; the next one resumes from the saved cursor"),
                    }
                    // A little jitter, so replicas and sources do not poll in step.
                    let jitter = Duration::from_millis(rand::random_range(0..=interval.as_millis().min(10_000) as u64 / 10));
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(interval + jitter) => {}
                    }
                }
                let _ = this.store.release_lease(&format!("poll:{}", source.name), &this.instance).await;
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// Progress output for `csatwatch backfill`: a line rewritten in place on a
/// terminal, plain lines otherwise.
pub struct Progress {
    tty: bool,
    last_line_at: std::time::Instant,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
            last_line_at: std::time::Instant::now(),
        }
    }
}

impl Progress {
    pub fn update(&mut self, report: &PollReport) {
        let line = format!(
            "backfill: {} page(s), {} rating(s) ({} new, {} changed)",
            report.pages, report.ratings, report.new, report.changed
        );
        if self.tty {
            eprint!("\r{line}");
            let _ = std::io::stderr().flush();
        } else if self.last_line_at.elapsed() >= Duration::from_secs(5) {
            eprintln!("{line}");
            self.last_line_at = std::time::Instant::now();
        }
    }

    pub fn finish(&mut self) {
        if self.tty {
            eprintln!();
        }
    }
}
