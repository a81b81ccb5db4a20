//! The dashboard: server-rendered pages at `/dashboard` (and `/` redirects
//! there) for a support lead: the overview of the figures, the negatives
//! queue and each rating's story. Templates are compiled in (askama), charts
//! are inline SVG drawn here ([`chart`]), the stylesheet and the one small
//! script are embedded; nothing is fetched from elsewhere at run time.
//!
//! Access is by the `[[api.tokens]]`: a bearer token on each request, or the
//! session cookie the login form gives for one ([`session`]). With no token
//! configured the dashboard is off and says so. Every response carries a
//! strict Content-Security-Policy (no inline script or style), refuses to
//! be framed and sends no referrer.

pub mod chart;
mod csv;
pub mod filters;
mod overview;
mod pages;
pub mod session;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::http::AppState;

pub use session::Access;

/// The dashboard's routes, to be merged into the app's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/dashboard", get(overview::overview))
        .route("/dashboard/negatives", get(pages::negatives))
        .route("/dashboard/ratings/{id}", get(pages::rating))
        .route(
            "/dashboard/login",
            get(pages::login_form).post(pages::login),
        )
        .route("/dashboard/logout", post(pages::logout))
        .route("/dashboard/assets/{name}", get(asset))
        .layer(middleware::from_fn(security_headers))
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every dashboard response; pages are never cached
/// (they show customer text), assets for an hour.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/dashboard/assets/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

const CSS: &str = include_str!("../../assets/dashboard/app.css");
const JS: &str = include_str!("../../assets/dashboard/app.js");

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The signed-in viewer: the name of the token they used.
#[derive(Debug, Clone)]
pub struct Viewer(pub String);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let access = &state.access;
        if !access.enabled() {
            return Err(pages::off());
        }
        if let Some(bearer) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            return match access.check_token(bearer.trim()) {
                Some(name) => Ok(Viewer(name.to_string())),
                None => Err((
                    StatusCode::UNAUTHORIZED,
                    "the bearer token is not accepted\n",
                )
                    .into_response()),
            };
        }
        let now = state.clock.now_ms();
        if let Some(name) = session_cookie(&parts.headers).and_then(|c| access.verify(c, now)) {
            return Ok(Viewer(name));
        }
        // Not signed in (or the cookie is forged, expired or revoked): the
        // login form, which comes back here afterwards.
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|_| parts.method == Method::GET)
            .unwrap_or_else(|| "/dashboard".to_string());
        Err(pages::login_page(StatusCode::UNAUTHORIZED, &next, None))
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == session::COOKIE)
        .map(|(_, v)| v)
}

/// Whether the request came over TLS, as far as we can tell: a proxy in
/// front says so with `X-Forwarded-Proto: https`.
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Refuses a form post from another site (login CSRF, forced logout): the
/// browser's `Sec-Fetch-Site`, or else `Origin` against `Host`.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Where to go after signing in: only a dashboard path of this site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/dashboard") && !n.contains("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/dashboard".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dashboard_paths_are_followed_after_login() {
        assert_eq!(
            safe_next(Some("/dashboard/negatives?state=new")),
            "/dashboard/negatives?state=new"
        );
        assert_eq!(safe_next(Some("//evil.example/dashboard")), "/dashboard");
        assert_eq!(safe_next(Some("https://evil.example")), "/dashboard");
        assert_eq!(safe_next(Some("/dashboard//evil.example")), "/dashboard");
        assert_eq!(safe_next(None), "/dashboard");
    }

    #[test]
    fn cross_site_posts_are_told_apart() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("csat.example:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://csat.example:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h));
    }
}
