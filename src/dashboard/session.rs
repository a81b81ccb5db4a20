//! Who may see the dashboard: the `[[api.tokens]]` bearer tokens, and the
//! session cookie a token is exchanged for at the login form.
//!
//! The cookie is `name.expires_ms.mac`, where `mac` is an HMAC-SHA256 over
//! the token's name, the expiry and a hash of the token's current value,
//! keyed by `dashboard.session_secret` (or a random per-process key). So a
//! cookie is refused when it is forged, expired, signed by another key, or
//! its token was removed or changed. No session is stored anywhere.

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::settings::Settings;

/// The session cookie's name.
pub const COOKIE: &str = "csatwatch_session";

/// The configured tokens and the signing key.
#[derive(Clone)]
pub struct Access {
    /// (name, SHA-256 of the token).
    tokens: Vec<(String, [u8; 32])>,
    key: SecretString,
    ttl_ms: i64,
    secure: Option<bool>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

impl Access {
    pub fn from_settings(settings: &Settings) -> Access {
        let tokens = settings
            .api
            .tokens
            .iter()
            .filter_map(|t| Some((t.name.clone(), digest(t.token.as_ref()?.expose_secret()))))
            .collect();
        let key = settings
            .dashboard
            .session_secret
            .clone()
            .unwrap_or_else(|| {
                let bytes: [u8; 32] = rand::random();
                SecretString::from(hex::encode(bytes))
            });
        Access {
            tokens,
            key,
            ttl_ms: crate::clock::ms(settings.dashboard.session_ttl),
            secure: settings.dashboard.secure_cookie,
        }
    }

    /// Whether any token is configured (otherwise the dashboard is off).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The name of the token equal to `presented`, compared in constant time
    /// against every configured token.
    pub fn check_token(&self, presented: &str) -> Option<&str> {
        let presented = digest(presented);
        let mut found = None;
        for (name, hash) in &self.tokens {
            if bool::from(hash.ct_eq(&presented)) && found.is_none() {
                found = Some(name.as_str());
            }
        }
        found
    }

    /// A cookie value for the token `name`, valid until `now_ms + ttl`.
    pub fn issue(&self, name: &str, now_ms: i64) -> Option<String> {
        let hash = self.hash_of(name)?;
        let expires = now_ms + self.ttl_ms;
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name);
        let mac = self.mac(name, expires, hash);
        Some(format!("{encoded}.{expires}.{}", hex::encode(mac)))
    }

    /// The token name a cookie value stands for, if it is genuine, unexpired
    /// and its token is still configured with the same value.
    pub fn verify(&self, cookie: &str, now_ms: i64) -> Option<String> {
        let mut parts = cookie.split('.');
        let (encoded, expires, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let name = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())?;
        let expires: i64 = expires.parse().ok()?;
        let mac = hex::decode(mac).ok()?;
        let hash = self.hash_of(&name)?;
        let expected = self.mac(&name, expires, hash);
        if !bool::from(expected.as_slice().ct_eq(&mac)) || expires <= now_ms {
            return None;
        }
        Some(name)
    }

    /// The `Set-Cookie` value for a session (or, with `None`, one that ends it).
    pub fn set_cookie(&self, value: Option<&str>, tls: bool) -> String {
        let secure = if self.secure.unwrap_or(tls) {
            "; Secure"
        } else {
            ""
        };
        match value {
            Some(v) => format!(
                "{COOKIE}={v}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                self.ttl_ms / 1000
            ),
            None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
        }
    }

    fn hash_of(&self, name: &str) -> Option<&[u8; 32]> {
        self.tokens.iter().find(|(n, _)| n == name).map(|(_, h)| h)
    }

    fn mac(&self, name: &str, expires: i64, token_hash: &[u8; 32]) -> Vec<u8> {
        crate::sources::signature::hmac_sha256(
            self.key.expose_secret().as_bytes(),
            &[
                b"csatwatch-session-v1\0",
                name.as_bytes(),
                b"\0",
                expires.to_string().as_bytes(),
                b"\0",
                token_hash,
            ],
        )
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(tokens: &[(&str, &str)]) -> Access {
        Access {
            tokens: tokens
                .iter()
                .map(|(n, t)| (n.to_string(), digest(t)))
                .collect(),
            key: SecretString::from("k".repeat(40)),
            ttl_ms: 1000,
            secure: None,
        }
    }

    #[test]
    fn a_token_is_recognised_by_value_and_named() {
        let a = access(&[
            ("lead", "token-aaaaaaaaaaaa"),
            ("ops", "token-bbbbbbbbbbbb"),
        ]);
        assert_eq!(a.check_token("token-bbbbbbbbbbbb"), Some("ops"));
        assert_eq!(a.check_token("token-cccccccccccc"), None);
        assert_eq!(a.check_token(""), None);
    }

    #[test]
    fn an_issued_cookie_verifies_until_it_expires() {
        let a = access(&[("lead", "token-aaaaaaaaaaaa")]);
        let c = a.issue("lead", 10_000).unwrap();
        assert_eq!(a.verify(&c, 10_999).as_deref(), Some("lead"));
        assert_eq!(a.verify(&c, 11_000), None);
    }

    #[test]
    fn a_cookie_with_a_changed_expiry_name_or_mac_is_refused() {
        let a = access(&[
            ("lead", "token-aaaaaaaaaaaa"),
            ("ops", "token-bbbbbbbbbbbb"),
        ]);
        let c = a.issue("lead", 10_000).unwrap();
        let parts: Vec<&str> = c.split('.').collect();
        let later = format!("{}.{}.{}", parts[0], 99_999_999, parts[2]);
        assert_eq!(a.verify(&later, 10_500), None);
        let ops = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("ops");
        assert_eq!(
            a.verify(&format!("{ops}.{}.{}", parts[1], parts[2]), 10_500),
            None
        );
        let mut mac = parts[2].to_string();
        mac.replace_range(0..1, if mac.starts_with('0') { "1" } else { "0" });
        assert_eq!(
            a.verify(&format!("{}.{}.{mac}", parts[0], parts[1]), 10_500),
            None
        );
        assert_eq!(a.verify("garbage", 10_500), None);
    }

    #[test]
    fn a_cookie_dies_with_its_token_or_another_key() {
        let a = access(&[("lead", "token-aaaaaaaaaaaa")]);
        let c = a.issue("lead", 0).unwrap();
        let rotated = access(&[("lead", "token-zzzzzzzzzzzz")]);
        assert_eq!(rotated.verify(&c, 1), None);
        let mut other_key = access(&[("lead", "token-aaaaaaaaaaaa")]);
        other_key.key = SecretString::from("x".repeat(40));
        assert_eq!(other_key.verify(&c, 1), None);
    }
}
