//! Gorgias: a Rule calls an HTTP integration with our body and a token
//! header. Its fetch and poll scenarios are in `helpdesks_b.rs` and
//! `polling_a.rs`.

use super::{SECRET, Webhook, fixture, token_headers};

pub fn webhook() -> Webhook {
    Webhook {
        source: "gorgias-body",
        toml: "[[sources]]\nname = \"gorgias-body\"\nkind = \"gorgias\"\nsecret = \"helpdesk-test-secret\"\n",
        secret: SECRET,
        sign: token_headers,
        ratings: None,
        rated: fixture("gorgias/negative.json"),
        rating_pointer: "/satisfaction_survey/score",
    }
}
