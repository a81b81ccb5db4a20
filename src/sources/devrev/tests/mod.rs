//! The DevRev source: both signature encodings, the envelope replay window,
//! the verify handshake, and survey responses on either scale.

use serde_json::json;

use super::signature::{SIGNATURE_HEADER, sign};
use super::*;
use crate::domain::{RatingEvent, Scale, Sentiment};
use crate::sources::signature::{Encoding, hmac_sha256};
use crate::sources::testing::{headers, with_request};

const SECRET: &str = "devrev-webhook-secret";
/// 2026-11-23T14:05:00Z, the envelope time of the fixtures.
const NOW_MS: i64 = 1_795_442_700_000;

const NEGATIVE: &[u8] = include_bytes!("../../../../tests/fixtures/devrev/negative.json");
const POSITIVE: &[u8] = include_bytes!("../../../../tests/fixtures/devrev/positive.json");
const CHANGED: &[u8] = include_bytes!("../../../../tests/fixtures/devrev/changed.json");
const VERIFY: &[u8] = include_bytes!("../../../../tests/fixtures/devrev/verify.json");
const OTHER: &[u8] = include_bytes!("../../../../tests/fixtures/devrev/work_updated.json");

fn source_with(extra: serde_json::Value) -> Result<DevRevSource, Vec<ConfigProblem>> {
    let mut base = json!({"name": "devrev", "kind": "devrev", "secret": SECRET});
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    DevRevSource::from_settings(&crate::sources::testing::table("sources[0]", &base))
}

fn source() -> DevRevSource {
    source_with(json!({})).unwrap()
}

fn check(signature: Option<&str>, body: &[u8], now_ms: i64) -> Result<(), SignatureError> {
    let h = signature.map_or_else(|| headers(&[]), |s| headers(&[(SIGNATURE_HEADER, s)]));
    with_request(&h, body, now_ms, |r| source().verify(r))
}

fn parse_on(source: &DevRevSource, body: &[u8]) -> Result<Parsed, ParseError> {
    with_request(&headers(&[]), body, NOW_MS, |r| source.parse(r))
}

fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    parse_on(&source(), body)
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

#[test]
fn the_signature_is_accepted_in_base64_hex_or_with_a_prefix() {
    let mac = hmac_sha256(SECRET.as_bytes(), &[NEGATIVE]);
    let base64 = sign(SECRET.as_bytes(), NEGATIVE);
    assert_eq!(base64, Encoding::Base64.encode(&mac));
    let hex = Encoding::Hex.encode(&mac);
    for header in [
        base64.clone(),
        hex.clone(),
        format!("sha256={hex}"),
        hex.to_uppercase(),
    ] {
        assert_eq!(check(Some(&header), NEGATIVE, NOW_MS), Ok(()), "{header}");
    }
}

#[test]
fn a_wrong_secret_a_tampered_body_or_no_header_is_refused() {
    let forged = sign(b"other", NEGATIVE);
    assert_eq!(
        check(Some(&forged), NEGATIVE, NOW_MS),
        Err(SignatureError::Mismatch)
    );
    let sig = sign(SECRET.as_bytes(), NEGATIVE);
    let tampered = String::from_utf8(NEGATIVE.to_vec())
        .unwrap()
        .replace("\"response_score\": 2", "\"response_score\": 5");
    assert_eq!(
        check(Some(&sig), tampered.as_bytes(), NOW_MS),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(None, NEGATIVE, NOW_MS),
        Err(SignatureError::MissingHeader(SIGNATURE_HEADER.into()))
    );
    assert!(matches!(
        check(Some("%%%"), NEGATIVE, NOW_MS),
        Err(SignatureError::Malformed(_))
    ));
}

#[test]
fn a_replayed_envelope_outside_the_window_is_refused() {
    let sig = sign(SECRET.as_bytes(), NEGATIVE);
    assert!(matches!(
        check(Some(&sig), NEGATIVE, NOW_MS + 6 * 60_000),
        Err(SignatureError::Stale { .. })
    ));
    assert!(matches!(
        check(Some(&sig), NEGATIVE, NOW_MS - 6 * 60_000),
        Err(SignatureError::Stale { .. })
    ));
    assert_eq!(check(Some(&sig), NEGATIVE, NOW_MS + 4 * 60_000), Ok(()));
    let wide = source_with(json!({"replay_window": "1h"})).unwrap();
    let h = headers(&[(SIGNATURE_HEADER, &sig)]);
    assert_eq!(
        with_request(&h, NEGATIVE, NOW_MS + 30 * 60_000, |r| wide.verify(r)),
        Ok(())
    );
}

#[test]
fn the_verify_handshake_is_answered_with_its_challenge_signed_or_not() {
    assert_eq!(check(None, VERIFY, NOW_MS), Ok(()));
    assert_eq!(
        parse(VERIFY).unwrap(),
        Parsed::Reply(json!({"challenge": "DlvV0AeGiqy1uq1iTFBfgmTMRePbmBcsm7MMqJ4FwKM="}))
    );
    // A signed handshake with a wrong signature is still refused.
    assert_eq!(
        check(Some(&sign(b"other", VERIFY)), VERIFY, NOW_MS),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_created_survey_response_is_read_with_every_field() {
    let (delivery, event) = one_rating(parse(NEGATIVE).unwrap());
    assert_eq!(
        delivery.as_deref(),
        Some("evt-2b7f1c9e-0d3a-4c1f-9a7e-5e1d2c3b4a01")
    );
    assert_eq!(
        event.conversation_id,
        "don:core:dvrv-us-1:devo/1abc:ticket/318"
    );
    assert_eq!(
        event.rating_key,
        "don:core:dvrv-us-1:devo/1abc:survey_response/41"
    );
    assert_eq!(
        (event.score.scale, event.score.value),
        (Scale::FivePoint, 2)
    );
    assert_eq!(event.sentiment(None), Sentiment::Negative);
    assert_eq!(event.customer.as_deref(), Some("Jordan Lee"));
    assert_eq!(event.rated_at_ms, Some(NOW_MS - 30_000));
    assert_eq!(event.updated_at_ms, Some(NOW_MS - 30_000));
}

#[test]
fn an_updated_survey_response_is_the_same_rating_later() {
    let (_, before) = one_rating(parse(POSITIVE).unwrap());
    let (_, after) = one_rating(parse(CHANGED).unwrap());
    assert_eq!(before.sentiment(None), Sentiment::Positive);
    assert_eq!(
        (&before.conversation_id, &before.rating_key),
        (&after.conversation_id, &after.rating_key)
    );
    assert!(after.updated_at_ms > before.updated_at_ms);
    assert_eq!(
        after.score.value, 1,
        "the new response, not old_survey_response"
    );
}

#[test]
fn the_score_falls_back_to_response_rating() {
    let body = json!({"id": "e", "timestamp": "2026-11-23T14:05:00Z", "type": "survey_response_created",
        "survey_response_created": {"survey_response": {"id": "r", "object": "t", "response": {"rating": 4}}}});
    assert_eq!(
        one_rating(parse(body.to_string().as_bytes()).unwrap())
            .1
            .score
            .value,
        4
    );
}

#[test]
fn a_ten_point_score_needs_the_nps_scale_and_says_so() {
    let body = json!({"id": "e", "timestamp": "2026-11-23T14:05:00Z", "type": "survey_response_created",
        "survey_response_created": {"survey_response": {"id": "r", "object": "t", "response_score": 8}}});
    let raw = body.to_string();
    let err = parse(raw.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("set scale = \"nps\""), "{err}");
    let nps = source_with(json!({"scale": "nps"})).unwrap();
    let (_, event) = one_rating(parse_on(&nps, raw.as_bytes()).unwrap());
    assert_eq!((event.score.scale, event.score.value), (Scale::Nps, 8));
    let problems = source_with(json!({"scale": "binary"})).err().unwrap();
    assert_eq!(problems[0].key, "sources[0].scale");
}

#[test]
fn other_events_and_unscored_responses_carry_no_rating() {
    assert!(matches!(parse(OTHER).unwrap(), Parsed::NoRating { .. }));
    let body = json!({"id": "e", "timestamp": "2026-11-23T14:05:00Z", "type": "survey_response_created",
        "survey_response_created": {"survey_response": {"id": "r", "object": "t", "response": {}}}});
    assert!(matches!(
        parse(body.to_string().as_bytes()).unwrap(),
        Parsed::NoRating { .. }
    ));
}

#[test]
fn each_parse_error_names_its_field() {
    let created = |response: serde_json::Value| {
        json!({"id": "e", "timestamp": "2026-11-23T14:05:00Z",
        "type": "survey_response_created", "survey_response_created": {"survey_response": response}})
    };
    let cases = [
        (json!({"id": "e"}), "type is missing"),
        (
            json!({"type": "verify", "verify": {}}),
            "verify.challenge is missing",
        ),
        (
            json!({"type": "survey_response_created"}),
            "survey_response_created.survey_response is missing",
        ),
        (
            json!({"type": "survey_response_created", "survey_response_created": {"survey_response": {"id": "r"}}}),
            "timestamp is missing",
        ),
        (
            created(json!({"object": "t", "response_score": 2})),
            "survey_response_created.survey_response.id is missing",
        ),
        (
            created(json!({"id": "r", "response_score": 2})),
            "survey_response_created.survey_response.object is missing",
        ),
        (
            created(json!({"id": "r", "object": "t", "response_score": "two"})),
            "survey_response_created.survey_response.response_score is \"two\"",
        ),
        (
            created(json!({"id": "r", "object": "t", "response_score": 9})),
            "survey_response_created.survey_response.response_score is 9, off the five_point scale",
        ),
    ];
    for (body, expected) in cases {
        let err = parse(body.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with(expected), "{err} / {expected}");
    }
}
