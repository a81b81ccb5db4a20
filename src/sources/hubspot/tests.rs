//! The HubSpot source: the v3 signature and its window, the event array,
//! the submission's mapping to a score, and its settings.

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use serde_json::json;

use super::payload::{SubmissionPayload, read_events};
use super::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signed_uri};
use super::*;
use crate::domain::{Scale, Sentiment};
use crate::sources::FetchRef;

const SECRET: &str = "hubspot-client-secret-0f3c";
const PUBLIC_URL: &str = "https://csat.example.com";
/// 2026-11-23T14:05:00Z.
const NOW_MS: i64 = 1_795_442_700_000;
const CREATION: &[u8] = include_bytes!("../../../tests/fixtures/hubspot/creation_event.json");
const CHANGE: &[u8] = include_bytes!("../../../tests/fixtures/hubspot/property_change_event.json");
const CONTACT: &[u8] = include_bytes!("../../../tests/fixtures/hubspot/contact_event.json");

fn source(extra: serde_json::Value) -> Result<HubspotSource, Vec<ConfigProblem>> {
    let mut base = json!({
        "name": "hubspot", "kind": "hubspot", "secret": SECRET, "public_url": PUBLIC_URL,
        "api": {"base_url": "https://api.hubapi.com", "token": "pat-na1-test"}
    });
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    HubspotSource::from_settings(&crate::sources::testing::table("sources[0]", &base))
}

fn check(
    signature: &str,
    timestamp: &str,
    uri: &str,
    body: &[u8],
    now_ms: i64,
) -> Result<(), SignatureError> {
    let mut headers = HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
    headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(timestamp).unwrap());
    let uri: Uri = uri.parse().unwrap();
    source(json!({})).unwrap().verify(&WebhookRequest {
        method: &Method::POST,
        uri: &uri,
        headers: &headers,
        body,
        now_ms,
    })
}

/// Computed independently with Python's hmac module:
/// `base64.b64encode(hmac.new(b"hubspot-client-secret-0f3c",
/// ("POST" + "https://csat.example.com/webhooks/hubspot" + body +
/// "1795442700000").encode(), hashlib.sha256).digest())`, body being the
/// creation_event.json fixture without its trailing newline. No published
/// HubSpot v3 vector was found.
#[test]
fn the_v3_signature_matches_an_independently_computed_vector() {
    let body = CREATION.strip_suffix(b"\n").unwrap_or(CREATION);
    let expected = "/SuFocT9GhdQ+qE2RWYI8YUpa1/+71Wv+krlTo1Bnd4=";
    assert_eq!(
        sign(
            SECRET.as_bytes(),
            "POST",
            "https://csat.example.com/webhooks/hubspot",
            body,
            "1795442700000"
        ),
        expected
    );
    assert_eq!(
        check(expected, "1795442700000", "/webhooks/hubspot", body, NOW_MS),
        Ok(())
    );
}

#[test]
fn a_wrong_secret_body_url_or_timestamp_is_refused() {
    let ts = NOW_MS.to_string();
    let uri = format!("{PUBLIC_URL}/webhooks/hubspot");
    let good = sign(SECRET.as_bytes(), "POST", &uri, CREATION, &ts);
    assert_eq!(
        check(&good, &ts, "/webhooks/hubspot", CREATION, NOW_MS),
        Ok(())
    );
    let forged = sign(b"other", "POST", &uri, CREATION, &ts);
    assert_eq!(
        check(&forged, &ts, "/webhooks/hubspot", CREATION, NOW_MS),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(&good, &ts, "/webhooks/hubspot", CONTACT, NOW_MS),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(&good, &ts, "/webhooks/other", CREATION, NOW_MS),
        Err(SignatureError::Mismatch)
    );
    let later = (NOW_MS + 1).to_string();
    assert_eq!(
        check(&good, &later, "/webhooks/hubspot", CREATION, NOW_MS),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn the_window_is_five_minutes_either_way() {
    let at = |ms: i64| {
        let ts = ms.to_string();
        let sig = sign(
            SECRET.as_bytes(),
            "POST",
            &format!("{PUBLIC_URL}/webhooks/hubspot"),
            CREATION,
            &ts,
        );
        check(&sig, &ts, "/webhooks/hubspot", CREATION, NOW_MS)
    };
    assert_eq!(at(NOW_MS - 4 * 60 * 1000), Ok(()));
    assert!(matches!(
        at(NOW_MS - 5 * 60 * 1000 - 1),
        Err(SignatureError::Stale { .. })
    ));
    assert!(matches!(
        at(NOW_MS + 6 * 60 * 1000),
        Err(SignatureError::Stale { .. })
    ));
}

#[test]
fn the_signed_uri_keeps_the_query_and_decodes_reserved_characters() {
    assert_eq!(
        signed_uri(PUBLIC_URL, "/webhooks/hubspot?portal=1%2C2&x=%3a"),
        "https://csat.example.com/webhooks/hubspot?portal=1,2&x=:"
    );
    let ts = NOW_MS.to_string();
    let sig = sign(
        SECRET.as_bytes(),
        "POST",
        "https://csat.example.com/webhooks/hubspot?a=b",
        CREATION,
        &ts,
    );
    assert_eq!(
        check(&sig, &ts, "/webhooks/hubspot?a=b", CREATION, NOW_MS),
        Ok(())
    );
}

#[test]
fn feedback_events_become_fetches_keyed_by_their_event_ids() {
    match read_events(&serde_json::from_slice(CHANGE).unwrap()).unwrap() {
        Parsed::Fetch {
            delivery_id,
            references,
        } => {
            assert_eq!(delivery_id.as_deref(), Some("hubspot:1002,1003"));
            // Two changes of one submission: fetched once.
            assert_eq!(
                references,
                [FetchRef {
                    kind: "feedback_submission".into(),
                    id: "9001".into()
                }]
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        read_events(&serde_json::from_slice(CONTACT).unwrap()).unwrap(),
        Parsed::NoRating { .. }
    ));
    let deletion = json!([{"eventId": 5, "subscriptionType": "object.deletion", "objectTypeId": "0-19", "objectId": 1}]);
    assert!(matches!(
        read_events(&deletion).unwrap(),
        Parsed::NoRating { .. }
    ));
    let err = read_events(&json!([{"eventId": 6, "objectTypeId": "0-19"}])).unwrap_err();
    assert!(err.0.contains("objectId"), "{err}");
    assert!(read_events(&json!("x")).is_err());
}

fn submission(properties: serde_json::Value) -> SubmissionPayload {
    serde_json::from_value(json!({"id": "9001", "properties": properties})).unwrap()
}

#[test]
fn csat_follows_hubspots_sentiment_and_nps_and_ces_their_values() {
    let csat = |p| submission(p).score().unwrap();
    let neg = csat(json!({"hs_survey_type": "CSAT", "hs_value": "2", "hs_sentiment": "NEGATIVE"}));
    assert_eq!((neg.scale, neg.value), (Scale::ThreePoint, 1));
    assert_eq!(
        Scale::ThreePoint.sentiment(neg.value, None),
        Sentiment::Negative
    );
    assert_eq!(
        csat(json!({"hs_survey_type": "CSAT", "hs_sentiment": "POSITIVE"})).value,
        3
    );
    assert_eq!(
        csat(json!({"hs_survey_type": "CSAT", "hs_value": "0"})).value,
        1
    );
    assert_eq!(
        csat(json!({"hs_survey_type": "CSAT", "hs_value": "4"})).scale,
        Scale::FivePoint
    );
    let nps = csat(json!({"hs_survey_type": "NPS", "hs_value": "6", "hs_sentiment": "NEUTRAL"}));
    assert_eq!((nps.scale, nps.value), (Scale::Nps, 6));
    assert_eq!(
        csat(json!({"hs_survey_type": "CES", "hs_value": "2"})).scale,
        Scale::Ces
    );
    let err = submission(json!({"hs_survey_type": "NPS", "hs_value": "11"}))
        .score()
        .unwrap_err();
    assert!(err.contains("hs_value"), "{err}");
}

#[test]
fn a_submission_maps_to_its_ticket_and_keeps_its_own_id_as_key() {
    let body = include_bytes!("../../../tests/fixtures/hubspot/api_submission_negative.json");
    let s: SubmissionPayload = serde_json::from_slice(body).unwrap();
    let r = s.to_event("9001").unwrap();
    assert_eq!(
        (r.conversation_id.as_str(), r.rating_key.as_str()),
        ("7700", "9001")
    );
    assert_eq!(r.comment.as_deref(), Some("Three days without an answer."));
    assert_eq!(r.rated_at_ms, Some(1_795_442_640_000));
    let alone = submission(json!({"hs_survey_type": "NPS", "hs_value": "9"}))
        .to_event("9001")
        .unwrap();
    assert_eq!(alone.conversation_id, "9001");
}

#[test]
fn settings_require_a_public_url_and_an_api_token() {
    let problems = HubspotSource::from_settings(&crate::sources::testing::table(
        "sources[0]",
        &json!({"name": "h", "kind": "hubspot", "secret": "s"}),
    ))
    .err()
    .unwrap();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["sources[0].public_url", "sources[0].api"]);
    let mut keys: Vec<String> =
        source(json!({"api": {"base_url": "https://api.hubapi.com", "api_key": "k"}}))
            .err()
            .unwrap()
            .into_iter()
            .map(|p| p.key)
            .collect();
    keys.sort();
    assert_eq!(keys, ["sources[0].api.api_key", "sources[0].api.token"]);
}
