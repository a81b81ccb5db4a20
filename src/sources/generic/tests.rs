//! The generic source through its `Source` face: settings, both signature
//! schemes, and reading bodies by pointer.

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::*;
use crate::domain::{RatingEvent, Sentiment};
use crate::sources::signature::{Encoding, hmac_sha256, sign_standard_webhooks};

const SECRET: &str = "generic-test-secret";
const NOW_MS: i64 = 1_795_442_700_000;

const NEGATIVE: &[u8] = include_bytes!("../../../tests/fixtures/generic/negative.json");
const POSITIVE: &[u8] = include_bytes!("../../../tests/fixtures/generic/positive.json");
const CHANGED: &[u8] = include_bytes!("../../../tests/fixtures/generic/changed.json");
const NO_SCORE: &[u8] = include_bytes!("../../../tests/fixtures/generic/no_score.json");

/// The fields the fixtures need, plus `extra` keys on the source.
fn settings(extra: Value) -> SourceSettings {
    let mut s = json!({
        "name": "inhouse", "kind": "generic", "secret": SECRET,
        "fields": {
            "conversation_id": "/ticket/id", "score": "/rating/score", "scale": "/survey/scale",
            "rating_key": "/rating/id", "comment": "/rating/comment", "agent": "/agent/name",
            "team": "/ticket/team", "customer": "/customer/name", "company": "/customer/company",
            "brand": "/ticket/brand", "tags": "/ticket/tags", "url": "/ticket/url",
            "rated_at": "/rating/rated_at", "updated_at": "/rating/updated_at", "delivery_id": "/id"
        }
    });
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    serde_json::from_value(s).unwrap()
}

fn source(extra: Value) -> GenericSource {
    GenericSource::from_settings("sources[1]", &settings(extra)).unwrap()
}

fn problems(extra: Value) -> Vec<String> {
    let s = settings(extra);
    GenericSource::from_settings("sources[1]", &s)
        .err()
        .unwrap()
        .into_iter()
        .map(|p| p.key)
        .collect()
}

fn request<'a>(headers: &'a HeaderMap, body: &'a [u8], uri: &'a Uri) -> WebhookRequest<'a> {
    WebhookRequest {
        method: &Method::POST,
        uri,
        headers,
        body,
        now_ms: NOW_MS,
    }
}

fn with_header(name: &'static str, value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(name, HeaderValue::from_str(value).unwrap());
    h
}

fn verify(source: &GenericSource, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    let uri = Uri::from_static("/webhooks/inhouse");
    source.verify(&request(headers, body, &uri))
}

fn parse(source: &GenericSource, body: &[u8]) -> Result<Parsed, ParseError> {
    let uri = Uri::from_static("/webhooks/inhouse");
    source.parse(&request(&HeaderMap::new(), body, &uri))
}

fn one(parsed: Parsed) -> (Option<String>, RatingEvent) {
    match parsed {
        Parsed::Ratings {
            delivery_id,
            mut ratings,
        } if ratings.len() == 1 => (delivery_id, ratings.remove(0)),
        other => panic!("expected one rating, got {other:?}"),
    }
}

fn hex_signature(body: &[u8]) -> String {
    hex::encode(hmac_sha256(SECRET.as_bytes(), &[body]))
}

#[test]
fn a_hex_signature_in_the_default_header_is_accepted() {
    let s = source(json!({}));
    assert_eq!(
        verify(
            &s,
            &with_header("X-Signature", &hex_signature(NEGATIVE)),
            NEGATIVE
        ),
        Ok(())
    );
}

#[test]
fn upper_case_hex_is_accepted() {
    let s = source(json!({}));
    let upper = hex_signature(NEGATIVE).to_ascii_uppercase();
    assert_eq!(
        verify(&s, &with_header("X-Signature", &upper), NEGATIVE),
        Ok(())
    );
}

#[test]
fn a_body_signed_with_the_wrong_secret_is_refused() {
    let s = source(json!({}));
    let forged = hex::encode(hmac_sha256(b"not-the-secret", &[NEGATIVE]));
    assert_eq!(
        verify(&s, &with_header("X-Signature", &forged), NEGATIVE),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_tampered_body_is_refused() {
    let s = source(json!({}));
    let headers = with_header("X-Signature", &hex_signature(NEGATIVE));
    assert_eq!(
        verify(&s, &headers, POSITIVE),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_missing_signature_header_is_named() {
    let s = source(json!({"signature_header": "X-Hub-Signature-256"}));
    let wrong_header = with_header("X-Signature", &hex_signature(NEGATIVE));
    assert_eq!(
        verify(&s, &wrong_header, NEGATIVE),
        Err(SignatureError::MissingHeader("X-Hub-Signature-256".into()))
    );
}

#[test]
fn a_configured_prefix_is_stripped_and_required() {
    let s =
        source(json!({"signature_header": "X-Hub-Signature-256", "signature_prefix": "sha256="}));
    let good = format!("sha256={}", hex_signature(NEGATIVE));
    assert_eq!(
        verify(&s, &with_header("X-Hub-Signature-256", &good), NEGATIVE),
        Ok(())
    );
    let bare = hex_signature(NEGATIVE);
    assert_eq!(
        verify(&s, &with_header("X-Hub-Signature-256", &bare), NEGATIVE),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_base64_signature_is_accepted_when_configured() {
    let s = source(json!({"signature_encoding": "base64"}));
    let b64 = Encoding::Base64.encode(&hmac_sha256(SECRET.as_bytes(), &[NEGATIVE]));
    assert_eq!(
        verify(&s, &with_header("X-Signature", &b64), NEGATIVE),
        Ok(())
    );
    let hex = hex_signature(NEGATIVE);
    assert!(verify(&s, &with_header("X-Signature", &hex), NEGATIVE).is_err());
}

#[test]
fn standard_webhooks_are_verified_and_carry_their_id() {
    let s = source(
        json!({"signature": "standard-webhooks", "fields": {"conversation_id": "/ticket/id", "score": "/rating/score"}}),
    );
    let secret = SecretString::from(SECRET.to_string());
    let signed_at = NOW_MS / 1000;
    let mut headers = with_header("webhook-id", "msg_2b7Yc");
    headers.insert("webhook-timestamp", HeaderValue::from(signed_at));
    let sig = sign_standard_webhooks(&secret, "msg_2b7Yc", signed_at, NEGATIVE);
    headers.insert("webhook-signature", HeaderValue::from_str(&sig).unwrap());
    assert_eq!(verify(&s, &headers, NEGATIVE), Ok(()));
    assert_eq!(
        verify(&s, &headers, POSITIVE),
        Err(SignatureError::Mismatch)
    );

    let uri = Uri::from_static("/webhooks/inhouse");
    let late = WebhookRequest {
        now_ms: NOW_MS + 301_000,
        ..request(&headers, NEGATIVE, &uri)
    };
    assert!(matches!(s.verify(&late), Err(SignatureError::Stale { .. })));
    let early = WebhookRequest {
        now_ms: NOW_MS - 301_000,
        ..request(&headers, NEGATIVE, &uri)
    };
    assert!(matches!(
        s.verify(&early),
        Err(SignatureError::Stale { .. })
    ));

    let (delivery_id, _) = one(s.parse(&request(&headers, NEGATIVE, &uri)).unwrap());
    assert_eq!(delivery_id.as_deref(), Some("msg_2b7Yc"));
}

#[test]
fn a_negative_rating_is_read_with_every_field() {
    let (delivery_id, event) = one(parse(&source(json!({})), NEGATIVE).unwrap());
    assert_eq!(delivery_id.as_deref(), Some("evt_7Jd2kQ"));
    assert_eq!(event.conversation_id, "90211", "a numeric id becomes text");
    assert_eq!(event.rating_key, "r-553");
    assert_eq!(
        (event.score.scale, event.score.value),
        (Scale::FivePoint, 1)
    );
    assert_eq!(event.sentiment(None), Sentiment::Negative);
    assert_eq!(
        event.comment.as_deref(),
        Some("Nobody answered for three days.")
    );
    assert_eq!(event.agent.as_deref(), Some("Sam Ortiz"));
    assert_eq!(event.team.as_deref(), Some("Tier 2"));
    assert_eq!(event.customer.as_deref(), Some("Dana Kim"));
    assert_eq!(event.company.as_deref(), Some("Globex"));
    assert_eq!(event.brand.as_deref(), Some("Acme"));
    assert_eq!(event.tags, vec!["refund", "priority"]);
    assert_eq!(
        event.url.as_deref(),
        Some("https://support.example.com/tickets/90211")
    );
    assert_eq!(event.rated_at_ms, Some(1_795_442_531_000));
    assert_eq!(event.updated_at_ms, Some(1_795_442_531_000));
}

#[test]
fn a_positive_rating_is_positive_and_an_empty_comment_is_none() {
    let (_, event) = one(parse(&source(json!({})), POSITIVE).unwrap());
    assert_eq!(event.sentiment(None), Sentiment::Positive);
    assert_eq!(event.comment, None);
}

#[test]
fn a_changed_rating_keeps_its_key_and_moves_its_time() {
    let s = source(json!({}));
    let (_, before) = one(parse(&s, POSITIVE).unwrap());
    let (_, after) = one(parse(&s, CHANGED).unwrap());
    assert_eq!(
        (&before.conversation_id, &before.rating_key),
        (&after.conversation_id, &after.rating_key)
    );
    assert_eq!(
        after.updated_at_ms,
        Some(1_795_521_600_000),
        "Unix seconds are read"
    );
    assert_eq!(after.sentiment(None), Sentiment::Negative);
}

#[test]
fn a_delivery_without_a_score_carries_no_rating() {
    let s = source(json!({}));
    assert_eq!(
        parse(&s, NO_SCORE).unwrap(),
        Parsed::NoRating {
            reason: "no score in the delivery".into()
        }
    );
    for body in [
        json!({"ticket": {"id": 1}}),
        json!({"ticket": {"id": 1}, "rating": {"score": ""}}),
    ] {
        assert!(matches!(
            parse(&s, body.to_string().as_bytes()).unwrap(),
            Parsed::NoRating { .. }
        ));
    }
}

fn parse_error(body: Value) -> String {
    parse(&source(json!({})), body.to_string().as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn a_score_off_the_scale_is_named_with_the_scale() {
    let err = parse_error(json!({"ticket": {"id": 1}, "rating": {"score": 7}}));
    assert_eq!(err, "score 7 is not on the five_point scale (1..=5)");
    let nps = parse_error(
        json!({"ticket": {"id": 1}, "survey": {"scale": "nps"}, "rating": {"score": 11}}),
    );
    assert_eq!(nps, "score 11 is not on the nps scale (0..=10)");
}

#[test]
fn the_body_can_name_its_scale() {
    let body = json!({"ticket": {"id": 1}, "survey": {"scale": "nps"}, "rating": {"score": "6"}});
    let (_, event) = one(parse(&source(json!({})), body.to_string().as_bytes()).unwrap());
    assert_eq!((event.score.scale, event.score.value), (Scale::Nps, 6));
    let err = parse_error(
        json!({"ticket": {"id": 1}, "survey": {"scale": "stars"}, "rating": {"score": 1}}),
    );
    assert!(
        err.starts_with("scale (/survey/scale) is \"stars\""),
        "{err}"
    );
}

#[test]
fn the_configured_scale_reads_words() {
    let s = source(json!({"scale": "three_point"}));
    let body = json!({"ticket": {"id": "A-1"}, "rating": {"score": "Not Good"}});
    let (_, event) = one(parse(&s, body.to_string().as_bytes()).unwrap());
    assert_eq!(
        (event.score.scale, event.score.value),
        (Scale::ThreePoint, 1)
    );
}

#[test]
fn each_parse_error_names_its_field_and_pointer() {
    let base = |extra: Value| {
        let mut b = json!({"ticket": {"id": 1}, "rating": {"score": 3}});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        parse_error(b)
    };
    let missing_id = parse_error(json!({"rating": {"score": 3}}));
    assert_eq!(
        missing_id,
        "conversation_id (/ticket/id) is missing or empty"
    );
    let object_id = parse_error(json!({"ticket": {"id": {"n": 1}}, "rating": {"score": 3}}));
    assert_eq!(
        object_id,
        "conversation_id (/ticket/id) is an object; expected a string or a number"
    );
    assert!(
        parse_error(json!({"ticket": {"id": 1}, "rating": {"score": true}}))
            .starts_with("score (/rating/score) is a boolean")
    );
    assert!(base(json!({"agent": {"name": ["x"]}})).starts_with("agent (/agent/name) is an array"));
    assert!(
        base(json!({"ticket": {"id": 1, "tags": {"a": 1}}}))
            .starts_with("tags (/ticket/tags) is an object")
    );
    let when = base(json!({"rating": {"score": 3, "updated_at": "yesterday"}}));
    assert_eq!(
        when,
        "updated_at (/rating/updated_at) is not an RFC 3339 time or Unix seconds or milliseconds"
    );
    assert!(
        base(json!({"rating": {"score": 3, "rated_at": "nope"}}))
            .starts_with("rated_at (/rating/rated_at)")
    );
}

#[test]
fn parse_errors_never_echo_the_customer_comment() {
    let comment = "my private complaint about the product";
    let err =
        parse_error(json!({"ticket": {"id": 1}, "rating": {"score": comment, "comment": comment}}));
    assert!(!err.contains("private"), "{err}");
}

#[test]
fn times_and_tags_come_in_several_shapes() {
    let s = source(json!({}));
    let body = json!({"ticket": {"id": 1, "tags": "a, b ,,c"}, "rating": {"score": 3, "rated_at": 1_795_442_700_123_i64, "updated_at": "1795442700"}});
    let (_, event) = one(parse(&s, body.to_string().as_bytes()).unwrap());
    assert_eq!(event.tags, vec!["a", "b", "c"]);
    assert_eq!(
        event.rated_at_ms,
        Some(1_795_442_700_123),
        "milliseconds stay milliseconds"
    );
    assert_eq!(
        event.updated_at_ms,
        Some(NOW_MS),
        "seconds in a string are read"
    );
}

#[test]
fn pointers_follow_rfc_6901_escapes_and_indexes() {
    let s = source(
        json!({"fields": {"conversation_id": "/data/a~1b", "score": "/answers/0/value", "comment": "/data/x~0y"}}),
    );
    let body = json!({"data": {"a/b": "T-9", "x~y": "why"}, "answers": [{"value": 2}]});
    let (delivery_id, event) = one(parse(&s, body.to_string().as_bytes()).unwrap());
    assert_eq!(
        (event.conversation_id.as_str(), event.score.value),
        ("T-9", 2)
    );
    assert_eq!(event.comment.as_deref(), Some("why"));
    assert_eq!(
        (delivery_id, event.rating_key.as_str()),
        (None, ""),
        "unset pointers give nothing"
    );
}

#[test]
fn the_ticket_url_template_fills_a_missing_link() {
    let s = source(json!({"ticket_url": "https://desk.example/t/{conversation_id}"}));
    let body = json!({"ticket": {"id": 77}, "rating": {"score": 1}});
    let (_, event) = one(parse(&s, body.to_string().as_bytes()).unwrap());
    assert_eq!(event.url.as_deref(), Some("https://desk.example/t/77"));
}

#[test]
fn required_settings_are_each_named() {
    let keys = problems(json!({"secret": null, "fields": {}}));
    assert_eq!(
        keys,
        [
            "sources[1].secret",
            "sources[1].fields.conversation_id",
            "sources[1].fields.score"
        ]
    );
    let keys = problems(json!({"fields": null}));
    assert_eq!(
        keys,
        [
            "sources[1].fields.conversation_id",
            "sources[1].fields.score"
        ]
    );
}

#[test]
fn pointers_must_start_with_a_slash_and_required_ones_cannot_be_empty() {
    let keys = problems(
        json!({"fields": {"conversation_id": "", "score": "rating.score", "comment": ""}}),
    );
    assert_eq!(
        keys,
        [
            "sources[1].fields.conversation_id",
            "sources[1].fields.score"
        ]
    );
}

#[test]
fn signature_choices_are_checked() {
    assert_eq!(
        problems(json!({"signature": "sha1"})),
        ["sources[1].signature"]
    );
    assert_eq!(
        problems(json!({"signature_encoding": "base32"})),
        ["sources[1].signature_encoding"]
    );
    assert_eq!(
        problems(json!({"signature_header": "bad header"})),
        ["sources[1].signature_header"]
    );
    assert_eq!(
        problems(json!({"signature": "standard-webhooks", "signature_prefix": "sha256="})),
        ["sources[1].signature_prefix"]
    );
    assert_eq!(
        problems(json!({"replay_window": "10m"})),
        ["sources[1].replay_window"]
    );
}
