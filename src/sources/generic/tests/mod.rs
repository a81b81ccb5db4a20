//! The generic source through its `Source` face: settings and both signature
//! schemes, with the helpers `parse.rs` shares.

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::*;
use crate::domain::RatingEvent;
use crate::sources::signature::{Encoding, hmac_sha256, sign_standard_webhooks};
use crate::sources::testing::table;

mod parse;

const SECRET: &str = "generic-test-secret";
const NOW_MS: i64 = 1_795_442_700_000;

const NEGATIVE: &[u8] = include_bytes!("../../../../tests/fixtures/generic/negative.json");
const POSITIVE: &[u8] = include_bytes!("../../../../tests/fixtures/generic/positive.json");
const CHANGED: &[u8] = include_bytes!("../../../../tests/fixtures/generic/changed.json");
const NO_SCORE: &[u8] = include_bytes!("../../../../tests/fixtures/generic/no_score.json");

/// The fields the fixtures need, plus `extra` keys on the source.
fn settings(extra: Value) -> Value {
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
    s
}

fn source(extra: Value) -> GenericSource {
    GenericSource::from_settings(&table("sources[1]", &settings(extra))).unwrap()
}

fn problems(extra: Value) -> Vec<String> {
    let s = settings(extra);
    GenericSource::from_settings(&table("sources[1]", &s))
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
