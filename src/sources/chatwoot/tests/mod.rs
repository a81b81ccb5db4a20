//! The Chatwoot source: the timestamped signature, unsigned deliveries,
//! which messages carry a rating, and the rating's fields.

use serde_json::json;

use super::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use super::*;
use crate::domain::{RatingEvent, Scale, Sentiment};
use crate::sources::testing::{headers, with_request};

const SECRET: &str = "chatwoot-webhook-secret";
const NOW_MS: i64 = 1_795_442_700_000;
const NOW_S: &str = "1795442700";

const NEGATIVE: &[u8] = include_bytes!("../../../../tests/fixtures/chatwoot/negative.json");
const POSITIVE: &[u8] = include_bytes!("../../../../tests/fixtures/chatwoot/positive.json");
const CHANGED: &[u8] = include_bytes!("../../../../tests/fixtures/chatwoot/changed.json");
const UNANSWERED: &[u8] = include_bytes!("../../../../tests/fixtures/chatwoot/unanswered.json");
const STATUS: &[u8] = include_bytes!("../../../../tests/fixtures/chatwoot/status_changed.json");

fn source(extra: serde_json::Value) -> Result<ChatwootSource, Vec<ConfigProblem>> {
    let mut base = json!({"name": "cw", "kind": "chatwoot", "secret": SECRET});
    let base_map = base.as_object_mut().unwrap();
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            base_map.remove(k);
        } else {
            base_map.insert(k.clone(), v.clone());
        }
    }
    ChatwootSource::from_settings(&crate::sources::testing::table("sources[0]", &base))
}

fn signed(body: &[u8], ts: &str) -> Vec<(String, String)> {
    vec![
        (SIGNATURE_HEADER.into(), sign(SECRET.as_bytes(), ts, body)),
        (TIMESTAMP_HEADER.into(), ts.into()),
        (
            "X-Chatwoot-Delivery".into(),
            "5f0c1c0e-3f59-4c1e-9f7d-2b8f9d1e0a11".into(),
        ),
    ]
}

fn check_with(
    source: &ChatwootSource,
    pairs: &[(String, String)],
    body: &[u8],
    now_ms: i64,
) -> Result<(), SignatureError> {
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    with_request(&headers(&pairs), body, now_ms, |r| source.verify(r))
}

fn parse_signed(body: &[u8]) -> Result<Parsed, ParseError> {
    let pairs = signed(body, NOW_S);
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let source = source(json!({"ticket_url": "https://chat.acme.example/app/accounts/{account_id}/conversations/{conversation_id}"})).unwrap();
    with_request(&headers(&pairs), body, NOW_MS, |r| source.parse(r))
}

fn one_rating(parsed: Parsed) -> (Option<String>, RatingEvent) {
    match parsed {
        Parsed::Ratings {
            delivery_id,
            mut ratings,
        } if ratings.len() == 1 => (delivery_id, ratings.remove(0)),
        other => panic!("expected one rating, got {other:?}"),
    }
}

/// HMAC-SHA256 over `"{timestamp}.{body}"`, recomputed independently with
/// Python's hmac: key `secret`, timestamp `1700000000`, body `{"a":1}`.
#[test]
fn the_signature_covers_the_timestamp_a_dot_and_the_body() {
    assert_eq!(
        sign(b"secret", "1700000000", br#"{"a":1}"#),
        "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
    );
}

#[test]
fn a_signed_delivery_inside_the_window_is_accepted() {
    let s = source(json!({})).unwrap();
    assert_eq!(
        check_with(&s, &signed(NEGATIVE, NOW_S), NEGATIVE, NOW_MS),
        Ok(())
    );
    assert_eq!(
        check_with(&s, &signed(NEGATIVE, NOW_S), NEGATIVE, NOW_MS + 4 * 60_000),
        Ok(())
    );
}

#[test]
fn a_stale_or_future_timestamp_is_refused() {
    let s = source(json!({})).unwrap();
    for now in [NOW_MS + 6 * 60_000, NOW_MS - 6 * 60_000] {
        assert!(matches!(
            check_with(&s, &signed(NEGATIVE, NOW_S), NEGATIVE, now),
            Err(SignatureError::Stale { .. })
        ));
    }
    let wide = source(json!({"replay_window": "1h"})).unwrap();
    assert_eq!(
        check_with(
            &wide,
            &signed(NEGATIVE, NOW_S),
            NEGATIVE,
            NOW_MS + 30 * 60_000
        ),
        Ok(())
    );
}

#[test]
fn a_tampered_body_timestamp_or_secret_is_refused() {
    let s = source(json!({})).unwrap();
    let tampered = String::from_utf8(NEGATIVE.to_vec())
        .unwrap()
        .replace("\"rating\": 1", "\"rating\": 5");
    assert_eq!(
        check_with(&s, &signed(NEGATIVE, NOW_S), tampered.as_bytes(), NOW_MS),
        Err(SignatureError::Mismatch)
    );
    let mut moved = signed(NEGATIVE, NOW_S);
    moved[1].1 = "1795442701".into();
    assert_eq!(
        check_with(&s, &moved, NEGATIVE, NOW_MS),
        Err(SignatureError::Mismatch)
    );
    let mut forged = signed(NEGATIVE, NOW_S);
    forged[0].1 = sign(b"other", NOW_S, NEGATIVE);
    assert_eq!(
        check_with(&s, &forged, NEGATIVE, NOW_MS),
        Err(SignatureError::Mismatch)
    );
    let mut no_ts = signed(NEGATIVE, NOW_S);
    no_ts.remove(1);
    assert_eq!(
        check_with(&s, &no_ts, NEGATIVE, NOW_MS),
        Err(SignatureError::MissingHeader(TIMESTAMP_HEADER.into()))
    );
}

#[test]
fn an_unsigned_delivery_is_refused_unless_explicitly_allowed() {
    let strict = source(json!({})).unwrap();
    assert_eq!(
        check_with(&strict, &[], NEGATIVE, NOW_MS),
        Err(SignatureError::MissingHeader(SIGNATURE_HEADER.into()))
    );
    let lenient = source(json!({"allow_unsigned": true})).unwrap();
    assert_eq!(check_with(&lenient, &[], NEGATIVE, NOW_MS), Ok(()));
    // Allowing unsigned deliveries never lets a wrong signature through.
    let mut forged = signed(NEGATIVE, NOW_S);
    forged[0].1 = sign(b"other", NOW_S, NEGATIVE);
    assert_eq!(
        check_with(&lenient, &forged, NEGATIVE, NOW_MS),
        Err(SignatureError::Mismatch)
    );
    // Without a secret, allow_unsigned is the only way in.
    assert!(source(json!({"allow_unsigned": true, "secret": null})).is_ok());
    let problems = source(json!({"secret": null})).err().unwrap();
    assert_eq!(problems[0].key, "sources[0].secret");
    assert!(
        problems[0].message.contains("allow_unsigned"),
        "{}",
        problems[0].message
    );
}

#[test]
fn an_answered_survey_is_read_with_every_field() {
    let (delivery, event) = one_rating(parse_signed(NEGATIVE).unwrap());
    assert_eq!(
        delivery.as_deref(),
        Some("5f0c1c0e-3f59-4c1e-9f7d-2b8f9d1e0a11")
    );
    assert_eq!(event.conversation_id, "301", "the display id agents see");
    assert_eq!(event.rating_key, "90211", "the survey message");
    assert_eq!(
        (event.score.scale, event.score.value),
        (Scale::FivePoint, 1)
    );
    assert_eq!(event.sentiment(None), Sentiment::Negative);
    assert_eq!(event.comment.as_deref(), Some("Nobody read my messages"));
    assert_eq!(event.agent.as_deref(), Some("Priya Raman"));
    assert_eq!(event.team.as_deref(), Some("Billing"));
    assert_eq!(event.customer.as_deref(), Some("Jordan Lee"));
    assert_eq!(event.brand.as_deref(), Some("Website chat"));
    assert_eq!(event.tags, vec!["billing"]);
    assert_eq!(
        event.url.as_deref(),
        Some("https://chat.acme.example/app/accounts/7/conversations/301")
    );
    assert_eq!(
        event.updated_at_ms,
        Some(NOW_MS),
        "the signed time orders changes"
    );
}

#[test]
fn a_changed_answer_is_the_same_rating() {
    let (_, before) = one_rating(parse_signed(POSITIVE).unwrap());
    let (_, after) = one_rating(parse_signed(CHANGED).unwrap());
    assert_eq!(before.sentiment(None), Sentiment::Positive);
    assert_eq!(before.comment, None);
    assert_eq!(
        (&before.conversation_id, &before.rating_key),
        (&after.conversation_id, &after.rating_key)
    );
    assert_eq!(after.sentiment(None), Sentiment::Negative);
}

#[test]
fn other_events_messages_and_unanswered_surveys_carry_no_rating() {
    assert!(matches!(
        parse_signed(STATUS).unwrap(),
        Parsed::NoRating { .. }
    ));
    assert!(matches!(
        parse_signed(UNANSWERED).unwrap(),
        Parsed::NoRating { .. }
    ));
    let text = json!({"event": "message_updated", "id": 1, "content_type": "text", "conversation": {"display_id": 1}});
    assert!(matches!(
        parse_signed(text.to_string().as_bytes()).unwrap(),
        Parsed::NoRating { .. }
    ));
    let created = json!({"event": "message_created", "id": 1, "content_type": "input_csat"});
    assert!(matches!(
        parse_signed(created.to_string().as_bytes()).unwrap(),
        Parsed::NoRating { .. }
    ));
}

#[test]
fn each_parse_error_names_its_field() {
    let csat = |rating: serde_json::Value| {
        json!({
            "event": "message_updated", "id": 9, "content_type": "input_csat",
            "content_attributes": {"submitted_values": {"csat_survey_response": {"rating": rating}}},
            "conversation": {"display_id": 4}
        })
    };
    let mut no_conversation = csat(json!(2));
    no_conversation
        .as_object_mut()
        .unwrap()
        .remove("conversation");
    let mut no_id = csat(json!(2));
    no_id.as_object_mut().unwrap().remove("id");
    let cases = [
        (json!({"id": 1}), "event is missing".to_string()),
        (
            csat(json!(6)),
            "content_attributes.submitted_values.csat_survey_response.rating is 6; expected 1 to 5"
                .to_string(),
        ),
        (
            csat(json!("happy")),
            "content_attributes.submitted_values.csat_survey_response.rating is \"happy\""
                .to_string(),
        ),
        (
            no_conversation,
            "conversation.display_id is missing".to_string(),
        ),
        (no_id, "id (the survey message's id) is missing".to_string()),
    ];
    for (body, expected) in cases {
        let err = parse_signed(body.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with(&expected), "{err} / {expected}");
    }
}

#[test]
fn a_zero_replay_window_and_foreign_keys_are_refused() {
    let keys: Vec<String> = source(json!({"replay_window": "0s", "scale": "nps"}))
        .err()
        .unwrap()
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(keys, ["sources[0].scale", "sources[0].replay_window"]);
}
