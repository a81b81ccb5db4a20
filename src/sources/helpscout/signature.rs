//! Help Scout's signature: `X-HelpScout-Signature` = base64(HMAC-SHA1(secret,
//! raw body)) (`helpscout/helpscout-api-php`, `src/Webhooks/IncomingWebhook.php`).
//! The SDK's own test vector is pinned in the tests.

use secrecy::{ExposeSecret, SecretString};

use crate::sources::signature::{Encoding, hmac_sha1, verify_hmac_sha1};
use crate::sources::{SignatureError, WebhookRequest};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-HelpScout-Signature";

/// Signs like Help Scout does; for tests and the set-up guide's curl check.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    Encoding::Base64.encode(&hmac_sha1(secret, &[body]))
}

/// Checks the header against the raw body in constant time.
pub fn verify(secret: &SecretString, request: &WebhookRequest<'_>) -> Result<(), SignatureError> {
    let header = request
        .header(SIGNATURE_HEADER)
        .ok_or_else(|| SignatureError::MissingHeader(SIGNATURE_HEADER.to_string()))?;
    let expected = Encoding::Base64
        .decode(header)
        .ok_or_else(|| SignatureError::Malformed(format!("{SIGNATURE_HEADER} is not base64")))?;
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
