//! The outbox dispatcher: claims due alerts, renders them from the rating
//! as it is now, delivers them through the [`Sink`], and records the outcome.
//!
//! The path keeps up with a burst:
//!
//! - it has its own database connections ([`Store::with_own_pool`]), so it
//!   never waits behind request handlers;
//! - each pass asks the pacer which channels may take a message now, reads
//!   the due rows of those channels in send order (an index walk, no sort),
//!   and claims exactly the rows it is about to send, with the rating and
//!   the parent message in one read per batch;
//! - it never sleeps on one channel's pace: a channel with no slot left is
//!   left out of the pass, the others go on, and the loop comes back when
//!   that channel's next slot opens;
//! - channels are sent to side by side (one message at a time per channel,
//!   in order), and each outcome is one write.
//!
//! Delivery is at least once: a claim is a lease with a fencing token. A
//! dispatcher that dies mid-send is noticed by its missing heartbeat
//! ([`liveness`]) and its claims are taken over within seconds, marked in
//! doubt; a sink that can find its own messages (Slack, by metadata) looks
//! before sending such a row again, so neither a crash nor a slow Slack
//! repeats a message in normal operation.
//!
//! Retries back off exponentially with jitter and honour `Retry-After`; an
//! alert still failing after `alerts.give_up_after`, or refused for good
//! (`channel_not_found`, `invalid_auth`, …), is marked dead and logged at ERROR.

mod deliver;
mod follow_ons;
mod lane;
mod liveness;
mod pacing;
mod story;

pub use lane::{Lane, LaneClaim, LaneCounts};
pub use story::Enrichment;
use tracing::Instrument as _;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, ms};
use crate::domain::{Scale, Score, Sentiment};
use crate::pipeline::SendsRecorder;
use crate::settings::AlertSettings;
use crate::sinks::{AlertView, Sink, SinkError};
use crate::sources::SourceRegistry;
use crate::store::{DueAlert, SentRecord, Store, StoreResult};
use deliver::{Batch, Delivered};
use pacing::{Pacer, Slot};

/// What one flush did, for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub sent: usize,
    pub retried: usize,
    pub dead: usize,
    pub superseded: usize,
    /// Sends whose claim had been taken over before they were recorded.
    pub lost_claims: usize,
    /// Updates and thread replies with nothing to do (webhook mode, or the
    /// message they belong to was never posted).
    pub skipped: usize,
    /// Storm digests that replaced waiting alerts.
    pub digests: usize,
    /// Escalations enqueued.
    pub escalations: usize,
}

impl FlushReport {
    fn add(&mut self, other: FlushReport) {
        self.sent += other.sent;
        self.retried += other.retried;
        self.dead += other.dead;
        self.superseded += other.superseded;
        self.lost_claims += other.lost_claims;
        self.skipped += other.skipped;
        self.digests += other.digests;
        self.escalations += other.escalations;
    }
}

/// Delivers the outbox.
#[derive(Debug)]
pub struct Dispatcher {
    /// The dispatcher's own pool (see the module docs).
    store: Store,
    sink: Sink,
    clock: Arc<dyn Clock>,
    /// Replaced by a settings reload (see [`Dispatcher::apply_settings`]).
    settings: std::sync::RwLock<AlertSettings>,
    wake: Arc<Notify>,
    /// Prefix of this process's claim tokens, and its heartbeat row.
    instance: String,
    source_kinds: HashMap<String, &'static str>,
    /// Per-channel and workspace pacing, and Slack's `Retry-After`.
    pacer: Pacer,
    /// Serialises flushes within this process (the run loop and a manual
    /// `flush` from tests or commands).
    flushing: Mutex<()>,
    /// Actions, outcome, the customer's story and names (closing the loop).
    enrichment: Option<Enrichment>,
    /// When a channel with alerts waiting can next take a message.
    pacing_wake: std::sync::Mutex<Option<Instant>>,
    /// The outbox changed since the gauges were last read.
    gauges_dirty: AtomicBool,
    /// New alerts the writer claimed for this dispatcher (see [`Lane`]),
    /// open while [`Dispatcher::run`] runs.
    lane: Arc<Lane>,
    /// Records sends in the writer's batches (see [`SendsRecorder`]);
    /// `None`: in a transaction of their own.
    sends: Option<SendsRecorder>,
}

/// Rows claimed and sent per batch.
const BATCH: usize = 50;
/// Due rows read per candidate query.
const CANDIDATES: i64 = 200;
/// Longest pacing wait a manual [`Dispatcher::flush`] sits through.
const MAX_PACING_WAIT: Duration = Duration::from_secs(5);
/// Gauges are re-read at most this often after flushes that changed the
/// outbox (and every 15 s by the gauges task): never a scan per flush.
const GAUGES_AFTER_FLUSH: Duration = Duration::from_secs(1);
/// Connections of the dispatcher's own pool.
const CONNECTIONS: u32 = 2;

impl Dispatcher {
    pub fn new(
        store: Store,
        sink: Sink,
        clock: Arc<dyn Clock>,
        settings: AlertSettings,
        wake: Arc<Notify>,
        sources: &SourceRegistry,
    ) -> Self {
        Self::with_workspace_cap(store, sink, clock, settings, wake, sources, 100)
    }

    /// As [`Dispatcher::new`], with `slack.max_per_minute`.
    pub fn with_workspace_cap(
        store: Store,
        sink: Sink,
        clock: Arc<dyn Clock>,
        settings: AlertSettings,
        wake: Arc<Notify>,
        sources: &SourceRegistry,
        max_per_minute: u32,
    ) -> Self {
        Dispatcher {
            pacer: Pacer::new(
                settings.channel_interval,
                settings.channel_burst,
                max_per_minute,
            ),
            store: store.with_own_pool(CONNECTIONS),
            sink,
            clock,
            settings: std::sync::RwLock::new(settings),
            wake,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            source_kinds: sources
                .iter()
                .map(|s| (s.name.to_string(), s.kind()))
                .collect(),
            flushing: Mutex::new(()),
            enrichment: None,
            pacing_wake: std::sync::Mutex::new(None),
            gauges_dirty: AtomicBool::new(false),
            lane: Arc::new(Lane::default()),
            sends: None,
        }
    }

    /// Takes the alerts the writer of `lane` claims for this dispatcher
    /// while its run loop runs ([`crate::pipeline::Pipeline::lane`]).
    pub fn with_lane(mut self, lane: Arc<Lane>) -> Self {
        self.lane = lane;
        self
    }

    /// Records the alerts it sent through the writer
    /// ([`crate::pipeline::Pipeline::sends_recorder`]).
    pub fn with_sends(mut self, sends: Option<SendsRecorder>) -> Self {
        self.sends = sends;
        self
    }

    /// Alerts also show the helpdesk actions, the follow-up outcome, the
    /// customer's story and names for ids; rules may DM the rated agent.
    pub fn with_enrichment(mut self, enrichment: Enrichment) -> Self {
        self.enrichment = Some(enrichment);
        self
    }

    /// The `[alerts]` settings in force.
    fn alerts(&self) -> AlertSettings {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies reloaded settings: pacing (`alerts.channel_interval`,
    /// `alerts.channel_burst`, `slack.max_per_minute`), storms, retries,
    /// the lease, `alerts.channel_in_flight`, from the next pass on; a new
    /// bot token, webhook URL or default channel for the sink. Returns the
    /// Slack change it could not apply (a switch between bot token and
    /// webhook), if any.
    pub fn apply_settings(
        &self,
        alerts: &AlertSettings,
        slack: &crate::settings::SlackSettings,
    ) -> Option<&'static str> {
        self.pacer.set_limits(
            alerts.channel_interval,
            alerts.channel_burst,
            slack.max_per_minute,
        );
        self.lane.set_lease(ms(alerts.claim_lease));
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = alerts.clone();
        match &self.sink {
            Sink::Slack(client) => client.update(slack).err(),
            Sink::Log if slack.bot_token.is_some() || slack.webhook_url.is_some() => {
                Some("slack.bot_token / slack.webhook_url (switching how alerts are sent)")
            }
            Sink::Log => None,
        }
    }

    /// What wakes the run loop (after something was enqueued).
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    /// This dispatcher's instance id (the prefix of its claim tokens).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Runs until `cancel`: flushes whenever woken (right after a commit that
    /// enqueued alerts), when the next retry falls due or a paced channel
    /// may take its next message, and every 30 s. Beside it, the heartbeat
    /// that lets other dispatchers take over if this one dies, and that
    /// takes over from those that died.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        // Nothing is claimed, by a pass or through the lane, before this
        // dispatcher has a heartbeat row: one that dies right after its
        // first claim is then still found and taken over within seconds,
        // instead of holding its claims for `alerts.claim_lease`.
        if !self.first_beat(&cancel).await {
            return;
        }
        let liveness = tokio::spawn(self.clone().keep_alive(cancel.clone()));
        self.lane
            .open(&self.instance, ms(self.alerts().claim_lease));
        let mut db_backoff = Duration::from_secs(1);
        let mut gauges_read = Instant::now();
        loop {
            let wait = match self.flush_pass(&cancel, false).await {
                Ok(_) => {
                    db_backoff = Duration::from_secs(1);
                    let mut wait = self.until_next_due().await;
                    if self.gauges_dirty.load(Ordering::Relaxed) {
                        let due = gauges_read + GAUGES_AFTER_FLUSH;
                        if Instant::now() >= due {
                            self.gauges_dirty.store(false, Ordering::Relaxed);
                            gauges_read = Instant::now();
                            let _ = crate::gauges::refresh(&self.store, self.clock.now_ms()).await;
                        } else {
                            wait = wait.min(due - Instant::now());
                        }
                    }
                    wait
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_s = db_backoff.as_secs(), "alert dispatcher cannot reach the database");
                    let wait = db_backoff;
                    db_backoff = (db_backoff * 2).min(Duration::from_secs(30));
                    wait
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // Claims handed over and not taken are released with the rest.
        self.lane.close();
        let _ = liveness.await;
        match self.store.release_claims(&self.instance).await {
            Ok(n) if n > 0 => {
                tracing::info!(released = n, "released claimed alerts for another replica")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not release claimed alerts; another replica takes them over when this one's heartbeat stops")
            }
        }
        let _ = self.store.forget_dispatcher(&self.instance).await;
    }

    /// How long the run loop may sleep: until the next row falls due (or
    /// may escalate), or a paced channel may take its next message.
    async fn until_next_due(&self) -> Duration {
        let idle = Duration::from_secs(30);
        let due = match self.store.next_alert_due_at().await {
            Ok(Some(at)) => {
                let ms = (at - self.clock.now_ms()).clamp(0, idle.as_millis() as i64);
                Duration::from_millis(ms as u64)
            }
            _ => idle,
        };
        let paced = self
            .pacing_wake
            .lock()
            .ok()
            .and_then(|w| *w)
            .map(|at| at.saturating_duration_since(Instant::now()));
        let wait = match (due.is_zero(), paced) {
            // Rows due now that the last pass left are waiting for their
            // channel's pace: wake when it opens, not in a busy loop. (New
            // rows for other channels wake the loop themselves.)
            (true, Some(paced)) => paced,
            // Due now but not paced: claimed by another replica; look again soon.
            (true, None) => Duration::from_millis(50),
            (false, paced) => due.min(paced.unwrap_or(idle)),
        };
        wait.max(Duration::from_millis(10))
    }

    /// Delivers every alert due now, and returns what it did. A channel
    /// held by its pace is waited for (up to a few seconds in all), after
    /// every other channel was served: what tests and commands expect.
    pub async fn flush(&self) -> StoreResult<FlushReport> {
        self.flush_pass(&CancellationToken::new(), true).await
    }

    /// Delivers what may go right now and returns at once: what the run
    /// loop does each time it wakes. Channels held by their pace are left
    /// for the next pass.
    pub async fn flush_now(&self) -> StoreResult<FlushReport> {
        self.flush_pass(&CancellationToken::new(), false).await
    }

    async fn flush_pass(
        &self,
        cancel: &CancellationToken,
        wait_for_pacing: bool,
    ) -> StoreResult<FlushReport> {
        let _one_at_a_time = self.flushing.lock().await;
        let mut report = FlushReport::default();
        let mut waited = Duration::ZERO;
        loop {
            // Storm mode is decided from what is waiting, before anything
            // for it is posted in this pass.
            report.add(self.prepare().await?);
            let (pass, next) = self.pass(cancel).await?;
            report.add(pass);
            // Alerts wait for a pace: new ones queue behind them, in order
            // and foldable by storm control, until a pass sends them all.
            self.lane.admit(next.is_none());
            if let Ok(mut wake) = self.pacing_wake.lock() {
                *wake = next.map(|d| Instant::now() + d);
            }
            match next {
                Some(wait)
                    if wait_for_pacing
                        && !cancel.is_cancelled()
                        && waited + wait <= MAX_PACING_WAIT =>
                {
                    waited += wait;
                    tokio::time::sleep(wait).await;
                }
                _ => break,
            }
        }
        if report != FlushReport::default() {
            self.gauges_dirty.store(true, Ordering::Relaxed);
        }
        Ok(report)
    }

    /// One pass: sends every due row whose channel may take a message now.
    /// Returns what it did and, when rows wait for a channel's pace (or the
    /// workspace cap, or Slack's `Retry-After`), how long until the first
    /// of them may go.
    async fn pass(
        &self,
        cancel: &CancellationToken,
    ) -> StoreResult<(FlushReport, Option<Duration>)> {
        let mut report = FlushReport::default();
        let now = self.clock.now_ms();
        // Channels Slack rate-limited sit this pass out.
        let mut excluded: Vec<String> = Vec::new();
        let mut next: Option<Duration> = None;
        let sooner = |next: &mut Option<Duration>, wait: Duration| {
            *next = Some(next.map_or(wait, |n| n.min(wait)));
        };
        for (channel, wait) in self.pacer.blocked(now).await {
            excluded.push(channel);
            sooner(&mut next, wait);
        }
        // Alerts the writer claimed go first, unless something waits for a
        // pace since they were claimed: then they are released and queue
        // behind it, so a channel's messages keep their order.
        if let Some((token, ids)) = self.lane.take() {
            for (n, chunk) in ids.chunks(BATCH).enumerate() {
                let ready = if self.lane.admitting() && !cancel.is_cancelled() {
                    self.admit_handed(&token, chunk, &mut report).await
                } else {
                    self.release_handed(&token, chunk)
                        .await
                        .map(|()| Vec::new())
                };
                // A failure before a send leaves the rest claimed and
                // untouched: given back, the next pass starts with them.
                let rows = match ready {
                    Ok(rows) => rows,
                    Err(e) => {
                        self.lane.give_back(ids[n * BATCH..].to_vec());
                        return Err(e);
                    }
                };
                if let Err(e) = self.deliver_rows(rows, &token, cancel, &mut report).await {
                    let rest = ids.get((n + 1) * BATCH..).unwrap_or_default();
                    self.lane.give_back(rest.to_vec());
                    return Err(e);
                }
            }
        }
        'pass: while !cancel.is_cancelled() {
            let candidates = self
                .store
                .due_candidates(now, &excluded, CANDIDATES)
                .await?;
            if candidates.is_empty() {
                break;
            }
            let mut admitted = Vec::new();
            let mut considered_all = true;
            let mut workspace_full = false;
            for candidate in &candidates {
                if admitted.len() >= BATCH {
                    considered_all = false;
                    break;
                }
                if excluded.contains(&candidate.channel) {
                    continue;
                }
                match self
                    .pacer
                    .try_reserve(&candidate.channel, self.clock.now_ms())
                    .await
                {
                    Slot::Now => admitted.push(candidate.id),
                    Slot::ChannelIn(wait) => {
                        excluded.push(candidate.channel.clone());
                        sooner(&mut next, wait);
                    }
                    Slot::WorkspaceIn(wait) => {
                        sooner(&mut next, wait);
                        workspace_full = true;
                        break;
                    }
                }
            }
            if !admitted.is_empty() {
                let token = format!("{}:{}", self.instance, uuid::Uuid::new_v4().simple());
                let claimed = self
                    .store
                    .claim_alerts(
                        &admitted,
                        self.clock.now_ms(),
                        ms(self.alerts().claim_lease),
                        &token,
                    )
                    .await?;
                metrics::counter!("csatwatch_alert_claims_total", "by" => "dispatcher")
                    .increment(claimed.rows.len() as u64);
                report.dead += claimed.unreadable;
                report.add(self.deliver_batch(claimed.rows, &token, cancel).await?);
            }
            if workspace_full || (considered_all && (candidates.len() as i64) < CANDIDATES) {
                break 'pass;
            }
        }
        Ok((report, next))
    }

    /// Of the alerts the writer claimed for this dispatcher with `token`
    /// (the fast lane), reads those whose channel may take a message now.
    /// The others are released, due again as usual, and the lane closes
    /// until a pass has sent what waits. On failure nothing was changed
    /// (but a row that cannot be read, given up and counted in `report`).
    async fn admit_handed(
        &self,
        token: &str,
        ids: &[i64],
        report: &mut FlushReport,
    ) -> StoreResult<Vec<DueAlert>> {
        let claimed = self.store.claimed_alerts(ids, token).await?;
        report.dead += claimed.unreadable;
        let mut admitted = Vec::with_capacity(claimed.rows.len());
        let mut held = Vec::new();
        let mut held_channels: Vec<String> = Vec::new();
        for row in claimed.rows {
            if held_channels.contains(&row.channel) {
                held.push(row.id);
                continue;
            }
            match self
                .pacer
                .try_reserve(&row.channel, self.clock.now_ms())
                .await
            {
                Slot::Now => admitted.push(row),
                Slot::ChannelIn(_) | Slot::WorkspaceIn(_) => {
                    held.push(row.id);
                    held_channels.push(row.channel);
                }
            }
        }
        if !held.is_empty() {
            self.lane.admit(false);
            self.release_handed(token, &held).await?;
        }
        Ok(admitted)
    }

    /// Releases alerts the writer claimed with `token`: due again, to wait
    /// their turn behind what waits for a pace.
    async fn release_handed(&self, token: &str, ids: &[i64]) -> StoreResult<()> {
        self.store.release_alerts(ids, token).await?;
        self.lane.released(ids.len() as u64);
        Ok(())
    }

    /// Sends `rows` claimed with `token` (none: nothing to do), adding what
    /// happened to `report`.
    async fn deliver_rows(
        &self,
        rows: Vec<DueAlert>,
        token: &str,
        cancel: &CancellationToken,
        report: &mut FlushReport,
    ) -> StoreResult<()> {
        if !rows.is_empty() {
            report.add(self.deliver_batch(rows, token, cancel).await?);
        }
        Ok(())
    }

    /// Sends a claimed batch: channels side by side; within a channel one
    /// message at a time in order (or `alerts.channel_in_flight` at once).
    /// The sends that went out are recorded together in one commit; rows
    /// left unsent (cancelled) are released in one write.
    async fn deliver_batch(
        &self,
        batch: Vec<DueAlert>,
        token: &str,
        cancel: &CancellationToken,
    ) -> StoreResult<FlushReport> {
        let mut by_channel: Vec<(String, Vec<DueAlert>)> = Vec::new();
        for alert in batch {
            match by_channel.iter_mut().find(|(c, _)| *c == alert.channel) {
                Some((_, rows)) => rows.push(alert),
                None => by_channel.push((alert.channel.clone(), vec![alert])),
            }
        }
        let ids: Vec<i64> = by_channel
            .iter()
            .flat_map(|(_, rows)| rows.iter().map(|row| row.id))
            .collect();
        let total = ids.len();
        let shared = Batch {
            stories: self
                .prefetch_stories(by_channel.iter().flat_map(|(_, rows)| rows))
                .await
                .into(),
            ..Batch::default()
        };
        let results = futures_util::future::join_all(
            by_channel
                .iter()
                .map(|(_, rows)| self.deliver_channel(rows, token, cancel, &shared)),
        )
        .await;
        let mut report = FlushReport::default();
        let mut done = 0;
        let mut failure = None;
        let mut sent = Vec::new();
        for result in results.into_iter().flatten() {
            match result {
                Ok((alert, Delivered::Sent(record))) => {
                    done += 1;
                    sent.push((alert, record));
                }
                Ok((_, Delivered::Done(r))) => {
                    done += 1;
                    report.add(r);
                }
                Err(e) => failure = Some(e),
            }
        }
        if !sent.is_empty() {
            let records: Vec<SentRecord> = sent.iter().map(|(_, r)| r.clone()).collect();
            let recorded = match &self.sends {
                Some(sends) => sends.mark_alerts_sent(&self.store, token, records).await?,
                None => self.store.mark_alerts_sent(token, &records).await?,
            };
            for ((alert, record), ok) in sent.iter().zip(recorded) {
                report.add(self.sent_recorded(alert, record, ok));
                if ok && alert.kind == crate::store::AlertKind::Post {
                    self.notify_agent(alert).await;
                }
            }
        }
        if done < total {
            // Only this batch's rows: the lane's token is shared with
            // rows handed over and not taken yet.
            self.store.release_alerts(&ids, token).await?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// One channel's rows of a batch, in order, `alerts.channel_in_flight`
    /// at a time; stops between rows when cancelled.
    async fn deliver_channel<'a>(
        &'a self,
        rows: &'a [DueAlert],
        token: &'a str,
        cancel: &'a CancellationToken,
        shared: &'a Batch,
    ) -> Vec<StoreResult<(&'a DueAlert, Delivered)>> {
        let in_flight = self.alerts().channel_in_flight.max(1) as usize;
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(in_flight) {
            // Between alerts, not during one: the alert being sent at
            // shutdown is finished and recorded.
            if cancel.is_cancelled() {
                break;
            }
            let results = futures_util::future::join_all(chunk.iter().map(|alert| async move {
                let span = send_span(alert);
                self.deliver(alert, token, shared)
                    .instrument(span)
                    .await
                    .map(|d| (alert, d))
            }))
            .await;
            let failed = results.iter().any(|r| r.is_err());
            out.extend(results);
            if failed {
                break;
            }
        }
        out
    }

    /// Work decided at the start of each pass: storms folded into digests,
    /// and escalations of alerts nobody acknowledged.
    async fn prepare(&self) -> StoreResult<FlushReport> {
        let mut report = FlushReport::default();
        let now = self.clock.now_ms();
        let storm = &self.alerts().storm;
        if storm.threshold > 0 {
            let since = now - ms(storm.window);
            for channel in self
                .store
                .storm_channels(since, now, i64::from(storm.threshold))
                .await?
            {
                if let Some(digest_id) = self.store.collapse_storm(&channel, since, now).await? {
                    report.digests += 1;
                    metrics::counter!("csatwatch_storm_digests_total").increment(1);
                    tracing::warn!(%channel, digest_id, threshold = storm.threshold, "alert storm: waiting alerts folded into one digest");
                }
            }
        }
        report.escalations = self.store.enqueue_due_escalations(now).await? as usize;
        Ok(report)
    }

    /// Exponential backoff with jitter: between half and all of
    /// `retry_initial × 2^attempts`, capped at `retry_max`.
    fn backoff(&self, attempts: i64) -> Duration {
        use rand::Rng as _;
        let exp = attempts.clamp(0, 20) as u32;
        let alerts = self.alerts();
        let full = alerts
            .retry_initial
            .saturating_mul(2u32.saturating_pow(exp))
            .min(alerts.retry_max);
        let half = full / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    /// The view of the post `post` (the row itself, or the parent of an
    /// update or escalation) with its rating as it is now: who acknowledged
    /// and followed it up, and whether it recovered.
    fn view(&self, row: &DueAlert, post: &PostRef) -> AlertView {
        let acted = |id: &Option<String>, name: &Option<String>, at: Option<i64>| {
            Some(crate::sinks::Acted {
                user_id: id.clone()?,
                user_name: name.clone(),
                at_ms: at?,
            })
        };
        let sentiment = row.rating_sentiment.0;
        AlertView {
            alert_id: post.id,
            source: row.source.clone(),
            source_kind: self
                .source_kinds
                .get(&row.source)
                .copied()
                .unwrap_or("unknown")
                .to_string(),
            conversation_id: row.conversation_id.clone(),
            rating_key: row.rating_key.clone(),
            score: Score {
                scale: row.scale.0,
                value: row.score,
            },
            sentiment,
            comment: row.comment.clone(),
            agent: row.agent.clone(),
            team: row.team.clone(),
            customer: row.customer.clone(),
            company: row.company.clone(),
            brand: row.brand.clone(),
            tags: row.tags.0.clone(),
            url: row.url.clone(),
            rated_at_ms: row.updated_at,
            channel: post.channel.clone(),
            mentions: post.mentions.clone(),
            rule: post.rule.clone(),
            test: false,
            acknowledged: acted(&row.acked_by, &row.acked_by_name, row.acked_at),
            followed_up: acted(
                &row.followed_up_by,
                &row.followed_up_by_name,
                row.followed_up_at,
            ),
            recovered: sentiment == Sentiment::Positive && post.sentiment != Sentiment::Positive,
            ticket_actions: Vec::new(),
            outcome: None,
            story: None,
        }
    }
}

/// The alert a message renders: a post's own fields.
#[derive(Debug, Clone)]
struct PostRef {
    id: i64,
    channel: String,
    mentions: Vec<String>,
    rule: Option<String>,
    /// The sentiment that raised it.
    sentiment: Sentiment,
}

impl PostRef {
    fn of(row: &DueAlert) -> PostRef {
        PostRef {
            id: row.id,
            channel: row.channel.clone(),
            mentions: row.mentions.0.clone(),
            rule: row.rule.clone(),
            sentiment: row.sentiment.0,
        }
    }
}

/// Posts a clearly labelled sample alert straight through the sink.
pub async fn send_test_alert(
    sink: &Sink,
    channel: &str,
    now_ms: i64,
) -> Result<crate::sinks::Posted, SinkError> {
    let view = AlertView {
        alert_id: 0,
        source: "test".into(),
        source_kind: "csatwatch".into(),
        conversation_id: "TEST-1".into(),
        rating_key: String::new(),
        score: Score {
            scale: Scale::Binary,
            value: 0,
        },
        sentiment: Sentiment::Negative,
        comment: Some(
            "This is a test alert from csatwatch send-test-alert. No customer is unhappy.".into(),
        ),
        agent: Some("Test Agent".into()),
        team: Some("Support".into()),
        customer: Some("Test Customer".into()),
        company: None,
        brand: None,
        tags: vec!["test".into()],
        url: None,
        rated_at_ms: now_ms,
        channel: channel.to_string(),
        mentions: Vec::new(),
        rule: None,
        test: true,
        acknowledged: None,
        followed_up: None,
        recovered: false,
        ticket_actions: Vec::new(),
        outcome: None,
        story: None,
    };
    sink.post(&view).await
}

/// The span of one row's send: a child of the span that enqueued it when
/// the row carries its trace context (see `telemetry.otlp_endpoint`). Ids,
/// kind and channel only; never the rating's text.
fn send_span(alert: &DueAlert) -> tracing::Span {
    let span = tracing::info_span!(
        "alert.send",
        alert_id = alert.id,
        rating_id = alert.rating_id,
        source = alert.source.as_str(),
        kind = alert.kind.as_str(),
        channel = alert.channel.as_str(),
        attempt = alert.attempts + 1,
    );
    crate::telemetry::set_parent(&span, alert.trace_parent.as_deref());
    span
}
