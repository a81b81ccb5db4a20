//! Intercom's signature: `X-Hub-Signature: sha1=<40 lowercase hex>`, the
//! HMAC-SHA1 of the raw body keyed with the app's client secret
//! (<https://developers.intercom.com/docs/references/webhooks/webhook-models>,
//! "Signed notifications"). No timestamp is signed.

use secrecy::{ExposeSecret, SecretString};

use crate::sources::signature::{Encoding, hmac_sha1, verify_hmac_sha1};
use crate::sources::{SignatureError, WebhookRequest};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature";

/// Signs like Intercom does; for tests and the set-up guide's curl check.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("sha1={}", Encoding::Hex.encode(&hmac_sha1(secret, &[body])))
}

/// Checks the header against the raw body in constant time.
pub fn verify(secret: &SecretString, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
    let header = request
        .header(SIGNATURE_HEADER)
        .ok_or_else(|| SignatureError::MissingHeader(SIGNATURE_HEADER.to_string()))?;
    let hex = header.trim().strip_prefix("sha1=").ok_or_else(|| {
        SignatureError::Malformed(format!("{SIGNATURE_HEADER} does not start with sha1="))
    })?;
    let expected = Encoding::Hex
        .decode(hex)
        .ok_or_else(|| SignatureError::Malformed(format!("{SIGNATURE_HEADER} is not hex")))?;
    if verify_hmac_sha1(
        secret.expose_secret().as_bytes(),
        &[request.body],
        &expected,
    ) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}
