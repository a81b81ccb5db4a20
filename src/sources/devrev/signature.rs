//! DevRev's signature: `X-DevRev-Signature` = HMAC-SHA256(webhook secret,
//! raw body). The encoding is not documented and the sample looks like
//! base64 [U], so both hex and base64 are accepted (and an optional
//! `sha256=` prefix). DevRev signs no timestamp header; its docs tell
//! receivers to use the envelope's `timestamp` against replays, which we do
//! once the signature has proven the body authentic.
//!
//! The `verify` handshake is answered even unsigned [U whether DevRev signs
//! it]: echoing a challenge records nothing and reveals nothing, and
//! refusing it would leave the webhook unverified for good.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::sources::json::time_at;
use crate::sources::signature::{Encoding, check_window, hmac_sha256, verify_hmac_sha256};
use crate::sources::{SignatureError, WebhookRequest};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-DevRev-Signature";

/// Signs like DevRev does, in base64; for tests and the set-up guide.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    Encoding::Base64.encode(&hmac_sha256(secret, &[body]))
}

/// The signature bytes, from hex (64 characters) or base64.
fn decode(header: &str) -> Option<Vec<u8>> {
    let text = header.trim();
    let text = text.strip_prefix("sha256=").unwrap_or(text);
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Encoding::Hex.decode(text)
    } else {
        Encoding::Base64.decode(text)
    }
}

/// Checks the signature, then the envelope timestamp against the window.
pub fn verify(
    secret: &SecretString,
    request: &WebhookRequest<'_>,
    window_ms: i64,
) -> Result<(), SignatureError> {
    let body: Option<Value> = serde_json::from_slice(request.body).ok();
    let Some(header) = request.header(SIGNATURE_HEADER) else {
        let is_handshake = body
            .as_ref()
            .and_then(|b| b.get("type"))
            .and_then(Value::as_str)
            == Some("verify");
        return if is_handshake {
            Ok(())
        } else {
            Err(SignatureError::MissingHeader(SIGNATURE_HEADER.to_string()))
        };
    };
    let expected = decode(header).ok_or_else(|| {
        SignatureError::Malformed(format!("{SIGNATURE_HEADER} is neither hex nor base64"))
    })?;
    if !verify_hmac_sha256(
        secret.expose_secret().as_bytes(),
        &[request.body],
        &expected,
    ) {
        return Err(SignatureError::Mismatch);
    }
    // A signed body that is not JSON, or has no readable timestamp, is the
    // parser's to report (400, kept), not a signature failure.
    match body.as_ref().map(|b| time_at(b, "/timestamp", "timestamp")) {
        Some(Ok(Some(at))) => check_window(at, request.now_ms, window_ms),
        _ => Ok(()),
    }
}
