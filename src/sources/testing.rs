//! Test helpers for the sources' own tests.

use axum::http::{HeaderMap, HeaderValue, Method, Uri};

use crate::sources::WebhookRequest;

/// Headers from name/value pairs.
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

/// Runs `f` with a POST of `body` carrying `headers`, received at `now_ms`.
pub fn with_request<R>(
    headers: &HeaderMap,
    body: &[u8],
    now_ms: i64,
    f: impl FnOnce(&WebhookRequest<'_>) -> R,
) -> R {
    let uri = Uri::from_static("/webhooks/test");
    let request = WebhookRequest {
        method: &Method::POST,
        uri: &uri,
        headers,
        body,
        now_ms,
    };
    f(&request)
}

/// A `[[sources]]` table from JSON, as the registry would read it at `key`.
pub fn table(key: &str, json: &serde_json::Value) -> crate::sources::SourceTable {
    try_table(key, json).unwrap_or_else(|p| panic!("{p:?}"))
}

/// As [`table`], keeping the problems the shared keys have.
pub fn try_table(
    key: &str,
    json: &serde_json::Value,
) -> Result<crate::sources::SourceTable, Vec<crate::settings::ConfigProblem>> {
    let raw: crate::settings::RawSource = config_value(json).try_deserialize().expect("a table");
    crate::sources::SourceTable::read(key.to_string(), &raw)
}

/// A JSON value as the config crate holds it.
fn config_value(json: &serde_json::Value) -> config::Value {
    use config::ValueKind;
    use serde_json::Value;
    let kind = match json {
        Value::Null => ValueKind::Nil,
        Value::Bool(b) => ValueKind::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ValueKind::I64(i),
            None => ValueKind::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => ValueKind::String(s.clone()),
        Value::Array(items) => ValueKind::Array(items.iter().map(config_value).collect()),
        Value::Object(map) => ValueKind::Table(
            map.iter()
                .map(|(k, v)| (k.clone(), config_value(v)))
                .collect(),
        ),
    };
    config::Value::new(None, kind)
}
