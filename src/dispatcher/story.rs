//! What an alert shows beyond the rating itself, read at send time: the
//! helpdesk actions its buttons offer, the recorded outcome of the
//! follow-up, the customer's earlier ratings ("3rd negative in 90 days"),
//! and names instead of ids for agents and teams where the helpdesk sends
//! only ids (cached, with the id kept when a lookup fails). Also the direct
//! message to the rated agent a rule may ask for, after the post.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::Dispatcher;
use super::deliver::Batch;
use crate::clock::ms;
use crate::domain::Sentiment;
use crate::domain::{Scale, Score};
use crate::sinks::slack::message::slack_date;
use crate::sinks::slack::text::{clean_inline, fit};
use crate::sinks::{AlertView, CustomerStory, Sink};
use crate::sources::actions::ActionRegistry;
use crate::store::{AlertKind, DueAlert, EarlierRating, NewActivity, StoreResult, StoryQuery};

/// Longest a name lookup may hold up an alert; past it the id is shown.
const NAME_LOOKUP_BUDGET: Duration = Duration::from_secs(2);
/// Earlier ratings listed on the alert.
const STORY_LENGTH: i64 = 5;

/// What the dispatcher needs to enrich alerts.
#[derive(Debug, Clone)]
pub struct Enrichment {
    pub actions: Arc<ActionRegistry>,
    pub http: reqwest::Client,
    /// `alerts.history_window`.
    pub history_window: Duration,
    /// The pipeline's rules, shared: a settings reload replaces them for
    /// both (see [`crate::pipeline::Pipeline::shared_rules`]).
    pub rules: crate::pipeline::SharedRules,
}

/// Where a rating's story starts: `alerts.history_window` before it.
fn story_since(rating: &DueAlert, e: &Enrichment) -> i64 {
    rating.updated_at - ms(e.history_window)
}

impl Dispatcher {
    /// Reads the stories of a batch's posts in one statement, by row id,
    /// for [`Dispatcher::enrich`] to take; empty when it cannot read them
    /// (an error: each send then reads its own).
    pub(super) async fn prefetch_stories<'a>(
        &self,
        alerts: impl Iterator<Item = &'a DueAlert>,
    ) -> HashMap<i64, Vec<EarlierRating>> {
        let Some(e) = &self.enrichment else {
            return HashMap::new();
        };
        let wanted: Vec<StoryQuery<'_>> = alerts
            .filter(|a| a.kind == AlertKind::Post)
            .filter_map(|a| {
                Some(StoryQuery {
                    key: a.id,
                    source: &a.source,
                    customer: a.customer.as_deref()?,
                    since_ms: story_since(a, e),
                    except_id: a.rating_id,
                })
            })
            .collect();
        let mut stories: HashMap<i64, Vec<EarlierRating>> =
            wanted.iter().map(|q| (q.key, Vec::new())).collect();
        match self
            .store
            .earlier_ratings_of_many(&wanted, STORY_LENGTH)
            .await
        {
            Ok(rows) => {
                for (key, row) in rows {
                    stories.entry(key).or_default().push(row);
                }
            }
            Err(error) => {
                tracing::debug!(%error, "could not read the batch's customer stories; each send reads its own");
                stories.clear();
            }
        }
        stories
    }

    /// Adds actions, outcome, story and names to `view` (nothing without
    /// [`Enrichment`]).
    pub(super) async fn enrich(
        &self,
        view: &mut AlertView,
        rating: &DueAlert,
        batch: &Batch,
    ) -> StoreResult<()> {
        let Some(e) = &self.enrichment else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        view.ticket_actions = e
            .actions
            .offered(&rating.source)
            .into_iter()
            .map(|a| a.as_str().to_string())
            .collect();
        view.outcome = rating.follow_up_outcome.clone();
        if let Some(customer) = rating.customer.as_deref() {
            let prefetched = batch
                .stories
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&rating.id);
            let earlier = match prefetched {
                Some(earlier) => earlier,
                None => {
                    self.store
                        .earlier_ratings(
                            &rating.source,
                            customer,
                            story_since(rating, e),
                            rating.rating_id,
                            STORY_LENGTH,
                        )
                        .await?
                }
            };
            if !earlier.is_empty() {
                let this_negative = i64::from(rating.rating_sentiment.0 == Sentiment::Negative);
                let earlier_negatives =
                    earlier.iter().filter(|r| r.sentiment == "negative").count() as i64;
                view.story = Some(CustomerStory {
                    negatives: earlier_negatives + this_negative,
                    window_days: (e.history_window.as_secs() / 86_400) as i64,
                    recent: earlier
                        .iter()
                        .map(|r| {
                            let scale = Scale::from_str(&r.scale).unwrap_or(Scale::FivePoint);
                            let label = Score {
                                scale,
                                value: r.score,
                            }
                            .label();
                            (label, r.sentiment == "negative", r.rated_at)
                        })
                        .collect(),
                });
            }
        }
        for (value, team) in [(&mut view.agent, false), (&mut view.team, true)] {
            let Some(id) = value.clone().filter(|v| looks_like_id(v)) else {
                continue;
            };
            let lookup = e.actions.name(&e.http, &rating.source, &id, team, now);
            if let Ok(Some(name)) = tokio::time::timeout(NAME_LOOKUP_BUDGET, lookup).await {
                *value = Some(name);
            }
        }
        Ok(())
    }

    /// After a post went out: a direct message to the rated agent when its
    /// rule asks (`dm_agent = true`) and the agent is known by email. Best
    /// effort, at most once per post; the outcome is kept in the rating's
    /// activity.
    pub(super) async fn notify_agent(&self, alert: &DueAlert) {
        let rating = alert;
        let Some(e) = &self.enrichment else {
            return;
        };
        let dm_agent = e
            .rules
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .dm_agent(alert.rule.as_deref());
        if !dm_agent {
            return;
        }
        let Sink::Slack(slack) = &self.sink else {
            return;
        };
        let agent = rating.agent.as_deref().map(str::trim).unwrap_or_default();
        let email = if agent.contains('@') {
            Some(agent.to_string())
        } else if looks_like_id(agent) {
            // The helpdesk names the agent by id: ask it for the email.
            match e.actions.get(&rating.source) {
                Some(actions) => actions.agent_email(&e.http, agent).await.ok().flatten(),
                None => None,
            }
        } else {
            None
        };
        let Some(email) = email else {
            self.record_dm(
                rating.rating_id,
                "failed",
                "the rating names no agent email",
            )
            .await;
            return;
        };
        let result = match slack.user_by_email(&email).await {
            Ok(Some(user)) => {
                let line = format!(
                    "A customer rated your conversation (ticket {}) {} on {}. csatwatch posted it in the alerts channel; your lead may reach out.",
                    fit(&clean_inline(&rating.conversation_id), 80),
                    Score {
                        scale: rating.scale.0,
                        value: rating.score
                    }
                    .label(),
                    slack_date(rating.updated_at),
                );
                slack
                    .direct_message(&user, json!({ "text": line }))
                    .await
                    .map(|_| "sent to the rated agent".to_string())
                    .map_err(|e| e.to_string())
            }
            Ok(None) => Err("no Slack user has the agent's email".to_string()),
            Err(error) => Err(error.to_string()),
        };
        match result {
            Ok(detail) => self.record_dm(rating.rating_id, "done", &detail).await,
            Err(why) => {
                tracing::warn!(alert_id = alert.id, reason = %why, "direct message to the rated agent not sent");
                self.record_dm(rating.rating_id, "failed", &why).await;
            }
        }
    }

    async fn record_dm(&self, rating_id: i64, status: &str, detail: &str) {
        let activity = NewActivity {
            rating_id,
            kind: "dm",
            actor_id: "csatwatch",
            actor_name: None,
            status,
            detail: Some(detail),
            at_ms: self.clock.now_ms(),
        };
        if let Err(error) = self.store.add_activity(&activity).await {
            tracing::warn!(error = %error, rating_id, "could not record the direct message");
        }
    }
}

/// A helpdesk id rather than a name: digits only (Intercom admin and team
/// ids, Freshdesk agent and group ids).
fn looks_like_id(value: &str) -> bool {
    let v = value.trim();
    !v.is_empty() && v.len() <= 32 && v.bytes().all(|b| b.is_ascii_digit())
}
