//! Reading bodies by pointer: fields, scales, shapes, no-score and errors.

use serde_json::{Value, json};

use super::*;
use crate::domain::{Scale, Sentiment};

#[test]
fn a_negative_rating_is_read_with_every_field() {
    let (delivery_id, event) = one(parse(&source(json!({})), NEGATIVE).unwrap());
    assert_eq!(delivery_id.as_deref(), Some("evt_7Jd2kQ"));
    assert_eq!(event.conversation_id, "90211", "a numeric id becomes text");
    assert_eq!(event.rating_key, "r-553");
    assert_eq!(
        (event.score.scale, event.score.value),
        (Scale::FivePoint, 1)
    );
    assert_eq!(event.sentiment(None), Sentiment::Negative);
    assert_eq!(
        event.comment.as_deref(),
        Some("Nobody answered for three days.")
    );
    assert_eq!(event.agent.as_deref(), Some("Sam Ortiz"));
    assert_eq!(event.team.as_deref(), Some("Tier 2"));
    assert_eq!(event.customer.as_deref(), Some("Dana Kim"));
    assert_eq!(event.company.as_deref(), Some("Globex"));
    assert_eq!(event.brand.as_deref(), Some("Acme"));
    assert_eq!(event.tags, vec!["refund", "priority"]);
    assert_eq!(
        event.url.as_deref(),
        Some("https://support.example.com/tickets/90211")
    );
    assert_eq!(event.rated_at_ms, Some(1_795_442_531_000));
    assert_eq!(event.updated_at_ms, Some(1_795_442_531_000));
}

#[test]
fn a_positive_rating_is_positive_and_an_empty_comment_is_none() {
    let (_, event) = one(parse(&source(json!({})), POSITIVE).unwrap());
    assert_eq!(event.sentiment(None), Sentiment::Positive);
    assert_eq!(event.comment, None);
}

#[test]
fn a_changed_rating_keeps_its_key_and_moves_its_time() {
    let s = source(json!({}));
    let (_, before) = one(parse(&s, POSITIVE).unwrap());
    let (_, after) = one(parse(&s, CHANGED).unwrap());
    assert_eq!(
        (&before.conversation_id, &before.rating_key),
        (&after.conversation_id, &after.rating_key)
    );
    assert_eq!(
        after.updated_at_ms,
        Some(1_795_521_600_000),
        "Unix seconds are read"
    );
    assert_eq!(after.sentiment(None), Sentiment::Negative);
}

#[test]
fn a_delivery_without_a_score_carries_no_rating() {
    let s = source(json!({}));
    assert_eq!(
        parse(&s, NO_SCORE).unwrap(),
        Parsed::NoRating {
            reason: "no score in the delivery".into()
        }
    );
    for body in [
        json!({"ticket": {"id": 1}}),
        json!({"ticket": {"id": 1}, "rating": {"score": ""}}),
    ] {
        assert!(matches!(
            parse(&s, body.to_string().as_bytes()).unwrap(),
            Parsed::NoRating { .. }
        ));
    }
}

fn parse_error(body: Value) -> String {
    parse(&source(json!({})), body.to_string().as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn a_score_off_the_scale_is_named_with_the_scale() {
    let err = parse_error(json!({"ticket": {"id": 1}, "rating": {"score": 7}}));
    assert_eq!(err, "score 7 is not on the five_point scale (1..=5)");
    let nps = parse_error(
        json!({"ticket": {"id": 1}, "survey": {"scale": "nps"}, "rating": {"score": 11}}),
    );
    assert_eq!(nps, "score 11 is not on the nps scale (0..=10)");
}

#[test]
fn the_body_can_name_its_scale() {
    let body = json!({"ticket": {"id": 1}, "survey": {"scale": "nps"}, "rating": {"score": "6"}});
    let (_, event) = one(parse(&source(json!({})), body.to_string().as_bytes()).unwrap());
    assert_eq!((event.score.scale, event.score.value), (Scale::Nps, 6));
    let err = parse_error(
        json!({"ticket": {"id": 1}, "survey": {"scale": "stars"}, "rating": {"score": 1}}),
    );
    assert!(
        err.starts_with("scale (/survey/scale) is \"stars\""),
        "{err}"
    );
}

#[test]
fn the_configured_scale_reads_words() {
    let s = source(json!({"scale": "three_point"}));
    let body = json!({"ticket": {"id": "A-1"}, "rating": {"score": "Not Good"}});
    let (_, event) = one(parse(&s, body.to_string().as_bytes()).unwrap());
    assert_eq!(
        (event.score.scale, event.score.value),
        (Scale::ThreePoint, 1)
    );
}

#[test]
fn each_parse_error_names_its_field_and_pointer() {
    let base = |extra: Value| {
        let mut b = json!({"ticket": {"id": 1}, "rating": {"score": 3}});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        parse_error(b)
    };
    let missing_id = parse_error(json!({"rating": {"score": 3}}));
    assert_eq!(
        missing_id,
        "conversation_id (/ticket/id) is missing or empty"
    );
    let object_id = parse_error(json!({"ticket": {"id": {"n": 1}}, "rating": {"score": 3}}));
    assert_eq!(
        object_id,
        "conversation_id (/ticket/id) is an object; expected a string or a number"
    );
    assert!(
        parse_error(json!({"ticket": {"id": 1}, "rating": {"score": true}}))
            .starts_with("score (/rating/score) is a boolean")
    );
    assert!(base(json!({"agent": {"name": ["x"]}})).starts_with("agent (/agent/name) is an array"));
    assert!(
        base(json!({"ticket": {"id": 1, "tags": {"a": 1}}}))
            .starts_with("tags (/ticket/tags) is an object")
    );
    let when = base(json!({"rating": {"score": 3, "updated_at": "yesterday"}}));
    assert_eq!(
        when,
        "updated_at (/rating/updated_at) is not an RFC 3339 time or Unix seconds or milliseconds"
    );
    assert!(
        base(json!({"rating": {"score": 3, "rated_at": "nope"}}))
            .starts_with("rated_at (/rating/rated_at)")
    );
}

#[test]
fn parse_errors_never_echo_the_customer_comment() {
    let comment = "my private complaint about the product";
    let err =
        parse_error(json!({"ticket": {"id": 1}, "rating": {"score": comment, "comment": comment}}));
    assert!(!err.contains("private"), "{err}");
}

#[test]
fn times_and_tags_come_in_several_shapes() {
    let s = source(json!({}));
    let body = json!({"ticket": {"id": 1, "tags": "a, b ,,c"}, "rating": {"score": 3, "rated_at": 1_795_442_700_123_i64, "updated_at": "1795442700"}});
    let (_, event) = one(parse(&s, body.to_string().as_bytes()).unwrap());
    assert_eq!(event.tags, vec!["a", "b", "c"]);
    assert_eq!(
        event.rated_at_ms,
        Some(1_795_442_700_123),
        "milliseconds stay milliseconds"
    );
    assert_eq!(
        event.updated_at_ms,
        Some(NOW_MS),
        "seconds in a string are read"
    );
}

#[test]
fn pointers_follow_rfc_6901_escapes_and_indexes() {
    let s = source(
        json!({"fields": {"conversation_id": "/data/a~1b", "score": "/answers/0/value", "comment": "/data/x~0y"}}),
    );
    let body = json!({"data": {"a/b": "T-9", "x~y": "why"}, "answers": [{"value": 2}]});
    let (delivery_id, event) = one(parse(&s, body.to_string().as_bytes()).unwrap());
    assert_eq!(
        (event.conversation_id.as_str(), event.score.value),
        ("T-9", 2)
    );
    assert_eq!(event.comment.as_deref(), Some("why"));
    assert_eq!(
        (delivery_id, event.rating_key.as_str()),
        (None, ""),
        "unset pointers give nothing"
    );
}

#[test]
fn the_ticket_url_template_fills_a_missing_link() {
    let s = source(json!({"ticket_url": "https://desk.example/t/{conversation_id}"}));
    let body = json!({"ticket": {"id": 77}, "rating": {"score": 1}});
    let (_, event) = one(parse(&s, body.to_string().as_bytes()).unwrap());
    assert_eq!(event.url.as_deref(), Some("https://desk.example/t/77"));
}
