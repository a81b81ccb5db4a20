//! The Freshdesk source: the token header, the rule body in its two forms,
//! the API's rating object, and its settings.

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use serde_json::json;

use super::payload::{RatingPayload, latest, read_rule_body};
use super::*;
use crate::domain::{Scale, Sentiment};
use crate::sources::testing::table;

const TOKEN: &str = "freshdesk-test-token";
const TICKET_ONLY: &[u8] =
    include_bytes!("../../../tests/fixtures/freshdesk/rule_ticket_only.json");
const NEGATIVE: &[u8] = include_bytes!("../../../tests/fixtures/freshdesk/rule_negative.json");
const POSITIVE: &[u8] = include_bytes!("../../../tests/fixtures/freshdesk/rule_positive.json");
const API_CHANGED: &[u8] =
    include_bytes!("../../../tests/fixtures/freshdesk/api_ratings_changed.json");
const API_NEGATIVE: &[u8] =
    include_bytes!("../../../tests/fixtures/freshdesk/api_ratings_negative.json");

fn settings(extra: serde_json::Value) -> serde_json::Value {
    let mut base = json!({"name": "freshdesk", "kind": "freshdesk", "secret": TOKEN});
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    base
}

fn source() -> FreshdeskSource {
    FreshdeskSource::from_settings(&table(
        "sources[0]",
        &settings(json!({"rating_in_body": true})),
    ))
    .unwrap()
}

fn check(token: Option<&str>) -> Result<(), SignatureError> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        headers.insert("X-Csatwatch-Token", HeaderValue::from_str(token).unwrap());
    }
    let uri = Uri::from_static("/webhooks/freshdesk");
    source().verify(&WebhookRequest {
        method: &Method::POST,
        uri: &uri,
        headers: &headers,
        body: TICKET_ONLY,
        now_ms: 0,
    })
}

fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    read_rule_body(&serde_json::from_slice(body).unwrap(), None)
}

#[test]
fn the_token_header_must_match_exactly() {
    assert_eq!(check(Some(TOKEN)), Ok(()));
    assert_eq!(
        check(Some("freshdesk-test-tokeN")),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(check(Some("")), Err(SignatureError::Mismatch));
    assert!(matches!(check(None), Err(SignatureError::MissingHeader(_))));
}

#[test]
fn a_body_with_only_the_ticket_asks_for_a_fetch() {
    assert_eq!(
        parse(TICKET_ONLY).unwrap(),
        Parsed::Fetch {
            delivery_id: None,
            references: vec![FetchRef {
                kind: "ticket".into(),
                id: "432".into()
            }]
        }
    );
    // An unrendered rating placeholder is no rating value either.
    let body = json!({"ticket": {"id": 7}, "rating": {"value": "{{ticket.satisfaction_rating}}"}});
    assert!(matches!(
        parse(body.to_string().as_bytes()).unwrap(),
        Parsed::Fetch { .. }
    ));
}

#[test]
fn a_body_with_a_rating_value_is_recorded_with_every_field() {
    let Parsed::Ratings { ratings, .. } = parse(NEGATIVE).unwrap() else {
        panic!("expected a rating");
    };
    let r = &ratings[0];
    assert_eq!((r.score.scale, r.score.value), (Scale::SignedSevenPoint, -102));
    assert_eq!(r.sentiment(None), Sentiment::Negative);
    assert_eq!(r.conversation_id, "433");
    assert_eq!(r.agent.as_deref(), Some("Priya Raman"));
    assert_eq!(r.team.as_deref(), Some("Billing"));
    assert_eq!(r.customer.as_deref(), Some("Jordan Lee"));
    assert_eq!(r.company.as_deref(), Some("Customer Ltd"));
    assert_eq!(r.tags, ["billing", "vip customer"]);
    assert_eq!(
        r.comment.as_deref(),
        Some("Still no refund after two weeks.")
    );
    assert_eq!(
        r.url.as_deref(),
        Some("https://acme.freshdesk.com/helpdesk/tickets/433")
    );
    let Parsed::Ratings { ratings, .. } = parse(POSITIVE).unwrap() else {
        panic!("expected a rating");
    };
    assert_eq!(ratings[0].sentiment(None), Sentiment::Positive);
}

#[test]
fn parse_errors_name_the_field() {
    let err = parse(br#"{"ticket": {"id": "1"}, "rating": {"value": "99"}}"#).unwrap_err();
    assert!(err.0.contains("rating.value"), "{err}");
    let err = parse(br#"{"ticket": {}}"#).unwrap_err();
    assert!(err.0.contains("ticket.id"), "{err}");
    let err = parse(br#"{"ticket": {"id": "{{ticket.id}}"}}"#).unwrap_err();
    assert!(err.0.contains("unrendered"), "{err}");
    assert!(parse(b"[1]").is_err());
}

#[test]
fn the_api_rating_maps_its_fields_and_a_change_is_the_same_rating_later() {
    let before: Vec<RatingPayload> = serde_json::from_slice(API_NEGATIVE).unwrap();
    let after: Vec<RatingPayload> = serde_json::from_slice(API_CHANGED).unwrap();
    let b = latest(&before).unwrap().to_event("432", None).unwrap();
    let a = latest(&after).unwrap().to_event("432", None).unwrap();
    assert_eq!((b.score.value, b.rating_key.as_str()), (-103, "102"));
    assert_eq!(b.agent.as_deref(), Some("17000123"));
    assert_eq!(b.team.as_deref(), Some("17000456"));
    assert_eq!(b.comment.as_deref(), Some("Nobody answered my question."));
    assert_eq!(a.score.value, -101, "a value written as a string is read");
    assert_eq!(
        (a.conversation_id, a.rating_key),
        (b.conversation_id, b.rating_key)
    );
    assert!(a.updated_at_ms > b.updated_at_ms);
}

#[test]
fn the_newest_of_several_ratings_is_taken() {
    let list: Vec<RatingPayload> = serde_json::from_value(json!([
        {"id": 1, "ratings": {"default_question": 103}, "updated_at": "2026-11-23T10:00:00Z"},
        {"id": 2, "ratings": {"default_question": -103}, "updated_at": "2026-11-23T11:00:00Z"}
    ]))
    .unwrap();
    assert_eq!(latest(&list).unwrap().id, json!(2));
    let unanswered: RatingPayload =
        serde_json::from_value(json!({"id": 3, "ratings": {}})).unwrap();
    assert!(unanswered.to_event("1", None).is_none());
}

#[test]
fn settings_problems_name_their_keys() {
    let keys = |extra| {
        FreshdeskSource::from_settings(&table("sources[0]", &settings(extra)))
            .err()
            .unwrap()
            .into_iter()
            .map(|p| p.key)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(json!({"api": {"base_url": "acme.freshdesk.com"}})),
        ["sources[0].api.api_key", "sources[0].api.base_url"]
    );
    assert_eq!(
        keys(json!({"scale": "nps", "rating_in_body": true})),
        ["sources[0].scale"]
    );
    // The documented rule body names only the ticket: without the API no
    // rating could ever be read, so check-config says so.
    let without_api = FreshdeskSource::from_settings(&table("sources[0]", &settings(json!({}))))
        .err()
        .unwrap();
    assert_eq!(without_api[0].key, "sources[0].api");
    assert!(
        without_api[0].message.contains("rating_in_body"),
        "{}",
        without_api[0].message
    );
    assert!(
        FreshdeskSource::from_settings(&table(
            "s",
            &settings(json!({"api": {"base_url": "https://acme.freshdesk.com", "api_key": "k"}}))
        ))
        .is_ok()
    );
}
