//! The generic source's two signature schemes, chosen by `signature`:
//!
//! - `hmac-sha256` (default): HMAC-SHA256(secret, raw body) in one header,
//!   hex or base64, with an optional prefix such as `sha256=`. No timestamp,
//!   so no replay window: the pipeline's duplicate check is the defence.
//! - `standard-webhooks`: <https://www.standardwebhooks.com>, with a replay
//!   window and the `webhook-id` header as the delivery id.
//! - `token`: the secret itself in a header, compared in constant time. For
//!   senders that can only add fixed headers (Freshdesk automation rules,
//!   Zoho workflows); weaker than a signature, so only over HTTPS.

use axum::http::HeaderName;
use secrecy::{ExposeSecret, SecretString};

use super::GenericSettings;
use crate::settings::ConfigProblem;
use crate::sources::SourceTable;
use crate::sources::signature::{
    Encoding, constant_time_eq, verify_hmac_sha256, verify_standard_webhooks,
};
use crate::sources::{SignatureError, WebhookRequest};

/// The header the hmac-sha256 scheme reads when `signature_header` is unset.
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Signature";

/// How a generic delivery is signed.
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
    /// Reads `signature` and its companion keys, reporting each problem
    /// under its own key.
    pub fn from_settings(
        t: &SourceTable,
        s: &GenericSettings,
    ) -> Result<Scheme, Vec<ConfigProblem>> {
        let key = t.key.as_str();
        let mut problems = Vec::new();
        let name = s.signature.as_deref().unwrap_or("hmac-sha256");
        let scheme = match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "hmac-sha256" => {
                problems.extend(check_hmac_only_keys(t, s, false));
                let header = s
                    .signature_header
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SIGNATURE_HEADER.to_string());
                if HeaderName::from_bytes(header.trim().as_bytes()).is_err() {
                    problems.push(ConfigProblem::new(
                        format!("{key}.signature_header"),
                        "is not a valid HTTP header name; e.g. X-Signature",
                    ));
                }
                let encoding = match s.signature_encoding.as_deref().map(str::trim) {
                    None => Encoding::Hex,
                    Some(e) if e.eq_ignore_ascii_case("hex") => Encoding::Hex,
                    Some(e) if e.eq_ignore_ascii_case("base64") => Encoding::Base64,
                    Some(_) => {
                        problems.push(ConfigProblem::new(
                            format!("{key}.signature_encoding"),
                            "must be hex (the default) or base64",
                        ));
                        Encoding::Hex
                    }
                };
                Scheme::HmacSha256 {
                    header: header.trim().to_string(),
                    prefix: s.signature_prefix.clone().filter(|p| !p.is_empty()),
                    encoding,
                }
            }
            "token" => {
                problems.extend(check_hmac_only_keys(t, s, false));
                if s.signature_encoding.is_some() {
                    problems.push(ConfigProblem::new(
                        format!("{key}.signature_encoding"),
                        "applies to signature = \"hmac-sha256\" only; a token is compared as written; remove it",
                    ));
                }
                let header = s
                    .signature_header
                    .clone()
                    .unwrap_or_else(|| DEFAULT_TOKEN_HEADER.to_string());
                if HeaderName::from_bytes(header.trim().as_bytes()).is_err() {
                    problems.push(ConfigProblem::new(
                        format!("{key}.signature_header"),
                        "is not a valid HTTP header name; e.g. X-Csatwatch-Token",
                    ));
                }
                Scheme::Token {
                    header: header.trim().to_string(),
                    prefix: s.signature_prefix.clone().filter(|p| !p.is_empty()),
                }
            }
            "standard-webhooks" => {
                problems.extend(check_hmac_only_keys(t, s, true));
                problems.extend(t.check_replay_window());
                Scheme::StandardWebhooks {
                    window_ms: t.replay_window_ms(),
                }
            }
            _ => {
                problems.push(ConfigProblem::new(
                    format!("{key}.signature"),
                    "must be hmac-sha256 (the default: an HMAC of the body in one header), standard-webhooks (webhook-id, webhook-timestamp and webhook-signature headers) or token (the secret itself in a header, for senders that cannot sign)",
                ));
                return Err(problems);
            }
        };
        if problems.is_empty() {
            Ok(scheme)
        } else {
            Err(problems)
        }
    }

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

/// Keys that only the hmac-sha256 scheme reads; set with standard-webhooks
/// they would be silently ignored. `replay_window` is the reverse.
fn check_hmac_only_keys(
    t: &SourceTable,
    s: &GenericSettings,
    standard: bool,
) -> Vec<ConfigProblem> {
    let key = t.key.as_str();
    let mut problems = Vec::new();
    if standard {
        for (name, set) in [
            ("signature_header", s.signature_header.is_some()),
            ("signature_prefix", s.signature_prefix.is_some()),
            ("signature_encoding", s.signature_encoding.is_some()),
        ] {
            if set {
                problems.push(ConfigProblem::new(
                    format!("{key}.{name}"),
                    "applies to signature = \"hmac-sha256\" or \"token\" only; Standard Webhooks fixes its headers; remove it",
                ));
            }
        }
    } else if t.shared.replay_window.is_some() {
        problems.push(ConfigProblem::new(
            format!("{key}.replay_window"),
            "applies to signature = \"standard-webhooks\" only; hmac-sha256 and token carry no timestamp; remove it",
        ));
    }
    problems
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
