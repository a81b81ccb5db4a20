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
//!
//! The schemes themselves ([`Scheme`]) are in `sources/signature.rs`, shared
//! with the helpdesks that send a token; this file reads their settings.

use axum::http::HeaderName;

use super::GenericSettings;
use crate::settings::ConfigProblem;
use crate::sources::SourceTable;
pub use crate::sources::signature::{
    DEFAULT_SIGNATURE_HEADER, DEFAULT_TOKEN_HEADER, Encoding, Scheme,
};

/// Reads `signature` and its companion keys into a [`Scheme`], reporting
/// each problem under its own key.
pub fn scheme_from_settings(
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
