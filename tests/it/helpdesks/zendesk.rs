//! Zendesk (legacy good/bad CSAT): `X-Zendesk-Webhook-Signature`, base64
//! HMAC-SHA256 of timestamp + body. The source itself is in
//! `support::settings` (every app the tests spawn has it).

use serde_json::json;

use super::{Ratings, Webhook, fixture};
use crate::support::{ZENDESK_SECRET, zendesk_headers};

pub fn sign(secret: &str, now_ms: i64, body: &[u8]) -> Vec<(String, String)> {
    zendesk_headers(secret, now_ms, body)
}

pub fn webhook() -> Webhook {
    Webhook {
        source: "zendesk",
        toml: "",
        secret: ZENDESK_SECRET,
        sign,
        ratings: Some(Ratings {
            negative: fixture("zendesk/bad_rating.json"),
            negative_key: ("48213", ""),
            positive: fixture("zendesk/good_rating.json"),
            changed: fixture("zendesk/changed_to_bad.json"),
            changed_key: ("48214", ""),
            non_rating: fixture("zendesk/offered.json"),
            non_rating_headers: &[],
            malformed: json!({"ticket": {"id": "1"}, "satisfaction": {"current_rating": "meh"}}),
            malformed_field: "satisfaction.current_rating",
        }),
        rated: fixture("zendesk/bad_rating.json"),
        rating_pointer: "/satisfaction/current_rating",
    }
}
