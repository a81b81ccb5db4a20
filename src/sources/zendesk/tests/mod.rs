//! The Zendesk source through its `Source` face: settings and signed
//! deliveries, with the helpers `parse.rs` shares. Pure signature vectors
//! are in `../signature.rs`.

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use serde_json::json;

use super::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use super::*;
use crate::domain::RatingEvent;
use crate::sources::testing::table;

mod parse;

const SECRET: &str = "zendesk-test-signing-secret";
/// 2026-11-23T14:05:00Z, the fixtures' time.
const NOW_MS: i64 = 1_795_442_700_000;
const NOW_TEXT: &str = "2026-11-23T14:05:00Z";

fn settings() -> serde_json::Value {
    json!({"name": "zendesk", "kind": "zendesk", "secret": SECRET})
}

fn source() -> ZendeskSource {
    ZendeskSource::from_settings(&table("sources[0]", &settings())).unwrap()
}

fn headers(signature: &str, timestamp: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
    h.insert(TIMESTAMP_HEADER, HeaderValue::from_str(timestamp).unwrap());
    h
}

fn signed(body: &[u8], timestamp: &str) -> HeaderMap {
    headers(&sign(SECRET.as_bytes(), timestamp, body), timestamp)
}

fn check(headers: &HeaderMap, body: &[u8], now_ms: i64) -> Result<(), SignatureError> {
    let uri = Uri::from_static("/webhooks/zendesk");
    let request = WebhookRequest {
        method: &Method::POST,
        uri: &uri,
        headers,
        body,
        now_ms,
    };
    source().verify(&request)
}

fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    parse_with(&source(), body)
}

fn parse_with(source: &ZendeskSource, body: &[u8]) -> Result<Parsed, ParseError> {
    let uri = Uri::from_static("/webhooks/zendesk");
    let headers = HeaderMap::new();
    let request = WebhookRequest {
        method: &Method::POST,
        uri: &uri,
        headers: &headers,
        body,
        now_ms: NOW_MS,
    };
    source.parse(&request)
}

fn one_rating(parsed: Parsed) -> RatingEvent {
    match parsed {
        Parsed::Ratings {
            delivery_id: None,
            mut ratings,
        } if ratings.len() == 1 => ratings.remove(0),
        other => panic!("expected one rating without a delivery id, got {other:?}"),
    }
}

const BAD: &[u8] = include_bytes!("../../../../tests/fixtures/zendesk/bad_rating.json");
const GOOD: &[u8] = include_bytes!("../../../../tests/fixtures/zendesk/good_rating.json");
const LABEL: &[u8] =
    include_bytes!("../../../../tests/fixtures/zendesk/bad_with_rendered_label.json");
const OFFERED: &[u8] = include_bytes!("../../../../tests/fixtures/zendesk/offered.json");
const CHANGED: &[u8] = include_bytes!("../../../../tests/fixtures/zendesk/changed_to_bad.json");

#[test]
fn a_correctly_signed_delivery_is_accepted() {
    assert_eq!(check(&signed(BAD, NOW_TEXT), BAD, NOW_MS), Ok(()));
}

#[test]
fn a_body_signed_with_the_wrong_secret_is_refused() {
    let forged = headers(&sign(b"another-secret", NOW_TEXT, BAD), NOW_TEXT);
    assert_eq!(check(&forged, BAD, NOW_MS), Err(SignatureError::Mismatch));
}

#[test]
fn a_tampered_body_is_refused() {
    let tampered = String::from_utf8(BAD.to_vec())
        .unwrap()
        .replace("\"bad\"", "\"good\"");
    assert_eq!(
        check(&signed(BAD, NOW_TEXT), tampered.as_bytes(), NOW_MS),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_replayed_delivery_outside_the_window_is_refused() {
    let six_minutes = 6 * 60 * 1000;
    assert!(matches!(
        check(&signed(BAD, NOW_TEXT), BAD, NOW_MS + six_minutes),
        Err(SignatureError::Stale { .. })
    ));
    assert_eq!(
        check(&signed(BAD, NOW_TEXT), BAD, NOW_MS + 4 * 60 * 1000),
        Ok(())
    );
}

#[test]
fn a_timestamp_from_the_future_is_refused() {
    let ahead = "2026-11-23T14:11:00Z";
    assert!(matches!(
        check(&signed(BAD, ahead), BAD, NOW_MS),
        Err(SignatureError::Stale { .. })
    ));
}

#[test]
fn a_signed_timestamp_that_is_not_a_date_is_malformed() {
    // The third-party vectors sign "1234": the HMAC matches but no window can.
    assert!(matches!(
        check(&signed(BAD, "1234"), BAD, NOW_MS),
        Err(SignatureError::Malformed(_))
    ));
}

#[test]
fn a_missing_signature_or_timestamp_header_is_named() {
    let mut only_ts = signed(BAD, NOW_TEXT);
    only_ts.remove(SIGNATURE_HEADER);
    assert_eq!(
        check(&only_ts, BAD, NOW_MS),
        Err(SignatureError::MissingHeader(SIGNATURE_HEADER.into()))
    );
    let mut only_sig = signed(BAD, NOW_TEXT);
    only_sig.remove(TIMESTAMP_HEADER);
    assert_eq!(
        check(&only_sig, BAD, NOW_MS),
        Err(SignatureError::MissingHeader(TIMESTAMP_HEADER.into()))
    );
}

#[test]
fn a_missing_secret_says_where_to_find_it() {
    let mut s = settings();
    s.as_object_mut().unwrap().remove("secret");
    let problems = ZendeskSource::from_settings(&table("sources[3]", &s))
        .err()
        .unwrap();
    assert_eq!(problems[0].key, "sources[3].secret");
    assert!(
        problems[0].message.contains("Reveal secret"),
        "{}",
        problems[0].message
    );
}

#[test]
fn generic_only_keys_and_a_zero_window_are_refused() {
    let mut s = settings();
    s["scale"] = json!("five_point");
    s["replay_window"] = json!("0s");
    s["ticket_url"] = json!("https://acme.zendesk.com/agent/tickets/");
    let keys: Vec<String> = ZendeskSource::from_settings(&table("sources[0]", &s))
        .err()
        .unwrap()
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(
        keys,
        [
            "sources[0].scale",
            "sources[0].replay_window",
            "sources[0].ticket_url"
        ]
    );
}

#[test]
fn the_replay_window_is_configurable() {
    let mut s = settings();
    s["replay_window"] = json!("1h");
    let source = ZendeskSource::from_settings(&table("sources[0]", &s)).unwrap();
    let uri = Uri::from_static("/webhooks/zendesk");
    let headers = signed(BAD, NOW_TEXT);
    let request = WebhookRequest {
        method: &Method::POST,
        uri: &uri,
        headers: &headers,
        body: BAD,
        now_ms: NOW_MS + 30 * 60 * 1000,
    };
    assert_eq!(source.verify(&request), Ok(()));
}

/// The documented vector through the whole source: Zendesk's static test
/// secret, configured as the operator would paste it, is used verbatim.
#[test]
fn the_static_test_secret_is_used_verbatim_end_to_end() {
    let mut s = settings();
    s["secret"] = json!("dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==");
    let source = ZendeskSource::from_settings(&table("sources[0]", &s)).unwrap();
    let uri = Uri::from_static("/webhooks/zendesk");
    let headers = headers(
        "S/RDdU2ERmj7LHDDoWJ2onPYH+t7/f2+LTM4dL7UiLM=",
        "2021-03-25T05:09:27Z",
    );
    let request = WebhookRequest {
        method: &Method::POST,
        uri: &uri,
        headers: &headers,
        body: br#"{"event":"ticket.updated","id":123}"#,
        now_ms: 1_616_648_967_000,
    };
    assert_eq!(source.verify(&request), Ok(()));
}
