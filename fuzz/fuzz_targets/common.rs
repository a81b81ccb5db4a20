//! Every kind of source, configured once for all fuzz targets.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use csatwatch::settings::Settings;
use csatwatch::sources::{SourceRegistry, WebhookRequest};

pub const NOW_MS: i64 = 1_795_442_700_000;

const SETTINGS: &str = r#"
[[sources]]
name = "zendesk"
kind = "zendesk"
secret = "s"
[[sources]]
name = "zendesk-csat"
kind = "zendesk_csat"
secret = "s"
[[sources]]
name = "intercom"
kind = "intercom"
secret = "s"
[[sources]]
name = "helpscout"
kind = "helpscout"
secret = "s"
[[sources]]
name = "chatwoot"
kind = "chatwoot"
allow_unsigned = true
[[sources]]
name = "devrev"
kind = "devrev"
secret = "s"
[[sources]]
name = "freshdesk"
kind = "freshdesk"
secret = "s"
[sources.api]
base_url = "http://127.0.0.1:9"
api_key = "k"
[[sources]]
name = "gorgias"
kind = "gorgias"
secret = "s"
[sources.api]
base_url = "http://127.0.0.1:9"
email = "ops@shop.example"
api_key = "k"
[[sources]]
name = "hubspot"
kind = "hubspot"
secret = "s"
public_url = "https://csat.example.com"
[sources.api]
base_url = "http://127.0.0.1:9"
token = "t"
[[sources]]
name = "generic"
kind = "generic"
secret = "s"
[sources.fields]
conversation_id = "/ticket/id"
score = "/rating/score"
scale = "/rating/scale"
rated_at = "/rated_at"
tags = "/tags"
[[sources]]
name = "standard"
kind = "generic"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
signature = "standard-webhooks"
scale = "nps"
[sources.fields]
conversation_id = "/conversation"
score = "/nps"
"#;

/// The header names the schemes read; the fuzzer picks among them.
pub const HEADERS: [&str; 15] = [
    "x-zendesk-webhook-signature",
    "x-zendesk-webhook-signature-timestamp",
    "x-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-hub-signature",
    "x-helpscout-signature",
    "x-helpscout-event",
    "x-chatwoot-signature",
    "x-chatwoot-timestamp",
    "x-devrev-signature",
    "x-csatwatch-token",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
];

pub fn registry() -> &'static SourceRegistry {
    static REGISTRY: OnceLock<SourceRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("csatwatch-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fuzz.toml");
        std::fs::write(&path, SETTINGS).unwrap();
        let settings = Settings::load_with_env(Some(&path), std::iter::empty())
            .and_then(Settings::validate)
            .unwrap_or_else(|e| panic!("fuzz settings: {e}"));
        SourceRegistry::from_settings(&settings).unwrap()
    })
}

/// Runs `f` on a request for the `pick`-th source.
pub fn with_request(
    pick: u8,
    headers: &[(u8, &[u8])],
    body: &[u8],
    f: impl FnOnce(&csatwatch::sources::ConfiguredSource, &WebhookRequest<'_>),
) {
    let registry = registry();
    let sources: Vec<_> = registry.iter().collect();
    let source = sources[pick as usize % sources.len()];
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_static(HEADERS[*name as usize % HEADERS.len()]);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(name, value);
        }
    }
    let uri: Uri = format!("/webhooks/{}", source.name.as_str()).parse().unwrap();
    let request = WebhookRequest {
        method: &Method::POST,
        uri: &uri,
        headers: &map,
        body,
        now_ms: NOW_MS,
    };
    f(source, &request);
}
