//! The Zendesk new-CSAT source: Zendesk's signature reused, the scale from
//! the number of options, every body shape, and unanswered surveys.

use serde_json::json;

use super::*;
use crate::domain::{RatingEvent, Scale, Sentiment};
use crate::sources::testing::{headers, with_request};
use crate::sources::zendesk::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

const SECRET: &str = "zendesk-csat-signing-secret";
const NOW_MS: i64 = 1_795_442_700_000;
const NOW_TEXT: &str = "2026-11-23T14:05:00Z";

const NEGATIVE: &[u8] = include_bytes!("../../../../tests/fixtures/zendesk_csat/negative.json");
const POSITIVE: &[u8] = include_bytes!("../../../../tests/fixtures/zendesk_csat/positive.json");
const CHANGED: &[u8] = include_bytes!("../../../../tests/fixtures/zendesk_csat/changed.json");
const API_OBJECT: &[u8] =
    include_bytes!("../../../../tests/fixtures/zendesk_csat/api_object_two_point.json");
const UNANSWERED: &[u8] = include_bytes!("../../../../tests/fixtures/zendesk_csat/unanswered.json");

fn source_with(extra: serde_json::Value) -> Result<ZendeskCsatSource, Vec<ConfigProblem>> {
    let mut base = json!({"name": "zcsat", "kind": "zendesk_csat", "secret": SECRET});
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    ZendeskCsatSource::from_settings(&crate::sources::testing::table("sources[0]", &base))
}

fn check(secret: &[u8], ts: &str, body: &[u8], now_ms: i64) -> Result<(), SignatureError> {
    let sig = sign(secret, ts, body);
    let h = headers(&[(SIGNATURE_HEADER, &sig), (TIMESTAMP_HEADER, ts)]);
    with_request(&h, body, now_ms, |r| {
        source_with(json!({})).unwrap().verify(r)
    })
}

fn parse_on(source: &ZendeskCsatSource, body: &[u8]) -> Result<Parsed, ParseError> {
    with_request(&headers(&[]), body, NOW_MS, |r| source.parse(r))
}

fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    parse_on(&source_with(json!({})).unwrap(), body)
}

fn one_rating(parsed: Parsed) -> RatingEvent {
    match parsed {
        Parsed::Ratings { mut ratings, .. } if ratings.len() == 1 => ratings.remove(0),
        other => panic!("expected one rating, got {other:?}"),
    }
}

#[test]
fn the_signature_is_zendesks_with_its_replay_window() {
    assert_eq!(check(SECRET.as_bytes(), NOW_TEXT, NEGATIVE, NOW_MS), Ok(()));
    assert_eq!(
        check(b"other", NOW_TEXT, NEGATIVE, NOW_MS),
        Err(SignatureError::Mismatch)
    );
    assert!(matches!(
        check(SECRET.as_bytes(), NOW_TEXT, NEGATIVE, NOW_MS + 6 * 60_000),
        Err(SignatureError::Stale { .. })
    ));
    let h = headers(&[]);
    assert_eq!(
        with_request(&h, NEGATIVE, NOW_MS, |r| source_with(json!({}))
            .unwrap()
            .verify(r)),
        Err(SignatureError::MissingHeader(SIGNATURE_HEADER.into()))
    );
}

#[test]
fn a_trigger_body_is_read_with_every_field() {
    let event = one_rating(parse(NEGATIVE).unwrap());
    assert_eq!(event.conversation_id, "48300");
    assert_eq!(event.rating_key, "01HZX9R7C3V0KQ4W8T2M5N6P7A");
    assert_eq!(
        (event.score.scale, event.score.value),
        (Scale::FivePoint, 2)
    );
    assert_eq!(event.sentiment(None), Sentiment::Negative);
    assert_eq!(
        event.comment.as_deref(),
        Some("Three days without an answer")
    );
    assert_eq!(event.agent.as_deref(), Some("Priya Raman"));
    assert_eq!(event.team.as_deref(), Some("Billing"));
    assert_eq!(event.brand.as_deref(), Some("Acme"));
    assert_eq!(event.customer.as_deref(), Some("Jordan Lee"));
    assert_eq!(
        event.url.as_deref(),
        Some("https://acme.zendesk.com/agent/tickets/48300")
    );
    assert_eq!(event.updated_at_ms, Some(NOW_MS - 60_000));
}

#[test]
fn the_scale_follows_the_number_of_options() {
    for (options, scale, rating, sentiment) in [
        ("2", Scale::TwoPoint, "1", Sentiment::Negative),
        ("2", Scale::TwoPoint, "2", Sentiment::Positive),
        ("3", Scale::ThreePoint, "1", Sentiment::Negative),
        ("3", Scale::ThreePoint, "3", Sentiment::Positive),
        ("5", Scale::FivePoint, "3", Sentiment::Neutral),
    ] {
        let body = json!({"ticket": {"id": "1"}, "survey_response": {"id": "r", "rating": rating, "options": options}});
        let event = one_rating(parse(body.to_string().as_bytes()).unwrap());
        assert_eq!(
            (event.score.scale, event.sentiment(None)),
            (scale, sentiment),
            "{options}/{rating}"
        );
    }
    // Without a count, the source's scale applies.
    let three = source_with(json!({"scale": "three_point"})).unwrap();
    let body = json!({"ticket": {"id": "1"}, "survey_response": {"id": "r", "rating": 2}});
    let event = one_rating(parse_on(&three, body.to_string().as_bytes()).unwrap());
    assert_eq!(event.score.scale, Scale::ThreePoint);
}

#[test]
fn the_api_object_shape_is_read_too() {
    let event = one_rating(parse(API_OBJECT).unwrap());
    assert_eq!(event.conversation_id, "99", "from subject_zrns");
    assert_eq!(event.rating_key, "01HZXA0000000000000000000C");
    assert_eq!((event.score.scale, event.score.value), (Scale::TwoPoint, 1));
    assert_eq!(event.comment.as_deref(), Some("Slow replies"));
    assert_eq!(event.customer.as_deref(), Some("7881"));
    assert_eq!(event.rated_at_ms, Some(NOW_MS - 120_000));
}

#[test]
fn an_event_envelope_is_read_and_its_id_is_the_delivery() {
    let body = json!({"type": "zen:event-type:survey_response.submitted", "id": "evt-1", "subject": "zen:ticket:55",
        "detail": {"survey_response": {"id": "r9", "answers": [{"type": "rating_scale", "rating": 4, "options": 5}]}}});
    match parse(body.to_string().as_bytes()).unwrap() {
        Parsed::Ratings {
            delivery_id,
            ratings,
        } => {
            assert_eq!(delivery_id.as_deref(), Some("evt-1"));
            assert_eq!(
                (ratings[0].conversation_id.as_str(), ratings[0].score.value),
                ("55", 4)
            );
        }
        other => panic!("{other:?}"),
    }
    let offered =
        json!({"type": "zen:event-type:survey_response.offered", "subject": "zen:ticket:55"});
    assert!(matches!(
        parse(offered.to_string().as_bytes()).unwrap(),
        Parsed::NoRating { .. }
    ));
    let other = json!({"type": "zen:event-type:user.active_changed"});
    assert!(matches!(
        parse(other.to_string().as_bytes()).unwrap(),
        Parsed::NoRating { .. }
    ));
}

#[test]
fn a_change_is_the_same_response_later() {
    let before = one_rating(parse(POSITIVE).unwrap());
    let after = one_rating(parse(CHANGED).unwrap());
    assert_eq!(before.sentiment(None), Sentiment::Positive);
    assert_eq!(
        (&before.conversation_id, &before.rating_key),
        (&after.conversation_id, &after.rating_key)
    );
    assert!(after.updated_at_ms > before.updated_at_ms);
    assert_eq!(after.sentiment(None), Sentiment::Negative);
}

#[test]
fn an_unanswered_or_skipped_survey_carries_no_rating() {
    assert!(matches!(
        parse(UNANSWERED).unwrap(),
        Parsed::NoRating { .. }
    ));
    let skipped =
        json!({"id": "r", "subject_zrns": ["zrn:ticket:1"], "answers": [{"type": "skipped"}]});
    assert!(matches!(
        parse(skipped.to_string().as_bytes()).unwrap(),
        Parsed::NoRating { .. }
    ));
}

#[test]
fn each_parse_error_names_its_field() {
    let cases = [
        (json!({"ticket": {"id": "1"}}), "survey_response is missing"),
        (
            json!({"ticket": {"id": "1"}, "survey_response": {"rating": 2}}),
            "survey_response.id is missing",
        ),
        (
            json!({"survey_response": {"id": "r", "rating": 2}}),
            "ticket.id is missing",
        ),
        (
            json!({"ticket": {"id": "{{ticket.id}}"}, "survey_response": {"id": "r", "rating": 2}}),
            "ticket.id is an unrendered placeholder",
        ),
        (
            json!({"ticket": {"id": "1"}, "survey_response": {"id": "r", "rating": "good"}}),
            "survey_response.rating is \"good\"",
        ),
        (
            json!({"ticket": {"id": "1"}, "survey_response": {"id": "r", "rating": 4, "options": 4}}),
            "survey_response.options is 4",
        ),
        (
            json!({"ticket": {"id": "1"}, "survey_response": {"id": "r", "rating": 3, "options": 2}}),
            "survey_response.rating is 3, off the two_point scale",
        ),
    ];
    for (body, expected) in cases {
        let err = parse(body.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with(expected), "{err} / {expected}");
    }
}

#[test]
fn a_scale_zendesk_does_not_offer_is_refused() {
    let problems = source_with(json!({"scale": "nps", "allow_unsigned": true}))
        .err()
        .unwrap();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["sources[0].allow_unsigned", "sources[0].scale"]);
}
