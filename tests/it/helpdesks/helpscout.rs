//! Help Scout: `X-HelpScout-Signature`, base64 HMAC-SHA1 of the body; the
//! event is named in `X-HelpScout-Event`.

use csatwatch::sources::signature::hmac_sha1;
use serde_json::json;

use super::{Ratings, SECRET, Webhook, b64, fixture};

pub fn sign(secret: &str, _now_ms: i64, body: &[u8]) -> Vec<(String, String)> {
    vec![
        (
            "X-HelpScout-Signature".into(),
            b64(hmac_sha1(secret.as_bytes(), &[body])),
        ),
        ("X-HelpScout-Event".into(), "satisfaction.ratings".into()),
    ]
}

pub fn webhook() -> Webhook {
    Webhook {
        source: "helpscout",
        toml: "[[sources]]\nname = \"helpscout\"\nkind = \"helpscout\"\nsecret = \"helpdesk-test-secret\"\n",
        secret: SECRET,
        sign,
        ratings: Some(Ratings {
            negative: fixture("helpscout/negative.json"),
            negative_key: ("1560011", "3002084"),
            positive: fixture("helpscout/positive.json"),
            changed: fixture("helpscout/changed.json"),
            changed_key: ("1560020", "3002090"),
            // The body of Help Scout's test event is the SDK's; its header
            // says helpscout.test.
            non_rating: fixture("helpscout/test_event.json"),
            non_rating_headers: &[("X-HelpScout-Event", "helpscout.test")],
            malformed: json!({"id": 1, "conversationId": 2, "rating": "meh"}),
            malformed_field: "rating",
        }),
        rated: fixture("helpscout/negative.json"),
        rating_pointer: "/rating",
    }
}
