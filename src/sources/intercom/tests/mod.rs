//! The Intercom source: signatures, settings, topics and the rating's fields.

use serde_json::json;

use super::signature::{SIGNATURE_HEADER, sign};
use super::*;
use crate::domain::{RatingEvent, Scale, Sentiment};
use crate::sources::testing::{headers, table, with_request};

const SECRET: &str = "intercom-client-secret";
/// 2026-11-23T14:05:00Z, the fixtures' time.
const NOW_MS: i64 = 1_795_442_700_000;

const NEGATIVE: &[u8] = include_bytes!("../../../../tests/fixtures/intercom/negative.json");
const POSITIVE: &[u8] = include_bytes!("../../../../tests/fixtures/intercom/positive.json");
const CHANGED: &[u8] = include_bytes!("../../../../tests/fixtures/intercom/changed.json");
const PING: &[u8] = include_bytes!("../../../../tests/fixtures/intercom/ping.json");
const TICKET: &[u8] = include_bytes!("../../../../tests/fixtures/intercom/ticket_negative.json");

fn settings(extra: serde_json::Value) -> serde_json::Value {
    let mut base = json!({"name": "intercom", "kind": "intercom", "secret": SECRET});
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    base
}

fn source() -> IntercomSource {
    IntercomSource::from_settings(&table("sources[0]", &settings(json!({})))).unwrap()
}

fn check(signature: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let h = match signature {
        Some(sig) => headers(&[(SIGNATURE_HEADER, sig)]),
        None => headers(&[]),
    };
    with_request(&h, body, NOW_MS, |r| source().verify(r))
}

fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    with_request(&headers(&[]), body, NOW_MS, |r| source().parse(r))
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

/// RFC 2202 test case 2 through Intercom's header format: the HMAC-SHA1
/// of "what do ya want for nothing?" under "Jefe".
#[test]
fn the_signature_is_hmac_sha1_hex_with_a_sha1_prefix() {
    assert_eq!(
        sign(b"Jefe", b"what do ya want for nothing?"),
        "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    );
}

#[test]
fn a_correctly_signed_delivery_is_accepted() {
    let sig = sign(SECRET.as_bytes(), NEGATIVE);
    assert_eq!(check(Some(&sig), NEGATIVE), Ok(()));
    assert_eq!(
        check(
            Some(&sig.to_uppercase().replace("SHA1=", "sha1=")),
            NEGATIVE
        ),
        Ok(())
    );
}

#[test]
fn a_wrong_secret_or_a_tampered_body_is_refused() {
    let forged = sign(b"not-the-secret", NEGATIVE);
    assert_eq!(
        check(Some(&forged), NEGATIVE),
        Err(SignatureError::Mismatch)
    );
    let sig = sign(SECRET.as_bytes(), NEGATIVE);
    let tampered = String::from_utf8(NEGATIVE.to_vec())
        .unwrap()
        .replace("\"rating\": 2", "\"rating\": 5");
    assert_eq!(
        check(Some(&sig), tampered.as_bytes()),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_missing_or_malformed_header_is_refused_by_name() {
    assert_eq!(
        check(None, NEGATIVE),
        Err(SignatureError::MissingHeader(SIGNATURE_HEADER.into()))
    );
    assert!(matches!(
        check(Some("sha256=00"), NEGATIVE),
        Err(SignatureError::Malformed(_))
    ));
    assert!(matches!(
        check(Some("sha1=zz"), NEGATIVE),
        Err(SignatureError::Malformed(_))
    ));
}

#[test]
fn a_negative_conversation_rating_is_read_with_every_field() {
    let (delivery, event) = one_rating(parse(NEGATIVE).unwrap());
    assert_eq!(
        delivery.as_deref(),
        Some("notif_3f1c2a10-8c1e-4a5e-9a61-0c1d2e3f4a01")
    );
    assert_eq!(event.conversation_id, "515");
    assert_eq!(event.rating_key, "", "one rating per conversation");
    assert_eq!(
        (event.score.scale, event.score.value),
        (Scale::FivePoint, 2)
    );
    assert_eq!(event.sentiment(None), Sentiment::Negative);
    assert_eq!(event.comment.as_deref(), Some("Took too long"));
    assert_eq!(event.agent.as_deref(), Some("991267715"));
    assert_eq!(event.team.as_deref(), Some("5017691"));
    assert_eq!(event.customer.as_deref(), Some("6762f14a1bb69f9f2193bbb3"));
    assert_eq!(event.tags, vec!["billing"]);
    assert_eq!(
        event.url.as_deref(),
        Some("https://app.intercom.com/a/inbox/abc123/inbox/conversation/515")
    );
    assert_eq!(event.updated_at_ms, Some(1_795_442_699_000));
}

#[test]
fn a_ticket_url_template_wins_over_the_derived_inbox_link() {
    let s = settings(json!({"ticket_url": "https://intercom.example/c/{conversation_id}"}));
    let source = IntercomSource::from_settings(&table("sources[0]", &s)).unwrap();
    let parsed = with_request(&headers(&[]), NEGATIVE, NOW_MS, |r| source.parse(r)).unwrap();
    assert_eq!(
        one_rating(parsed).1.url.as_deref(),
        Some("https://intercom.example/c/515")
    );
}

#[test]
fn a_positive_rating_is_positive() {
    let (_, event) = one_rating(parse(POSITIVE).unwrap());
    assert_eq!(event.score.value, 5);
    assert_eq!(event.sentiment(None), Sentiment::Positive);
    assert_eq!(event.comment, None);
}

#[test]
fn a_changed_rating_is_the_same_rating_later() {
    let (first_delivery, before) = one_rating(parse(POSITIVE).unwrap());
    let (later_delivery, after) = one_rating(parse(CHANGED).unwrap());
    assert_eq!(
        (&before.conversation_id, &before.rating_key),
        (&after.conversation_id, &after.rating_key)
    );
    assert_ne!(first_delivery, later_delivery);
    assert!(after.updated_at_ms > before.updated_at_ms);
    assert_eq!(after.sentiment(None), Sentiment::Negative);
}

#[test]
fn a_ticket_rating_is_keyed_by_the_ticket() {
    let (_, event) = one_rating(parse(TICKET).unwrap());
    assert_eq!(event.conversation_id, "98765");
    assert_eq!(event.rating_key, "41");
    assert_eq!(event.score.value, 1);
}

#[test]
fn ping_and_other_topics_carry_no_rating() {
    assert!(matches!(parse(PING).unwrap(), Parsed::NoRating { .. }));
    let body = json!({"type": "notification_event", "topic": "conversation.admin.closed", "data": {"item": {"id": "1"}}});
    assert!(matches!(
        parse(body.to_string().as_bytes()).unwrap(),
        Parsed::NoRating { .. }
    ));
    let unrated = json!({"topic": "conversation.rating.added", "data": {"item": {"id": "1", "conversation_rating": {"rating": null}}}});
    assert!(matches!(
        parse(unrated.to_string().as_bytes()).unwrap(),
        Parsed::NoRating { .. }
    ));
}

#[test]
fn each_parse_error_names_its_field() {
    let cases = [
        (json!({"data": {}}), "topic is missing"),
        (json!({"topic": CONVERSATION}), "data.item is missing"),
        (
            json!({"topic": CONVERSATION, "data": {"item": {"conversation_rating": {"rating": 2}}}}),
            "data.item.id is missing",
        ),
        (
            json!({"topic": CONVERSATION, "data": {"item": {"id": "1"}}}),
            "data.item.conversation_rating is missing",
        ),
        (
            json!({"topic": CONVERSATION, "data": {"item": {"id": "1", "conversation_rating": {"rating": 9}}}}),
            "data.item.conversation_rating.rating is 9; expected 1 to 5",
        ),
        (
            json!({"topic": CONVERSATION, "data": {"item": {"id": "1", "conversation_rating": {"rating": "great"}}}}),
            "data.item.conversation_rating.rating is \"great\"",
        ),
        (
            json!({"topic": CONVERSATION, "data": {"item": {"id": "1", "conversation_rating": {"rating": 2, "updated_at": "later"}}}}),
            "data.item.conversation_rating.updated_at is \"later\"",
        ),
    ];
    for (body, expected) in cases {
        let err = parse(body.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with(expected), "{err} / {expected}");
    }
    assert!(
        parse(b"[1]")
            .unwrap_err()
            .to_string()
            .contains("not a JSON object")
    );
}

const CONVERSATION: &str = "conversation.rating.added";

#[test]
fn settings_refuse_foreign_keys_and_say_where_the_secret_is() {
    let s = settings(json!({"scale": "nps", "replay_window": "1m", "allow_unsigned": true}));
    let mut keys: Vec<String> = IntercomSource::from_settings(&table("sources[1]", &s))
        .err()
        .unwrap()
        .into_iter()
        .map(|p| p.key)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "sources[1].allow_unsigned",
            "sources[1].replay_window",
            "sources[1].scale"
        ]
    );
    let mut s = settings(json!({}));
    s.as_object_mut().unwrap().remove("secret");
    let problems = IntercomSource::from_settings(&table("sources[1]", &s))
        .err()
        .unwrap();
    assert!(
        problems[0].message.contains("client secret"),
        "{}",
        problems[0].message
    );
}
