//! Block Kit rendering of one [`AlertView`], laid out for a phone screen:
//! who is unhappy (header), the facts (two-column fields), the customer's own
//! words, who is asked to look, buttons, and a grey line of provenance.
//!
//! Everything here is pure: no I/O, no logging. [`super::client`] adds the
//! channel and sends the result.
//!
//! Customer and helpdesk text is untrusted. Where it can go into a
//! `plain_text` object (header, comment) it does, so it cannot mention or
//! link. Where it must sit in `mrkdwn` (fields, context, fallback text) it is
//! escaped and the text object is `verbatim`, so Slack does not auto-link
//! bare URLs or `#channel` names either. Every Block Kit limit is enforced
//! here, whatever the input, because one over-long field makes Slack refuse
//! the whole alert (`invalid_blocks`).

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::text::{clean_block, clean_inline, fit, fit_escaped};
use crate::domain::{Sentiment, SurveyKind};
use crate::sinks::AlertView;

/// Slack's Block Kit limits, in characters (Unicode scalar values, as
/// Slack's SDKs count them), plus a few caps of our own for readability.
pub mod limits {
    /// `header` text (plain_text only).
    pub const HEADER_TEXT: usize = 150;
    /// `section` text, and any single text object.
    pub const SECTION_TEXT: usize = 3000;
    /// Where a customer's comment is cut. Below [`SECTION_TEXT`] because
    /// whether Slack counts an emoji as one character or two (UTF-16) is
    /// unconfirmed.
    pub const COMMENT_CUT: usize = 2900;
    /// One item of `section.fields`.
    pub const FIELD_TEXT: usize = 2000;
    /// Items in `section.fields`.
    pub const FIELDS: usize = 10;
    /// Button label, `url` and `value`.
    pub const BUTTON_TEXT: usize = 75;
    pub const BUTTON_URL: usize = 3000;
    pub const BUTTON_VALUE: usize = 2000;
    /// `block_id` and `action_id`.
    pub const ID: usize = 255;
    /// Blocks in one message.
    pub const BLOCKS: usize = 50;
    /// Elements of a `context` block, and of an `actions` block.
    pub const CONTEXT_ELEMENTS: usize = 10;
    pub const ACTIONS_ELEMENTS: usize = 25;
    /// Top-level `text`: Slack truncates at 40,000 but advises under 4,000.
    pub const FALLBACK_TEXT: usize = 4000;
    /// Ours: a name in the header, so the rating itself stays visible.
    pub const NAME_CUT: usize = 80;
    /// Ours: one-line values (agent, team, tags) stay readable on a phone.
    pub const INLINE_CUT: usize = 300;
}

/// `action_id`s the interactions handler matches on.
pub const ACK_ACTION_ID: &str = "csat_ack";
pub const FOLLOWUP_ACTION_ID: &str = "csat_followup";
pub const OPEN_TICKET_ACTION_ID: &str = "csat_open_ticket";
/// The helpdesk actions: "Add note" (opens a modal), "Reopen", "Assign to me".
pub const NOTE_ACTION_ID: &str = "csat_note";
pub const REOPEN_ACTION_ID: &str = "csat_reopen";
pub const ASSIGN_ACTION_ID: &str = "csat_assign";

/// Which buttons to render. "I'm on it" and "Followed up" only work when the
/// click can update the message, which needs a bot token and interactivity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buttons {
    /// Bot-token mode: "Open ticket" (if any), "I'm on it", "Followed up".
    AckAndFollowUp,
    /// Webhook mode: only "Open ticket".
    LinkOnly,
}

/// The message body, `{"text": …, "blocks": […]}`, without a channel.
pub fn render(alert: &AlertView, buttons: Buttons) -> Value {
    let mut blocks = vec![header(alert)];
    blocks.extend(state(alert));
    blocks.push(facts(alert));
    blocks.extend(story(alert));
    blocks.push(comment(alert));
    blocks.extend(mentions(alert));
    blocks.extend(actions(alert, buttons));
    blocks.push(context(alert));
    blocks.truncate(limits::BLOCKS);
    json!({ "text": fallback_text(alert), "blocks": blocks })
}

fn header(alert: &AlertView) -> Value {
    let emoji = match alert.sentiment {
        Sentiment::Negative => "😞",
        Sentiment::Neutral => "😐",
        Sentiment::Positive => "🙂",
    };
    let label = fit(&clean_inline(&alert.score.label()), limits::NAME_CUT);
    let what = match alert.score.survey() {
        SurveyKind::Csat => format!("{label} rating"),
        SurveyKind::Nps => format!("NPS {label}"),
        SurveyKind::Ces => format!("CES {label}"),
    };
    let text = format!("{}{emoji} {what} from {}", test_prefix(alert), who(alert));
    json!({ "type": "header", "text": plain(&fit(&text, limits::HEADER_TEXT)) })
}

/// What happened since the alert was raised, one line each: recovered,
/// acknowledged, followed up. `None` for a fresh alert.
fn state(alert: &AlertView) -> Option<Value> {
    let mut lines = Vec::new();
    if alert.recovered {
        let label = fit_escaped(&clean_inline(&alert.score.label()), limits::NAME_CUT);
        lines.push(mrkdwn(&format!("🙂 *Recovered:* now {label}")));
    }
    if let Some(acted) = &alert.acknowledged {
        lines.push(mrkdwn(&format!(
            "👀 *Acknowledged* by {} at {}",
            actor(acted),
            slack_date(acted.at_ms)
        )));
    }
    if let Some(acted) = &alert.followed_up {
        lines.push(mrkdwn(&format!(
            "✅ *Followed up* by {} at {}",
            actor(acted),
            slack_date(acted.at_ms)
        )));
    }
    if let Some(label) = alert
        .outcome
        .as_deref()
        .and_then(super::modals::outcome_label)
    {
        lines.push(mrkdwn(&format!("📋 *Outcome:* {label}")));
    }
    (!lines.is_empty()).then(|| json!({ "type": "context", "elements": lines }))
}

/// A Slack user as a mention when the id is well-formed, else their name as
/// escaped text (both came in a signed request, but stay defensive).
pub(crate) fn actor(acted: &crate::sinks::Acted) -> String {
    let id = acted.user_id.trim();
    if id.starts_with(['U', 'W']) && is_slack_id(id) {
        format!("<@{id}>")
    } else {
        let name = non_blank(acted.user_name.as_deref()).unwrap_or("someone");
        fit_escaped(&clean_inline(name), limits::NAME_CUT)
    }
}

/// `U0123ABC`-shaped: 2 to 32 upper-case letters and digits.
fn is_slack_id(id: &str) -> bool {
    (2..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// "Jane Doe (Acme)", "a customer at Acme", or "a customer": plain text.
pub(crate) fn who(alert: &AlertView) -> String {
    let name =
        non_blank(alert.customer.as_deref()).map(|s| fit(&clean_inline(s), limits::NAME_CUT));
    let company =
        non_blank(alert.company.as_deref()).map(|s| fit(&clean_inline(s), limits::NAME_CUT));
    match (name, company) {
        (Some(name), Some(company)) => format!("{name} ({company})"),
        (Some(name), None) => name,
        (None, Some(company)) => format!("a customer at {company}"),
        (None, None) => "a customer".to_string(),
    }
}

fn facts(alert: &AlertView) -> Value {
    let score = match alert.score.survey() {
        SurveyKind::Csat => alert.score.label(),
        kind => format!("{} ({})", alert.score.label(), kind.as_str().to_uppercase()),
    };
    let helpdesk = format!("{} ({})", alert.source, alert.source_kind);
    let tags = alert.tags.join(", ");
    let mut fields = vec![field("Score", &score)];
    for (title, value) in [
        ("Agent", alert.agent.as_deref()),
        ("Team", alert.team.as_deref()),
        ("Brand", alert.brand.as_deref()),
    ] {
        if let Some(value) = non_blank(value) {
            fields.push(field(title, value));
        }
    }
    fields.push(field("Helpdesk", &helpdesk));
    fields.push(mrkdwn(&format!(
        "*Rated*\n{}",
        slack_date(alert.rated_at_ms)
    )));
    fields.push(field("Ticket", &alert.conversation_id));
    if !tags.trim().is_empty() {
        fields.push(field("Tags", &tags));
    }
    fields.truncate(limits::FIELDS);
    json!({ "type": "section", "fields": fields })
}

/// A `*Title*\nvalue` field: the value is helpdesk text, so escaped and cut.
fn field(title: &str, value: &str) -> Value {
    let budget = limits::INLINE_CUT.min(limits::FIELD_TEXT - title.chars().count() - 3);
    mrkdwn(&format!(
        "*{title}*\n{}",
        fit_escaped(&clean_inline(value), budget)
    ))
}

/// Slack shows the date in the reader's own time zone; the fallback is UTC.
pub(crate) fn slack_date(rated_at_ms: i64) -> String {
    let secs = rated_at_ms.div_euclid(1000);
    match OffsetDateTime::from_unix_timestamp(secs).map(|t| t.format(&Rfc3339)) {
        Ok(Ok(utc)) => format!("<!date^{secs}^{{date_short_pretty}} {{time}}|{utc}>"),
        _ => "unknown".to_string(),
    }
}

/// The customer's story: "🔁 3rd negative in 90 days · before: Bad
/// (date), Good (date)". `None` for a first rating.
fn story(alert: &AlertView) -> Option<Value> {
    let story = alert.story.as_ref()?;
    if story.recent.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if story.negatives >= 2 {
        parts.push(format!(
            "🔁 *{} negative in {} days*",
            ordinal(story.negatives),
            story.window_days
        ));
    }
    let recent: Vec<String> = story
        .recent
        .iter()
        .take(3)
        .map(|(label, negative, at_ms)| {
            let label = fit_escaped(&clean_inline(label), limits::NAME_CUT);
            let mark = if *negative { "👎 " } else { "" };
            format!("{mark}{label} {}", slack_date(*at_ms))
        })
        .collect();
    parts.push(format!(
        "Earlier ratings from this customer: {}",
        recent.join(", ")
    ));
    let text = fit(&parts.join(" · "), limits::SECTION_TEXT);
    Some(json!({ "type": "context", "elements": [mrkdwn(&text)] }))
}

/// 1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, 21st.
pub(crate) fn ordinal(n: i64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The customer's words, in plain_text so they cannot mention anyone.
fn comment(alert: &AlertView) -> Value {
    match non_blank(alert.comment.as_deref()) {
        Some(text) => {
            let quoted = format!("“{}”", fit(&clean_block(text), limits::COMMENT_CUT));
            json!({ "type": "section", "text": plain(&quoted) })
        }
        None => json!({
            "type": "context",
            "elements": [mrkdwn("_No comment left._")],
        }),
    }
}

/// `@here`, `@channel`, user (`U…`, `W…`) and user-group (`S…`) ids become
/// real mentions; anything else is shown as escaped text.
fn mentions(alert: &AlertView) -> Option<Value> {
    let mut text = String::new();
    for mention in &alert.mentions {
        let token = mention_token(mention.trim());
        // Whole tokens only: half a `<!subteam^…>` would be broken markup.
        if text.chars().count() + token.chars().count() + 1 > limits::SECTION_TEXT {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&token);
    }
    (!text.is_empty()).then(|| json!({ "type": "section", "text": mrkdwn(&text) }))
}

pub(crate) fn mention_token(mention: &str) -> String {
    let is_id = is_slack_id;
    match mention {
        "@here" => "<!here>".to_string(),
        "@channel" => "<!channel>".to_string(),
        id if is_id(id) && (id.starts_with('U') || id.starts_with('W')) => format!("<@{id}>"),
        id if is_id(id) && id.starts_with('S') => format!("<!subteam^{id}>"),
        other => fit_escaped(&clean_inline(other), limits::NAME_CUT),
    }
}

fn actions(alert: &AlertView, buttons: Buttons) -> Option<Value> {
    let mut elements = Vec::new();
    if let Some(url) = ticket_url(alert.url.as_deref()) {
        elements.push(json!({
            "type": "button",
            "action_id": OPEN_TICKET_ACTION_ID,
            "text": plain("Open ticket"),
            "url": url,
        }));
    }
    // A button whose step is done goes: "I'm on it" once someone is, both
    // once someone followed up.
    if buttons == Buttons::AckAndFollowUp && alert.followed_up.is_none() {
        let value = fit(&alert.alert_id.to_string(), limits::BUTTON_VALUE);
        if alert.acknowledged.is_none() {
            elements.push(json!({
                "type": "button",
                "action_id": ACK_ACTION_ID,
                "text": plain("I'm on it"),
                "style": "primary",
                "value": value,
            }));
        }
        elements.push(json!({
            "type": "button",
            "action_id": FOLLOWUP_ACTION_ID,
            "text": plain("Followed up"),
            "value": value,
        }));
    }
    if buttons == Buttons::AckAndFollowUp {
        let value = fit(&alert.alert_id.to_string(), limits::BUTTON_VALUE);
        for (action, id, label) in [
            ("note", NOTE_ACTION_ID, "Add note"),
            ("reopen", REOPEN_ACTION_ID, "Reopen"),
            ("assign", ASSIGN_ACTION_ID, "Assign to me"),
        ] {
            if alert.ticket_actions.iter().any(|a| a == action) {
                elements.push(json!({
                    "type": "button",
                    "action_id": id,
                    "text": plain(label),
                    "value": value,
                }));
            }
        }
    }
    elements.truncate(limits::ACTIONS_ELEMENTS);
    let block_id = fit(&format!("csat_alert_{}", alert.alert_id), limits::ID);
    (!elements.is_empty())
        .then(|| json!({ "type": "actions", "block_id": block_id, "elements": elements }))
}

/// The link for "Open ticket", if it is an absolute http(s) URL within
/// Slack's limit; anything else (a `javascript:` URL, a relative path) is dropped.
pub(crate) fn ticket_url(url: Option<&str>) -> Option<String> {
    let parsed = reqwest::Url::parse(non_blank(url)?.trim()).ok()?;
    let ok = matches!(parsed.scheme(), "http" | "https")
        && parsed.host().is_some()
        && parsed.as_str().chars().count() <= limits::BUTTON_URL;
    ok.then(|| parsed.to_string())
}

fn context(alert: &AlertView) -> Value {
    let rule = non_blank(alert.rule.as_deref()).unwrap_or("default");
    let text = format!(
        "csatwatch · source {} · rule {} · alert #{}",
        fit_escaped(&clean_inline(&alert.source), limits::NAME_CUT),
        fit_escaped(&clean_inline(rule), limits::NAME_CUT),
        alert.alert_id,
    );
    json!({ "type": "context", "elements": [mrkdwn(&text)] })
}

/// The notification and screen-reader text: "Negative CSAT (Bad) from Jane
/// Doe on ticket 123", after the mentions so they notify.
fn fallback_text(alert: &AlertView) -> String {
    let mut prefix = String::new();
    if let Some(Value::String(m)) = mentions(alert)
        .as_ref()
        .and_then(|b| b.pointer("/text/text"))
    {
        prefix = format!("{m} ");
    }
    let who = non_blank(alert.customer.as_deref()).unwrap_or("a customer");
    let sentiment = match alert.sentiment {
        Sentiment::Negative => "Negative",
        Sentiment::Neutral => "Neutral",
        Sentiment::Positive => "Positive",
    };
    let body = format!(
        "{sentiment} {} ({}) from {} on ticket {}",
        alert.score.survey().as_str().to_uppercase(),
        alert.score.label(),
        clean_inline(&fit(who, limits::NAME_CUT)),
        clean_inline(&fit(&alert.conversation_id, limits::NAME_CUT)),
    );
    let budget = limits::FALLBACK_TEXT - prefix.chars().count() - test_prefix(alert).len();
    format!(
        "{}{prefix}{}",
        test_prefix(alert),
        fit_escaped(&body, budget)
    )
}

fn test_prefix(alert: &AlertView) -> &'static str {
    if alert.test { "[TEST] " } else { "" }
}

pub(crate) fn plain(text: &str) -> Value {
    json!({ "type": "plain_text", "text": text, "emoji": true })
}

/// `verbatim` stops Slack auto-linking URLs and `#channel` names in the
/// escaped helpdesk text; our own `<!date^…>` and mention markup still work.
pub(crate) fn mrkdwn(text: &str) -> Value {
    json!({ "type": "mrkdwn", "text": text, "verbatim": true })
}

pub(crate) fn non_blank(text: Option<&str>) -> Option<&str> {
    text.filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{Scale, Score};

    /// A realistic negative CSAT alert, shared with the client tests.
    pub(crate) fn full_alert() -> AlertView {
        AlertView {
            alert_id: 42,
            source: "zendesk".to_string(),
            source_kind: "zendesk".to_string(),
            conversation_id: "123".to_string(),
            rating_key: String::new(),
            score: Score::new(Scale::Binary, 0).unwrap(),
            sentiment: Sentiment::Negative,
            comment: Some("Waited three days & nobody <b>answered</b>.\nVery disappointed.".into()),
            agent: Some("Sam Agent".to_string()),
            team: Some("Billing".to_string()),
            customer: Some("Jane Doe".to_string()),
            company: Some("Acme Corp".to_string()),
            brand: None,
            tags: vec!["refund".to_string(), "vip".to_string()],
            url: Some("https://acme.zendesk.com/agent/tickets/123".to_string()),
            rated_at_ms: 1_772_360_100_000,
            channel: "#csat-alerts".to_string(),
            mentions: vec!["@here".to_string(), "S0BILLING".to_string()],
            rule: Some("billing".to_string()),
            test: false,
            acknowledged: None,
            followed_up: None,
            recovered: false,
            ticket_actions: Vec::new(),
            outcome: None,
            story: None,
        }
    }

    fn nps_detractor() -> AlertView {
        AlertView {
            source: "intercom-eu".to_string(),
            source_kind: "intercom".to_string(),
            conversation_id: "215468723".to_string(),
            score: Score::new(Scale::Nps, 3).unwrap(),
            comment: None,
            agent: None,
            team: None,
            customer: None,
            company: Some("Globex".to_string()),
            tags: Vec::new(),
            url: None,
            mentions: Vec::new(),
            rule: None,
            ..full_alert()
        }
    }

    /// Checks every Block Kit limit on a rendered message, walking all blocks.
    pub(crate) fn assert_within_limits(message: &Value) {
        let chars = |v: &Value| v.as_str().expect("a string").chars().count();
        let text = &message["text"];
        assert!(chars(text) <= limits::FALLBACK_TEXT, "text too long");
        let blocks = message["blocks"].as_array().expect("blocks");
        assert!(blocks.len() <= limits::BLOCKS);
        for block in blocks {
            if let Some(id) = block.get("block_id") {
                assert!(chars(id) <= limits::ID);
            }
            match block["type"].as_str().unwrap() {
                "header" => {
                    assert_eq!(block["text"]["type"], "plain_text");
                    assert!(chars(&block["text"]["text"]) <= limits::HEADER_TEXT);
                }
                "section" => {
                    if let Some(t) = block.get("text") {
                        assert!(chars(&t["text"]) <= limits::SECTION_TEXT);
                    }
                    if let Some(fields) = block.get("fields") {
                        let fields = fields.as_array().unwrap();
                        assert!(fields.len() <= limits::FIELDS);
                        for f in fields {
                            assert!(chars(&f["text"]) <= limits::FIELD_TEXT);
                        }
                    }
                }
                "context" => {
                    let elements = block["elements"].as_array().unwrap();
                    assert!(elements.len() <= limits::CONTEXT_ELEMENTS);
                    for e in elements {
                        assert!(chars(&e["text"]) <= limits::SECTION_TEXT);
                    }
                }
                "actions" => {
                    let elements = block["elements"].as_array().unwrap();
                    assert!(elements.len() <= limits::ACTIONS_ELEMENTS);
                    for b in elements {
                        assert!(chars(&b["text"]["text"]) <= limits::BUTTON_TEXT);
                        assert!(chars(&b["action_id"]) <= limits::ID);
                        if let Some(url) = b.get("url") {
                            assert!(chars(url) <= limits::BUTTON_URL);
                        }
                        if let Some(value) = b.get("value") {
                            assert!(chars(value) <= limits::BUTTON_VALUE);
                        }
                    }
                }
                other => panic!("unexpected block type {other}"),
            }
        }
    }

    /// Every mrkdwn string in the message: the fallback text and each mrkdwn text object.
    pub(crate) fn mrkdwn_texts(message: &Value) -> Vec<String> {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(map) => {
                    if map.get("type") == Some(&json!("mrkdwn")) {
                        out.push(map["text"].as_str().unwrap().to_string());
                    }
                    map.values().for_each(|v| walk(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = vec![message["text"].as_str().unwrap().to_string()];
        walk(&message["blocks"], &mut out);
        out
    }

    /// `text` without our own `<!date^…|…>` tokens, which are the only markup expected.
    pub(crate) fn without_date_tokens(text: &str) -> String {
        let mut rest = text;
        let mut out = String::new();
        while let Some(start) = rest.find("<!date^") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('>').expect("closed date token");
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn a_full_negative_csat_alert_renders_for_a_bot() {
        let message = render(&full_alert(), Buttons::AckAndFollowUp);
        assert_within_limits(&message);
        insta::assert_json_snapshot!(message);
    }

    #[test]
    fn an_nps_detractor_without_comment_or_url_renders() {
        let message = render(&nps_detractor(), Buttons::AckAndFollowUp);
        assert_within_limits(&message);
        insta::assert_json_snapshot!(message);
    }

    #[test]
    fn a_test_alert_in_webhook_mode_has_no_ack_buttons() {
        let alert = AlertView {
            test: true,
            ..full_alert()
        };
        let message = render(&alert, Buttons::LinkOnly);
        assert_within_limits(&message);
        let dump = message.to_string();
        assert!(!dump.contains(ACK_ACTION_ID) && !dump.contains(FOLLOWUP_ACTION_ID));
        assert!(message["text"].as_str().unwrap().starts_with("[TEST] "));
        insta::assert_json_snapshot!(message);
    }

    /// Every field hostile: mentions, links, bidi overrides, far too long.
    pub(crate) fn hostile_alert() -> AlertView {
        let evil = "<!channel> <@U123> <https://evil.example|x> &lt; \u{202E}evil\u{202C} ";
        let comment = format!("{evil}{}", "😡e\u{301}".repeat(2_500));
        assert!(comment.chars().count() > 5_000);
        AlertView {
            comment: Some(comment),
            customer: Some(format!("{evil}{}", "N".repeat(300))),
            company: Some(evil.repeat(10)),
            agent: Some(evil.repeat(100)),
            team: Some(evil.to_string()),
            brand: Some(evil.to_string()),
            conversation_id: evil.repeat(50),
            source_kind: evil.to_string(),
            tags: (0..200).map(|i| format!("{evil}tag{i}")).collect(),
            url: Some(format!("https://evil.example/{}", "a".repeat(3_000))),
            mentions: vec![
                "<!channel>".to_string(),
                "<@U999>".to_string(),
                "U1>|<!here".to_string(),
            ],
            rule: Some(evil.repeat(20)),
            ..full_alert()
        }
    }

    #[test]
    fn hostile_input_stays_within_every_limit_and_cannot_mention_or_link() {
        let alert = hostile_alert();
        let message = render(&alert, Buttons::AckAndFollowUp);
        assert_within_limits(&message);
        for text in mrkdwn_texts(&message) {
            let text = without_date_tokens(&text);
            for markup in ["<!", "<@", "<http", "<"] {
                assert!(
                    !text.contains(markup),
                    "unescaped {markup:?} in {text:.200}"
                );
            }
            assert!(!text.contains('\u{202E}'), "bidi override in mrkdwn");
        }
        assert!(message["text"].as_str().unwrap().contains("&amp;lt;"));
        let comment = message["blocks"][2]["text"]["text"].as_str().unwrap();
        assert!(comment.chars().count() <= limits::COMMENT_CUT + 2 && comment.ends_with("…”"));
        assert!(
            message["blocks"][4]["elements"][0]["url"].is_null(),
            "over-long url kept"
        );
        assert!(serde_json::to_vec(&message).unwrap().len() < 16 * 1024);
    }

    #[test]
    fn mentions_become_slack_markup_and_unknown_ones_text() {
        assert_eq!(mention_token("@here"), "<!here>");
        assert_eq!(mention_token("@channel"), "<!channel>");
        assert_eq!(mention_token("U0123ABC"), "<@U0123ABC>");
        assert_eq!(mention_token("W0123ABC"), "<@W0123ABC>");
        assert_eq!(mention_token("S0123ABC"), "<!subteam^S0123ABC>");
        assert_eq!(mention_token("@everyone<"), "@everyone&lt;");
        assert_eq!(mention_token("U12 3"), "U12 3");
    }

    #[test]
    fn only_http_ticket_urls_become_buttons() {
        assert!(ticket_url(Some("javascript:alert(1)")).is_none());
        assert!(ticket_url(Some("/agent/tickets/1")).is_none());
        assert!(ticket_url(Some("ftp://x.example/1")).is_none());
        assert_eq!(
            ticket_url(Some(" https://x.example/t/1 ")).as_deref(),
            Some("https://x.example/t/1")
        );
    }

    #[test]
    fn a_repeat_detractor_with_helpdesk_actions_and_an_outcome_renders() {
        let alert = AlertView {
            ticket_actions: vec!["note".into(), "reopen".into(), "assign".into()],
            outcome: Some("reached_customer".into()),
            followed_up: Some(crate::sinks::Acted {
                user_id: "U0DANA".into(),
                user_name: Some("dana".into()),
                at_ms: 1_772_361_000_000,
            }),
            story: Some(crate::sinks::CustomerStory {
                negatives: 3,
                window_days: 90,
                recent: vec![
                    ("Bad".into(), true, 1_771_000_000_000),
                    ("Good".into(), false, 1_770_000_000_000),
                    ("<!channel>".into(), true, 1_769_000_000_000),
                ],
            }),
            mentions: Vec::new(),
            ..full_alert()
        };
        let message = render(&alert, Buttons::AckAndFollowUp);
        assert_within_limits(&message);
        let text = message.to_string();
        assert!(text.contains("3rd negative in 90 days"), "{text}");
        assert!(text.contains("Outcome:* Reached the customer"), "{text}");
        for id in [NOTE_ACTION_ID, REOPEN_ACTION_ID, ASSIGN_ACTION_ID] {
            assert!(text.contains(id), "{id}");
        }
        for t in mrkdwn_texts(&message) {
            let t = without_date_tokens(&t).replace("<@U0DANA>", "");
            assert!(!t.contains('<'), "markup in {t}");
        }
        insta::assert_json_snapshot!(message);
        // Webhook mode: no helpdesk buttons either.
        let plain = render(&alert, Buttons::LinkOnly).to_string();
        assert!(!plain.contains(NOTE_ACTION_ID));
        assert_eq!(ordinal(1), "1st");
        assert_eq!(ordinal(2), "2nd");
        assert_eq!(ordinal(11), "11th");
        assert_eq!(ordinal(23), "23rd");
    }
}
