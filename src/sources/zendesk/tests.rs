//! The Zendesk source through its `Source` face: settings, signed
//! deliveries, and the published fixtures. Pure signature vectors are in
//! `signature.rs`.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use secrecy::SecretString;
use serde_json::json;

use super::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use super::*;
use crate::domain::{RatingEvent, Scale, Sentiment};
use crate::settings::SourceSettings;

const SECRET: &str = "zendesk-test-signing-secret";
/// 2026-11-23T14:05:00Z, the fixtures' time.
const NOW_MS: i64 = 1_795_442_700_000;
const NOW_TEXT: &str = "2026-11-23T14:05:00Z";

fn settings() -> SourceSettings {
    serde_json::from_value(json!({"name": "zendesk", "kind": "zendesk", "secret": SECRET})).unwrap()
}

fn source() -> ZendeskSource {
    ZendeskSource::from_settings("sources[0]", &settings()).unwrap()
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

const BAD: &[u8] = include_bytes!("../../../tests/fixtures/zendesk/bad_rating.json");
const GOOD: &[u8] = include_bytes!("../../../tests/fixtures/zendesk/good_rating.json");
const LABEL: &[u8] = include_bytes!("../../../tests/fixtures/zendesk/bad_with_rendered_label.json");
const OFFERED: &[u8] = include_bytes!("../../../tests/fixtures/zendesk/offered.json");
const CHANGED: &[u8] = include_bytes!("../../../tests/fixtures/zendesk/changed_to_bad.json");

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
fn a_bad_rating_is_read_with_every_field() {
    let event = one_rating(parse(BAD).unwrap());
    assert_eq!(event.conversation_id, "48213");
    assert_eq!(event.rating_key, "");
    assert_eq!((event.score.scale, event.score.value), (Scale::Binary, 0));
    assert_eq!(event.sentiment(None), Sentiment::Negative);
    assert_eq!(
        event.comment.as_deref(),
        Some("Still waiting for my refund after two weeks.")
    );
    assert_eq!(event.agent.as_deref(), Some("Priya Raman"));
    assert_eq!(event.team.as_deref(), Some("Billing"));
    assert_eq!(event.brand.as_deref(), Some("Acme"));
    assert_eq!(event.customer.as_deref(), Some("Jordan Lee"));
    assert_eq!(event.company.as_deref(), Some("Customer Ltd"));
    assert_eq!(event.tags, vec!["billing", "vip"]);
    assert_eq!(
        event.url.as_deref(),
        Some("https://acme.zendesk.com/agent/tickets/48213")
    );
    assert_eq!(event.updated_at_ms, Some(NOW_MS));
    assert_eq!(event.rated_at_ms, None);
}

#[test]
fn a_good_rating_is_positive() {
    let event = one_rating(parse(GOOD).unwrap());
    assert_eq!(event.score.value, 1);
    assert_eq!(event.sentiment(None), Sentiment::Positive);
}

#[test]
fn a_rendered_label_is_read_as_its_rating() {
    let event = one_rating(parse(LABEL).unwrap());
    assert_eq!(event.score.value, 0);
    assert_eq!(event.comment, None, "an empty comment is no comment");
    for label in ["Good, I'm satisfied", "GOOD", " good "] {
        let body = json!({"ticket": {"id": "1"}, "satisfaction": {"current_rating": label}});
        assert_eq!(
            one_rating(parse(body.to_string().as_bytes()).unwrap())
                .score
                .value,
            1,
            "{label}"
        );
    }
}

#[test]
fn a_change_to_bad_is_the_same_rating_later() {
    let before = one_rating(parse(GOOD).unwrap());
    let after = one_rating(parse(CHANGED).unwrap());
    assert_eq!(
        (before.conversation_id.as_str(), before.rating_key.as_str()),
        (after.conversation_id.as_str(), after.rating_key.as_str())
    );
    assert!(after.updated_at_ms > before.updated_at_ms);
    assert_eq!(after.sentiment(None), Sentiment::Negative);
}

#[test]
fn an_offered_but_unanswered_survey_carries_no_rating() {
    assert!(matches!(parse(OFFERED).unwrap(), Parsed::NoRating { .. }));
    for raw in ["unoffered", "Offered", "", "  "] {
        let body = json!({"ticket": {"id": "1"}, "satisfaction": {"current_rating": raw}});
        assert!(
            matches!(
                parse(body.to_string().as_bytes()).unwrap(),
                Parsed::NoRating { .. }
            ),
            "{raw:?}"
        );
    }
}

#[test]
fn an_unknown_rating_is_named_with_its_value() {
    let body = json!({"ticket": {"id": "1"}, "satisfaction": {"current_rating": "xyz"}});
    let err = parse(body.to_string().as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "satisfaction.current_rating is \"xyz\"; expected good or bad"
    );
}

#[test]
fn a_missing_ticket_id_is_named() {
    for body in [
        json!({"satisfaction": {"current_rating": "bad"}}),
        json!({"ticket": {"id": ""}, "satisfaction": {"current_rating": "bad"}}),
    ] {
        let err = parse(body.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("ticket.id is missing"), "{err}");
    }
}

#[test]
fn an_unrendered_ticket_id_is_refused() {
    let body =
        json!({"ticket": {"id": "{{ticket.id}}"}, "satisfaction": {"current_rating": "bad"}});
    let err = parse(body.to_string().as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ticket.id is an unrendered placeholder"),
        "{err}"
    );
}

#[test]
fn a_missing_satisfaction_is_named() {
    let err = parse(json!({"ticket": {"id": "1"}}).to_string().as_bytes()).unwrap_err();
    assert!(
        err.to_string().starts_with("satisfaction is missing"),
        "{err}"
    );
}

#[test]
fn a_numeric_ticket_id_is_read_as_text() {
    let body = json!({"ticket": {"id": 1234}, "satisfaction": {"current_rating": "bad"}});
    assert_eq!(
        one_rating(parse(body.to_string().as_bytes()).unwrap()).conversation_id,
        "1234"
    );
}

#[test]
fn a_body_that_is_not_json_says_where() {
    let err = parse(b"{\"ticket\": ").unwrap_err();
    assert!(
        err.to_string().starts_with("the body is not valid JSON"),
        "{err}"
    );
}

#[test]
fn parse_errors_never_echo_the_customer_comment() {
    let comment = "my private complaint about the product";
    let body = json!({"satisfaction": {"current_rating": "bad", "current_comment": comment}});
    assert!(
        !parse(body.to_string().as_bytes())
            .unwrap_err()
            .to_string()
            .contains("private")
    );
    let long = json!({"ticket": {"id": "1"}, "satisfaction": {"current_rating": comment}});
    assert!(
        !parse(long.to_string().as_bytes())
            .unwrap_err()
            .to_string()
            .contains("private")
    );
}

#[test]
fn fallbacks_fill_the_agent_customer_and_link() {
    let mut s = settings();
    s.ticket_url = Some("https://acme.zendesk.com/agent/tickets/{conversation_id}".into());
    let source = ZendeskSource::from_settings("sources[0]", &s).unwrap();
    let body = json!({
        "ticket": {"id": "7", "link": "", "brand": "{{ticket.brand.name}}"},
        "assignee": {"name": "", "email": "agent@acme.example"},
        "requester": {"name": " ", "email": "c@customer.example"},
        "satisfaction": {"current_rating": "bad"},
        "updated_at": "November 23, 2026 14:05"
    });
    let event = one_rating(parse_with(&source, body.to_string().as_bytes()).unwrap());
    assert_eq!(event.agent.as_deref(), Some("agent@acme.example"));
    assert_eq!(event.customer.as_deref(), Some("c@customer.example"));
    assert_eq!(
        event.url.as_deref(),
        Some("https://acme.zendesk.com/agent/tickets/7")
    );
    assert_eq!(event.brand, None, "an unrendered placeholder is no value");
    assert_eq!(
        event.updated_at_ms, None,
        "an unreadable time is left out, never an error"
    );
}

#[test]
fn a_link_without_a_scheme_gets_https() {
    let body = json!({"ticket": {"id": "7", "link": "acme.zendesk.com/agent/tickets/7"}, "satisfaction": {"current_rating": "bad"}});
    let event = one_rating(parse(body.to_string().as_bytes()).unwrap());
    assert_eq!(
        event.url.as_deref(),
        Some("https://acme.zendesk.com/agent/tickets/7")
    );
}

#[test]
fn another_body_version_is_refused() {
    let body =
        json!({"csatwatch": 2, "ticket": {"id": "1"}, "satisfaction": {"current_rating": "bad"}});
    let err = parse(body.to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().starts_with("csatwatch is 2"), "{err}");
}

#[test]
fn a_missing_secret_says_where_to_find_it() {
    let mut s = settings();
    s.secret = None;
    let problems = ZendeskSource::from_settings("sources[3]", &s)
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
    s.scale = Some("five_point".into());
    s.replay_window = Some(Duration::ZERO);
    s.ticket_url = Some("https://acme.zendesk.com/agent/tickets/".into());
    let keys: Vec<String> = ZendeskSource::from_settings("sources[0]", &s)
        .err()
        .unwrap()
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(
        keys,
        [
            "sources[0].replay_window",
            "sources[0].ticket_url",
            "sources[0].scale"
        ]
    );
}

#[test]
fn the_replay_window_is_configurable() {
    let mut s = settings();
    s.replay_window = Some(Duration::from_secs(3600));
    let source = ZendeskSource::from_settings("sources[0]", &s).unwrap();
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
    s.secret = Some(SecretString::from(
        "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==".to_string(),
    ));
    let source = ZendeskSource::from_settings("sources[0]", &s).unwrap();
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
