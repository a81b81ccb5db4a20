//! Intercom: `X-Hub-Signature: sha1=<hex>` over the body, no timestamp.

use csatwatch::sources::signature::hmac_sha1;
use serde_json::json;

use super::{Ratings, SECRET, Webhook, fixture};

pub fn sign(secret: &str, _now_ms: i64, body: &[u8]) -> Vec<(String, String)> {
    vec![(
        "X-Hub-Signature".into(),
        format!(
            "sha1={}",
            hex::encode(hmac_sha1(secret.as_bytes(), &[body]))
        ),
    )]
}

pub fn webhook() -> Webhook {
    Webhook {
        source: "intercom",
        toml: "[[sources]]\nname = \"intercom\"\nkind = \"intercom\"\nsecret = \"helpdesk-test-secret\"\n",
        secret: SECRET,
        sign,
        ratings: Some(Ratings {
            negative: fixture("intercom/negative.json"),
            negative_key: ("515", ""),
            positive: fixture("intercom/positive.json"),
            changed: fixture("intercom/changed.json"),
            changed_key: ("516", ""),
            non_rating: fixture("intercom/ping.json"),
            non_rating_headers: &[],
            malformed: json!({"topic": "conversation.rating.added", "data": {"item": {"id": "9", "conversation_rating": {"rating": 9}}}}),
            malformed_field: "data.item.conversation_rating.rating",
        }),
        rated: fixture("intercom/negative.json"),
        rating_pointer: "/data/item/conversation_rating/rating",
    }
}
