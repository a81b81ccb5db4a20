//! Reading rendered trigger bodies: fields, fallbacks, no-rating cases and errors.

use serde_json::json;

use super::*;
use crate::domain::{Scale, Sentiment};

#[test]
fn a_bad_rating_is_read_with_every_field() {
    let event = one_rating(parse(BAD).unwrap());
    assert_eq!(event.conversation_id, "48213");
    assert_eq!(event.rating_key, "");
    assert_eq!((event.score.scale, event.score.value), (Scale::Binary, 0));
    assert_eq!(event.sentiment(None), Sentiment::Negative);
    assert_eq!(
        event.comment.as_deref(),
        Some("Still waiting for my refund after two weeks.")
    );
    assert_eq!(event.agent.as_deref(), Some("Priya Raman"));
    assert_eq!(event.team.as_deref(), Some("Billing"));
    assert_eq!(event.brand.as_deref(), Some("Acme"));
    assert_eq!(event.customer.as_deref(), Some("Jordan Lee"));
    assert_eq!(event.company.as_deref(), Some("Customer Ltd"));
    assert_eq!(event.tags, vec!["billing", "vip"]);
    assert_eq!(
        event.url.as_deref(),
        Some("https://acme.zendesk.com/agent/tickets/48213")
    );
    assert_eq!(event.updated_at_ms, Some(NOW_MS));
    assert_eq!(event.rated_at_ms, None);
}

#[test]
fn a_good_rating_is_positive() {
    let event = one_rating(parse(GOOD).unwrap());
    assert_eq!(event.score.value, 1);
    assert_eq!(event.sentiment(None), Sentiment::Positive);
}

#[test]
fn a_rendered_label_is_read_as_its_rating() {
    let event = one_rating(parse(LABEL).unwrap());
    assert_eq!(event.score.value, 0);
    assert_eq!(event.comment, None, "an empty comment is no comment");
    for label in ["Good, I'm satisfied", "GOOD", " good "] {
        let body = json!({"ticket": {"id": "1"}, "satisfaction": {"current_rating": label}});
        assert_eq!(
            one_rating(parse(body.to_string().as_bytes()).unwrap())
                .score
                .value,
            1,
            "{label}"
        );
    }
}

#[test]
fn a_change_to_bad_is_the_same_rating_later() {
    let before = one_rating(parse(GOOD).unwrap());
    let after = one_rating(parse(CHANGED).unwrap());
    assert_eq!(
        (before.conversation_id.as_str(), before.rating_key.as_str()),
        (after.conversation_id.as_str(), after.rating_key.as_str())
    );
    assert!(after.updated_at_ms > before.updated_at_ms);
    assert_eq!(after.sentiment(None), Sentiment::Negative);
}

#[test]
fn an_offered_but_unanswered_survey_carries_no_rating() {
    assert!(matches!(parse(OFFERED).unwrap(), Parsed::NoRating { .. }));
    for raw in ["unoffered", "Offered", "", "  "] {
        let body = json!({"ticket": {"id": "1"}, "satisfaction": {"current_rating": raw}});
        assert!(
            matches!(
                parse(body.to_string().as_bytes()).unwrap(),
                Parsed::NoRating { .. }
            ),
            "{raw:?}"
        );
    }
}

#[test]
fn an_unknown_rating_is_named_with_its_value() {
    let body = json!({"ticket": {"id": "1"}, "satisfaction": {"current_rating": "xyz"}});
    let err = parse(body.to_string().as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "satisfaction.current_rating is \"xyz\"; expected good or bad"
    );
}

#[test]
fn a_missing_ticket_id_is_named() {
    for body in [
        json!({"satisfaction": {"current_rating": "bad"}}),
        json!({"ticket": {"id": ""}, "satisfaction": {"current_rating": "bad"}}),
    ] {
        let err = parse(body.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("ticket.id is missing"), "{err}");
    }
}

#[test]
fn an_unrendered_ticket_id_is_refused() {
    let body =
        json!({"ticket": {"id": "{{ticket.id}}"}, "satisfaction": {"current_rating": "bad"}});
    let err = parse(body.to_string().as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ticket.id is an unrendered placeholder"),
        "{err}"
    );
}

#[test]
fn a_missing_satisfaction_is_named() {
    let err = parse(json!({"ticket": {"id": "1"}}).to_string().as_bytes()).unwrap_err();
    assert!(
        err.to_string().starts_with("satisfaction is missing"),
        "{err}"
    );
}

#[test]
fn a_numeric_ticket_id_is_read_as_text() {
    let body = json!({"ticket": {"id": 1234}, "satisfaction": {"current_rating": "bad"}});
    assert_eq!(
        one_rating(parse(body.to_string().as_bytes()).unwrap()).conversation_id,
        "1234"
    );
}

#[test]
fn a_body_that_is_not_json_says_where() {
    let err = parse(b"{\"ticket\": ").unwrap_err();
    assert!(
        err.to_string().starts_with("the body is not valid JSON"),
        "{err}"
    );
}

#[test]
fn parse_errors_never_echo_the_customer_comment() {
    let comment = "my private complaint about the product";
    let body = json!({"satisfaction": {"current_rating": "bad", "current_comment": comment}});
    assert!(
        !parse(body.to_string().as_bytes())
            .unwrap_err()
            .to_string()
            .contains("private")
    );
    let long = json!({"ticket": {"id": "1"}, "satisfaction": {"current_rating": comment}});
    assert!(
        !parse(long.to_string().as_bytes())
            .unwrap_err()
            .to_string()
            .contains("private")
    );
}

#[test]
fn fallbacks_fill_the_agent_customer_and_link() {
    let mut s = settings();
    s["ticket_url"] = json!("https://acme.zendesk.com/agent/tickets/{conversation_id}");
    let source = ZendeskSource::from_settings(&table("sources[0]", &s)).unwrap();
    let body = json!({
        "ticket": {"id": "7", "link": "", "brand": "{{ticket.brand.name}}"},
        "assignee": {"name": "", "email": "agent@acme.example"},
        "requester": {"name": " ", "email": "c@customer.example"},
        "satisfaction": {"current_rating": "bad"},
        "updated_at": "November 23, 2026 14:05"
    });
    let event = one_rating(parse_with(&source, body.to_string().as_bytes()).unwrap());
    assert_eq!(event.agent.as_deref(), Some("agent@acme.example"));
    assert_eq!(event.customer.as_deref(), Some("c@customer.example"));
    assert_eq!(
        event.url.as_deref(),
        Some("https://acme.zendesk.com/agent/tickets/7")
    );
    assert_eq!(event.brand, None, "an unrendered placeholder is no value");
    assert_eq!(
        event.updated_at_ms, None,
        "an unreadable time is left out, never an error"
    );
}

#[test]
fn a_link_without_a_scheme_gets_https() {
    let body = json!({"ticket": {"id": "7", "link": "acme.zendesk.com/agent/tickets/7"}, "satisfaction": {"current_rating": "bad"}});
    let event = one_rating(parse(body.to_string().as_bytes()).unwrap());
    assert_eq!(
        event.url.as_deref(),
        Some("https://acme.zendesk.com/agent/tickets/7")
    );
}

#[test]
fn another_body_version_is_refused() {
    let body =
        json!({"csatwatch": 2, "ticket": {"id": "1"}, "satisfaction": {"current_rating": "bad"}});
    let err = parse(body.to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().starts_with("csatwatch is 2"), "{err}");
}
