//! Signature primitives shared by the sources: HMAC over raw bytes, checked
//! in constant time, replay windows, and the Standard Webhooks scheme.
//!
//! Each helpdesk's own scheme (which header, which bytes, which encoding)
//! lives in its folder; this module only knows the cryptography.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;
use sha2::Sha256;

use super::{SignatureError, WebhookRequest};

/// How a signature is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

impl Encoding {
    /// Decodes `text`; `None` if it is not valid in this encoding.
    pub fn decode(self, text: &str) -> Option<Vec<u8>> {
        let text = text.trim();
        match self {
            Encoding::Hex => hex::decode(text).ok(),
            Encoding::Base64 => BASE64.decode(text).ok(),
        }
    }

    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Hex => hex::encode(bytes),
            Encoding::Base64 => BASE64.encode(bytes),
        }
    }
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 of the concatenation of `parts` (Intercom, Help Scout).
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Checks `expected` against HMAC-SHA256(key, parts) in constant time.
pub fn verify_hmac_sha256(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(expected).is_ok()
}

/// Checks `expected` against HMAC-SHA1(key, parts) in constant time.
pub fn verify_hmac_sha1(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(expected).is_ok()
}

/// Compares two byte strings in constant time (shared-token headers).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Rejects a timestamp further than `window_ms` from `now_ms`, in either
/// direction (a clock ahead of ours is as suspicious as a replay).
///
/// The timestamp is the sender's, so unauthenticated: the difference is
/// computed with checked arithmetic, and one too far to compute (say
/// `i64::MIN` seconds) is simply stale.
pub fn check_window(timestamp_ms: i64, now_ms: i64, window_ms: i64) -> Result<(), SignatureError> {
    match now_ms.checked_sub(timestamp_ms) {
        Some(age) if age.unsigned_abs() <= window_ms.unsigned_abs() => Ok(()),
        Some(age) => Err(SignatureError::Stale {
            age_secs: age / 1000,
        }),
        None => Err(SignatureError::Stale {
            age_secs: if timestamp_ms < 0 { i64::MAX } else { i64::MIN } / 1000,
        }),
    }
}

/// The Standard Webhooks scheme (<https://www.standardwebhooks.com>):
/// `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`,
/// several space-separated signatures allowed (key rotation). The secret may
/// carry the `whsec_` prefix, in which case the rest is base64 key bytes.
pub fn verify_standard_webhooks(
    secret: &SecretString,
    request: &WebhookRequest<'_>,
    window_ms: i64,
) -> Result<(), SignatureError> {
    let header = |name: &str| {
        request
            .header(name)
            .ok_or_else(|| SignatureError::MissingHeader(name.to_string()))
    };
    let id = header("webhook-id")?;
    let timestamp = header("webhook-timestamp")?;
    let signatures = header("webhook-signature")?;
    let seconds: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed("webhook-timestamp is not Unix seconds".into()))?;
    check_window(seconds.saturating_mul(1000), request.now_ms, window_ms)?;
    let key = standard_webhooks_key(secret)?;
    for candidate in signatures.split_whitespace() {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Some(bytes) = Encoding::Base64.decode(encoded) else {
            continue;
        };
        if verify_hmac_sha256(
            &key,
            &[
                id.as_bytes(),
                b".",
                timestamp.trim().as_bytes(),
                b".",
                request.body,
            ],
            &bytes,
        ) {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

fn standard_webhooks_key(secret: &SecretString) -> Result<Vec<u8>, SignatureError> {
    let secret = secret.expose_secret();
    match secret.strip_prefix("whsec_") {
        Some(encoded) => Encoding::Base64
            .decode(encoded)
            .ok_or_else(|| SignatureError::Malformed("the whsec_ secret is not base64".into())),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// Signs like a Standard Webhooks sender would; for tests and the README's
/// sample command.
pub fn sign_standard_webhooks(
    secret: &SecretString,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let key = standard_webhooks_key(secret).unwrap_or_default();
    let ts = timestamp.to_string();
    let mac = hmac_sha256(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", Encoding::Base64.encode(&mac))
}

/// How a delivery of the generic source (or of a helpdesk that can only
/// send a fixed token header) is authenticated.
/// The header the hmac-sha256 scheme reads when `signature_header` is unset.
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Signature";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// HMAC-SHA256 of the raw body, keyed with the secret's bytes as written.
    HmacSha256 {
        header: String,
        prefix: Option<String>,
        encoding: Encoding,
    },
    /// Standard Webhooks, with its replay window in milliseconds.
    StandardWebhooks { window_ms: i64 },
    /// The secret in a header (after an optional prefix such as `Bearer `).
    Token {
        header: String,
        prefix: Option<String>,
    },
}

/// The header the token scheme reads when `signature_header` is unset.
pub const DEFAULT_TOKEN_HEADER: &str = "X-Csatwatch-Token";

impl Scheme {
    /// Checks a delivery in constant time.
    pub fn verify(
        &self,
        secret: &SecretString,
        request: &WebhookRequest<'_>,
    ) -> Result<(), SignatureError> {
        match self {
            Scheme::StandardWebhooks { window_ms } => {
                verify_standard_webhooks(secret, request, *window_ms)
            }
            Scheme::Token { header, prefix } => {
                let value = request
                    .header(header)
                    .ok_or_else(|| SignatureError::MissingHeader(header.clone()))?
                    .trim();
                let token = match prefix {
                    Some(prefix) => value
                        .strip_prefix(prefix.as_str())
                        .ok_or(SignatureError::Mismatch)?,
                    None => value,
                };
                if constant_time_eq(token.as_bytes(), secret.expose_secret().as_bytes()) {
                    Ok(())
                } else {
                    Err(SignatureError::Mismatch)
                }
            }
            Scheme::HmacSha256 {
                header,
                prefix,
                encoding,
            } => {
                let value = request
                    .header(header)
                    .ok_or_else(|| SignatureError::MissingHeader(header.clone()))?
                    .trim();
                let encoded = match prefix {
                    // A configured prefix that is absent means the sender
                    // signs differently from what we were told.
                    Some(prefix) => value
                        .strip_prefix(prefix.as_str())
                        .ok_or(SignatureError::Mismatch)?,
                    None => value,
                };
                // The hex decoder accepts either case: senders differ.
                let expected = encoding.decode(encoded).ok_or_else(|| {
                    SignatureError::Malformed(format!(
                        "the {header} header is not {}",
                        encoding_name(*encoding)
                    ))
                })?;
                if verify_hmac_sha256(
                    secret.expose_secret().as_bytes(),
                    &[request.body],
                    &expected,
                ) {
                    Ok(())
                } else {
                    Err(SignatureError::Mismatch)
                }
            }
        }
    }

    /// The delivery id this scheme carries: Standard Webhooks' `webhook-id`,
    /// the same across retries.
    pub fn delivery_id(&self, request: &WebhookRequest<'_>) -> Option<String> {
        match self {
            Scheme::StandardWebhooks { .. } => request
                .header("webhook-id")
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_string),
            Scheme::HmacSha256 { .. } | Scheme::Token { .. } => None,
        }
    }
}

fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Hex => "hex",
        Encoding::Base64 => "base64",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, Method, Uri};

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202_case_2() {
        let mac = hmac_sha1(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(hex::encode(mac), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }

    #[test]
    fn verification_refuses_a_single_flipped_bit() {
        let mut mac = hmac_sha256(b"k", &[b"body"]);
        assert!(verify_hmac_sha256(b"k", &[b"body"], &mac));
        mac[0] ^= 1;
        assert!(!verify_hmac_sha256(b"k", &[b"body"], &mac));
        assert!(!verify_hmac_sha256(b"k", &[b"body"], &mac[..31]));
    }

    #[test]
    fn the_window_is_checked_both_ways() {
        assert!(check_window(1_000_000, 1_000_000 + 300_000, 300_000).is_ok());
        assert!(check_window(1_000_000, 1_000_000 + 300_001, 300_000).is_err());
        assert!(check_window(1_000_000 + 300_001, 1_000_000, 300_000).is_err());
    }

    #[test]
    fn a_timestamp_too_far_to_subtract_is_stale_not_a_panic() {
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
            assert!(
                check_window(ts, 1_700_000_000_000, 300_000).is_err(),
                "{ts}"
            );
        }
        // Seconds as a sender writes them, through the saturating multiply.
        let seconds: i64 = "-9223372036854775808".parse().unwrap();
        assert!(check_window(seconds.saturating_mul(1000), 1_700_000_000_000, 300_000).is_err());
    }

    /// The Standard Webhooks specification's own example: secret
    /// `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`, id `msg_p5jXN8AQM9LWM0D4loKWxJek`,
    /// timestamp 1614265330, body `{"test": 2432232314}`.
    #[test]
    fn standard_webhooks_matches_the_published_example() {
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string());
        let body = br#"{"test": 2432232314}"#;
        let signature =
            sign_standard_webhooks(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

        let mut headers = HeaderMap::new();
        headers.insert(
            "webhook-id",
            HeaderValue::from_static("msg_p5jXN8AQM9LWM0D4loKWxJek"),
        );
        headers.insert("webhook-timestamp", HeaderValue::from_static("1614265330"));
        let rotated = format!("v1,bm90LXRoaXMtb25l {signature}");
        headers.insert(
            "webhook-signature",
            HeaderValue::from_str(&rotated).unwrap(),
        );
        let uri = Uri::from_static("/webhooks/x");
        let request = WebhookRequest {
            method: &Method::POST,
            uri: &uri,
            headers: &headers,
            body,
            now_ms: 1_614_265_330_000 + 10_000,
        };
        assert_eq!(verify_standard_webhooks(&secret, &request, 300_000), Ok(()));
        let late = WebhookRequest {
            now_ms: 1_614_265_330_000 + 301_000,
            ..request
        };
        assert!(matches!(
            verify_standard_webhooks(&secret, &late, 300_000),
            Err(SignatureError::Stale { .. })
        ));
        let tampered = WebhookRequest {
            body: br#"{"test": 2432232315}"#,
            ..request
        };
        assert_eq!(
            verify_standard_webhooks(&secret, &tampered, 300_000),
            Err(SignatureError::Mismatch)
        );
    }
}

#[cfg(test)]
mod token_tests {
    use axum::http::{HeaderMap, HeaderValue, Method, Uri};

    use super::*;

    fn scheme(prefix: Option<&str>) -> Scheme {
        Scheme::Token {
            header: DEFAULT_TOKEN_HEADER.into(),
            prefix: prefix.map(str::to_string),
        }
    }

    fn check(scheme: &Scheme, header: Option<&str>) -> Result<(), SignatureError> {
        let mut headers = HeaderMap::new();
        if let Some(value) = header {
            headers.insert(DEFAULT_TOKEN_HEADER, HeaderValue::from_str(value).unwrap());
        }
        let uri = Uri::from_static("/webhooks/freshdesk");
        let request = WebhookRequest {
            method: &Method::POST,
            uri: &uri,
            headers: &headers,
            body: b"{}",
            now_ms: 0,
        };
        scheme.verify(&SecretString::from("s3cret-token".to_string()), &request)
    }

    #[test]
    fn the_right_token_is_accepted_and_any_other_refused() {
        assert_eq!(check(&scheme(None), Some("s3cret-token")), Ok(()));
        assert_eq!(
            check(&scheme(None), Some("s3cret-tokeN")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&scheme(None), Some("s3cret-token-longer")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&scheme(None), Some("")),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            check(&scheme(None), None),
            Err(SignatureError::MissingHeader(_))
        ));
    }

    #[test]
    fn a_configured_token_prefix_is_required() {
        assert_eq!(
            check(&scheme(Some("Bearer ")), Some("Bearer s3cret-token")),
            Ok(())
        );
        assert_eq!(
            check(&scheme(Some("Bearer ")), Some("s3cret-token")),
            Err(SignatureError::Mismatch)
        );
    }
}
