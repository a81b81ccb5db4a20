//! The alert outbox: alerts are enqueued in the same transaction as the
//! rating that causes them, then claimed by a dispatcher with a lease and a
//! fencing token, so two replicas never send the same alert and one that
//! died mid-send is taken over when its lease runs out.

use std::collections::HashSet;

use super::{Backend, Store, StoreResult, StoreTx, on_pool, on_tx};

/// Binds [`mark_sent_sql`]'s parameters to a query: each send's id, sent
/// at, channel and ts, then the claim token.
macro_rules! bind_sent {
    ($q:expr, $sent:expr, $token:expr) => {{
        let mut q = $q;
        for s in $sent {
            q = q
                .bind(s.id)
                .bind(s.sent_at_ms)
                .bind(s.slack_channel.as_deref())
                .bind(s.slack_ts.as_deref());
        }
        q.bind($token)
    }};
}

/// An alert to enqueue.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub rating_id: i64,
    /// The rating's revision that caused it; with the channel, the alert's
    /// idempotency key.
    pub revision: i64,
    pub rule: Option<String>,
    pub channel: String,
    /// JSON array of strings.
    pub mentions: String,
    /// The rating's sentiment that raised it.
    pub sentiment: String,
    pub created_at_ms: i64,
    /// When an unacknowledged alert escalates, and to whom (JSON array of
    /// mentions); `None` when no escalation applies.
    pub escalate_at: Option<i64>,
    pub escalate_to: Option<String>,
    /// The W3C `traceparent` of the span that enqueued it (traces on
    /// only), so its send joins that trace: ids only, no customer text.
    pub trace_parent: Option<String>,
}

/// An alert row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AlertRecord {
    pub id: i64,
    pub rating_id: i64,
    pub revision: i64,
    pub rule: Option<String>,
    pub channel: String,
    pub mentions: String,
    pub sentiment: String,
    /// `post`, `update`, `escalation`, `digest` or `digest_item`.
    pub kind: String,
    /// Unique per rating, channel and kind: `rev:N`, `ack`, `followup`, …
    pub event_key: String,
    /// The post an update or escalation belongs to; the digest of a
    /// digested post or of a digest item.
    pub parent_id: Option<i64>,
    /// What changed, in words (no customer text), for an update's thread reply.
    pub change: Option<String>,
    pub escalate_at: Option<i64>,
    pub escalate_to: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub claim_token: Option<String>,
    pub claimed_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub slack_channel: Option<String>,
    pub slack_ts: Option<String>,
}

/// Outbox depth for metrics and `/readyz` details.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: i64,
    pub oldest_pending_created_at: Option<i64>,
    pub dead: i64,
}

pub(super) const ALERT_COLUMNS: &str =
    "id, rating_id, revision, rule, channel, mentions, sentiment, kind, event_key, parent_id, change,
     escalate_at, escalate_to, state, attempts, next_attempt_at,
     claim_token, claimed_until, last_error, created_at, sent_at, slack_channel, slack_ts";

impl StoreTx<'_> {
    /// Records sends made under `token`, each only if `token` still holds
    /// its claim, as part of this transaction (the writer's, which records
    /// them with the webhooks of its batch). Returns, in order, whether
    /// each was recorded (false: its claim was taken over).
    pub async fn mark_alerts_sent(
        &mut self,
        token: &str,
        sent: &[SentRecord],
    ) -> StoreResult<Vec<bool>> {
        // A post's send changes its rating's follow-up state; the rating
        // ids come with the sends, so SQLite spends no look-up on them.
        let posts_of: Vec<i64> = sent.iter().filter_map(|s| s.post_of).collect();
        self.follow_up_touch(&posts_of).await?;
        let mut recorded_ids: HashSet<i64> = HashSet::with_capacity(sent.len());
        for chunk in sent.chunks(super::batch::ROWS_PER_STATEMENT) {
            // One statement per chunk (on PostgreSQL one round trip, where
            // one per row made a busy database the bound of a drain). The
            // parameters of the row list come first, the token last.
            let sql = mark_sent_sql(self.dialect(), chunk.len());
            let done: Vec<i64> = on_tx!(self, |conn| {
                bind_sent!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), chunk, token)
                    .fetch_all(&mut *conn)
                    .await?
            });
            recorded_ids.extend(done);
        }
        Ok(sent.iter().map(|s| recorded_ids.contains(&s.id)).collect())
    }

    /// Enqueues an alert; `None` if this rating revision already has one for
    /// this channel (a concurrent duplicate).
    pub async fn enqueue_alert(&mut self, a: &NewAlert) -> StoreResult<Option<i64>> {
        let id = on_tx!(self, |conn| {
            sqlx::query_scalar(
                "INSERT INTO alerts (rating_id, revision, rule, channel, mentions, sentiment, kind, event_key,
                    escalate_at, escalate_to, state, next_attempt_at, created_at, trace_parent)
                 VALUES ($1, $2, $3, $4, $5, $7, 'post', $10, $8, $9, 'pending', $6, $6, $11)
                 ON CONFLICT (rating_id, channel, kind, event_key) DO NOTHING
                 RETURNING id",
            )
            .bind(a.rating_id)
            .bind(a.revision)
            .bind(&a.rule)
            .bind(&a.channel)
            .bind(&a.mentions)
            .bind(a.created_at_ms)
            .bind(&a.sentiment)
            .bind(a.escalate_at)
            .bind(&a.escalate_to)
            .bind(format!("rev:{}", a.revision))
            .bind(&a.trace_parent)
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(id)
    }
}

impl Store {
    /// Claims up to `limit` due alerts for `lease_ms`, stamping them with
    /// `token`, whatever their channel (tools and tests; the dispatcher
    /// claims exactly what its pacing admits with [`Store::claim_alerts`]).
    /// Alerts whose earlier claim expired are due again. On PostgreSQL,
    /// `FOR UPDATE SKIP LOCKED` lets callers claim side by side.
    pub async fn claim_due_alerts(
        &self,
        now_ms: i64,
        lease_ms: i64,
        token: &str,
        limit: i64,
    ) -> StoreResult<Vec<AlertRecord>> {
        let lock = self.dialect().row_lock("FOR UPDATE SKIP LOCKED");
        let sql = format!(
            "UPDATE alerts SET claim_token = $1, claimed_until = $2
             WHERE id IN (
                SELECT id FROM alerts
                WHERE state = 'pending' AND next_attempt_at <= $3
                  AND (claimed_until IS NULL OR claimed_until < $3)
                ORDER BY next_attempt_at, id
                LIMIT $4 {lock})
             RETURNING {ALERT_COLUMNS}"
        );
        let mut rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, AlertRecord>(sqlx::AssertSqlSafe(sql))
                .bind(token)
                .bind(now_ms + lease_ms)
                .bind(now_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Records a successful send, if `token` still holds the claim. Returns
    /// false when the claim was lost (the lease ran out and another replica
    /// took the alert over).
    pub async fn mark_alert_sent(
        &self,
        id: i64,
        token: &str,
        now_ms: i64,
        slack_channel: Option<&str>,
        slack_ts: Option<&str>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        tx.follow_up_touch_alerts(&[id]).await?;
        let done = on_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE alerts SET state = 'sent', sent_at = $3, slack_channel = $4, slack_ts = $5,
                    attempts = attempts + 1, claim_token = NULL, claimed_until = NULL, last_error = NULL,
                    in_doubt_since = NULL
                 WHERE id = $1 AND claim_token = $2 AND state = 'pending'",
            )
            .bind(id)
            .bind(token)
            .bind(now_ms)
            .bind(slack_channel)
            .bind(slack_ts)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(done == 1)
    }

    /// Records a batch's successful sends in one transaction (one commit,
    /// one fsync), each only if `token` still holds its claim. Returns, in
    /// order, whether each was recorded (false: its claim was taken over).
    pub async fn mark_alerts_sent(
        &self,
        token: &str,
        sent: &[SentRecord],
    ) -> StoreResult<Vec<bool>> {
        let mut tx = self.begin().await?;
        let recorded = tx.mark_alerts_sent(token, sent).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// Renews a claim just before its alert is sent, so a long batch never
    /// sends an alert whose lease ran out (and that another replica may
    /// already have claimed). False when the claim was lost.
    pub async fn extend_claim(&self, id: i64, token: &str, until_ms: i64) -> StoreResult<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE alerts SET claimed_until = $3
                 WHERE id = $1 AND claim_token = $2 AND state = 'pending'",
            )
            .bind(id)
            .bind(token)
            .bind(until_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Schedules another attempt after a failure, releasing the claim.
    pub async fn reschedule_alert(
        &self,
        id: i64,
        token: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> StoreResult<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE alerts SET next_attempt_at = $3, last_error = $4, attempts = attempts + 1,
                    claim_token = NULL, claimed_until = NULL
                 WHERE id = $1 AND claim_token = $2 AND state = 'pending'",
            )
            .bind(id)
            .bind(token)
            .bind(next_attempt_at)
            .bind(error)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Ends an alert without sending it: `dead` (gave up) or `superseded`
    /// (the rating stopped being negative before it went out).
    pub async fn finish_alert(
        &self,
        id: i64,
        token: &str,
        state: &str,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE alerts SET state = $3, last_error = COALESCE($4, last_error), attempts = attempts + 1,
                    claim_token = NULL, claimed_until = NULL
                 WHERE id = $1 AND claim_token = $2 AND state = 'pending'",
            )
            .bind(id)
            .bind(token)
            .bind(state)
            .bind(error)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Releases claims this replica still holds (at shutdown), so another can
    /// send them at once instead of after the lease.
    pub async fn release_claims(&self, token_prefix: &str) -> StoreResult<u64> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE alerts SET claim_token = NULL, claimed_until = NULL
                 WHERE state = 'pending' AND claim_token LIKE $1",
            )
            .bind(format!("{token_prefix}%"))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done)
    }

    /// When the next pending alert falls due (ignoring claims), or the next
    /// sent alert may escalate, if any.
    pub async fn next_alert_due_at(&self) -> StoreResult<Option<i64>> {
        let at = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT MIN(due) FROM (
                    SELECT MIN(next_attempt_at) AS due FROM alerts WHERE state = 'pending'
                    UNION ALL
                    SELECT MIN(escalate_at) AS due FROM alerts
                    WHERE escalate_at IS NOT NULL AND state = 'sent') AS d",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(at)
    }

    pub async fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        let (pending, oldest, dead): (i64, Option<i64>, i64) = on_pool!(self, |pool| {
            // Each part on an index (`alerts_pending`, `alerts_due`): the
            // outbox's history of sent alerts is never read.
            sqlx::query_as(
                "SELECT
                    (SELECT COUNT(*) FROM alerts WHERE state = 'pending'),
                    (SELECT MIN(created_at) FROM alerts WHERE state = 'pending'),
                    (SELECT COUNT(*) FROM alerts WHERE state = 'dead')",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(OutboxStats {
            pending,
            oldest_pending_created_at: oldest,
            dead,
        })
    }

    /// How many alerts are in each state (`pending`, `sent`, `dead`,
    /// `superseded`), for the gauges.
    pub async fn alert_counts_by_state(&self) -> StoreResult<Vec<(String, i64)>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as("SELECT state, COUNT(*) FROM alerts GROUP BY state ORDER BY state")
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Every alert of a rating, oldest first.
    pub async fn alerts_for_rating(&self, rating_id: i64) -> StoreResult<Vec<AlertRecord>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, AlertRecord>(sqlx::AssertSqlSafe(format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE rating_id = $1 ORDER BY id"
            )))
            .bind(rating_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Every alert, oldest first (tests and reports; small tables only).
    pub async fn all_alerts(&self) -> StoreResult<Vec<AlertRecord>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, AlertRecord>(sqlx::AssertSqlSafe(format!(
                "SELECT {ALERT_COLUMNS} FROM alerts ORDER BY id"
            )))
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

/// What an outbox row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// The alert message.
    Post,
    /// `chat.update` of the post, then a thread reply saying what changed.
    Update,
    /// A thread reply mentioning the escalation target.
    Escalation,
    /// One message replacing a storm's posts.
    Digest,
    /// One rating of a digest, in its thread.
    DigestItem,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Post => "post",
            AlertKind::Update => "update",
            AlertKind::Escalation => "escalation",
            AlertKind::Digest => "digest",
            AlertKind::DigestItem => "digest_item",
        }
    }
}

impl TryFrom<String> for AlertKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Ok(match s.as_str() {
            "post" => AlertKind::Post,
            "update" => AlertKind::Update,
            "escalation" => AlertKind::Escalation,
            "digest" => AlertKind::Digest,
            "digest_item" => AlertKind::DigestItem,
            other => return Err(format!("unknown alert kind {other:?}")),
        })
    }
}

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Pending,
    Sent,
    Dead,
    Superseded,
    Skipped,
    Digested,
}

impl TryFrom<String> for AlertState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Ok(match s.as_str() {
            "pending" => AlertState::Pending,
            "sent" => AlertState::Sent,
            "dead" => AlertState::Dead,
            "superseded" => AlertState::Superseded,
            "skipped" => AlertState::Skipped,
            "digested" => AlertState::Digested,
            other => return Err(format!("unknown alert state {other:?}")),
        })
    }
}

/// A JSON array of strings in a TEXT column (mentions, tags). A value that
/// is not one is a decode error, never an empty list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonList(pub Vec<String>);

impl TryFrom<String> for JsonList {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&s)
            .map(JsonList)
            .map_err(|e| format!("not a JSON array of strings: {e}"))
    }
}

/// `TryFrom<String>` for domain types read from TEXT columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<T>(pub T);

impl<T: std::str::FromStr<Err = String>> TryFrom<String> for Parsed<T> {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse().map(Parsed)
    }
}

/// The message an update, escalation or digest item belongs to (a LEFT
/// JOIN: every column is NULL when the row has no parent).
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct ParentRow {
    #[sqlx(rename = "p_id")]
    pub id: Option<i64>,
    #[sqlx(rename = "p_state")]
    pub state: Option<String>,
    #[sqlx(rename = "p_channel")]
    pub channel: Option<String>,
    #[sqlx(rename = "p_mentions")]
    pub mentions: Option<String>,
    #[sqlx(rename = "p_sentiment")]
    pub sentiment: Option<String>,
    #[sqlx(rename = "p_rule")]
    pub rule: Option<String>,
    #[sqlx(rename = "p_created_at")]
    pub created_at: Option<i64>,
    #[sqlx(rename = "p_slack_channel")]
    pub slack_channel: Option<String>,
    #[sqlx(rename = "p_slack_ts")]
    pub slack_ts: Option<String>,
}

/// The parent of a follow-on row, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Parent {
    pub id: i64,
    pub state: AlertState,
    pub channel: String,
    pub mentions: Vec<String>,
    pub sentiment: crate::domain::Sentiment,
    pub rule: Option<String>,
    pub created_at: i64,
    pub slack_channel: Option<String>,
    pub slack_ts: Option<String>,
}

impl ParentRow {
    /// The parent, or `None` without one; a parent row that does not
    /// decode is an error, not a missing parent.
    pub fn typed(&self) -> Result<Option<Parent>, String> {
        let Some(id) = self.id else {
            return Ok(None);
        };
        let text = |v: &Option<String>, what: &str| {
            v.clone()
                .ok_or_else(|| format!("parent {id} has no {what}"))
        };
        Ok(Some(Parent {
            id,
            state: AlertState::try_from(text(&self.state, "state")?)?,
            channel: text(&self.channel, "channel")?,
            mentions: JsonList::try_from(text(&self.mentions, "mentions")?)?.0,
            sentiment: text(&self.sentiment, "sentiment")?.parse()?,
            rule: self.rule.clone(),
            created_at: self
                .created_at
                .ok_or_else(|| format!("parent {id} has no created_at"))?,
            slack_channel: self.slack_channel.clone(),
            slack_ts: self.slack_ts.clone(),
        }))
    }
}

/// A claimed outbox row with everything needed to send it: the row, its
/// rating as it is now (with who acted on it), and its parent message. One
/// query per batch reads them all.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DueAlert {
    pub id: i64,
    pub rating_id: i64,
    #[sqlx(try_from = "String")]
    pub kind: AlertKind,
    pub channel: String,
    #[sqlx(try_from = "String")]
    pub mentions: JsonList,
    /// The rating's sentiment when this row was raised.
    #[sqlx(try_from = "String")]
    pub sentiment: Parsed<crate::domain::Sentiment>,
    pub rule: Option<String>,
    pub change: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub in_doubt_since: Option<i64>,
    // The rating, as it is now.
    pub source: String,
    pub conversation_id: String,
    pub rating_key: String,
    #[sqlx(try_from = "String")]
    pub scale: Parsed<crate::domain::Scale>,
    pub score: i64,
    #[sqlx(try_from = "String")]
    pub rating_sentiment: Parsed<crate::domain::Sentiment>,
    pub comment: Option<String>,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub customer: Option<String>,
    pub company: Option<String>,
    pub brand: Option<String>,
    #[sqlx(try_from = "String")]
    pub tags: JsonList,
    pub url: Option<String>,
    pub updated_at: i64,
    pub acked_by: Option<String>,
    pub acked_by_name: Option<String>,
    pub acked_at: Option<i64>,
    pub followed_up_by: Option<String>,
    pub followed_up_by_name: Option<String>,
    pub followed_up_at: Option<i64>,
    /// What the follow-up achieved, once someone recorded it (shown on the
    /// alert; read with the row so a send needs no query of its own).
    pub follow_up_outcome: Option<String>,
    #[sqlx(flatten)]
    pub parent: ParentRow,
    /// See [`NewAlert::trace_parent`].
    pub trace_parent: Option<String>,
}

/// The SELECT behind [`DueAlert`]; callers add the WHERE clause on `a`.
pub(super) const DUE_ALERT_SELECT: &str = "SELECT a.id, a.rating_id, a.kind, a.channel, a.mentions, a.sentiment, a.rule,
        a.change, a.attempts, a.created_at, a.in_doubt_since,
        r.source, r.conversation_id, r.rating_key, r.scale, r.score, r.sentiment AS rating_sentiment,
        r.comment, r.agent, r.team, r.customer, r.company, r.brand, r.tags, r.url, r.updated_at,
        r.acked_by, r.acked_by_name, r.acked_at, r.followed_up_by, r.followed_up_by_name, r.followed_up_at,
        r.follow_up_outcome, p.id AS p_id, p.state AS p_state, p.channel AS p_channel, p.mentions AS p_mentions,
        p.sentiment AS p_sentiment, p.rule AS p_rule, p.created_at AS p_created_at,
        p.slack_channel AS p_slack_channel, p.slack_ts AS p_slack_ts, a.trace_parent
     FROM alerts a JOIN ratings r ON r.id = a.rating_id LEFT JOIN alerts p ON p.id = a.parent_id";

/// A message that went out, to record as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    pub id: i64,
    pub sent_at_ms: i64,
    pub slack_channel: Option<String>,
    pub slack_ts: Option<String>,
    /// The rating of an alert post (`kind = 'post'`), whose follow-up
    /// state the send changes; `None` for every other kind.
    pub post_of: Option<i64>,
}

/// What a claim got: the rows to send, and how many claimed rows could not
/// be read and were given up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claimed {
    pub rows: Vec<DueAlert>,
    pub unreadable: usize,
}

/// A due outbox row before it is claimed: enough to decide whether its
/// channel may take a message now.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Candidate {
    pub id: i64,
    pub channel: String,
}

/// A running dispatcher, as its heartbeat row says.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DispatcherRow {
    pub instance: String,
    /// Where it runs: host name, boot id and PID namespace, so a PID is
    /// only compared with PIDs it can be compared with.
    pub host: String,
    pub pid: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// The same database through a pool of its own, of at most
    /// `max_connections`: the dispatcher's and the writer's, so they never
    /// queue behind request handlers for a connection (nor they behind
    /// them). [`Store::close`] closes it too.
    ///
    /// On PostgreSQL its sessions plan every statement for the values it
    /// is given (`SET plan_cache_mode = force_custom_plan` as each
    /// connects). The dispatcher looks rows up by lists of ids, and a plan
    /// kept for reuse is made once, early: on a new database that is a
    /// table of a few pages, where reading all of it is cheapest, and the
    /// plan stays while the table grows (a burst's first ten seconds took
    /// the read of a batch's follow-up state from 0.3 to 130 ms). Planning
    /// these small statements each time costs a fraction of a millisecond.
    pub fn with_own_pool(&self, max_connections: u32) -> Store {
        self.own_pool(max_connections, false)
    }

    /// [`Store::with_own_pool`] for the pipeline's writer. On SQLite its
    /// connections keep statement journals in memory (`temp_store =
    /// memory`): a batch's multi-row statements outgrow the 64 KiB SQLite
    /// keeps in memory before it spills to a temporary file, and that file
    /// cost a write per page changed plus creating and deleting it, per
    /// batch, on the one thread every webhook waits for (half the writes of
    /// a commit). A statement journal lasts one statement, and the writer's
    /// statements are bounded (at most 250 rows each), so the memory is;
    /// every other connection (the rollup's rebuild, reports sorting a
    /// year of ratings) still spills to disk.
    pub fn with_write_pool(&self, max_connections: u32) -> Store {
        self.own_pool(max_connections, true)
    }

    fn own_pool(&self, max_connections: u32, writer: bool) -> Store {
        use sqlx::pool::PoolOptions;
        let mut own = self.clone();
        own.backend = match &self.backend {
            // Never creates the file: the store opened (and migrated) it; a
            // file gone from its path must not come back empty.
            Backend::Sqlite(pool) => Backend::Sqlite(
                PoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(pool.options().get_acquire_timeout())
                    .test_before_acquire(super::SQLITE_PING_BEFORE_ACQUIRE)
                    .after_connect(|conn, _| Box::pin(super::busy::install(conn)))
                    .connect_lazy_with({
                        let options = (*pool.connect_options()).clone().create_if_missing(false);
                        if writer {
                            options.pragma("temp_store", "memory")
                        } else {
                            options
                        }
                    }),
            ),
            Backend::Postgres(pool) => Backend::Postgres(
                PoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(pool.options().get_acquire_timeout())
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            super::nodelay::set_nodelay(conn).await?;
                            // A `SET`, not a startup parameter: PgBouncer
                            // refuses connections that send `options`.
                            if !writer {
                                sqlx::query("SET plan_cache_mode = force_custom_plan")
                                    .execute(&mut *conn)
                                    .await?;
                            }
                            Ok(())
                        })
                    })
                    .connect_lazy_with((*pool.connect_options()).clone()),
            ),
        };
        self.own_pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(own.backend.clone());
        own
    }

    /// Due, unclaimed rows in the order they are sent, skipping `excluded`
    /// channels (those that cannot take a message now). Served by the
    /// `alerts_pending` index: no sort, whatever the outbox holds.
    pub async fn due_candidates(
        &self,
        now_ms: i64,
        excluded: &[String],
        limit: i64,
    ) -> StoreResult<Vec<Candidate>> {
        let sql = due_candidates_sql(excluded.len());
        let rows = on_pool!(self, |pool| {
            let mut q = sqlx::query_as::<_, Candidate>(sqlx::AssertSqlSafe(sql))
                .bind(now_ms)
                .bind(limit);
            for channel in excluded {
                q = q.bind(channel);
            }
            q.fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// Claims exactly `ids` (those still due and unclaimed) for `lease_ms`
    /// with `token`, and reads them with their ratings and parents. A row
    /// whose earlier claim ran out (its dispatcher died mid-send) is marked
    /// in doubt: its message may be in Slack already.
    pub async fn claim_alerts(
        &self,
        ids: &[i64],
        now_ms: i64,
        lease_ms: i64,
        token: &str,
    ) -> StoreResult<Claimed> {
        if ids.is_empty() {
            return Ok(Claimed::default());
        }
        let update = format!(
            "UPDATE alerts SET claim_token = $1, claimed_until = $2,
                in_doubt_since = CASE WHEN claim_token IS NULL THEN in_doubt_since
                    ELSE COALESCE(in_doubt_since, claimed_until - $4) END
             WHERE id IN ({}) AND state = 'pending'
               AND (claimed_until IS NULL OR claimed_until < $3)",
            placeholders(5, ids.len())
        );
        let claimed = on_pool!(self, |pool| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(update))
                .bind(token)
                .bind(now_ms + lease_ms)
                .bind(now_ms)
                .bind(lease_ms);
            for id in ids {
                q = q.bind(id);
            }
            q.execute(pool).await?.rows_affected()
        });
        if claimed == 0 {
            return Ok(Claimed::default());
        }
        self.claimed_alerts(ids, token).await
    }

    /// Those of `ids` still claimed with `token` and unsent (a claim the
    /// writer put on them as it enqueued them, or [`Store::claim_alerts`]'s),
    /// read with their ratings and parents.
    pub async fn claimed_alerts(&self, ids: &[i64], token: &str) -> StoreResult<Claimed> {
        if ids.is_empty() {
            return Ok(Claimed::default());
        }
        // By primary key: the claimed rows are among `ids`.
        let select = format!(
            "{DUE_ALERT_SELECT} WHERE {} AND a.claim_token = $1 AND a.state = 'pending' ORDER BY a.id",
            self.dialect().in_ids("a.id", 2)
        );
        let list = self.dialect().id_list(ids);
        let read = on_pool!(self, |pool| {
            sqlx::query_as::<_, DueAlert>(sqlx::AssertSqlSafe(select))
                .bind(token)
                .bind(list)
                .fetch_all(pool)
                .await
        });
        match read {
            Ok(rows) => Ok(Claimed {
                rows,
                unreadable: 0,
            }),
            Err(sqlx::Error::ColumnDecode { .. }) => self.claimed_one_by_one(ids, token).await,
            Err(e) => Err(e.into()),
        }
    }

    /// The claimed rows of a batch one at a time, after the batch read met a
    /// row that does not decode: that row can never be sent, so it is marked
    /// dead (logged at ERROR) and the others go on. One bad row never holds
    /// up the outbox.
    async fn claimed_one_by_one(&self, ids: &[i64], token: &str) -> StoreResult<Claimed> {
        let select = format!("{DUE_ALERT_SELECT} WHERE a.id = $1 AND a.claim_token = $2");
        let mut claimed = Claimed::default();
        for &id in ids {
            let read = on_pool!(self, |pool| {
                sqlx::query_as::<_, DueAlert>(sqlx::AssertSqlSafe(select.clone()))
                    .bind(id)
                    .bind(token)
                    .fetch_optional(pool)
                    .await
            });
            match read {
                Ok(Some(row)) => claimed.rows.push(row),
                Ok(None) => {}
                Err(e @ sqlx::Error::ColumnDecode { .. }) => {
                    let why = format!("unreadable outbox row: {e}");
                    if self.finish_alert(id, token, "dead", Some(&why)).await? {
                        claimed.unreadable += 1;
                        tracing::error!(alert_id = id, error = %e, "an outbox row cannot be read and was given up; the rating is recorded (a bug or a hand-edited row: please report it with this line)");
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(claimed)
    }

    /// An outbox row as the parent of a follow-on, read now (the batch's
    /// own read may predate its sending in the same batch).
    pub async fn parent_row(&self, id: i64) -> StoreResult<ParentRow> {
        let row = on_pool!(self, |pool| {
            sqlx::query_as::<_, ParentRow>(
                "SELECT p.id AS p_id, p.state AS p_state, p.channel AS p_channel, p.mentions AS p_mentions,
                    p.sentiment AS p_sentiment, p.rule AS p_rule, p.created_at AS p_created_at,
                    p.slack_channel AS p_slack_channel, p.slack_ts AS p_slack_ts
                 FROM alerts p WHERE p.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.unwrap_or_default())
    }

    /// The posts folded into a digest, worst rating first, ready to render.
    pub async fn digest_member_views(&self, digest_id: i64) -> StoreResult<Vec<DueAlert>> {
        let sql = format!(
            "{DUE_ALERT_SELECT} WHERE a.kind = 'post' AND a.state = 'digested' AND a.parent_id = $1
             ORDER BY r.normalised, a.id"
        );
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, DueAlert>(sqlx::AssertSqlSafe(sql))
                .bind(digest_id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Schedules another attempt after a failure, releasing the claim. With
    /// `in_doubt_since`, the failed attempt may have been delivered (no
    /// answer came back): the next one looks for it first.
    pub async fn retry_alert(
        &self,
        id: i64,
        token: &str,
        next_attempt_at: i64,
        error: &str,
        in_doubt_since: Option<i64>,
    ) -> StoreResult<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE alerts SET next_attempt_at = $3, last_error = $4, attempts = attempts + 1,
                    claim_token = NULL, claimed_until = NULL,
                    in_doubt_since = COALESCE(in_doubt_since, $5)
                 WHERE id = $1 AND claim_token = $2 AND state = 'pending'",
            )
            .bind(id)
            .bind(token)
            .bind(next_attempt_at)
            .bind(error)
            .bind(in_doubt_since)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Releases `ids` of claim `token` that are not sent yet: due again,
    /// for whichever dispatcher looks next.
    pub async fn release_alerts(&self, ids: &[i64], token: &str) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "UPDATE alerts SET claim_token = NULL, claimed_until = NULL
             WHERE id IN ({}) AND claim_token = $1 AND state = 'pending'",
            placeholders(2, ids.len())
        );
        let done = on_pool!(self, |pool| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(token);
            for id in ids {
                q = q.bind(id);
            }
            q.execute(pool).await?.rows_affected()
        });
        Ok(done)
    }

    /// Records that dispatcher `instance` is alive at `now_ms`.
    pub async fn dispatcher_heartbeat(
        &self,
        instance: &str,
        host: &str,
        pid: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO dispatchers (instance, host, pid, started_at, heartbeat_at)
                 VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (instance) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            )
            .bind(instance)
            .bind(host)
            .bind(pid)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Every dispatcher that has a heartbeat row.
    pub async fn dispatchers(&self) -> StoreResult<Vec<DispatcherRow>> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as::<_, DispatcherRow>(
                "SELECT instance, host, pid, started_at, heartbeat_at FROM dispatchers ORDER BY instance",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Takes over the claims of a dispatcher that is gone: they become due
    /// at once, marked in doubt (it may have posted before it died), and its
    /// heartbeat row is removed. The fencing token stays safe: if it was
    /// only paused, its own outcome write no longer matches any claim.
    /// Returns how many claims were released.
    pub async fn take_over_dispatcher(&self, instance: &str, lease_ms: i64) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        let released = on_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE alerts SET claim_token = NULL, claimed_until = NULL,
                    in_doubt_since = COALESCE(in_doubt_since, claimed_until - $2)
                 WHERE state = 'pending' AND claim_token LIKE $1",
            )
            .bind(format!("{instance}:%"))
            .bind(lease_ms)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM dispatchers WHERE instance = $1")
                .bind(instance)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        Ok(released)
    }

    /// Removes this dispatcher's heartbeat row at a clean shutdown.
    pub async fn forget_dispatcher(&self, instance: &str) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query("DELETE FROM dispatchers WHERE instance = $1")
                .bind(instance)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// The query plan of the dispatcher's claim query, for the test that
    /// proves it walks the `alerts_pending` index instead of sorting.
    #[doc(hidden)]
    pub async fn explain_due_candidates(&self) -> StoreResult<String> {
        use super::reports::{Bind, Binds};
        let binds = Binds(vec![Bind::Int(0), Bind::Int(25), Bind::Text("#x".into())]);
        self.explain(&due_candidates_sql(1), binds).await
    }

    /// On PostgreSQL, each statement this store's session keeps prepared
    /// whose text contains `part`, with how many times the server reused a
    /// generic plan for it and how many times it planned it for the values
    /// given (`pg_prepared_statements`); empty on SQLite. Meant for a store
    /// of one connection, whose one session it reads.
    #[doc(hidden)]
    pub async fn prepared_plans(&self, part: &str) -> StoreResult<Vec<(i64, i64)>> {
        Ok(match &self.backend {
            Backend::Sqlite(_) => Vec::new(),
            Backend::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements
                     WHERE strpos(statement, $1) > 0",
                )
                .bind(part)
                .fetch_all(pool)
                .await?
            }
        })
    }

    /// The plan of recording `sent` as sent (one statement's worth), for
    /// the test that it joins only those rows of `alerts`: on PostgreSQL
    /// run (`EXPLAIN ANALYZE`, with the rows each step passed on) in a
    /// transaction that is rolled back; on SQLite `EXPLAIN QUERY PLAN`.
    #[doc(hidden)]
    pub async fn explain_mark_alerts_sent(
        &self,
        token: &str,
        sent: &[SentRecord],
    ) -> StoreResult<String> {
        let sql = mark_sent_sql(self.dialect(), sent.len());
        let lines: Vec<String> = match &self.backend {
            Backend::Sqlite(pool) => {
                let explain = format!("EXPLAIN QUERY PLAN {sql}");
                let q = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
                let rows = bind_sent!(q, sent, token).fetch_all(pool).await?;
                rows.into_iter().map(|r| r.3).collect()
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let explain = format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}");
                let q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(explain));
                let lines = bind_sent!(q, sent, token).fetch_all(&mut *tx).await?;
                tx.rollback().await?;
                lines
            }
        };
        Ok(lines.join("\n"))
    }
}

/// The statement that records `rows` sends: the row list's parameters
/// (id, sent at, channel, ts) first, the claim token last.
///
/// On PostgreSQL the ids are also listed as a filter on `alerts` itself.
/// Without it the server may read `alerts` first and join what it finds
/// with the row list: every pending row holding the token. The fast lane
/// claims a whole burst with one token, and on a young table (no
/// statistics yet) the planner expects one such row, so recording 50 sends
/// compared 18,000 claimed rows with each of the 50: 274 ms a batch, and
/// alerts left at 250/s (docs/performance.md, "Changes measured A/B").
/// With the ids listed, whichever plan is chosen passes at most the batch
/// on to the join; without statistics the server may still filter the
/// pending rows to find them (a few ms for 18,000), until the table is
/// analysed and it looks them up by key.
fn mark_sent_sql(dialect: super::Dialect, rows: usize) -> String {
    let values = super::batch::values(dialect, rows, 4, "");
    let (token_param, only_these) = match dialect {
        super::Dialect::Sqlite => ("?".to_string(), String::new()),
        super::Dialect::Postgres => {
            // The row list's id parameters again: $1, $5, …
            let ids: Vec<String> = (0..rows).map(|r| format!("${}", r * 4 + 1)).collect();
            (
                format!("${}", rows * 4 + 1),
                format!(" AND alerts.id IN ({})", ids.join(", ")),
            )
        }
    };
    format!(
        "WITH v (v_id, v_sent_at, v_channel, v_ts) AS (VALUES {values})
         UPDATE alerts SET state = 'sent', sent_at = v.v_sent_at, slack_channel = v.v_channel,
            slack_ts = v.v_ts, attempts = attempts + 1, claim_token = NULL, claimed_until = NULL,
            last_error = NULL, in_doubt_since = NULL
         FROM v
         WHERE alerts.id = v.v_id AND alerts.claim_token = {token_param} AND alerts.state = 'pending'{only_these}
         RETURNING id"
    )
}

fn due_candidates_sql(excluded: usize) -> String {
    let skip = if excluded == 0 {
        String::new()
    } else {
        format!("AND channel NOT IN ({})", placeholders(3, excluded))
    };
    format!(
        "SELECT id, channel FROM alerts
         WHERE state = 'pending' AND next_attempt_at <= $1
           AND (claimed_until IS NULL OR claimed_until < $1) {skip}
         ORDER BY next_attempt_at, id
         LIMIT $2"
    )
}
