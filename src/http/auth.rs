//! Bearer tokens from `[[api.tokens]]`, for the read API (and the
//! dashboard's login, which checks a typed token with [`ApiTokens::check`]).
//!
//! Tokens are compared in constant time: each side is hashed with SHA-256
//! and the digests compared with `subtle`, against every configured token
//! without stopping at a match, so neither a token's length nor which one
//! matched shows in the timing. With no tokens configured the API is off
//! and answers 404, as if it did not exist.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::settings::ReadApiSettings;

/// The configured tokens, hashed.
#[derive(Clone, Default)]
pub struct ApiTokens {
    tokens: Arc<Vec<(String, [u8; 32])>>,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ApiTokens").field("names", &names).finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// The name of the token that was presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName(pub String);

impl ApiTokens {
    pub fn from_settings(settings: &ReadApiSettings) -> ApiTokens {
        let tokens = settings
            .tokens
            .iter()
            .filter_map(|t| {
                let secret: &SecretString = t.token.as_ref()?;
                Some((t.name.clone(), digest(secret.expose_secret())))
            })
            .collect();
        ApiTokens {
            tokens: Arc::new(tokens),
        }
    }

    /// No tokens: the API is off.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The name of the configured token equal to `presented`, if any.
    pub fn check(&self, presented: &str) -> Option<&str> {
        let wanted = digest(presented);
        let mut found = None;
        for (name, token) in self.tokens.iter() {
            if bool::from(token.ct_eq(&wanted)) && found.is_none() {
                found = Some(name.as_str());
            }
        }
        found
    }

    /// The name of the token in an `Authorization: Bearer …` header, if valid.
    pub fn check_headers(&self, headers: &HeaderMap) -> Option<&str> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return None;
        }
        self.check(token)
    }
}

/// Middleware for the API routes: 404 when the API is off, 401 without a
/// valid bearer token; the token's name goes on the request for handlers.
pub async fn require_token(
    State(tokens): State<ApiTokens>,
    mut request: Request,
    next: Next,
) -> Response {
    if tokens.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "not found"})),
        )
            .into_response();
    }
    match tokens.check_headers(request.headers()) {
        Some(name) => {
            let name = TokenName(name.to_string());
            tracing::debug!(token = %name.0, "API request authenticated");
            request.extensions_mut().insert(name);
            next.run(request).await
        }
        None => {
            metrics::counter!("csatwatch_api_unauthorized_total").increment(1);
            tracing::warn!("API request without a valid bearer token (401)");
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"csatwatch\"")],
                Json(serde_json::json!({
                    "error": "a valid bearer token is required: send Authorization: Bearer <token> with a token from [[api.tokens]]"
                })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ApiTokenSettings;

    fn tokens() -> ApiTokens {
        ApiTokens::from_settings(&ReadApiSettings {
            tokens: vec![
                ApiTokenSettings {
                    name: "grafana".into(),
                    token: Some(SecretString::from("0123456789abcdef0123".to_string())),
                    token_file: None,
                },
                ApiTokenSettings {
                    name: "bi".into(),
                    token: Some(SecretString::from("fedcba9876543210fedc".to_string())),
                    token_file: None,
                },
            ],
        })
    }

    #[test]
    fn each_token_is_recognised_by_name_and_others_are_not() {
        let t = tokens();
        assert_eq!(t.check("0123456789abcdef0123"), Some("grafana"));
        assert_eq!(t.check("fedcba9876543210fedc"), Some("bi"));
        assert_eq!(t.check("0123456789abcdef012"), None);
        assert_eq!(t.check(""), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            "Bearer fedcba9876543210fedc".parse().unwrap(),
        );
        assert_eq!(t.check_headers(&headers), Some("bi"));
        headers.insert(
            header::AUTHORIZATION,
            "Basic fedcba9876543210fedc".parse().unwrap(),
        );
        assert_eq!(t.check_headers(&headers), None);
        assert!(!format!("{t:?}").contains("0123"));
    }
}
