//! The dashboard's pages: handlers and the data their templates show.

use std::str::FromStr as _;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::filters::{FilterQuery, Filters, STATES};
use super::{Viewer, over_tls, safe_next, same_origin};
use crate::domain::Scale;
use crate::http::AppState;
use crate::store::{QueueFilter, QueueRow};

/// Rows the queue page shows; the CSV download has every matching row up
/// to [`CSV_ROWS`].
pub const PAGE_ROWS: i64 = 200;
pub const CSV_ROWS: i64 = 50_000;

/// What every page's frame needs.
pub struct Layout {
    pub title: String,
    /// `overview` or `negatives`: the current tab.
    pub active: &'static str,
    pub viewer: String,
    /// The filter form's values, and the query string for links.
    pub filters: Option<Filters>,
    pub common_query: String,
}

impl Layout {
    pub fn new(
        title: impl Into<String>,
        active: &'static str,
        viewer: &Viewer,
        f: Option<&Filters>,
    ) -> Layout {
        Layout {
            title: title.into(),
            active,
            viewer: viewer.0.clone(),
            common_query: f.map(|f| f.query(true)).unwrap_or_default(),
            filters: f.cloned(),
        }
    }

    pub fn filter_value<'a>(&'a self, name: &str) -> &'a str {
        let Some(f) = &self.filters else { return "" };
        match name {
            "source" => f.source.as_deref(),
            "team" => f.team.as_deref(),
            "agent" => f.agent.as_deref(),
            "survey" => f.survey.as_deref(),
            "state" => f.state.as_deref(),
            _ => None,
        }
        .unwrap_or("")
    }
}

pub fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard template failed to render (a bug: please report it, with this line)");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered\n",
            )
                .into_response()
        }
    }
}

pub fn bad_request(message: String) -> Response {
    render(
        StatusCode::BAD_REQUEST,
        &MessagePage {
            title: "Bad request".into(),
            message,
        },
    )
}

pub fn unavailable_report(e: crate::store::StoreError) -> Response {
    unavailable(e)
}

fn unavailable(e: crate::store::StoreError) -> Response {
    tracing::warn!(error = %e, "the dashboard could not read the database");
    render(
        StatusCode::SERVICE_UNAVAILABLE,
        &MessagePage {
            title: "Database unavailable".into(),
            message: "The database did not answer. Try again in a moment.".into(),
        },
    )
}

#[derive(Template)]
#[template(path = "dashboard/message.html")]
struct MessagePage {
    title: String,
    message: String,
}

/// The page shown when no `[[api.tokens]]` are configured.
pub fn off() -> Response {
    render(StatusCode::NOT_FOUND, &MessagePage {
        title: "The dashboard is off".into(),
        message: "No [[api.tokens]] are configured, so the dashboard and the read API are off. Add a token to the settings (see docs/dashboard.md) and restart.".into(),
    })
}

#[derive(Template)]
#[template(path = "dashboard/login.html")]
struct LoginPage<'a> {
    next: &'a str,
    error: Option<&'a str>,
}

pub fn login_page(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    render(
        status,
        &LoginPage {
            next: &safe_next(Some(next)),
            error,
        },
    )
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_form(State(state): State<AppState>, Query(q): Query<NextQuery>) -> Response {
    if !state.access.enabled() {
        return off();
    }
    login_page(StatusCode::OK, &safe_next(q.next.as_deref()), None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let access = &state.access;
    if !access.enabled() {
        return off();
    }
    let next = safe_next(form.next.as_deref());
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site form posts are refused\n").into_response();
    }
    let Some(name) = access.check_token(form.token.trim()) else {
        tracing::warn!("dashboard sign-in with a token that is not configured");
        return login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That token is not accepted."),
        );
    };
    let cookie = access
        .issue(name, state.clock.now_ms())
        .expect("a token just matched is configured");
    tracing::info!(token = name, "dashboard sign-in");
    (
        [(
            header::SET_COOKIE,
            access.set_cookie(Some(&cookie), over_tls(&headers)),
        )],
        Redirect::to(&next),
    )
        .into_response()
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site form posts are refused\n").into_response();
    }
    (
        [(
            header::SET_COOKIE,
            state.access.set_cookie(None, over_tls(&headers)),
        )],
        Redirect::to("/dashboard/login"),
    )
        .into_response()
}

/// A rating of the queue as the page shows it.
pub struct QueueItem {
    pub id: i64,
    pub state: String,
    pub state_label: &'static str,
    pub rated: String,
    pub age: String,
    pub score: String,
    pub source: String,
    pub agent: String,
    pub team: String,
    pub comment: String,
    pub ticket: Option<String>,
    pub slack: Option<String>,
    pub handled_by: String,
}

impl QueueItem {
    fn new(r: QueueRow, now_ms: i64, tz: &jiff::tz::TimeZone) -> QueueItem {
        let handled_by = match (&r.followed_up_by_name, &r.acked_by_name) {
            (Some(f), _) => format!("followed up by {f}"),
            (None, Some(a)) => format!("acknowledged by {a}"),
            _ => String::new(),
        };
        QueueItem {
            id: r.id,
            state_label: state_label(&r.state),
            rated: fmt_time(r.rated_at, tz),
            age: fmt_age(now_ms - r.rated_at),
            score: score_label(&r.scale, r.score),
            source: r.source,

            agent: r.agent.unwrap_or_default(),
            team: r.team.unwrap_or_default(),
            comment: r.comment.unwrap_or_default(),
            ticket: r.url.filter(|u| is_web_link(u)),
            slack: slack_link(r.slack_channel.as_deref(), r.slack_ts.as_deref()),
            handled_by,
            state: r.state,
        }
    }
}

fn state_label(state: &str) -> &'static str {
    STATES
        .iter()
        .find(|(k, _)| *k == state)
        .map(|(_, l)| *l)
        .unwrap_or("Unknown")
}

#[derive(Template)]
#[template(path = "dashboard/negatives.html")]
struct NegativesPage {
    layout: Layout,
    items: Vec<QueueItem>,
    total: i64,
    period: String,
    score: String,
    states: Vec<(&'static str, &'static str, bool)>,
    csv_href: String,
}

pub async fn negatives(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<FilterQuery>,
) -> Response {
    let now = state.clock.now_ms();
    let tz = state.settings.reports.time_zone();
    let f = match Filters::parse(&q, now, &tz) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let csv = q.format.as_deref() == Some("csv");
    let rows = match state
        .store
        .negatives_queue(&queue_filter(&f, if csv { CSV_ROWS } else { PAGE_ROWS }))
        .await
    {
        Ok(rows) => rows,
        Err(e) => return unavailable(e),
    };
    if csv {
        return super::csv::negatives(&rows, &f, &tz);
    }
    let total = rows.first().map(|r| r.total).unwrap_or(0);
    let page = NegativesPage {
        layout: Layout::new("Negatives", "negatives", &viewer, Some(&f)),
        items: rows
            .into_iter()
            .map(|r| QueueItem::new(r, now, &tz))
            .collect(),
        total,
        period: f.period_text(),
        score: f.score.map(|s| s.to_string()).unwrap_or_default(),
        states: STATES
            .iter()
            .map(|(k, l)| (*k, *l, f.state.as_deref() == Some(*k)))
            .collect(),
        csv_href: format!("/dashboard/negatives?{}&format=csv", f.query(false)),
    };
    render(StatusCode::OK, &page)
}

pub fn queue_filter(f: &Filters, limit: i64) -> QueueFilter {
    QueueFilter {
        since_ms: f.since_ms,
        until_ms: f.until_ms,
        filter: f.rating_filter(),
        state: f.state.clone(),
        limit,
    }
}

/// A version of a rating, for its page.
pub struct VersionItem {
    pub revision: i64,
    pub score: String,
    pub sentiment: String,
    pub comment: String,
    pub updated: String,
    pub recorded: String,
    pub via: String,
}

/// An outbox row of a rating, for its page.
pub struct AlertItem {
    pub kind: &'static str,
    pub channel: String,
    pub state: String,
    pub created: String,
    pub sent: String,
    pub change: String,
    pub slack: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard/rating.html")]
struct RatingPage {
    layout: Layout,
    id: i64,
    source: String,
    conversation: String,
    survey: String,
    score: String,
    sentiment: String,
    comment: String,
    agent: String,
    team: String,
    customer: String,
    company: String,
    brand: String,
    tags: String,
    ticket: Option<String>,
    rated: String,
    acked: String,
    followed_up: String,
    versions: Vec<VersionItem>,
    alerts: Vec<AlertItem>,
}

pub async fn rating(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Response {
    let store = &state.store;
    let tz = state.settings.reports.time_zone();
    let tz = &tz;
    let rating = match store.rating_by_id(id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return render(
                StatusCode::NOT_FOUND,
                &MessagePage {
                    title: "No such rating".into(),
                    message: format!("There is no rating {id}."),
                },
            );
        }
        Err(e) => return unavailable(e),
    };
    let (history, alerts, actions) = match tokio::try_join!(
        store.rating_history(id),
        store.alerts_for_rating(id),
        store.rating_actions(id)
    ) {
        Ok(all) => all,
        Err(e) => return unavailable(e),
    };
    let who = |name: &Option<String>, id: &Option<String>, at: Option<i64>| match at {
        Some(at) => format!(
            "{} at {}",
            name.as_deref().or(id.as_deref()).unwrap_or("someone"),
            fmt_time(at, tz)
        ),
        None => "not yet".to_string(),
    };
    let tags: Vec<String> = serde_json::from_str(&rating.tags).unwrap_or_default();
    let page = RatingPage {
        layout: Layout::new(format!("Rating {id}"), "negatives", &viewer, None),
        id,
        conversation: rating.conversation_id.clone(),
        survey: rating.survey.clone(),
        score: score_label(&rating.scale, rating.score),
        sentiment: rating.sentiment.clone(),
        comment: rating.comment.clone().unwrap_or_default(),
        agent: rating.agent.clone().unwrap_or_default(),
        team: rating.team.clone().unwrap_or_default(),
        customer: rating.customer.clone().unwrap_or_default(),
        company: rating.company.clone().unwrap_or_default(),
        brand: rating.brand.clone().unwrap_or_default(),
        tags: tags.join(", "),
        ticket: rating.url.clone().filter(|u| is_web_link(u)),
        rated: fmt_time(rating.rated_at, tz),
        acked: who(&actions.acked_by_name, &actions.acked_by, actions.acked_at),
        followed_up: who(
            &actions.followed_up_by_name,
            &actions.followed_up_by,
            actions.followed_up_at,
        ),
        versions: history
            .iter()
            .rev()
            .map(|h| VersionItem {
                revision: h.revision,
                score: score_label(&rating.scale, h.score),
                sentiment: h.sentiment.clone(),
                comment: h.comment.clone().unwrap_or_default(),
                updated: fmt_time(h.updated_at, tz),
                recorded: fmt_time(h.recorded_at, tz),
                via: h.via.clone(),
            })
            .collect(),
        alerts: alerts
            .iter()
            .map(|a| AlertItem {
                kind: match a.kind.as_str() {
                    "post" => "Alert",
                    "update" => "Update",
                    "escalation" => "Escalation",
                    "digest" => "Digest",
                    "digest_item" => "Digest item",
                    _ => "Message",
                },
                channel: a.channel.clone(),
                state: a.state.clone(),
                created: fmt_time(a.created_at, tz),
                sent: a.sent_at.map(|t| fmt_time(t, tz)).unwrap_or_default(),
                change: a.change.clone().unwrap_or_default(),
                slack: slack_link(a.slack_channel.as_deref(), a.slack_ts.as_deref()),
            })
            .collect(),
        source: rating.source,
    };
    render(StatusCode::OK, &page)
}

/// `2026-11-30 09:40 CET`: local time in `reports.timezone`, with the
/// zone's abbreviation (or its offset where it has none).
pub fn fmt_time(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            format!(
                "{} {}",
                tz.to_datetime(t).strftime("%Y-%m-%d %H:%M"),
                tz.to_offset_info(t).abbreviation()
            )
        })
        .unwrap_or_default()
}

/// `3 d 4 h`, `5 h 10 min`, `12 min`.
pub fn fmt_age(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min")
    }
}

fn score_label(scale: &str, score: i64) -> String {
    Scale::from_str(scale)
        .map(|s| s.label(score))
        .unwrap_or_else(|_| score.to_string())
}

/// Only http(s) links become `href`s (no `javascript:` from a payload).
fn is_web_link(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// A link that opens the Slack message (Slack resolves the workspace).
fn slack_link(channel: Option<&str>, ts: Option<&str>) -> Option<String> {
    let (channel, ts) = (channel?, ts?);
    let safe = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    (safe(channel) && safe(ts)).then(|| {
        format!(
            "https://slack.com/archives/{channel}/p{}",
            ts.replace('.', "")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_times_read_like_a_person_says_them() {
        assert_eq!(fmt_age(((3 * 24 + 4) * 60 + 5) * 60_000), "3 d 4 h");
        assert_eq!(fmt_age(130 * 60_000), "2 h 10 min");
        assert_eq!(fmt_age(-5), "0 min");
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(fmt_time(1_795_996_800_000, &utc), "2026-11-30 00:00 UTC");
        // Local time in reports.timezone, with its abbreviation.
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(fmt_time(1_795_996_800_000, &berlin), "2026-11-30 01:00 CET");
        assert_eq!(
            fmt_time(1_781_000_000_000, &berlin),
            "2026-06-09 12:13 CEST"
        );
    }

    #[test]
    fn only_web_links_and_well_formed_slack_ids_become_links() {
        assert!(is_web_link("https://acme.zendesk.com/agent/tickets/1"));
        assert!(!is_web_link("javascript:alert(1)"));
        assert_eq!(
            slack_link(Some("C0CSAT"), Some("1700000000.000100")).as_deref(),
            Some("https://slack.com/archives/C0CSAT/p1700000000000100")
        );
        assert_eq!(slack_link(Some("C0\"x"), Some("1.2")), None);
    }
}
