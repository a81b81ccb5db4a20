//! The generic source (`inhouse` in `support::settings`): hmac-sha256 in
//! `X-Signature` with a `sha256=` prefix, fields by JSON pointer.

use super::{Webhook, fixture};
use crate::support::{GENERIC_SECRET, generic_headers};

pub fn sign(_secret: &str, _now_ms: i64, body: &[u8]) -> Vec<(String, String)> {
    generic_headers(body)
}

pub fn webhook() -> Webhook {
    Webhook {
        source: "inhouse",
        toml: "",
        secret: GENERIC_SECRET,
        sign,
        // Its full scenarios are in webhooks.rs (both signature schemes).
        ratings: None,
        rated: fixture("generic/negative.json"),
        rating_pointer: "/rating/score",
    }
}
