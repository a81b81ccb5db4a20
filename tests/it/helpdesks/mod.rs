//! One file per helpdesk: how it signs, its fixtures, its API emulation
//! where it has one, and the tests only it needs. The scenarios every
//! helpdesk must pass are written once, in `webhooks.rs` and `polling.rs`,
//! and run for each helpdesk listed in [`webhooks`].

pub mod chatwoot;
pub mod devrev;
pub mod fetch;
pub mod freshdesk;
pub mod generic;
pub mod gorgias;
pub mod helpscout;
pub mod hubspot;
pub mod intercom;
pub mod zendesk;
pub mod zendesk_csat;

use serde_json::Value;

/// 2026-11-23T14:05:00Z: the time the fixtures were "sent".
pub const FIXTURE_NOW_MS: i64 = 1_795_442_700_000;
/// The secret of every source below (the `zendesk` and `inhouse` sources of
/// `support::settings` keep their own).
pub const SECRET: &str = "helpdesk-test-secret";

/// Signs `body` as the helpdesk does, with `secret`, at `now_ms`.
pub type Sign = fn(secret: &str, now_ms: i64, body: &[u8]) -> Vec<(String, String)>;

/// A helpdesk's webhook as the shared scenarios see it.
pub struct Webhook {
    /// The source's name in the test settings.
    pub source: &'static str,
    /// Its `[[sources]]` table (empty when `support::settings` has it).
    pub toml: &'static str,
    /// The secret it signs with.
    pub secret: &'static str,
    pub sign: Sign,
    /// Signed deliveries of a negative rating, a positive one and that
    /// positive changed to negative; `None` for helpdesks whose webhook
    /// carries only ids (their scenarios live in their own file).
    pub ratings: Option<Ratings>,
    /// A delivery carrying a rating, and the JSON pointer of its rating
    /// value: the wrong-type scenario replaces the value there.
    pub rated: &'static [u8],
    pub rating_pointer: &'static str,
}

/// The fixtures of the record/alert/change/refuse scenario.
pub struct Ratings {
    pub negative: &'static [u8],
    /// (conversation id, rating key) of the negative fixture.
    pub negative_key: (&'static str, &'static str),
    pub positive: &'static [u8],
    /// The positive fixture's rating, later changed to negative.
    pub changed: &'static [u8],
    pub changed_key: (&'static str, &'static str),
    pub non_rating: &'static [u8],
    /// Headers that replace the signer's for the non-rating event.
    pub non_rating_headers: &'static [(&'static str, &'static str)],
    /// Signed, but unreadable: the error must name this field.
    pub malformed: Value,
    pub malformed_field: &'static str,
}

/// Every helpdesk with a webhook that carries its rating.
pub fn webhooks() -> Vec<Webhook> {
    vec![
        zendesk::webhook(),
        zendesk_csat::webhook(),
        intercom::webhook(),
        helpscout::webhook(),
        chatwoot::webhook(),
        devrev::webhook(),
        freshdesk::webhook(),
        gorgias::webhook(),
        generic::webhook(),
    ]
}

/// The `[[sources]]` tables of every helpdesk above.
pub fn sources_toml() -> String {
    webhooks()
        .iter()
        .map(|w| w.toml)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A fixture's bytes, for the life of the test binary.
pub fn fixture(path: &str) -> &'static [u8] {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    Box::leak(
        std::fs::read(&full)
            .unwrap_or_else(|e| panic!("{full}: {e}"))
            .into_boxed_slice(),
    )
}

/// Base64 of bytes, as several helpdesks encode their signatures.
pub fn b64(bytes: Vec<u8>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The token header of helpdesks that cannot sign.
pub fn token_headers(secret: &str, _now_ms: i64, _body: &[u8]) -> Vec<(String, String)> {
    vec![("X-Csatwatch-Token".into(), secret.into())]
}
