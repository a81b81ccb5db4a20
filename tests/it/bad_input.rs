//! Bad input as a discipline: property-based tests of every source's
//! signature check and parser, through the HTTP routes (so they hold however
//! the sources are laid out inside). Arbitrary bytes, JSON and headers are
//! never a panic and never a 5xx; a signed delivery is recorded, ignored or
//! kept for `reprocess`, never refused or lost.
//!
//! The same entry points are fuzzed with coverage guidance in `fuzz/`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use csatwatch::app::App;
use csatwatch::clock::{Clock, ManualClock};
use csatwatch::sources::signature::{hmac_sha1, hmac_sha256, sign_standard_webhooks};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use secrecy::SecretString;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::support::{
    Backend, GENERIC_SECRET, STANDARD_SECRET, TestDatabase, ZENDESK_SECRET, install_crypto,
    settings, zendesk_headers,
};

const SECRET: &str = "bad-input-secret";
const PUBLIC_URL: &str = "https://csat.example.com";

/// Every kind of source, each with a secret this file can sign with. APIs
/// point at a closed port: a fetch fails at once and the delivery is kept.
const EVERY_KIND: &str = r#"
[[sources]]
name = "intercom"
kind = "intercom"
secret = "bad-input-secret"
[[sources]]
name = "helpscout"
kind = "helpscout"
secret = "bad-input-secret"
[[sources]]
name = "chatwoot"
kind = "chatwoot"
secret = "bad-input-secret"
[[sources]]
name = "devrev"
kind = "devrev"
secret = "bad-input-secret"
[[sources]]
name = "zendesk-csat"
kind = "zendesk_csat"
secret = "bad-input-secret"
[[sources]]
name = "freshdesk"
kind = "freshdesk"
secret = "bad-input-secret"
[sources.api]
base_url = "http://127.0.0.1:9"
api_key = "k"
request_timeout = "1s"
[[sources]]
name = "gorgias"
kind = "gorgias"
secret = "bad-input-secret"
[sources.api]
base_url = "http://127.0.0.1:9"
email = "ops@shop.example"
api_key = "k"
request_timeout = "1s"
[[sources]]
name = "hubspot"
kind = "hubspot"
secret = "bad-input-secret"
public_url = "https://csat.example.com"
[sources.api]
base_url = "http://127.0.0.1:9"
token = "t"
request_timeout = "1s"
"#;

/// Every source name, and the header names their schemes read.
const SOURCES: [&str; 11] = [
    "zendesk",
    "inhouse",
    "standard",
    "intercom",
    "helpscout",
    "chatwoot",
    "devrev",
    "zendesk-csat",
    "freshdesk",
    "gorgias",
    "hubspot",
];
const HEADERS: [&str; 16] = [
    "X-Zendesk-Webhook-Signature",
    "X-Zendesk-Webhook-Signature-Timestamp",
    "X-Signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "X-Hub-Signature",
    "X-HelpScout-Signature",
    "X-HelpScout-Event",
    "X-Chatwoot-Signature",
    "X-Chatwoot-Timestamp",
    "X-DevRev-Signature",
    "X-Csatwatch-Token",
    "X-HubSpot-Signature-v3",
    "X-HubSpot-Request-Timestamp",
    "Content-Type",
];

/// A running app (in process, real SQLite file) and a runtime to drive it.
struct Rig {
    rt: tokio::runtime::Runtime,
    app: App,
    clock: ManualClock,
    _db: TestDatabase,
}

impl Rig {
    fn new() -> Rig {
        install_crypto();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let clock = ManualClock::starting_now();
        let (app, db) = rt.block_on(async {
            let db = TestDatabase::new(Backend::Sqlite).await;
            let app = App::build_with_clock(
                settings(&db.url, None, EVERY_KIND),
                Arc::new(clock.clone()) as Arc<dyn Clock>,
            )
            .await
            .unwrap();
            (app, db)
        });
        Rig {
            rt,
            app,
            clock,
            _db: db,
        }
    }

    /// Sends one request through the routes: (status, JSON body or text).
    fn send(
        &self,
        method: &str,
        source: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (u16, Value) {
        self.rt.block_on(async {
            let mut request = Request::builder()
                .method(method)
                .uri(format!("/webhooks/{source}"));
            for (k, v) in headers {
                request = request.header(k.as_str(), v.as_str());
            }
            let request = request.body(Body::from(body.to_vec())).unwrap();
            let response = self.app.router().oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
            (status, body)
        })
    }

    /// The headers `source` signs `body` with, now.
    fn sign(&self, source: &str, body: &[u8]) -> Vec<(String, String)> {
        self.sign_at(source, body, None)
    }

    /// As `sign`, with the signed timestamp header set to `timestamp`
    /// (seconds or milliseconds as the scheme wants) where there is one.
    fn sign_at(&self, source: &str, body: &[u8], timestamp: Option<i64>) -> Vec<(String, String)> {
        let now_ms = self.clock.now_ms();
        let key = SECRET.as_bytes();
        let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
        let pair = |k: &str, v: String| (k.to_string(), v);
        match source {
            "zendesk" => zendesk_headers(ZENDESK_SECRET, now_ms, body),
            "zendesk-csat" => zendesk_headers(SECRET, now_ms, body),
            "inhouse" => vec![pair(
                "X-Signature",
                format!(
                    "sha256={}",
                    hex::encode(hmac_sha256(GENERIC_SECRET.as_bytes(), &[body]))
                ),
            )],
            "standard" => {
                let secret = SecretString::from(STANDARD_SECRET.to_string());
                let ts = timestamp.unwrap_or(now_ms / 1000);
                vec![
                    pair("webhook-id", "msg_prop".into()),
                    pair("webhook-timestamp", ts.to_string()),
                    pair(
                        "webhook-signature",
                        sign_standard_webhooks(&secret, "msg_prop", ts, body),
                    ),
                ]
            }
            "intercom" => vec![pair(
                "X-Hub-Signature",
                format!("sha1={}", hex::encode(hmac_sha1(key, &[body]))),
            )],
            "helpscout" => vec![
                pair("X-HelpScout-Signature", b64(hmac_sha1(key, &[body]))),
                pair("X-HelpScout-Event", "satisfaction.ratings".into()),
            ],
            "chatwoot" => {
                let ts = timestamp.unwrap_or(now_ms / 1000).to_string();
                let mac = hmac_sha256(key, &[ts.as_bytes(), b".", body]);
                vec![
                    pair(
                        "X-Chatwoot-Signature",
                        format!("sha256={}", hex::encode(mac)),
                    ),
                    pair("X-Chatwoot-Timestamp", ts),
                ]
            }
            "devrev" => vec![pair("X-DevRev-Signature", b64(hmac_sha256(key, &[body])))],
            "freshdesk" | "gorgias" => vec![pair("X-Csatwatch-Token", SECRET.into())],
            "hubspot" => {
                let ts = timestamp.unwrap_or(now_ms).to_string();
                let uri = format!("{PUBLIC_URL}/webhooks/hubspot");
                let mac = hmac_sha256(key, &[b"POST", uri.as_bytes(), body, ts.as_bytes()]);
                vec![
                    pair("X-HubSpot-Signature-v3", b64(mac)),
                    pair("X-HubSpot-Request-Timestamp", ts),
                ]
            }
            other => panic!("no signer for {other}"),
        }
    }
}

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

/// Header values an attacker would try: numbers at the edges, near-misses
/// of each scheme's prefix, and anything printable.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("-9223372036854775808".to_string()),
        Just("18446744073709551616".to_string()),
        "(sha1=|sha256=|v1,)?[0-9a-zA-Z+/=]{0,90}",
        "[ -~]{0,120}",
    ]
}

/// JSON shaped like helpdesks' bodies: their field names, and values of
/// every type in every place.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "id",
            "type",
            "topic",
            "event",
            "data",
            "item",
            "rating",
            "score",
            "current_rating",
            "current_comment",
            "satisfaction",
            "satisfaction_rating",
            "ticket",
            "ticket_id",
            "conversation",
            "conversation_id",
            "comment",
            "remark",
            "rated_at",
            "created_at",
            "updated_at",
            "customer",
            "agent",
            "user",
            "assignee",
            "survey",
            "answers",
            "value",
            "csatwatch",
            "objectId",
            "subscriptionType",
            "feedback",
            "csat_survey_response",
            "message",
            "account",
            "nps",
            "custom_fields",
            "ratings",
            "links",
            "properties",
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "good",
            "bad",
            "offered",
            "great",
            "okay",
            "not good",
            "1",
            "5",
            "-103",
            "103",
            "2026-01-01T00:00:00Z",
            "",
            "9999999999999999999",
        ])
        .prop_map(Value::from),
        "[ -~]{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ]
}

#[test]
fn arbitrary_requests_to_every_source_are_never_a_server_error() {
    let rig = Rig::new();
    let header = (prop::sample::select(HEADERS.to_vec()), header_value());
    let strategy = (
        prop::sample::select(SOURCES.to_vec()),
        prop::sample::select(vec!["POST", "GET", "PUT"]),
        prop::collection::vec(header, 0..6),
        body(),
    );
    run(400, strategy, |(source, method, headers, body)| {
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let (status, answer) = rig.send(method, source, &headers, &body);
        prop_assert!(status < 500, "{source}: {status} {answer}");
        Ok(())
    });
}

#[test]
fn a_signed_delivery_is_recorded_ignored_or_kept_never_refused_or_lost() {
    let rig = Rig::new();
    let strategy = (prop::sample::select(SOURCES.to_vec()), body());
    run(600, strategy, |(source, body)| {
        let headers = rig.sign(source, &body);
        let (status, answer) = rig.send("POST", source, &headers, &body);
        prop_assert!(
            matches!(status, 200 | 202 | 400),
            "{source}: a signed delivery got {status} {answer}"
        );
        if status == 400 {
            prop_assert_eq!(
                &answer["kept"],
                &Value::Bool(true),
                "{}: {}",
                source,
                answer
            );
            prop_assert!(answer["delivery_id"].is_i64(), "{}: {}", source, answer);
        }
        Ok(())
    });
}

#[test]
fn a_signed_body_with_its_signature_altered_is_always_refused() {
    let rig = Rig::new();
    let strategy = (
        prop::sample::select(SOURCES.to_vec()),
        body(),
        any::<prop::sample::Index>(),
    );
    run(300, strategy, |(source, body, which)| {
        let mut headers = rig.sign(source, &body);
        let target = headers
            .iter()
            .position(|(k, _)| {
                let k = k.to_ascii_lowercase();
                k.contains("signature") && !k.contains("timestamp") || k == "x-csatwatch-token"
            })
            .expect("a signature header");
        let value = &mut headers[target].1;
        let mut bytes = value.clone().into_bytes();
        let i = which.index(bytes.len());
        // '0' and '1' differ in hex, base64 and token text alike.
        bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        *value = String::from_utf8(bytes).unwrap();
        let (status, answer) = rig.send("POST", source, &headers, &body);
        prop_assert_eq!(status, 401, "{}: {}", source, answer);
        Ok(())
    });
}

#[test]
fn a_signed_timestamp_anywhere_in_range_is_refused_or_accepted_never_a_panic() {
    let rig = Rig::new();
    let now_s = rig.clock.now_ms() / 1000;
    let timestamp = prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(i64::MIN + 1),
        Just(-1i64),
        Just(0i64),
        any::<i64>(),
        (-400i64..400).prop_map(move |d| now_s + d),
    ];
    let strategy = (
        prop::sample::select(vec!["standard", "chatwoot", "hubspot"]),
        timestamp,
    );
    run(300, strategy, |(source, ts)| {
        let body = br#"{"conversation": "c-1", "nps": 3}"#;
        let headers = rig.sign_at(source, body, Some(ts));
        let (status, answer) = rig.send("POST", source, &headers, body);
        prop_assert!(
            status < 500,
            "{}: timestamp {}: {} {}",
            source,
            ts,
            status,
            answer
        );
        Ok(())
    });
    // The value from the report, on the scheme it was found in.
    let headers = rig.sign_at("standard", b"{}", Some(i64::MIN));
    let (status, answer) = rig.send("POST", "standard", &headers, b"{}");
    assert_eq!(status, 401, "{answer}");
}
