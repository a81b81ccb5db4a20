//! The modals an alert opens (Block Kit views, pure like [`super::message`]):
//! "Add note" (an internal note for the ticket) and "Followed up" (what
//! happened, with an optional note). Each carries the alert id in
//! `private_metadata`, so its `view_submission` names the alert again; the
//! inputs have fixed `block_id`/`action_id` so the submission can be read.

use serde_json::{Value, json};

use super::message::{limits, plain};
use super::text::{clean_inline, fit};

/// `callback_id`s of our modals.
pub const NOTE_CALLBACK: &str = "csat_note_modal";
pub const OUTCOME_CALLBACK: &str = "csat_outcome_modal";

/// Input blocks and their elements.
pub const NOTE_BLOCK: &str = "note";
pub const OUTCOME_BLOCK: &str = "outcome";
const INPUT_ACTION: &str = "value";

/// Longest note accepted (Slack's plain_text_input allows 3000).
pub const NOTE_MAX: usize = 3000;

/// The outcomes of a follow-up, as stored and as shown.
pub const OUTCOMES: &[(&str, &str)] = &[
    ("reached_customer", "Reached the customer"),
    ("resolved", "Resolved"),
    ("compensated", "Compensated"),
    ("no_reply", "No reply"),
    ("not_actionable", "Not actionable"),
];

/// The label of a stored outcome (`None` for an unknown code).
pub fn outcome_label(code: &str) -> Option<&'static str> {
    OUTCOMES.iter().find(|(c, _)| *c == code).map(|(_, l)| *l)
}

fn metadata(alert_id: i64) -> String {
    json!({ "alert": alert_id }).to_string()
}

/// The alert id in a view's `private_metadata`.
pub fn alert_of(view: &Value) -> Option<i64> {
    let meta: Value = serde_json::from_str(view["private_metadata"].as_str()?).ok()?;
    meta["alert"].as_i64()
}

/// "Add a note to ticket 4242": one multi-line input.
pub fn note_view(alert_id: i64, helpdesk: &str, ticket: &str) -> Value {
    let ticket = fit(&clean_inline(ticket), limits::NAME_CUT);
    json!({
        "type": "modal",
        "callback_id": NOTE_CALLBACK,
        "private_metadata": metadata(alert_id),
        "title": plain("Add a note"),
        "submit": plain("Add note"),
        "close": plain("Cancel"),
        "blocks": [
            { "type": "context", "elements": [plain(&fit(
                &format!("An internal note on {helpdesk} ticket {ticket}, signed with your name. The customer does not see it."),
                limits::SECTION_TEXT,
            ))] },
            {
                "type": "input",
                "block_id": NOTE_BLOCK,
                "label": plain("Note"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT_ACTION,
                    "multiline": true,
                    "max_length": NOTE_MAX,
                },
            },
        ],
    })
}

/// "What happened?": the outcome (required) and a note (optional).
pub fn outcome_view(alert_id: i64) -> Value {
    let options: Vec<Value> = OUTCOMES
        .iter()
        .map(|(code, label)| json!({ "text": plain(label), "value": code }))
        .collect();
    json!({
        "type": "modal",
        "callback_id": OUTCOME_CALLBACK,
        "private_metadata": metadata(alert_id),
        "title": plain("Followed up"),
        "submit": plain("Save"),
        "close": plain("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": OUTCOME_BLOCK,
                "label": plain("What happened?"),
                "element": {
                    "type": "static_select",
                    "action_id": INPUT_ACTION,
                    "placeholder": plain("Choose an outcome"),
                    "options": options,
                },
            },
            {
                "type": "input",
                "block_id": NOTE_BLOCK,
                "optional": true,
                "label": plain("Note (optional)"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT_ACTION,
                    "multiline": true,
                    "max_length": NOTE_MAX,
                },
            },
        ],
    })
}

/// A modal that only says something (the progress or result of a slow
/// helpdesk call), with a Close button.
pub fn status_view(text: &str) -> Value {
    json!({
        "type": "modal",
        "title": plain("csatwatch"),
        "close": plain("Close"),
        "blocks": [{ "type": "section", "text": plain(&fit(text, limits::SECTION_TEXT)) }],
    })
}

/// The text typed in `block` of a submitted view, trimmed; `None` if empty.
pub fn text_input(view: &Value, block: &str) -> Option<String> {
    view.pointer(&format!("/state/values/{block}/{INPUT_ACTION}/value"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.chars().take(NOTE_MAX).collect())
}

/// The option chosen in `block` of a submitted view.
pub fn selected(view: &Value, block: &str) -> Option<String> {
    view.pointer(&format!(
        "/state/values/{block}/{INPUT_ACTION}/selected_option/value"
    ))
    .and_then(Value::as_str)
    .map(str::to_string)
}

/// The answer to a `view_submission` that keeps the modal open and shows
/// `message` under the input `block`.
pub fn field_error(block: &str, message: &str) -> Value {
    json!({ "response_action": "errors", "errors": { block: fit(message, 150) } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modal_carries_its_alert_and_reads_its_inputs() {
        let view = note_view(42, "zendesk", "4242");
        assert_eq!(alert_of(&view), Some(42));
        assert_eq!(view["callback_id"], NOTE_CALLBACK);
        let submitted = json!({
            "private_metadata": view["private_metadata"],
            "state": {"values": {
                "note": {"value": {"type": "plain_text_input", "value": "  Called her back  "}},
                "outcome": {"value": {"type": "static_select", "selected_option": {"value": "resolved"}}},
            }},
        });
        assert_eq!(alert_of(&submitted), Some(42));
        assert_eq!(
            text_input(&submitted, NOTE_BLOCK).as_deref(),
            Some("Called her back")
        );
        assert_eq!(
            selected(&submitted, OUTCOME_BLOCK).as_deref(),
            Some("resolved")
        );
        assert_eq!(outcome_label("resolved"), Some("Resolved"));
        assert_eq!(outcome_label("made_up"), None);
        let outcome = outcome_view(7);
        assert_eq!(
            outcome["blocks"][0]["element"]["options"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
    }
}
