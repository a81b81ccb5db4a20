//! Block Kit for everything that is not the alert itself: the thread reply
//! that says what changed, the escalation reply, a storm's digest message and
//! the one-rating replies in its thread. Pure, like [`super::message`], and
//! held to the same limits and escaping: customer text goes in `plain_text`
//! or is escaped in `verbatim` mrkdwn.

use serde_json::{Value, json};

use super::message::{actor, limits, mention_token, mrkdwn, non_blank, plain, ticket_url, who};
use super::text::{clean_block, clean_inline, fit, fit_escaped};
use crate::sinks::AlertView;

/// The change codes of a button click (see `RatingAction::event_key`).
pub const CHANGE_ACK: &str = "ack";
pub const CHANGE_FOLLOWUP: &str = "followup";

/// The thread reply under an updated message: what changed, and the
/// customer's comment again when it is what changed.
pub fn update_reply(change: &str, alert: &AlertView) -> Value {
    let line = match change {
        CHANGE_ACK => match &alert.acknowledged {
            Some(acted) => format!("👀 {} is on it.", actor(acted)),
            None => "👀 Acknowledged.".to_string(),
        },
        CHANGE_FOLLOWUP => match &alert.followed_up {
            Some(acted) => format!("✅ {} followed up with the customer.", actor(acted)),
            None => "✅ Followed up.".to_string(),
        },
        other => format!(
            "✏️ {}",
            fit_escaped(&clean_inline(other), limits::INLINE_CUT)
        ),
    };
    let mut blocks = vec![json!({ "type": "section", "text": mrkdwn(&line) })];
    if change.contains("Comment")
        && let Some(text) = non_blank(alert.comment.as_deref())
    {
        let quoted = format!("“{}”", fit(&clean_block(text), limits::COMMENT_CUT));
        blocks.push(json!({ "type": "section", "text": plain(&quoted) }));
    }
    json!({ "text": fit(&line, limits::FALLBACK_TEXT), "blocks": blocks })
}

/// The escalation reply: mentions the target, says how long nobody acted.
pub fn escalation_reply(alert: &AlertView, waited: &str) -> Value {
    let mentions: Vec<String> = alert
        .mentions
        .iter()
        .map(|m| mention_token(m.trim()))
        .take(20)
        .collect();
    let to = if mentions.is_empty() {
        String::new()
    } else {
        format!("{} ", mentions.join(" "))
    };
    let line = format!(
        "⏰ {to}nobody has acknowledged this for {}. Press *I'm on it* when you take it.",
        fit_escaped(waited, limits::NAME_CUT)
    );
    json!({
        "text": fit(&line, limits::FALLBACK_TEXT),
        "blocks": [{ "type": "section", "text": mrkdwn(&fit(&line, limits::SECTION_TEXT)) }],
    })
}

/// One message for a storm: how many, the worst few with links, and a
/// pointer to the thread where every one is listed.
pub fn digest(members: &[AlertView], mentions: &[String]) -> Value {
    let count = members.len();
    let header = format!("🌩️ {count} unhappy customers in a few minutes");
    let worst: Vec<String> = members.iter().take(5).map(one_line).collect();
    let mention_text: Vec<String> = mentions.iter().map(|m| mention_token(m.trim())).collect();
    let mut blocks = vec![
        json!({ "type": "header", "text": plain(&fit(&header, limits::HEADER_TEXT)) }),
        json!({ "type": "section", "text": mrkdwn(&fit(
            &format!("*Worst scores*\n{}", worst.join("\n")),
            limits::SECTION_TEXT,
        )) }),
    ];
    if !mention_text.is_empty() {
        blocks.push(json!({ "type": "section", "text": mrkdwn(&fit(&mention_text.join(" "), limits::SECTION_TEXT)) }));
    }
    blocks.push(json!({ "type": "context", "elements": [mrkdwn(&format!(
        "csatwatch · storm control: {count} alerts for this channel arrived together, so they are listed in this thread instead of posted one by one"
    ))] }));
    let prefix = if mention_text.is_empty() {
        String::new()
    } else {
        format!("{} ", mention_text.join(" "))
    };
    json!({
        "text": fit(&format!("{prefix}{count} negative ratings arrived together; each is listed in the thread"), limits::FALLBACK_TEXT),
        "blocks": blocks,
    })
}

/// One rating of a digest, as a thread reply.
pub fn digest_item(alert: &AlertView) -> Value {
    let mut blocks = vec![json!({ "type": "section", "text": mrkdwn(&one_line(alert)) })];
    if let Some(text) = non_blank(alert.comment.as_deref()) {
        let quoted = format!("“{}”", fit(&clean_block(text), limits::COMMENT_CUT));
        blocks.push(json!({ "type": "section", "text": plain(&quoted) }));
    }
    json!({
        "text": fit(&fit_escaped(&format!("{} from {} on ticket {}", alert.score.label(), who(alert), clean_inline(&alert.conversation_id)), limits::FALLBACK_TEXT - 1), limits::FALLBACK_TEXT),
        "blocks": blocks,
    })
}

/// "*Bad* · Jane Doe (Acme) · ticket 123 · <url|Open>", escaped.
fn one_line(alert: &AlertView) -> String {
    let label = fit_escaped(&clean_inline(&alert.score.label()), limits::NAME_CUT);
    let person = fit_escaped(&who(alert), 2 * limits::NAME_CUT);
    let ticket = fit_escaped(&clean_inline(&alert.conversation_id), limits::NAME_CUT);
    let link = ticket_url(alert.url.as_deref())
        // `|` and `>` cannot appear in a parsed URL's serialisation unescaped
        // except `|`, which ends the link target; drop such links.
        .filter(|u| !u.contains('|') && !u.contains('>'))
        .map(|u| format!(" · <{u}|Open>"))
        .unwrap_or_default();
    format!("*{label}* · {person} · ticket {ticket}{link}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Scale, Score, Sentiment};
    use crate::sinks::Acted;
    use crate::sinks::slack::message::tests::{
        assert_within_limits, full_alert, hostile_alert, mrkdwn_texts, without_date_tokens,
    };
    use crate::sinks::slack::message::{Buttons, render};

    fn jane(at_ms: i64) -> Acted {
        Acted {
            user_id: "U0JANE".into(),
            user_name: Some("jane.lead".into()),
            at_ms,
        }
    }

    /// Every state an alert's message and its thread go through, for `base`.
    fn states(base: &AlertView) -> Vec<(&'static str, Value)> {
        let acked = AlertView {
            acknowledged: Some(jane(base.rated_at_ms + 120_000)),
            ..base.clone()
        };
        let followed = AlertView {
            followed_up: Some(jane(base.rated_at_ms + 900_000)),
            ..acked.clone()
        };
        let recovered = AlertView {
            score: Score::new(Scale::Binary, 1).unwrap(),
            sentiment: Sentiment::Positive,
            recovered: true,
            ..base.clone()
        };
        let escalated = AlertView {
            mentions: vec!["S0ONCALL".into(), "@here".into()],
            ..base.clone()
        };
        let message = |a: &AlertView| render(a, Buttons::AckAndFollowUp);
        vec![
            ("new", json!({ "message": message(base) })),
            (
                "comment_added",
                json!({ "message": message(base), "thread_reply": update_reply("Comment added", base) }),
            ),
            (
                "recovered",
                json!({ "message": message(&recovered), "thread_reply": update_reply("Recovered: now Good (was Bad)", &recovered) }),
            ),
            (
                "acknowledged",
                json!({ "message": message(&acked), "thread_reply": update_reply(CHANGE_ACK, &acked) }),
            ),
            (
                "followed_up",
                json!({ "message": message(&followed), "thread_reply": update_reply(CHANGE_FOLLOWUP, &followed) }),
            ),
            (
                "escalated",
                json!({ "thread_reply": escalation_reply(&escalated, "30m") }),
            ),
            (
                "digest",
                json!({
                    "message": digest(&[base.clone(), recovered.clone(), base.clone()], &["@here".into()]),
                    "thread_reply": digest_item(base),
                }),
            ),
        ]
    }

    #[test]
    fn every_alert_state_renders_as_its_snapshot() {
        for (name, rendered) in states(&full_alert()) {
            for part in ["message", "thread_reply"] {
                if let Some(m) = rendered.get(part) {
                    assert_within_limits(m);
                }
            }
            insta::assert_json_snapshot!(format!("state_{name}"), rendered);
        }
    }

    #[test]
    fn hostile_input_stays_within_limits_and_cannot_mention_in_every_state() {
        let mut base = hostile_alert();
        base.mentions.clear();
        let mut states = states(&base);
        // A click whose user id is not an id shows the (escaped) name.
        let odd = AlertView {
            acknowledged: Some(Acted {
                user_id: "<!channel>".into(),
                user_name: Some("<!here> <https://evil.example|x>".into()),
                at_ms: 0,
            }),
            ..base.clone()
        };
        states.push((
            "odd_actor",
            json!({ "message": render(&odd, Buttons::AckAndFollowUp), "thread_reply": update_reply(CHANGE_ACK, &odd) }),
        ));
        states.push((
            "odd_change",
            json!({ "thread_reply": update_reply("<!channel> Comment changed", &base) }),
        ));
        for (name, rendered) in states {
            for part in ["message", "thread_reply"] {
                let Some(m) = rendered.get(part) else {
                    continue;
                };
                assert_within_limits(m);
                for text in mrkdwn_texts(m) {
                    let text = without_date_tokens(&text);
                    // Our own markup only: the escalation target, the clicking user.
                    let text = text
                        .replace("<!subteam^S0ONCALL>", "")
                        .replace("<!here>", "")
                        .replace("<@U0JANE>", "");
                    assert!(!text.contains('<'), "{name}/{part}: markup in {text:.200}");
                }
            }
        }
    }
}
