//! Zendesk's webhook signature: which headers, which bytes, and the replay
//! window. The HMAC itself is in [`crate::sources::signature`].
//!
//! `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(key, timestamp + body)),
//! where the timestamp is the `X-Zendesk-Webhook-Signature-Timestamp` header
//! as sent and the body is the raw bytes, with no separator between them
//! (<https://developer.zendesk.com/documentation/webhooks/verifying/>).
//!
//! The key is the signing secret's text **as-is**. Zendesk's secrets look
//! like base64 (the static test secret is
//! `dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==`), but decoding them gives
//! the wrong answer; a test pins this.

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::sources::signature::{Encoding, check_window, hmac_sha256, verify_hmac_sha256};
use crate::sources::{SignatureError, WebhookRequest};

/// The header carrying the base64 signature.
pub const SIGNATURE_HEADER: &str = "X-Zendesk-Webhook-Signature";
/// The header carrying the signed timestamp, e.g. `2021-03-25T05:09:27Z`.
pub const TIMESTAMP_HEADER: &str = "X-Zendesk-Webhook-Signature-Timestamp";

/// Whether `signature` (base64, as in the header) is Zendesk's signature of
/// `timestamp` + `body` under `secret`, compared in constant time. Pure and
/// clock-free, so the published vectors (whose timestamp is `1234`, not a
/// date) can be checked apart from the replay window.
pub fn signature_matches(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(expected) = Encoding::Base64.decode(signature) else {
        return false;
    };
    verify_hmac_sha256(secret, &[timestamp.as_bytes(), body], &expected)
}

/// Signs like Zendesk does; for tests and the set-up guide's curl check.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    Encoding::Base64.encode(&hmac_sha256(secret, &[timestamp.as_bytes(), body]))
}

/// Reads the timestamp header (RFC 3339, e.g. `2021-03-25T05:09:27Z`) as
/// Unix milliseconds.
pub fn parse_timestamp(text: &str) -> Result<i64, SignatureError> {
    let at = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
        SignatureError::Malformed(format!("{TIMESTAMP_HEADER} is not an RFC 3339 time"))
    })?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| SignatureError::Malformed(format!("{TIMESTAMP_HEADER} is out of range")))
}

/// Checks a delivery: both headers present, the signature over the raw body,
/// then the timestamp inside `window_ms` of the request's `now_ms`. The
/// signature is checked first so an unsigned request learns nothing about
/// our clock.
pub fn verify(
    secret: &SecretString,
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
    if Encoding::Base64.decode(signature).is_none() {
        return Err(SignatureError::Malformed(format!(
            "{SIGNATURE_HEADER} is not base64"
        )));
    }
    // The timestamp is signed exactly as sent, so it is not trimmed here.
    if !signature_matches(
        secret.expose_secret().as_bytes(),
        timestamp,
        request.body,
        signature,
    ) {
        return Err(SignatureError::Mismatch);
    }
    check_window(parse_timestamp(timestamp)?, request.now_ms, window_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zendesk's static secret for test requests from an unsaved webhook.
    const TEST_SECRET: &[u8] = b"dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";

    #[test]
    fn the_documented_vector_matches_with_the_secret_used_verbatim() {
        let body = br#"{"event":"ticket.updated","id":123}"#;
        let signature = "S/RDdU2ERmj7LHDDoWJ2onPYH+t7/f2+LTM4dL7UiLM=";
        assert!(signature_matches(
            TEST_SECRET,
            "2021-03-25T05:09:27Z",
            body,
            signature
        ));
        assert_eq!(sign(TEST_SECRET, "2021-03-25T05:09:27Z", body), signature);
    }

    /// Guards against someone "fixing" the key handling by base64-decoding
    /// the secret: that yields a different signature, which Zendesk never sends.
    #[test]
    fn a_base64_decoded_secret_gives_the_wrong_signature() {
        let decoded = Encoding::Base64
            .decode(std::str::from_utf8(TEST_SECRET).unwrap())
            .unwrap();
        let body = br#"{"event":"ticket.updated","id":123}"#;
        let wrong = "ElGlCykjczJm8dAh5YJyfzGb6ttTqrYPkC81bFc/ZSk=";
        assert_eq!(sign(&decoded, "2021-03-25T05:09:27Z", body), wrong);
        assert!(!signature_matches(
            TEST_SECRET,
            "2021-03-25T05:09:27Z",
            body,
            wrong
        ));
    }

    /// aaronellington/zendesk-go @ dfeda33, a trigger-style body (174 bytes).
    #[test]
    fn the_zendesk_go_trigger_vector_matches_byte_for_byte() {
        let body = include_bytes!("../../../tests/fixtures/zendesk/vectors/ticket_update.json");
        assert_eq!(body.len(), 174);
        assert!(signature_matches(
            TEST_SECRET,
            "1234",
            body,
            "PlxjkFT3fSnU9NWSRjLHP86izLX68auazS1Xo8ZfiZE="
        ));
    }

    /// aaronellington/zendesk-go @ dfeda33, an event-style body (534 bytes).
    #[test]
    fn the_zendesk_go_event_vector_matches_byte_for_byte() {
        let body =
            include_bytes!("../../../tests/fixtures/zendesk/vectors/group_membership_created.json");
        assert_eq!(body.len(), 534);
        assert!(signature_matches(
            TEST_SECRET,
            "1234",
            body,
            "10IqYzYTLHRftNsNE+im0DeOM6/JactIRuy0XCHJ9B8="
        ));
    }

    #[test]
    fn a_tampered_body_or_timestamp_does_not_match() {
        let body = br#"{"event":"ticket.updated","id":123}"#;
        let signature = "S/RDdU2ERmj7LHDDoWJ2onPYH+t7/f2+LTM4dL7UiLM=";
        assert!(!signature_matches(
            TEST_SECRET,
            "2021-03-25T05:09:27Z",
            br#"{"event":"ticket.updated","id":124}"#,
            signature
        ));
        assert!(!signature_matches(
            TEST_SECRET,
            "2021-03-25T05:09:28Z",
            body,
            signature
        ));
        assert!(!signature_matches(
            TEST_SECRET,
            "2021-03-25T05:09:27Z",
            body,
            "not base64!"
        ));
    }

    #[test]
    fn timestamps_are_read_as_rfc_3339() {
        assert_eq!(
            parse_timestamp("2021-03-25T05:09:27Z"),
            Ok(1_616_648_967_000)
        );
        assert_eq!(
            parse_timestamp("2021-03-25T06:09:27+01:00"),
            Ok(1_616_648_967_000)
        );
        assert!(matches!(
            parse_timestamp("1234"),
            Err(SignatureError::Malformed(_))
        ));
    }
}
