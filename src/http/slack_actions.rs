//! Closing the loop from an alert (after [`super::slack`] verified the
//! signature): "Add note" opens a modal and its submission adds an internal
//! note to the ticket; "Reopen" and "Assign to me" act on the ticket at
//! once; "Followed up" opens a modal asking what happened.
//!
//! Slack wants every answer within 3 seconds, so a modal is opened first
//! (`views.open`, before any slow work: a trigger expires in about 3 s) and
//! a helpdesk action runs in its own task that the answer waits for up to
//! [`BUDGET`]. A slower helpdesk is never cut off (a cancelled request may
//! still land): the answer goes back, and the result follows (the modal is
//! updated with `views.update`, or a failure is told ephemerally). Each
//! action is written to the rating's activity and, when it worked, as a
//! reply in the alert's thread (through the outbox, like every//! other message). A failure is shown to the person who clicked only: an
//! ephemeral message, or an error under the modal's input; the rating is
//! left as it was. Reopen and assign are retried once at once when the
//! helpdesk's failure is temporary (repeating them is harmless); a note is
//! not (it would show twice).

use std::time::Duration;

use serde_json::Value;

use super::AppState;
use super::answer::Answer;
use crate::sinks::slack::message::{
    ASSIGN_ACTION_ID, FOLLOWUP_ACTION_ID, NOTE_ACTION_ID, REOPEN_ACTION_ID,
};
use crate::sinks::slack::modals::{self, NOTE_BLOCK, OUTCOME_BLOCK};
use crate::sources::FetchError;
use crate::sources::actions::{TicketAction, TicketActions};
use crate::store::{AlertRecord, NewActivity, NewFollowOn, StoreResult, StoredRating};

/// How long a helpdesk action may take inside Slack's 3 seconds.
pub const BUDGET: Duration = Duration::from_millis(2500);

/// Who clicked.
#[derive(Debug, Clone)]
struct Person {
    id: String,
    /// The Slack handle from the payload, until `users.info` gives better.
    name: String,
}

fn count(action: &'static str, result: &'static str) {
    metrics::counter!("csatwatch_ticket_actions_total", "action" => action, "result" => result)
        .increment(1);
}

/// Handles our modal buttons and submissions; `None` for anything else (the
/// "I'm on it" / "Followed up" clicks recorded directly by the caller).
pub async fn handle(state: &AppState, payload: &Value) -> Option<Answer> {
    let person = Person {
        id: payload.pointer("/user/id")?.as_str()?.to_string(),
        name: ["/user/name", "/user/username"]
            .iter()
            .find_map(|p| payload.pointer(p).and_then(Value::as_str))
            .unwrap_or("someone")
            .to_string(),
    };
    match payload["type"].as_str()? {
        "block_actions" => block_action(state, payload, &person).await,
        "view_submission" => Some(view_submission(state, payload, &person).await),
        _ => None,
    }
}

async fn block_action(state: &AppState, payload: &Value, person: &Person) -> Option<Answer> {
    let (action_id, alert_id) = payload["actions"].as_array()?.iter().find_map(|a| {
        let id = a["action_id"].as_str()?;
        let ours = [
            NOTE_ACTION_ID,
            REOPEN_ACTION_ID,
            ASSIGN_ACTION_ID,
            FOLLOWUP_ACTION_ID,
        ];
        let id = ours.into_iter().find(|o| *o == id)?;
        Some((id, a["value"].as_str()?.trim().parse::<i64>().ok()?))
    })?;
    let trigger = payload["trigger_id"].as_str();
    let channel = payload
        .pointer("/channel/id")
        .and_then(Value::as_str)
        .map(str::to_string);
    if action_id == FOLLOWUP_ACTION_ID {
        // With a bot and a trigger, ask what happened; otherwise the caller
        // records the follow-up as before.
        let (slack, trigger) = (state.slack.as_ref()?, trigger?);
        return match slack
            .open_view(trigger, modals::outcome_view(alert_id))
            .await
        {
            Ok(_) => Some(Answer::Empty),
            Err(error) => {
                tracing::warn!(alert_id, error = %error, "the outcome modal did not open; recording the follow-up without it");
                None
            }
        };
    }
    let found = match load(state, alert_id).await {
        Ok(found) => found,
        Err(response) => return Some(response),
    };
    let Some((alert, rating)) = found else {
        tell(
            state,
            channel.as_deref(),
            person,
            "This alert no longer exists in csatwatch.",
        )
        .await;
        return Some(Answer::Empty);
    };
    let channel = channel.or_else(|| alert.slack_channel.clone());
    let action = match action_id {
        NOTE_ACTION_ID => TicketAction::Note,
        REOPEN_ACTION_ID => TicketAction::Reopen,
        _ => TicketAction::Assign,
    };
    if action == TicketAction::Note {
        let opened = match (state.slack.as_ref(), trigger) {
            (Some(slack), Some(trigger)) => slack
                .open_view(
                    trigger,
                    modals::note_view(alert_id, &rating.source, &rating.conversation_id),
                )
                .await
                .map_err(|e| e.to_string()),
            _ => Err("no bot token or trigger to open the note form with".to_string()),
        };
        if let Err(why) = opened {
            count("note", "failed");
            tracing::warn!(alert_id, reason = %why, "the note modal did not open");
            let text = format!("⚠️ The note form could not open ({why}). Try again in a moment.");
            tell(state, channel.as_deref(), person, &text).await;
        }
        return Some(Answer::Empty);
    }
    match act(state, &alert, &rating, action, person, None).await {
        Ok(Acted::Done) => {}
        Ok(Acted::Failed(why)) => {
            let text = format!("⚠️ {} failed: {why}", label(action));
            tell(state, channel.as_deref(), person, &text).await;
        }
        Ok(Acted::Pending(task)) => report_later(state, task, action, person, channel, None),
        Err(response) => return Some(response),
    }
    Some(Answer::Empty)
}

async fn view_submission(state: &AppState, payload: &Value, person: &Person) -> Answer {
    let view = &payload["view"];
    let Some(alert_id) = modals::alert_of(view) else {
        return Answer::Empty;
    };
    let found = match load(state, alert_id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some((alert, rating)) = found else {
        return errors(NOTE_BLOCK, "This alert no longer exists in csatwatch.");
    };
    match view["callback_id"].as_str() {
        Some(modals::NOTE_CALLBACK) => {
            let Some(text) = modals::text_input(view, NOTE_BLOCK) else {
                return errors(NOTE_BLOCK, "Write a note first.");
            };
            match act(
                state,
                &alert,
                &rating,
                TicketAction::Note,
                person,
                Some(text),
            )
            .await
            {
                Ok(Acted::Done) => Answer::Empty,
                Ok(Acted::Failed(why)) => {
                    errors(NOTE_BLOCK, &format!("The note was not added: {why}"))
                }
                Ok(Acted::Pending(task)) => {
                    let view_id = view["id"].as_str().map(str::to_string);
                    report_later(state, task, TicketAction::Note, person, None, view_id);
                    Answer::Done(serde_json::json!({
                        "response_action": "update",
                        "view": modals::status_view(
                            "⏳ The helpdesk is slow to answer; this window shows the result when it does.",
                        ),
                    }))
                }
                Err(response) => response,
            }
        }
        Some(modals::OUTCOME_CALLBACK) => {
            let outcome = modals::selected(view, OUTCOME_BLOCK);
            let Some(label) = outcome.as_deref().and_then(modals::outcome_label) else {
                return errors(OUTCOME_BLOCK, "Choose what happened.");
            };
            let note = modals::text_input(view, NOTE_BLOCK);
            let line = format!("{} followed up: {label}", person.name);
            let recorded = record_outcome(
                state,
                &rating,
                outcome.as_deref().unwrap_or_default(),
                note.as_deref(),
                person,
                &line,
            )
            .await;
            match recorded {
                Ok(()) => {
                    count("outcome", "done");
                    tracing::info!(alert_id = alert.id, rating_id = rating.id, user_id = %person.id, "follow-up outcome recorded");
                    Answer::Empty
                }
                Err(error) => unavailable(&error),
            }
        }
        _ => Answer::Empty,
    }
}

/// The alert and its rating; `Err` is the 503 answer.
async fn load(
    state: &AppState,
    alert_id: i64,
) -> Result<Option<(AlertRecord, StoredRating)>, Answer> {
    let result: StoreResult<_> = async {
        let Some(alert) = state.store.alert(alert_id).await? else {
            return Ok(None);
        };
        Ok(state
            .store
            .rating_by_id(alert.rating_id)
            .await?
            .map(|r| (alert, r)))
    }
    .await;
    result.map_err(|e| unavailable(&e))
}

fn unavailable(error: &crate::store::StoreError) -> Answer {
    tracing::error!(error = %error, "Slack action not recorded: database unavailable; check database.url and that the database is up");
    Answer::Unavailable("the database is unavailable; try again in a moment")
}

/// A `view_submission` answer that keeps the modal open with `message`.
fn errors(block: &str, message: &str) -> Answer {
    Answer::Done(modals::field_error(block, message))
}

fn label(action: TicketAction) -> &'static str {
    match action {
        TicketAction::Note => "Adding the note",
        TicketAction::Reopen => "Reopening the ticket",
        TicketAction::Assign => "Assigning the ticket",
    }
}

/// An ephemeral message to the person, best effort.
async fn tell(state: &AppState, channel: Option<&str>, person: &Person, text: &str) {
    let (Some(slack), Some(channel)) = (state.slack.as_ref(), channel) else {
        tracing::warn!(user_id = %person.id, "no bot token or channel for an ephemeral reply");
        return;
    };
    if let Err(error) = slack.post_ephemeral(channel, &person.id, text).await {
        tracing::warn!(error = %error, user_id = %person.id, "ephemeral reply not delivered");
    }
}

/// What became of an action after [`BUDGET`].
enum Acted {
    Done,
    /// Failed, with the reason to show the person.
    Failed(String),
    /// Still running: the helpdesk is slow. Its result arrives later (the
    /// thread reply, or an ephemeral / modal update from [`report_later`]).
    Pending(tokio::task::JoinHandle<StoreResult<Result<(), String>>>),
}

/// Starts `action` in its own task (so a slow helpdesk is never cut off
/// mid-call: a cancelled request may still land) and waits up to
/// [`BUDGET`] for it. `Err` is the 503 answer.
async fn act(
    state: &AppState,
    alert: &AlertRecord,
    rating: &StoredRating,
    action: TicketAction,
    person: &Person,
    note: Option<String>,
) -> Result<Acted, Answer> {
    let mut task = tokio::spawn(run(
        state.clone(),
        alert.id,
        rating.clone(),
        action,
        person.clone(),
        note,
    ));
    match tokio::time::timeout(BUDGET, &mut task).await {
        Ok(Ok(Ok(Ok(())))) => Ok(Acted::Done),
        Ok(Ok(Ok(Err(why)))) => Ok(Acted::Failed(why)),
        Ok(Ok(Err(error))) => Err(unavailable(&error)),
        Ok(Err(_)) => Ok(Acted::Failed(
            "csatwatch failed unexpectedly; try again".into(),
        )),
        Err(_) => Ok(Acted::Pending(task)),
    }
}

/// Calls the helpdesk, counts, logs and records the action (and on
/// success threads a reply under the alert). `Ok(Err(why))` is a failure to
/// show the person.
async fn run(
    state: AppState,
    alert_id: i64,
    rating: StoredRating,
    action: TicketAction,
    person: Person,
    note: Option<String>,
) -> StoreResult<Result<(), String>> {
    let outcome = call(&state, &rating, action, &person, note.as_deref()).await;
    let (actor, result) = match outcome {
        Ok((actor, line)) => (actor, Ok(line)),
        Err((actor, why)) => (actor, Err(why)),
    };
    count(
        action.as_str(),
        if result.is_ok() { "done" } else { "failed" },
    );
    tracing::info!(alert_id, rating_id = rating.id, action = action.as_str(), user_id = %person.id, ok = result.is_ok(), "helpdesk action from Slack");
    let detail = match &result {
        Ok(line) => line.clone(),
        Err(why) => why.clone(),
    };
    record(
        &state,
        &rating,
        action.as_str(),
        &person.id,
        &actor,
        result.is_ok(),
        &detail,
    )
    .await?;
    Ok(result.map(drop))
}

/// The result of an action that outlived [`BUDGET`], when it arrives: shown
/// in the modal `view_id` (`views.update`) when there is one, else a
/// failure is told to the person (ephemeral; a success is the thread reply).
fn report_later(
    state: &AppState,
    task: tokio::task::JoinHandle<StoreResult<Result<(), String>>>,
    action: TicketAction,
    person: &Person,
    channel: Option<String>,
    view_id: Option<String>,
) {
    let (state, person) = (state.clone(), person.clone());
    tokio::spawn(async move {
        let outcome = match task.await {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => Err(format!(
                "it may have been done, but csatwatch could not record it ({error})"
            )),
            Err(_) => Err("csatwatch failed unexpectedly; check the ticket".to_string()),
        };
        match (view_id, state.slack.as_ref()) {
            (Some(view_id), Some(slack)) => {
                let view = match &outcome {
                    Ok(()) => modals::status_view("✅ Done: it is in the alert's thread."),
                    Err(why) => modals::status_view(&format!("⚠️ {} failed: {why}", label(action))),
                };
                if let Err(error) = slack.update_view(&view_id, view).await {
                    tracing::warn!(error = %error, "the modal could not be updated with the result");
                }
            }
            _ => {
                if let Err(why) = outcome {
                    let text = format!("⚠️ {} failed: {why}", label(action));
                    tell(&state, channel.as_deref(), &person, &text).await;
                }
            }
        }
    });
}

/// The helpdesk calls of one action: finds the person's agent where
/// needed, then acts. `Ok((name, thread line))` or `Err((name, why))`.
async fn call(
    state: &AppState,
    rating: &StoredRating,
    action: TicketAction,
    person: &Person,
    note: Option<&str>,
) -> Result<(String, String), (String, String)> {
    let mut name = person.name.clone();
    let Some(actions) = state.actions.get(&rating.source) else {
        return Err((
            name,
            format!(
                "source {} has no helpdesk API credentials ([sources.api])",
                rating.source
            ),
        ));
    };
    if !actions.supports(action) {
        return Err((
            name,
            format!("{} does not allow this through its API", actions.kind()),
        ));
    }
    let needs_agent = match action {
        TicketAction::Assign => true,
        TicketAction::Note => actions.note_needs_agent(),
        TicketAction::Reopen => actions.reopen_needs_agent(),
    };
    // The person's Slack profile: a better name, and the email that finds
    // their helpdesk agent (needed to assign, and where the API wants an actor).
    let mut email = None;
    if let Some(slack) = &state.slack {
        match slack.user_info(&person.id).await {
            Ok(user) => {
                name = user.name.unwrap_or(name);
                email = user.email;
            }
            Err(error) if needs_agent => {
                return Err((name, format!("Slack did not say who you are ({error})")));
            }
            Err(_) => {}
        }
    }
    let agent = match (&email, needs_agent) {
        (None, true) => {
            return Err((
                name,
                "Slack did not share your email: the app needs the users:read.email scope"
                    .to_string(),
            ));
        }
        (Some(email), _) if needs_agent || action == TicketAction::Note => {
            match actions.find_agent(&state.http, email).await {
                Ok(found) => found,
                Err(error) if needs_agent => return Err((name, error.message)),
                Err(_) => None,
            }
        }
        _ => None,
    };
    if needs_agent && agent.is_none() {
        return Err((
            name,
            format!("no {} agent has your Slack email address", actions.kind()),
        ));
    }
    let agent_id = agent.as_ref().map(|a| a.id.as_str());
    let ticket = rating.conversation_id.as_str();
    let result = match action {
        TicketAction::Note => {
            let body = format!(
                "{}\n\n— {name}, from the csatwatch alert in Slack",
                note.unwrap_or_default()
            );
            actions.add_note(&state.http, ticket, &body, agent_id).await
        }
        TicketAction::Reopen => retry_once(|| actions.reopen(&state.http, ticket, agent_id)).await,
        TicketAction::Assign => {
            let id = agent_id.unwrap_or_default();
            retry_once(|| actions.assign(&state.http, ticket, id)).await
        }
    };
    match result {
        Ok(()) => Ok((
            name.clone(),
            thread_line(
                action,
                &name,
                ticket,
                actions.as_ref(),
                agent.as_ref().and_then(|a| a.name.as_deref()),
            ),
        )),
        Err(error) => Err((name, error.message)),
    }
}

/// Runs an idempotent call, and once more at once if it failed for a
/// reason that may pass (a 5xx, a timeout, a 429 asking for ≤ 1 s).
async fn retry_once<'a, F>(call: F) -> Result<(), FetchError>
where
    F: Fn() -> crate::sources::BoxFuture<'a, Result<(), FetchError>>,
{
    match call().await {
        Err(e) if e.retryable && e.retry_after.is_none_or(|w| w <= Duration::from_secs(1)) => {
            call().await
        }
        other => other,
    }
}

fn thread_line(
    action: TicketAction,
    name: &str,
    ticket: &str,
    actions: &dyn TicketActions,
    agent: Option<&str>,
) -> String {
    match action {
        TicketAction::Note => format!("{name} added a note to ticket {ticket}"),
        TicketAction::Reopen => format!("{name} reopened ticket {ticket}"),
        TicketAction::Assign => format!(
            "{name} assigned ticket {ticket} to themselves ({} agent {})",
            actions.kind(),
            agent.unwrap_or(name)
        ),
    }
}

/// Records an activity and, when it worked, threads `detail` under every
/// message of the rating; one transaction.
async fn record(
    state: &AppState,
    rating: &StoredRating,
    kind: &str,
    actor_id: &str,
    actor_name: &str,
    ok: bool,
    detail: &str,
) -> StoreResult<()> {
    let now = state.clock.now_ms();
    let mut tx = state.store.begin().await?;
    let id = tx
        .add_activity(&NewActivity {
            rating_id: rating.id,
            kind,
            actor_id,
            actor_name: Some(actor_name),
            status: if ok { "done" } else { "failed" },
            detail: Some(detail),
            at_ms: now,
        })
        .await?;
    let mut threaded = 0;
    if ok {
        threaded = thread(&mut tx, rating.id, id, detail, now).await?;
    }
    tx.commit().await?;
    if threaded > 0 {
        state.alerts_wake.notify_one();
    }
    Ok(())
}

/// Records the outcome of a follow-up with its activity and thread reply.
async fn record_outcome(
    state: &AppState,
    rating: &StoredRating,
    outcome: &str,
    note: Option<&str>,
    person: &Person,
    line: &str,
) -> StoreResult<()> {
    let now = state.clock.now_ms();
    let mut tx = state.store.begin().await?;
    tx.record_outcome(
        rating.id,
        outcome,
        note,
        &person.id,
        Some(&person.name),
        now,
    )
    .await?;
    let id = tx
        .add_activity(&NewActivity {
            rating_id: rating.id,
            kind: "outcome",
            actor_id: &person.id,
            actor_name: Some(&person.name),
            status: "done",
            detail: Some(outcome),
            at_ms: now,
        })
        .await?;
    let threaded = thread(&mut tx, rating.id, id, line, now).await?;
    tx.commit().await?;
    if threaded > 0 {
        state.alerts_wake.notify_one();
    }
    Ok(())
}

/// Enqueues an update of each live post of the rating whose thread reply
/// is `line`; one per activity (`activity:{id}`).
async fn thread(
    tx: &mut crate::store::StoreTx<'_>,
    rating_id: i64,
    activity_id: i64,
    line: &str,
    now: i64,
) -> StoreResult<usize> {
    let mut n = 0;
    for post in tx.live_posts(rating_id).await? {
        let update = NewFollowOn {
            rating_id,
            revision: post.revision,
            channel: post.channel.clone(),
            kind: "update",
            event_key: format!("activity:{activity_id}"),
            parent_id: Some(post.id),
            change: Some(line.to_string()),
            mentions: "[]".to_string(),
            sentiment: post.sentiment.clone(),
            rule: post.rule.clone(),
            created_at_ms: now,
        };
        if tx.enqueue_follow_on(&update).await?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}
