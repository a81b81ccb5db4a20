//! HubSpot's v3 request signature:
//!
//! `X-HubSpot-Signature-v3` = base64(HMAC-SHA256(client secret,
//! method + URI + raw body + timestamp)), with `X-HubSpot-Request-Timestamp`
//! in Unix milliseconds; requests older than five minutes are refused.
//!
//! The URI is the full URL HubSpot called (scheme, host, path, query). We
//! see only the path and query, so the source rebuilds it from its
//! `public_url`. HubSpot's guide has the URI's percent-encoded reserved
//! characters decoded before signing; [`signed_uri`] does the same.

use secrecy::{ExposeSecret, SecretString};

use crate::sources::signature::{Encoding, check_window, hmac_sha256, verify_hmac_sha256};
use crate::sources::{SignatureError, WebhookRequest};

pub const SIGNATURE_HEADER: &str = "X-HubSpot-Signature-v3";
pub const TIMESTAMP_HEADER: &str = "X-HubSpot-Request-Timestamp";

/// The characters HubSpot's validation guide decodes in the URI.
const DECODED: [(&str, &str); 12] = [
    ("%3A", ":"),
    ("%2F", "/"),
    ("%3F", "?"),
    ("%40", "@"),
    ("%21", "!"),
    ("%24", "$"),
    ("%27", "'"),
    ("%28", "("),
    ("%29", ")"),
    ("%2A", "*"),
    ("%2C", ","),
    ("%3B", ";"),
];

/// The URI as HubSpot signed it: `public_url` (no trailing slash) followed
/// by the path and query we received, reserved characters decoded.
pub fn signed_uri(public_url: &str, path_and_query: &str) -> String {
    let mut uri = format!("{public_url}{path_and_query}");
    for (encoded, plain) in DECODED {
        uri = uri
            .replace(encoded, plain)
            .replace(&encoded.to_lowercase(), plain);
    }
    uri
}

/// The v3 signature of a request, as HubSpot computes it.
pub fn sign(secret: &[u8], method: &str, uri: &str, body: &[u8], timestamp: &str) -> String {
    Encoding::Base64.encode(&hmac_sha256(
        secret,
        &[
            method.as_bytes(),
            uri.as_bytes(),
            body,
            timestamp.as_bytes(),
        ],
    ))
}

/// Checks both headers, the signature over the raw body, then the window.
/// The signature comes first so an unsigned request learns nothing about
/// our clock.
pub fn verify(
    secret: &SecretString,
    public_url: &str,
    request: &WebhookRequest<'_>,
    window_ms: i64,
) -> Result<(), SignatureError> {
    let header = |name: &str| {
        request
            .header(name)
            .ok_or_else(|| SignatureError::MissingHeader(name.to_string()))
    };
    let signature = header(SIGNATURE_HEADER)?;
    let timestamp = header(TIMESTAMP_HEADER)?;
    let expected = Encoding::Base64
        .decode(signature)
        .ok_or_else(|| SignatureError::Malformed(format!("{SIGNATURE_HEADER} is not base64")))?;
    let path_and_query = request
        .uri
        .path_and_query()
        .map_or(request.uri.path(), |pq| pq.as_str());
    let uri = signed_uri(public_url, path_and_query);
    if !verify_hmac_sha256(
        secret.expose_secret().as_bytes(),
        &[
            request.method.as_str().as_bytes(),
            uri.as_bytes(),
            request.body,
            timestamp.as_bytes(),
        ],
        &expected,
    ) {
        return Err(SignatureError::Mismatch);
    }
    let ms: i64 = timestamp.trim().parse().map_err(|_| {
        SignatureError::Malformed(format!("{TIMESTAMP_HEADER} is not Unix milliseconds"))
    })?;
    check_window(ms, request.now_ms, window_ms)
}
