//! The Gorgias source: the token header, the three accepted bodies, the
//! survey object from the API, and its settings.

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use serde_json::json;

use super::payload::{read_body, survey_from_api};
use super::*;
use crate::domain::{Scale, Sentiment};
use crate::sources::FetchRef;

const TOKEN: &str = "gorgias-test-token";
const NEGATIVE: &[u8] = include_bytes!("../../../tests/fixtures/gorgias/negative.json");
const POSITIVE: &[u8] = include_bytes!("../../../tests/fixtures/gorgias/positive.json");
const CHANGED: &[u8] = include_bytes!("../../../tests/fixtures/gorgias/survey_object_changed.json");
const SENT: &[u8] = include_bytes!("../../../tests/fixtures/gorgias/survey_sent_event.json");
const RESPONDED: &[u8] =
    include_bytes!("../../../tests/fixtures/gorgias/survey_responded_event.json");
const API_UNANSWERED: &[u8] =
    include_bytes!("../../../tests/fixtures/gorgias/api_survey_unanswered.json");

fn source(extra: serde_json::Value) -> Result<GorgiasSource, Vec<ConfigProblem>> {
    let mut base = json!({"name": "gorgias", "kind": "gorgias", "secret": TOKEN});
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    GorgiasSource::from_settings(&crate::sources::testing::table("sources[0]", &base))
}

fn request<'a>(headers: &'a HeaderMap, uri: &'a Uri, body: &'a [u8]) -> WebhookRequest<'a> {
    WebhookRequest {
        method: &Method::POST,
        uri,
        headers,
        body,
        now_ms: 0,
    }
}

fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    read_body(&serde_json::from_slice(body).unwrap())
}

fn one(parsed: Parsed) -> RatingEvent {
    match parsed {
        Parsed::Ratings { mut ratings, .. } if ratings.len() == 1 => ratings.remove(0),
        other => panic!("expected one rating, got {other:?}"),
    }
}

use crate::domain::RatingEvent;

#[test]
fn the_token_header_must_match_exactly() {
    let uri = Uri::from_static("/webhooks/gorgias");
    let source = source(json!({})).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("X-Csatwatch-Token", HeaderValue::from_static(TOKEN));
    assert_eq!(source.verify(&request(&headers, &uri, NEGATIVE)), Ok(()));
    headers.insert(
        "X-Csatwatch-Token",
        HeaderValue::from_static("gorgias-test-tokeX"),
    );
    assert_eq!(
        source.verify(&request(&headers, &uri, NEGATIVE)),
        Err(SignatureError::Mismatch)
    );
    assert!(matches!(
        source.verify(&request(&HeaderMap::new(), &uri, NEGATIVE)),
        Err(SignatureError::MissingHeader(_))
    ));
}

#[test]
fn our_template_is_read_with_every_field() {
    let r = one(parse(NEGATIVE).unwrap());
    assert_eq!((r.score.scale, r.score.value), (Scale::FivePoint, 1));
    assert_eq!(r.sentiment(None), Sentiment::Negative);
    assert_eq!(
        (r.conversation_id.as_str(), r.rating_key.as_str()),
        ("500", "")
    );
    assert_eq!(r.comment.as_deref(), Some("The parcel never arrived."));
    assert_eq!(r.agent.as_deref(), Some("Sam Agent"));
    assert_eq!(r.customer.as_deref(), Some("Jane Customer"));
    assert_eq!(r.tags, ["refund", "shipping"]);
    assert_eq!(r.rated_at_ms, Some(1_795_442_400_000));
    assert_eq!(
        one(parse(POSITIVE).unwrap()).sentiment(None),
        Sentiment::Positive
    );
}

#[test]
fn the_survey_object_is_the_same_rating_and_a_change_comes_later() {
    let first = one(parse(NEGATIVE).unwrap());
    let changed = one(parse(CHANGED).unwrap());
    assert_eq!(
        (&first.conversation_id, &first.rating_key),
        (&changed.conversation_id, &changed.rating_key)
    );
    assert_eq!(changed.score.value, 2);
    assert!(changed.updated_at_ms > first.updated_at_ms);
}

#[test]
fn events_without_an_answer_carry_no_rating_and_ids_alone_are_fetched() {
    assert!(matches!(parse(SENT).unwrap(), Parsed::NoRating { .. }));
    assert_eq!(
        parse(RESPONDED).unwrap(),
        Parsed::Fetch {
            delivery_id: Some("gorgias-event:400".into()),
            references: vec![FetchRef {
                kind: "satisfaction_survey".into(),
                id: "50".into()
            }]
        }
    );
    let unanswered = json!({"id": 9, "ticket_id": 1, "score": null});
    assert!(matches!(
        parse(unanswered.to_string().as_bytes()).unwrap(),
        Parsed::Fetch { .. }
    ));
    let unscored = json!({"ticket_id": 1, "score": null});
    assert!(matches!(
        parse(unscored.to_string().as_bytes()).unwrap(),
        Parsed::NoRating { .. }
    ));
    let api: serde_json::Value = serde_json::from_slice(API_UNANSWERED).unwrap();
    assert_eq!(survey_from_api(&api).into_event(None).unwrap(), None);
}

#[test]
fn parse_errors_name_the_field() {
    let err =
        parse(br#"{"ticket": {"id": "1"}, "satisfaction_survey": {"score": "7"}}"#).unwrap_err();
    assert!(err.0.contains("score"), "{err}");
    let err = parse(br#"{"satisfaction_survey": {"score": "4"}}"#).unwrap_err();
    assert!(err.0.contains("ticket_id"), "{err}");
    let err = parse(br#"{"ticket": {"id": "1"}}"#).unwrap_err();
    assert!(err.0.contains("survey id"), "{err}");
}

#[test]
fn api_settings_need_an_email_and_a_key() {
    let keys: Vec<String> = source(json!({"api": {"base_url": "https://acme.gorgias.com"}}))
        .err()
        .unwrap()
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(keys, ["sources[0].api.api_key", "sources[0].api.email"]);
    let ok = source(
        json!({"api": {"base_url": "https://acme.gorgias.com", "email": "a@b.c", "api_key": "k"}}),
    )
    .unwrap();
    assert_eq!(
        ok.link("500").as_deref(),
        Some("https://acme.gorgias.com/app/ticket/500")
    );
}
