//! The Help Scout source: the SDK's signature vector, both payload
//! spellings, per-reply rating keys and the test event.

use serde_json::json;

use super::signature::{SIGNATURE_HEADER, sign};
use super::*;
use crate::domain::{RatingEvent, Scale, Sentiment};
use crate::sources::testing::{headers, with_request};

const SECRET: &str = "helpscout-webhook-secret";
const NOW_MS: i64 = 1_795_442_700_000;

const NEGATIVE: &[u8] = include_bytes!("../../../../tests/fixtures/helpscout/negative.json");
const POSITIVE: &[u8] = include_bytes!("../../../../tests/fixtures/helpscout/positive.json");
const CHANGED: &[u8] = include_bytes!("../../../../tests/fixtures/helpscout/changed.json");
const V1_BAD: &[u8] = include_bytes!("../../../../tests/fixtures/helpscout/v1_bad.json");
const TEST_EVENT: &[u8] = include_bytes!("../../../../tests/fixtures/helpscout/test_event.json");

fn source_with(secret: &str) -> HelpScoutSource {
    let s = json!({"name": "hs", "kind": "helpscout", "secret": secret});
    HelpScoutSource::from_settings(&crate::sources::testing::table("sources[0]", &s)).unwrap()
}

fn check(
    source: &HelpScoutSource,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let h = signature.map_or_else(|| headers(&[]), |s| headers(&[(SIGNATURE_HEADER, s)]));
    with_request(&h, body, NOW_MS, |r| source.verify(r))
}

fn parse_with_event(event: Option<&str>, body: &[u8]) -> Result<Parsed, ParseError> {
    let h = event.map_or_else(|| headers(&[]), |e| headers(&[(EVENT_HEADER, e)]));
    with_request(&h, body, NOW_MS, |r| source_with(SECRET).parse(r))
}

fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    parse_with_event(Some("satisfaction.ratings"), body)
}

fn one_rating(parsed: Parsed) -> RatingEvent {
    match parsed {
        Parsed::Ratings { mut ratings, .. } if ratings.len() == 1 => ratings.remove(0),
        other => panic!("expected one rating, got {other:?}"),
    }
}

/// helpscout/helpscout-api-php, examples/incoming_webhook.php and
/// tests/Webhooks/IncomingWebhookTest.php: secret `asdfasdf`, body
/// `{"id":123}`.
#[test]
fn the_sdk_vector_matches() {
    assert_eq!(
        sign(b"asdfasdf", TEST_EVENT),
        "7S2+kN8bZsrdAEADJ+yYfWWsf/4="
    );
    let source = source_with("asdfasdf");
    assert_eq!(
        check(&source, Some("7S2+kN8bZsrdAEADJ+yYfWWsf/4="), TEST_EVENT),
        Ok(())
    );
}

#[test]
fn a_wrong_secret_a_tampered_body_or_no_header_is_refused() {
    let source = source_with(SECRET);
    let forged = sign(b"asdfasdf", NEGATIVE);
    assert_eq!(
        check(&source, Some(&forged), NEGATIVE),
        Err(SignatureError::Mismatch)
    );
    let sig = sign(SECRET.as_bytes(), TEST_EVENT);
    assert_eq!(
        check(&source, Some(&sig), br#"{"id":124}"#),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(&source, None, NEGATIVE),
        Err(SignatureError::MissingHeader(SIGNATURE_HEADER.into()))
    );
    assert!(matches!(
        check(&source, Some("not base64!"), NEGATIVE),
        Err(SignatureError::Malformed(_))
    ));
}

#[test]
fn a_v2_not_good_rating_is_read_with_every_field() {
    let event = one_rating(parse(NEGATIVE).unwrap());
    assert_eq!(event.conversation_id, "1560011");
    assert_eq!(
        event.rating_key, "3002084",
        "each rated reply (thread) is its own rating"
    );
    assert_eq!(
        (event.score.scale, event.score.value),
        (Scale::ThreePoint, 1)
    );
    assert_eq!(event.sentiment(None), Sentiment::Negative);
    assert_eq!(
        event.comment.as_deref(),
        Some("The answer did not fix my problem")
    );
    assert_eq!(event.agent.as_deref(), Some("Priya Raman"));
    assert_eq!(event.customer.as_deref(), Some("John Doe"));
    assert_eq!(
        event.url.as_deref(),
        Some("https://secure.helpscout.net/conversation/1560011")
    );
    assert_eq!(event.rated_at_ms, Some(NOW_MS - 60_000));
    assert_eq!(event.updated_at_ms, Some(NOW_MS - 60_000));
}

#[test]
fn a_v1_bad_rating_is_read_too() {
    let event = one_rating(parse(V1_BAD).unwrap());
    assert_eq!(event.conversation_id, "1560011");
    assert_eq!(event.rating_key, "3002085", "v1 bodies name the thread too");
    assert_eq!(event.score.value, 1);
    assert_eq!(event.team.as_deref(), Some("My Mailbox"));
    assert_eq!(event.agent, None);
}

#[test]
fn every_spelling_is_read_case_insensitively() {
    for (word, value) in [
        ("great", 3),
        ("Great", 3),
        ("GREAT", 3),
        ("okay", 2),
        ("Okay", 2),
        ("ok", 2),
        ("not_good", 1),
        ("Not Good", 1),
        ("not-good", 1),
        ("Bad", 1),
        ("bad", 1),
    ] {
        let body = json!({"id": 1, "conversationId": 2, "rating": word});
        assert_eq!(
            one_rating(parse(body.to_string().as_bytes()).unwrap())
                .score
                .value,
            value,
            "{word}"
        );
    }
}

#[test]
fn a_great_rating_is_positive_and_an_empty_comment_is_none() {
    let event = one_rating(parse(POSITIVE).unwrap());
    assert_eq!(event.sentiment(None), Sentiment::Positive);
    assert_eq!(event.comment, None);
}

#[test]
fn a_change_is_the_same_rating_with_a_later_modified_at() {
    let before = one_rating(parse(POSITIVE).unwrap());
    let after = one_rating(parse(CHANGED).unwrap());
    assert_eq!(
        (&before.conversation_id, &before.rating_key),
        (&after.conversation_id, &after.rating_key)
    );
    assert!(after.updated_at_ms > before.updated_at_ms);
    assert_eq!(after.rated_at_ms, before.rated_at_ms);
    assert_eq!(after.sentiment(None), Sentiment::Negative);
}

#[test]
fn the_test_event_and_unknown_ratings_carry_no_rating() {
    assert!(matches!(
        parse_with_event(Some("helpscout.test"), TEST_EVENT).unwrap(),
        Parsed::NoRating { .. }
    ));
    assert!(matches!(
        parse_with_event(Some("convo.created"), NEGATIVE).unwrap(),
        Parsed::NoRating { .. }
    ));
    for raw in [json!("unknown"), json!(null), json!("")] {
        let body = json!({"id": 1, "conversationId": 2, "rating": raw});
        assert!(
            matches!(
                parse(body.to_string().as_bytes()).unwrap(),
                Parsed::NoRating { .. }
            ),
            "{raw}"
        );
    }
    // Without the event header the body decides.
    assert!(matches!(
        parse_with_event(None, NEGATIVE).unwrap(),
        Parsed::Ratings { .. }
    ));
}

#[test]
fn each_parse_error_names_its_field() {
    let cases = [
        (
            json!({"conversationId": 2, "rating": "great"}),
            "id (the rating's id) is missing",
        ),
        (
            json!({"id": 1, "rating": "great"}),
            "conversationId is missing",
        ),
        (json!({"id": 1, "conversationId": 2}), "rating is missing"),
        (
            json!({"id": 1, "conversationId": 2, "rating": "meh"}),
            "rating is \"meh\"; expected great",
        ),
        (
            json!({"id": 1, "conversationId": 2, "rating": 3}),
            "rating is 3; expected great",
        ),
        (
            json!({"id": 1, "conversationId": 2, "rating": "great", "modifiedAt": "yesterday"}),
            "modifiedAt is \"yesterday\"",
        ),
    ];
    for (body, expected) in cases {
        let err = parse(body.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with(expected), "{err} / {expected}");
    }
}
