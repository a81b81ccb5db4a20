//! Group commit: one writer task per database records what webhook
//! handlers, pollers, backfills and the fetcher hand it, many writes per
//! transaction.
//!
//! Handlers check signatures and parse in parallel, then queue a [`Write`]
//! and wait for the commit that holds it: the 2xx promise is unchanged, but
//! a burst of N webhooks costs one transaction (one sync to disk) and a few
//! multi-row statements instead of N transactions of ~6 statements each.
//!
//! - The writer takes whatever is queued (up to [`MAX_WRITES`]) as one batch.
//!   First-seen ratings, their history and their alerts are inserted with
//!   one statement per table; a rating seen before goes through the
//!   one-by-one path (lock, compare, update) in arrival order.
//! - One bad write never fails its neighbours: when a batch fails, it is
//!   rolled back and each write is retried in a transaction of its own.
//!   When the database is unavailable, every waiting write gets that error
//!   (503 to a webhook) at once, without a retry per write.
//! - On SQLite this process's dispatcher records the alerts it sent
//!   through the writer too ([`SendsRecorder`]): a second connection
//!   writing would take the one write lock between two batches (the
//!   writer's `BEGIN` waits for it) and make every other connection drop
//!   its page cache; recorded here, the sends share the batch's commit.
//! - The batch runs in the writer, not in a caller: a caller that goes
//!   away (a webhook client that disconnects) cancels only its wait, never
//!   the transaction, so no connection is left inside an open transaction.
//! - In the daemon the writer has a thread of its own ([`spawn_writer`]
//!   says why).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::FutureExt as _;
use tokio::sync::{mpsc, oneshot};

use super::{Pipeline, RatingOutcome, RatingResult, Recorded, SourceFacts, history_row};
use crate::clock::ms;
use crate::dispatcher::LaneClaim;
use crate::domain::{RatingEvent, Sentiment, Via};
use crate::store::{
    HeldConnection, NewDelivery, RatingRecord, SentRecord, Store, StoreError, StoreResult,
};

/// Most writes committed in one transaction.
const MAX_WRITES: usize = 512;
/// Writes waiting beyond the one being committed; a full queue makes
/// handlers wait (back-pressure), and their requests time out as before.
const QUEUE_DEPTH: usize = 8192;
/// Records of sends committed in one transaction (each one a dispatcher
/// batch); a dispatcher waits for each, so few ever queue.
const MAX_SENDS: usize = 64;

/// One unit of work: a delivery with its ratings, or a poll page.
#[derive(Debug)]
pub(super) struct Write {
    pub source: SourceFacts,
    pub delivery: Option<NewDelivery>,
    pub ratings: Vec<RatingEvent>,
    pub via: Via,
    /// A poll page's cursor, saved in the same transaction as its ratings.
    pub cursor: Option<PageCursor>,
    /// The run of pages this one belongs to (see [`Sequence`]).
    pub sequence: Option<Sequence>,
    /// The span of the caller that queued it (a webhook's): the commit's
    /// span is its child, so one trace follows a rating into the writer.
    pub span: tracing::Span,
    /// The commit span's W3C `traceparent`, stored with the alerts this
    /// write enqueues so their sends join the same trace (traces on only).
    pub trace_parent: Option<String>,
}

/// Where a poll (or backfill) stopped after a page: saved with the page.
#[derive(Debug, Clone)]
pub struct PageCursor {
    pub name: String,
    pub value: String,
}

/// The pages of one poll run, queued one behind the other without waiting
/// for each commit. Once one of them fails, the later ones are refused, so a
/// cursor never moves past a page that was not recorded.
#[derive(Debug, Clone, Default)]
pub struct Sequence(Arc<std::sync::atomic::AtomicBool>);

impl Sequence {
    fn broken(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn mark_broken(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A queued write: await [`Pending::wait`] for its commit.
#[derive(Debug)]
pub struct Pending(PendingInner);

#[derive(Debug)]
enum PendingInner {
    Queued(oneshot::Receiver<StoreResult<Recorded>>),
    Done(Box<StoreResult<Recorded>>),
}

impl Pending {
    pub(super) fn done(result: StoreResult<Recorded>) -> Pending {
        Pending(PendingInner::Done(Box::new(result)))
    }

    /// Waits for the commit that holds the write.
    pub async fn wait(self) -> StoreResult<Recorded> {
        match self.0 {
            PendingInner::Queued(wait) => wait.await.map_err(|_| stopped())?,
            PendingInner::Done(result) => *result,
        }
    }
}

/// The error of a page queued behind one that failed.
fn earlier_page_failed() -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol(
        "an earlier page of this poll was not recorded".into(),
    ))
}

struct Queued {
    write: Write,
    done: oneshot::Sender<StoreResult<Recorded>>,
}

/// The writer's queue (cheap to clone).
#[derive(Debug, Clone)]
pub(super) struct Queue {
    sender: mpsc::Sender<Queued>,
    sends: mpsc::Sender<SentJob>,
    stats: Arc<WriterStats>,
}

/// Alerts a dispatcher sent under one claim token, to record as sent.
struct SentJob {
    token: String,
    records: Vec<SentRecord>,
    done: oneshot::Sender<StoreResult<Vec<bool>>>,
}

/// Where this process's dispatcher records the alerts it sent: in the
/// writer's next transaction, with the webhooks of that batch (one commit,
/// one sync to disk for both). Once the writer has stopped, the sends are
/// recorded in a transaction of their own on `store`.
#[derive(Debug, Clone)]
pub struct SendsRecorder {
    sends: mpsc::Sender<SentJob>,
}

impl SendsRecorder {
    /// Records each of `sent` as sent if `token` still holds its claim, as
    /// [`Store::mark_alerts_sent`] does, and returns after the commit.
    pub async fn mark_alerts_sent(
        &self,
        store: &Store,
        token: &str,
        sent: Vec<SentRecord>,
    ) -> StoreResult<Vec<bool>> {
        let (done, wait) = oneshot::channel();
        let job = SentJob {
            token: token.to_string(),
            records: sent,
            done,
        };
        match self.sends.send(job).await {
            // Dropped unanswered: the batch panicked, nothing committed.
            Ok(()) => wait.await.map_err(|_| stopped())?,
            Err(mpsc::error::SendError(job)) => store.mark_alerts_sent(token, &job.records).await,
        }
    }
}

/// What the writer has done since start.
#[derive(Debug, Default)]
pub struct WriterStats {
    batches: AtomicU64,
    writes: AtomicU64,
    retried: AtomicU64,
    sends: AtomicU64,
}

/// A snapshot of [`WriterStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteCounts {
    /// Transactions the writer committed or tried.
    pub batches: u64,
    /// Writes (deliveries, poll pages) those held.
    pub writes: u64,
    /// Batches that failed and were retried write by write.
    pub retried: u64,
    /// Records of a dispatcher's sends (one per batch of alerts it sent)
    /// the writer committed.
    pub sends: u64,
}

impl WriterStats {
    pub fn counts(&self) -> WriteCounts {
        WriteCounts {
            batches: self.batches.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            sends: self.sends.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("source", &self.write.source.name)
            .finish()
    }
}

impl Queue {
    pub fn stats(&self) -> WriteCounts {
        self.stats.counts()
    }

    /// A recorder of sends that goes through this writer.
    pub fn sends_recorder(&self) -> SendsRecorder {
        SendsRecorder {
            sends: self.sends.clone(),
        }
    }

    /// Queues `write` and waits for the commit that holds it.
    pub async fn submit(&self, write: Write) -> StoreResult<Recorded> {
        self.enqueue(write).await.wait().await
    }

    /// Queues `write` behind everything queued before it; returns once it
    /// is queued (waiting only while the queue is full).
    pub async fn enqueue(&self, write: Write) -> Pending {
        let (done, wait) = oneshot::channel();
        match self.sender.send(Queued { write, done }).await {
            Ok(()) => Pending(PendingInner::Queued(wait)),
            Err(_) => Pending::done(Err(stopped())),
        }
    }
}

/// The error a write gets when the writer is gone (shut down, or a bug
/// made a batch panic): nothing was committed, so "try again later".
fn stopped() -> StoreError {
    StoreError::Unavailable(sqlx::Error::WorkerCrashed)
}

/// Starts the writer task for `pipeline` (a copy without a queue).
pub(super) fn start(pipeline: Pipeline) -> Queue {
    let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
    let (sends, sends_receiver) = mpsc::channel(MAX_SENDS);
    let stats = Arc::new(WriterStats::default());
    spawn_writer(run(pipeline, receiver, sends_receiver, stats.clone()));
    Queue {
        sender,
        sends,
        stats,
    }
}

/// Runs the writer on a thread of its own when the runtime has worker
/// threads (the daemon): every step of a batch is a hand-off to the
/// database driver and back, and a task woken from outside the runtime
/// waits in the workers' shared queue, which a burst fills with webhook
/// handlers. On its thread the writer is woken directly (measured: 5–10%
/// more webhooks/s on SQLite, docs/performance.md). Tasks it spawns still
/// run on the workers. A runtime without workers (tests) runs it as a task.
fn spawn_writer(writer: impl Future<Output = ()> + Send + 'static) {
    let handle = tokio::runtime::Handle::current();
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        tokio::spawn(writer);
        return;
    }
    // The future goes to the thread once it exists, so that a thread that
    // cannot be made leaves it to run as a task instead.
    let (give, take) =
        std::sync::mpsc::channel::<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>();
    let thread = std::thread::Builder::new()
        .name("csatwatch-writer".into())
        .spawn(move || {
            if let Ok(writer) = take.recv() {
                handle.block_on(writer);
            }
        });
    match thread {
        Ok(_) => {
            let _ = give.send(Box::pin(writer));
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the writer's thread; it runs as a task");
            tokio::spawn(writer);
        }
    }
}

/// Takes what is queued (writes, records of sends) as one batch at a
/// time; stops once every [`Queue`] is gone, so a dispatcher that outlives
/// the pipeline records its sends on its own.
async fn run(
    pipeline: Pipeline,
    mut receiver: mpsc::Receiver<Queued>,
    mut sends_receiver: mpsc::Receiver<SentJob>,
    stats: Arc<WriterStats>,
) {
    let mut batch = Vec::with_capacity(MAX_WRITES);
    let mut sends = Vec::new();
    // The connection batches run on, kept while more is queued.
    let mut held = HeldConnection::default();
    loop {
        tokio::select! {
            n = receiver.recv_many(&mut batch, MAX_WRITES) => if n == 0 {
                break;
            },
            // Never closed before `receiver`: every `Queue` holds a sender.
            _ = sends_receiver.recv_many(&mut sends, MAX_SENDS) => {}
        }
        // What the other queue holds goes in the same batch.
        while batch.len() < MAX_WRITES {
            match receiver.try_recv() {
                Ok(queued) => batch.push(queued),
                Err(_) => break,
            }
        }
        while sends.len() < MAX_SENDS {
            match sends_receiver.try_recv() {
                Ok(job) => sends.push(job),
                Err(_) => break,
            }
        }
        let queued = std::mem::take(&mut batch);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .writes
            .fetch_add(queued.len() as u64, Ordering::Relaxed);
        if !queued.is_empty() {
            metrics::histogram!("csatwatch_write_batch_size").record(queued.len() as f64);
        }
        // The batch always runs to its end here, never in a caller, and a
        // panic in it fails its writes (their senders drop) but not the
        // writer.
        let job = commit(
            pipeline.clone(),
            std::mem::take(&mut held),
            queued,
            std::mem::take(&mut sends),
            stats.clone(),
        );
        // A batch that panicked gave its connection back to the pool (its
        // future is dropped with what it held).
        held = std::panic::AssertUnwindSafe(job)
            .catch_unwind()
            .await
            .unwrap_or_default();
        // Idle: the pool has it back (a shutdown closing the pool waits
        // for the connections taken from it).
        if receiver.is_empty() && sends_receiver.is_empty() {
            held.release();
        }
    }
    // Sends queued before the last `Queue` went are still recorded; from
    // here on the dispatcher records its own.
    sends_receiver.close();
    while let Some(job) = sends_receiver.recv().await {
        sends.push(job);
    }
    if !sends.is_empty() {
        let job = commit(pipeline, held, Vec::new(), sends, stats);
        let _ = tokio::spawn(job).await;
    }
}

/// Times the steps of one batch of the writer: each [`StepTimer::done`]
/// records the time since the step before (the first: since the batch
/// began) in `csatwatch_write_batch_step_seconds`. Every batch that commits
/// records every step once; a step with nothing to write takes next to
/// nothing, so a step's sum over its count is its share of the average
/// batch.
struct StepTimer(std::time::Instant);

impl StepTimer {
    fn done(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        metrics::histogram!(crate::exporter::WRITE_STEP, "step" => step)
            .record(now.duration_since(self.0).as_secs_f64());
        self.0 = now;
    }
}

/// Commits one batch on `held`'s connection and answers every write and
/// record of sends in it; gives `held` back.
async fn commit(
    pipeline: Pipeline,
    mut held: HeldConnection,
    queued: Vec<Queued>,
    sends: Vec<SentJob>,
    stats: Arc<WriterStats>,
) -> HeldConnection {
    // Pages behind a page that failed are refused without a transaction.
    let (queued, refused): (Vec<Queued>, Vec<Queued>) = queued
        .into_iter()
        .partition(|q| !q.write.sequence.as_ref().is_some_and(Sequence::broken));
    for q in refused {
        let _ = q.done.send(Err(earlier_page_failed()));
    }
    if queued.is_empty() && sends.is_empty() {
        return held;
    }
    let (mut writes, dones): (Vec<Write>, Vec<_>) =
        queued.into_iter().map(|q| (q.write, q.done)).unzip();
    // One span per write, under the span that queued it, open until the
    // transaction holding it ends; no customer text, only counts. It holds
    // no log line (it is never entered), so only traces read it: without
    // them the writer, which every webhook waits for, skips it.
    let batch = writes.len();
    let traces = crate::telemetry::traces_on();
    let spans: Vec<tracing::Span> = writes
        .iter_mut()
        .map(|write| {
            if !traces {
                return tracing::Span::none();
            }
            let span = tracing::info_span!(
                parent: &write.span,
                "pipeline.commit",
                source = write.source.name.as_str(),
                ratings = write.ratings.len(),
                batch,
                outcome = tracing::field::Empty,
            );
            write.trace_parent = crate::telemetry::traceparent(&span);
            span
        })
        .collect();
    let (sent, sent_dones): (Vec<(String, Vec<SentRecord>)>, Vec<_>) = sends
        .into_iter()
        .map(|job| ((job.token, job.records), job.done))
        .unzip();
    let outcome = pipeline
        .write_batch_with(Some(&mut held), &writes, &sent)
        .await;
    if outcome.is_err() {
        // The failure may have broken the connection: the retries below
        // and the next batch take one from the pool.
        held.release();
    }
    let (results, marked): (Vec<StoreResult<Recorded>>, Vec<StoreResult<Vec<bool>>>) = match outcome
    {
        Ok((recorded, marked)) => (
            recorded.into_iter().map(Ok).collect(),
            marked.into_iter().map(Ok).collect(),
        ),
        Err(e) if writes.len() == 1 && sent.is_empty() => (vec![Err(e)], Vec::new()),
        Err(e) if writes.is_empty() && sent.len() == 1 => (Vec::new(), vec![Err(e)]),
        Err(e @ (StoreError::Unavailable(_) | StoreError::FileLost(_))) => {
            tracing::warn!(error = %e, writes = writes.len(), sends = sent.len(), "a batch of writes could not be committed: database unavailable");
            let shared = Arc::new(e);
            (
                writes
                    .iter()
                    .map(|_| Err(StoreError::Batch(shared.clone())))
                    .collect(),
                sent.iter()
                    .map(|_| Err(StoreError::Batch(shared.clone())))
                    .collect(),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, writes = writes.len(), sends = sent.len(), "a batch of writes failed; retrying each on its own");
            stats.retried.fetch_add(1, Ordering::Relaxed);
            let mut marked = Vec::with_capacity(sent.len());
            for (token, records) in &sent {
                marked.push(pipeline.store.mark_alerts_sent(token, records).await);
            }
            let mut results = Vec::with_capacity(writes.len());
            for write in &writes {
                if write.sequence.as_ref().is_some_and(Sequence::broken) {
                    results.push(Err(earlier_page_failed()));
                    continue;
                }
                let result = pipeline
                    .write_batch(std::slice::from_ref(write))
                    .await
                    .map(|mut r| r.pop().expect("one result per write"));
                if let (Err(_), Some(sequence)) = (&result, &write.sequence) {
                    sequence.mark_broken();
                }
                results.push(result);
            }
            (results, marked)
        }
    };
    for (done, result) in sent_dones.into_iter().zip(marked) {
        if result.is_ok() {
            stats.sends.fetch_add(1, Ordering::Relaxed);
        }
        let _ = done.send(result);
    }
    for (((write, done), result), span) in writes.iter().zip(dones).zip(results).zip(spans) {
        span.record(
            "outcome",
            match &result {
                Ok(recorded) if recorded.is_duplicate() => "duplicate",
                Ok(_) => "committed",
                Err(_) => "failed",
            },
        );
        drop(span);
        match (&result, &write.sequence) {
            (Ok(recorded), _) => pipeline.count(&write.source, recorded),
            (Err(_), Some(sequence)) => sequence.mark_broken(),
            (Err(_), None) => {}
        }
        // The caller may have gone away; what was committed stays committed.
        let _ = done.send(result);
    }
    held
}

/// A rating of a batch, on its way through.
struct Item<'a> {
    write: usize,
    index: usize,
    event: &'a RatingEvent,
}

/// Where a rating of the one-by-one path goes: by its key, then by arrival.
fn rating_order<'a>(
    writes: &'a [Write],
    item: &Item<'a>,
) -> (&'a str, &'a str, &'a str, usize, usize) {
    (
        writes[item.write].source.name.as_str(),
        item.event.conversation_id.as_str(),
        item.event.rating_key.as_str(),
        item.write,
        item.index,
    )
}

impl Pipeline {
    /// Hands alerts committed under `claim` to the dispatcher, or releases
    /// them (due again, for any replica) when it stopped in the meantime.
    pub async fn hand_over(&self, claim: &LaneClaim, ids: Vec<i64>) {
        if ids.is_empty() || self.lane.hand_over(claim, &ids) {
            return;
        }
        if let Err(e) = self.store.release_alerts(&ids, &claim.token).await {
            tracing::warn!(error = %e, "could not release alerts claimed for a dispatcher that stopped; they are sent when the claim runs out (alerts.claim_lease)");
        }
    }

    /// Records `writes` in one transaction: one answer per write, in order.
    /// Fails as a whole (nothing committed) if any statement fails.
    pub(super) async fn write_batch(&self, writes: &[Write]) -> StoreResult<Vec<Recorded>> {
        Ok(self.write_batch_with(None, writes, &[]).await?.0)
    }

    /// [`Pipeline::write_batch`], on `held`'s connection (none: one of the
    /// pool's), recording in the same transaction the sends of `sent`
    /// (claim token, sends), with their answers as
    /// [`crate::store::StoreTx::mark_alerts_sent`] gives them.
    async fn write_batch_with(
        &self,
        held: Option<&mut HeldConnection>,
        writes: &[Write],
        sent: &[(String, Vec<SentRecord>)],
    ) -> StoreResult<(Vec<Recorded>, Vec<Vec<bool>>)> {
        let now = self.clock.now_ms();
        let started = std::time::Instant::now();
        let mut steps = StepTimer(started);
        let mut tx = match held {
            Some(held) => self.store.begin_on(held).await?,
            None => self.store.begin().await?,
        };
        steps.done("begin");

        // Deliveries: one insert for all; a key seen twice in the batch is a
        // duplicate of its first (which is recorded now, or was before).
        let mut delivery_ids: Vec<Option<i64>> = vec![None; writes.len()];
        let mut duplicate = vec![false; writes.len()];
        let mut firsts: HashMap<(&str, &str), usize> = HashMap::new();
        let mut fresh = Vec::new();
        for (w, write) in writes.iter().enumerate() {
            if let Some(d) = &write.delivery {
                match firsts.entry((d.source.as_str(), d.delivery_key.as_str())) {
                    Entry::Occupied(_) => duplicate[w] = true,
                    Entry::Vacant(v) => {
                        v.insert(w);
                        fresh.push(w);
                    }
                }
            }
        }
        if !fresh.is_empty() {
            let deliveries: Vec<&NewDelivery> = fresh
                .iter()
                .filter_map(|&w| writes[w].delivery.as_ref())
                .collect();
            let ids = tx.insert_deliveries(&deliveries).await?;
            for (&w, id) in fresh.iter().zip(ids) {
                match id {
                    Some(id) => delivery_ids[w] = Some(id),
                    None => duplicate[w] = true,
                }
            }
        }
        steps.done("deliveries");

        // Ratings: the first sight of each key in the batch is inserted with
        // one statement; those that existed, and later sights of a key, take
        // the one-by-one path below, in arrival order.
        let mut results: Vec<Vec<Option<RatingResult>>> =
            writes.iter().map(|w| vec![None; w.ratings.len()]).collect();
        let mut first_sight = Vec::new();
        let mut later = Vec::new();
        let mut seen: HashMap<(&str, &str, &str), ()> = HashMap::new();
        for (w, write) in writes.iter().enumerate() {
            if duplicate[w] {
                continue;
            }
            for (index, event) in write.ratings.iter().enumerate() {
                let item = Item {
                    write: w,
                    index,
                    event,
                };
                let key = (
                    write.source.name.as_str(),
                    event.conversation_id.as_str(),
                    event.rating_key.as_str(),
                );
                if seen.insert(key, ()).is_none() {
                    first_sight.push(item);
                } else {
                    later.push(item);
                }
            }
        }
        let records: Vec<_> = first_sight
            .iter()
            .map(|item| Self::rating_record(&writes[item.write].source, item.event, now))
            .collect();
        // `repeat_negative` rules: each first-seen rating's customer's
        // latest other negative rating, looked up before the batch insert
        // so a rating sees what was recorded before it, never a rating
        // that arrived after it in this batch (those earlier in the batch
        // are added below, in arrival order).
        let repeat_window = self.rules().repeat_window().map(ms);
        let mut before_batch: Vec<Option<i64>> = vec![None; records.len()];
        if let Some(window) = repeat_window {
            for ((record, _, updated_at), found) in records.iter().zip(before_batch.iter_mut()) {
                if let Some(customer) = record.customer.as_deref() {
                    *found = tx
                        .previous_negative_at(&record.source, customer, updated_at - window, 0)
                        .await?;
                }
            }
        }
        let ids = if records.is_empty() {
            Vec::new()
        } else {
            let rows: Vec<_> = records.iter().map(|(r, _, _)| r).collect();
            tx.insert_ratings(&rows, now).await?
        };
        steps.done("ratings");
        let mut inserted_negatives: Vec<&RatingRecord> = Vec::new();
        let mut histories = Vec::new();
        let mut alerts = Vec::new();
        let mut alert_owner = Vec::new();
        let mut existing = Vec::new();
        for (((item, (record, sentiment, updated_at)), id), before_batch) in first_sight
            .into_iter()
            .zip(&records)
            .zip(ids)
            .zip(before_batch)
        {
            let Some(rating_id) = id else {
                existing.push(item);
                continue;
            };
            let previous_negative_at = match (repeat_window, record.customer.as_deref()) {
                (Some(window), Some(customer)) => inserted_negatives
                    .iter()
                    .filter(|earlier| {
                        earlier.source == record.source
                            && earlier.customer.as_deref() == Some(customer)
                            && earlier.rated_at >= updated_at - window
                    })
                    .map(|earlier| earlier.rated_at)
                    .chain(before_batch)
                    .max(),
                _ => None,
            };
            if record.sentiment == Sentiment::Negative.as_str() {
                inserted_negatives.push(record);
            }
            let write = &writes[item.write];
            histories.push(history_row(
                record,
                rating_id,
                1,
                write.via,
                delivery_ids[item.write],
                now,
            ));
            let planned = self.plan_alerts(
                &write.source,
                item.event,
                *sentiment,
                rating_id,
                1,
                *updated_at,
                write.via,
                now,
                &[],
                previous_negative_at,
            );
            let no_alert_reason = match planned {
                Ok(planned) => {
                    for mut alert in planned {
                        alert.trace_parent.clone_from(&write.trace_parent);
                        alerts.push(alert);
                        alert_owner.push((item.write, item.index));
                    }
                    None
                }
                Err(reason) => reason,
            };
            results[item.write][item.index] = Some(RatingResult {
                rating_id,
                conversation_id: item.event.conversation_id.clone(),
                outcome: RatingOutcome::New,
                sentiment: *sentiment,
                alerts: 0,
                updates: 0,
                no_alert_reason,
            });
        }
        // With alerts to enqueue, the history rows are written with them
        // (in one statement on PostgreSQL).
        if alerts.is_empty() && !histories.is_empty() {
            tx.insert_histories(&histories).await?;
        }
        steps.done("history");
        // New alerts due at once go to a running dispatcher already
        // claimed (the fast lane), handed over after the commit.
        let mut lane_claim = None;
        let mut lane_ids = Vec::new();
        if !alerts.is_empty() {
            let settle_ms = self.settle_ms();
            lane_claim = (settle_ms == 0).then(|| self.lane.claim(now)).flatten();
            let claim = lane_claim
                .as_ref()
                .map(|c| (c.token.as_str(), c.claimed_until));
            let enqueued = tx
                .enqueue_alerts(&alerts, settle_ms, claim, &histories)
                .await?;
            for ((w, i), enqueued) in alert_owner.into_iter().zip(enqueued) {
                if let (Some(id), Some(result)) = (enqueued, results[w][i].as_mut()) {
                    result.alerts += 1;
                    lane_ids.push(id);
                }
            }
        }

        steps.done("alerts");

        // Ratings seen before: each rating's versions in arrival order, and
        // the ratings in key order, so replicas lock rows in the same order.
        existing.extend(later);
        existing.sort_by(|a, b| rating_order(writes, a).cmp(&rating_order(writes, b)));
        for item in existing {
            let write = &writes[item.write];
            let result = self
                .record_existing(
                    &mut tx,
                    &write.source,
                    item.event,
                    write.via,
                    delivery_ids[item.write],
                    now,
                    write.trace_parent.as_deref(),
                )
                .await?;
            results[item.write][item.index] = Some(result);
        }

        // Poll cursors, each with the last page of its run in this batch.
        let mut cursors: Vec<&PageCursor> = Vec::new();
        for cursor in writes.iter().filter_map(|w| w.cursor.as_ref()) {
            match cursors.iter_mut().find(|c| c.name == cursor.name) {
                Some(earlier) => *earlier = cursor,
                None => cursors.push(cursor),
            }
        }
        for cursor in cursors {
            tx.save_poll_cursor(&cursor.name, &cursor.value, now)
                .await?;
        }

        steps.done("changed");

        // The dispatcher's sends (see [`SendsRecorder`]).
        let mut marked = Vec::with_capacity(sent.len());
        for (token, records) in sent {
            marked.push(tx.mark_alerts_sent(token, records).await?);
        }
        steps.done("sends");

        tx.flush_rollup().await?;
        steps.done("rollup");
        tx.commit().await?;
        steps.done("commit");
        // Sends alone (no webhook waited for this one) are told apart.
        let op = if writes.is_empty() {
            "record_sends"
        } else {
            "record"
        };
        crate::telemetry::observe_db(op, started);
        if let Some(claim) = lane_claim {
            self.hand_over(&claim, lane_ids).await;
        }
        let recorded = results
            .into_iter()
            .enumerate()
            .map(|(w, ratings)| Recorded {
                delivery_id: delivery_ids[w],
                duplicate_delivery: duplicate[w],
                ratings: ratings.into_iter().flatten().collect(),
            })
            .collect();
        Ok((recorded, marked))
    }
}
