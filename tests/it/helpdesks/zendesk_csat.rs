//! Zendesk's newer CSAT: signed exactly like the legacy webhook.

use serde_json::json;

use super::{Ratings, SECRET, Webhook, fixture};

pub fn webhook() -> Webhook {
    Webhook {
        source: "zendesk-csat",
        toml: "[[sources]]\nname = \"zendesk-csat\"\nkind = \"zendesk_csat\"\nsecret = \"helpdesk-test-secret\"\n",
        secret: SECRET,
        sign: super::zendesk::sign,
        ratings: Some(Ratings {
            negative: fixture("zendesk_csat/negative.json"),
            negative_key: ("48300", "01HZX9R7C3V0KQ4W8T2M5N6P7A"),
            positive: fixture("zendesk_csat/positive.json"),
            changed: fixture("zendesk_csat/changed.json"),
            changed_key: ("48301", "01HZX9R7C3V0KQ4W8T2M5N6P7B"),
            non_rating: fixture("zendesk_csat/unanswered.json"),
            non_rating_headers: &[],
            malformed: json!({"ticket": {"id": "1"}, "survey_response": {"id": "r", "rating": 4, "options": 4}}),
            malformed_field: "survey_response.options",
        }),
        rated: fixture("zendesk_csat/negative.json"),
        rating_pointer: "/survey_response/rating",
    }
}
