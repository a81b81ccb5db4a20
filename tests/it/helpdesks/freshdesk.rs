//! Freshdesk: an automation rule posts our body with a token header. The
//! rule body usually names only the ticket and the rating is fetched; its
//! fetch and poll scenarios are in `helpdesks_b.rs` and `polling_a.rs`.

use super::{SECRET, Webhook, fixture, token_headers};

pub fn webhook() -> Webhook {
    Webhook {
        source: "freshdesk-body",
        // A rule body that carries the rating itself (no API needed).
        toml: "[[sources]]\nname = \"freshdesk-body\"\nkind = \"freshdesk\"\nsecret = \"helpdesk-test-secret\"\nrating_in_body = true\n",
        secret: SECRET,
        sign: token_headers,
        ratings: None,
        rated: fixture("freshdesk/rule_negative.json"),
        rating_pointer: "/rating/value",
    }
}
