//! Traces (`[telemetry] otlp_endpoint`): the real binary exports its spans
//! over OTLP/HTTP to a local receiver, and one negative rating is one
//! trace from the webhook through the group-commit writer and the outbox to
//! the Slack send, with no customer text in what is exported. Off by
//! default; an unreachable collector costs a webhook nothing.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::ops::{COMMENT, CUSTOMER, Daemon, SECRET, canary_body, wait_for_posts};
use crate::support::*;

/// A local OTLP/HTTP receiver: accepts every POST /v1/traces.
async fn otlp_receiver() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// The raw bodies the receiver got.
async fn exports(server: &MockServer) -> Vec<Vec<u8>> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == "/v1/traces")
        .map(|r| r.body)
        .collect()
}

/// Every span of every export, decoded, with its resource's service name.
fn decode(bodies: &[Vec<u8>]) -> Vec<(String, Span)> {
    let mut spans = Vec::new();
    for body in bodies {
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.clone());
            let service = match service {
                Some(AnyValue::StringValue(s)) => s,
                other => panic!("no service.name: {other:?}"),
            };
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push((service.clone(), span));
                }
            }
        }
    }
    spans
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.clone())
}

fn named<'a>(spans: &'a [(String, Span)], name: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.name == name)
        .collect()
}

fn telemetry(endpoint: &str) -> String {
    format!("[telemetry]\notlp_endpoint = \"{endpoint}\"\nservice_name = \"csatwatch-test\"\n")
}

#[tokio::test]
async fn one_negative_rating_is_one_trace_from_webhook_to_slack_send() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let slack = slack_ok().await;
        let otlp = otlp_receiver().await;
        let daemon = Daemon::start_with(
            &Daemon::config(&db.url, &slack, &telemetry(&otlp.uri())),
            &[],
        );
        assert_eq!(
            daemon.post(&canary_body(81), SECRET, Some("req-81")).await,
            200
        );
        wait_for_posts(&slack, 1).await;
        // A clean stop exports what is still queued (the batch interval
        // is 5 s; the process is gone well before).
        daemon.terminate();

        let bodies = exports(&otlp).await;
        assert!(!bodies.is_empty(), "{backend:?}: nothing exported");
        for body in &bodies {
            for text in [COMMENT, CUSTOMER, SECRET] {
                assert!(
                    !body.windows(text.len()).any(|w| w == text.as_bytes()),
                    "{backend:?}: {text:?} in an export"
                );
            }
        }
        let spans = decode(&bodies);
        assert!(spans.iter().all(|(service, _)| service == "csatwatch-test"));

        let webhook = named(&spans, "webhook");
        let commit = named(&spans, "pipeline.commit");
        let send = named(&spans, "alert.send");
        assert_eq!(
            (webhook.len(), commit.len(), send.len()),
            (1, 1, 1),
            "{backend:?}: {:?}",
            spans
                .iter()
                .map(|(_, s)| s.name.as_str())
                .collect::<Vec<_>>()
        );
        let (webhook, commit, send) = (webhook[0], commit[0], send[0]);
        // One trace: the webhook's, carried into the writer task and, through
        // the outbox row, into the dispatcher.
        assert_eq!(webhook.trace_id.len(), 16);
        assert_eq!(commit.trace_id, webhook.trace_id, "{backend:?}");
        assert_eq!(send.trace_id, webhook.trace_id, "{backend:?}");
        assert_eq!(commit.parent_span_id, webhook.span_id, "{backend:?}");
        assert_eq!(send.parent_span_id, commit.span_id, "{backend:?}");
        // The webhook is inside the HTTP request's span, the trace's root.
        let request: HashMap<_, _> = named(&spans, "request")
            .into_iter()
            .map(|s| (s.span_id.clone(), s))
            .collect();
        let root = request
            .get(&webhook.parent_span_id)
            .unwrap_or_else(|| panic!("{backend:?}: the webhook's parent is not a request span"));
        assert!(root.parent_span_id.is_empty());

        assert_eq!(
            attribute(webhook, "source"),
            Some(AnyValue::StringValue("zendesk".into()))
        );
        assert_eq!(attribute(webhook, "status"), Some(AnyValue::IntValue(200)));
        assert_eq!(
            attribute(commit, "outcome"),
            Some(AnyValue::StringValue("committed".into()))
        );
        assert_eq!(
            attribute(send, "kind"),
            Some(AnyValue::StringValue("post".into()))
        );
        assert_eq!(
            attribute(send, "channel"),
            Some(AnyValue::StringValue("#csat".into()))
        );
        assert!(matches!(attribute(send, "rating_id"), Some(AnyValue::IntValue(id)) if id > 0));
    }
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = slack_ok().await;
    let otlp = otlp_receiver().await;
    // The standard OpenTelemetry variable alone does not turn traces on:
    // only `telemetry.otlp_endpoint` does.
    let daemon = Daemon::start_with(
        &Daemon::config(&db.url, &slack, ""),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.uri().as_str())],
    );
    assert_eq!(daemon.post(&canary_body(82), SECRET, None).await, 200);
    wait_for_posts(&slack, 1).await;
    daemon.terminate();
    assert!(exports(&otlp).await.is_empty());
}

#[tokio::test]
async fn an_unreachable_collector_fails_no_webhook_and_no_shutdown() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let slack = slack_ok().await;
    // A port that was free a moment ago and that nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daemon = Daemon::start_with(
        &Daemon::config(
            &db.url,
            &slack,
            &telemetry(&format!("http://127.0.0.1:{port}")),
        ),
        &[("OTEL_BSP_SCHEDULE_DELAY", "50")],
    );
    for ticket in 83..86 {
        assert_eq!(daemon.post(&canary_body(ticket), SECRET, None).await, 200);
    }
    wait_for_posts(&slack, 3).await;
    // The failed exports are in the log, for the operator to see.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let failed = loop {
        let found = daemon.log_lines().into_iter().find(|l| {
            l["target"]
                .as_str()
                .unwrap_or("")
                .starts_with("opentelemetry")
                && l["name"] == "BatchSpanProcessor.ExportError"
        });
        if let Some(line) = found {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no export error logged:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(failed["level"], "ERROR", "{failed}");
    // The daemon still stops cleanly, the queued spans abandoned.
    daemon.terminate();
}
