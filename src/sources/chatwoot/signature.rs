//! Chatwoot's signature (4.12+ for account webhooks): `X-Chatwoot-Signature:
//! sha256=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")>`, with
//! `X-Chatwoot-Timestamp` in Unix seconds. Chatwoot enforces no replay
//! window; we do (`replay_window`, default 5 minutes).
//!
//! Older Chatwoot sends neither header. Such deliveries are refused unless
//! the source sets `allow_unsigned = true`; a delivery that does carry a
//! signature is always checked when a secret is configured, so a forged
//! signature never passes because unsigned ones are allowed.

use secrecy::{ExposeSecret, SecretString};

use crate::sources::signature::{Encoding, check_window, hmac_sha256, verify_hmac_sha256};
use crate::sources::{SignatureError, WebhookRequest};

/// The header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Chatwoot-Signature";
/// The header carrying the signed Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Chatwoot-Timestamp";

/// Signs like Chatwoot does; for tests and the set-up guide's curl check.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mac = hmac_sha256(secret, &[timestamp.as_bytes(), b".", body]);
    format!("sha256={}", Encoding::Hex.encode(&mac))
}

/// Checks a delivery: a signed one against `secret` and the window; an
/// unsigned one is accepted only when `allow_unsigned`.
pub fn verify(
    secret: Option<&SecretString>,
    allow_unsigned: bool,
    request: &WebhookRequest<'_>,
    window_ms: i64,
) -> Result<(), SignatureError> {
    let Some(header) = request.header(SIGNATURE_HEADER) else {
        return if allow_unsigned {
            Ok(())
        } else {
            Err(SignatureError::MissingHeader(SIGNATURE_HEADER.to_string()))
        };
    };
    let Some(secret) = secret else {
        // allow_unsigned without a secret: nothing to check a signature with.
        return Ok(());
    };
    let timestamp = request
        .header(TIMESTAMP_HEADER)
        .ok_or_else(|| SignatureError::MissingHeader(TIMESTAMP_HEADER.to_string()))?;
    let hex = header.trim().strip_prefix("sha256=").ok_or_else(|| {
        SignatureError::Malformed(format!("{SIGNATURE_HEADER} does not start with sha256="))
    })?;
    let expected = Encoding::Hex
        .decode(hex)
        .ok_or_else(|| SignatureError::Malformed(format!("{SIGNATURE_HEADER} is not hex")))?;
    if !verify_hmac_sha256(
        secret.expose_secret().as_bytes(),
        &[timestamp.as_bytes(), b".", request.body],
        &expected,
    ) {
        return Err(SignatureError::Mismatch);
    }
    let seconds: i64 = timestamp.trim().parse().map_err(|_| {
        SignatureError::Malformed(format!("{TIMESTAMP_HEADER} is not Unix seconds"))
    })?;
    check_window(seconds.saturating_mul(1000), request.now_ms, window_ms)
}
