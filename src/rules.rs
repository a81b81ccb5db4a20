//! Alert routing: `[[rules]]` decide which channel a rating's alert goes
//! to, who is mentioned, or that it raises none. Evaluated in order; the
//! first match wins unless it says `continue = true`. A rule without a
//! `sentiment` matcher matches negative ratings only, so by default only
//! negative ratings alert; a rule may opt neutral or positive ones in.
//!
//! When no rule matches a negative rating, it goes to `slack.default_channel`.

use std::collections::HashSet;
use std::time::Duration;

use crate::domain::{Sentiment, SurveyKind};
use crate::settings::{RuleSettings, Settings};

/// What the rules look at.
#[derive(Debug, Clone)]
pub struct RatingFacts<'a> {
    pub source: &'a str,
    pub sentiment: Sentiment,
    pub survey: SurveyKind,
    pub score: i64,
    pub tags: &'a [String],
    pub team: Option<&'a str>,
    pub brand: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub has_comment: bool,
    pub company: Option<&'a str>,
    /// How long before this rating the same customer last gave another
    /// negative one, in milliseconds (`None`: never, or customer unknown).
    pub previous_negative_ms_ago: Option<i64>,
}

/// Where one alert goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The rule's name, `None` for the default route.
    pub rule: Option<String>,
    pub channel: String,
    pub mentions: Vec<String>,
}

/// The outcome of routing one rating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// Alert these channels (at least one).
    Alert(Vec<Route>),
    /// A rule muted it.
    Muted { rule: String },
    /// Nothing matched and it is not negative (or no default channel exists).
    NoAlert,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    source: HashSet<String>,
    sentiment: HashSet<Sentiment>,
    survey: HashSet<SurveyKind>,
    score_at_or_below: Option<i64>,
    tags: HashSet<String>,
    team: HashSet<String>,
    brand: HashSet<String>,
    agent: HashSet<String>,
    has_comment: Option<bool>,
    channel: Option<String>,
    mentions: Vec<String>,
    mute: bool,
    continue_: bool,
    escalate_after: Option<Duration>,
    escalate_to: Vec<String>,
    repeat_negative: Option<Duration>,
    vip: Option<bool>,
    dm_agent: bool,
}

/// The compiled rules.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
    default_channel: Option<String>,
    /// `alerts.escalate_after` and `alerts.escalate_to`.
    escalate_after: Option<Duration>,
    escalate_to: Vec<String>,
    /// `alerts.vip_companies` and `alerts.vip_tags`, lower-cased.
    vip_companies: HashSet<String>,
    vip_tags: HashSet<String>,
}

fn lower_set(values: &[String]) -> HashSet<String> {
    values.iter().map(|v| v.trim().to_lowercase()).collect()
}

fn matches_text(set: &HashSet<String>, value: Option<&str>) -> bool {
    set.is_empty() || value.is_some_and(|v| set.contains(&v.trim().to_lowercase()))
}

impl Rules {
    /// Compiles validated settings. Unparseable values were refused by
    /// validation, so they are skipped here.
    pub fn from_settings(settings: &Settings) -> Rules {
        let default_channel = settings.slack.default_channel.clone().or_else(|| {
            // The log sink needs a channel name for its lines; a webhook's
            // channel is fixed by Slack anyway.
            (settings.slack.bot_token.is_none()).then(|| "default".to_string())
        });
        let rules = settings
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| compile(i, r))
            .collect();
        Rules {
            rules,
            default_channel,
            escalate_after: settings.alerts.escalate_after,
            escalate_to: settings.alerts.escalate_to.clone(),
            vip_companies: lower_set(&settings.alerts.vip_companies),
            vip_tags: lower_set(&settings.alerts.vip_tags),
        }
    }

    /// Whether a rating's customer is a VIP: their company is in
    /// `alerts.vip_companies` or the ticket has a tag in `alerts.vip_tags`.
    pub fn is_vip(&self, facts: &RatingFacts<'_>) -> bool {
        facts
            .company
            .is_some_and(|c| self.vip_companies.contains(&c.trim().to_lowercase()))
            || facts
                .tags
                .iter()
                .any(|t| self.vip_tags.contains(&t.trim().to_lowercase()))
    }

    /// The longest `repeat_negative` window of any rule (how far back the
    /// pipeline must look for a customer's previous negative rating).
    pub fn repeat_window(&self) -> Option<Duration> {
        self.rules.iter().filter_map(|r| r.repeat_negative).max()
    }

    /// Whether the rule named `rule` also messages the rated agent.
    pub fn dm_agent(&self, rule: Option<&str>) -> bool {
        rule.and_then(|name| self.rules.iter().find(|r| r.name == name))
            .is_some_and(|r| r.dm_agent)
    }

    /// When an alert routed by `rule` (`None`: the default route) escalates
    /// and whom it mentions: the rule's own settings, else `[alerts]`'s.
    /// `None` when escalation is off for it.
    pub fn escalation(&self, rule: Option<&str>) -> Option<(Duration, Vec<String>)> {
        let rule = rule.and_then(|name| self.rules.iter().find(|r| r.name == name));
        let after = rule
            .and_then(|r| r.escalate_after)
            .or(self.escalate_after)?;
        let to = rule
            .map(|r| r.escalate_to.clone())
            .filter(|to| !to.is_empty())
            .unwrap_or_else(|| self.escalate_to.clone());
        Some((after, to))
    }

    /// The channel for alerts no rule routes.
    pub fn default_channel(&self) -> Option<&str> {
        self.default_channel.as_deref()
    }

    /// Routes one rating.
    pub fn route(&self, facts: &RatingFacts<'_>) -> Routing {
        let mut routes = Vec::new();
        for rule in &self.rules {
            if !rule.matches(facts, self.is_vip(facts)) {
                continue;
            }
            if rule.mute {
                if routes.is_empty() {
                    return Routing::Muted {
                        rule: rule.name.clone(),
                    };
                }
                break;
            }
            if let Some(channel) = rule
                .channel
                .clone()
                .or_else(|| self.default_channel.clone())
                && !routes.iter().any(|r: &Route| r.channel == channel)
            {
                routes.push(Route {
                    rule: Some(rule.name.clone()),
                    channel,
                    mentions: rule.mentions.clone(),
                });
            }
            if !rule.continue_ {
                break;
            }
        }
        if routes.is_empty()
            && facts.sentiment == Sentiment::Negative
            && let Some(channel) = &self.default_channel
        {
            routes.push(Route {
                rule: None,
                channel: channel.clone(),
                mentions: Vec::new(),
            });
        }
        if routes.is_empty() {
            Routing::NoAlert
        } else {
            Routing::Alert(routes)
        }
    }

    /// Explains, for `check-config`, which rules a rating would take.
    pub fn explain(&self, facts: &RatingFacts<'_>) -> String {
        match self.route(facts) {
            Routing::Alert(routes) => routes
                .iter()
                .map(|r| {
                    format!(
                        "alert {} via {}{}",
                        r.channel,
                        r.rule
                            .as_deref()
                            .unwrap_or("the default route (slack.default_channel)"),
                        if r.mentions.is_empty() {
                            String::new()
                        } else {
                            format!(", mentioning {}", r.mentions.join(" "))
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            Routing::Muted { rule } => format!("no alert: muted by {rule}"),
            Routing::NoAlert if facts.sentiment == Sentiment::Negative => {
                "no alert: no rule matches and slack.default_channel is not set".to_string()
            }
            Routing::NoAlert => "no alert: no rule opts this sentiment in".to_string(),
        }
    }
}

fn compile(index: usize, r: &RuleSettings) -> Rule {
    let sentiment: HashSet<Sentiment> = r.sentiment.iter().filter_map(|s| s.parse().ok()).collect();
    Rule {
        name: r.name.clone().unwrap_or_else(|| format!("rules[{index}]")),
        source: r.source.iter().cloned().collect(),
        sentiment: if sentiment.is_empty() {
            HashSet::from([Sentiment::Negative])
        } else {
            sentiment
        },
        survey: r.survey.iter().filter_map(|s| s.parse().ok()).collect(),
        score_at_or_below: r.score_at_or_below,
        tags: lower_set(&r.tags),
        team: lower_set(&r.team),
        brand: lower_set(&r.brand),
        agent: lower_set(&r.agent),
        has_comment: r.has_comment,
        channel: r.channel.clone(),
        mentions: r.mention.clone(),
        mute: r.mute,
        continue_: r.continue_,
        escalate_after: r.escalate_after,
        escalate_to: r.escalate_to.clone(),
        repeat_negative: r.repeat_negative,
        vip: r.vip,
        dm_agent: r.dm_agent,
    }
}

impl Rule {
    fn matches(&self, f: &RatingFacts<'_>, vip: bool) -> bool {
        (self.source.is_empty() || self.source.contains(f.source))
            && self.sentiment.contains(&f.sentiment)
            && (self.survey.is_empty() || self.survey.contains(&f.survey))
            && self.score_at_or_below.is_none_or(|max| f.score <= max)
            && (self.tags.is_empty()
                || f.tags.iter().any(|t| self.tags.contains(&t.to_lowercase())))
            && matches_text(&self.team, f.team)
            && matches_text(&self.brand, f.brand)
            && matches_text(&self.agent, f.agent)
            && self.has_comment.is_none_or(|want| want == f.has_comment)
            && self.vip.is_none_or(|want| want == vip)
            && self.repeat_negative.is_none_or(|window| {
                f.previous_negative_ms_ago
                    .is_some_and(|ago| ago <= crate::clock::ms(window))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(toml_rules: Vec<RuleSettings>, default_channel: Option<&str>) -> Rules {
        let mut settings: Settings = toml_free_settings();
        settings.rules = toml_rules;
        settings.slack.default_channel = default_channel.map(str::to_string);
        settings.slack.bot_token = Some("xoxb-test".to_string().into());
        Rules::from_settings(&settings)
    }

    fn toml_free_settings() -> Settings {
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        Settings::load_with_env(Some(file.path()), std::iter::empty()).unwrap()
    }

    fn facts(source: &'static str, sentiment: Sentiment) -> RatingFacts<'static> {
        RatingFacts {
            source,
            sentiment,
            survey: SurveyKind::Csat,
            score: 1,
            tags: &[],
            team: Some("Billing"),
            brand: None,
            agent: None,
            has_comment: true,
            company: None,
            previous_negative_ms_ago: None,
        }
    }

    fn rule(name: &str, channel: &str) -> RuleSettings {
        RuleSettings {
            name: Some(name.to_string()),
            channel: Some(channel.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn without_rules_a_negative_goes_to_the_default_channel_and_nothing_else_alerts() {
        let r = rules(vec![], Some("#csat"));
        assert_eq!(
            r.route(&facts("zendesk", Sentiment::Negative)),
            Routing::Alert(vec![Route {
                rule: None,
                channel: "#csat".into(),
                mentions: vec![]
            }])
        );
        assert_eq!(
            r.route(&facts("zendesk", Sentiment::Positive)),
            Routing::NoAlert
        );
        assert_eq!(
            r.route(&facts("zendesk", Sentiment::Neutral)),
            Routing::NoAlert
        );
    }

    #[test]
    fn the_first_matching_rule_wins_unless_it_continues() {
        let mut billing = rule("billing", "#billing");
        billing.team = vec!["billing".into()];
        billing.mention = vec!["@here".into()];
        let all = rule("all", "#all");
        let r = rules(vec![billing.clone(), all.clone()], Some("#csat"));
        let routed = r.route(&facts("zendesk", Sentiment::Negative));
        assert_eq!(
            routed,
            Routing::Alert(vec![Route {
                rule: Some("billing".into()),
                channel: "#billing".into(),
                mentions: vec!["@here".into()]
            }])
        );
        billing.continue_ = true;
        let r = rules(vec![billing, all], Some("#csat"));
        let Routing::Alert(routes) = r.route(&facts("zendesk", Sentiment::Negative)) else {
            panic!("expected an alert")
        };
        assert_eq!(
            routes
                .iter()
                .map(|r| r.channel.as_str())
                .collect::<Vec<_>>(),
            ["#billing", "#all"]
        );
    }

    #[test]
    fn source_and_sentiment_matchers_select() {
        let mut neutral_intercom = rule("neutral", "#watch");
        neutral_intercom.source = vec!["intercom".into()];
        neutral_intercom.sentiment = vec!["neutral".into()];
        let r = rules(vec![neutral_intercom], Some("#csat"));
        assert!(
            matches!(r.route(&facts("intercom", Sentiment::Neutral)), Routing::Alert(ref v) if v[0].channel == "#watch")
        );
        assert_eq!(
            r.route(&facts("zendesk", Sentiment::Neutral)),
            Routing::NoAlert
        );
        assert!(
            matches!(r.route(&facts("intercom", Sentiment::Negative)), Routing::Alert(ref v) if v[0].channel == "#csat")
        );
    }

    #[test]
    fn a_mute_rule_silences_what_it_matches() {
        let mut mute = rule("no-comment", "#unused");
        mute.has_comment = Some(false);
        mute.mute = true;
        let r = rules(vec![mute], Some("#csat"));
        let mut f = facts("zendesk", Sentiment::Negative);
        f.has_comment = false;
        assert_eq!(
            r.route(&f),
            Routing::Muted {
                rule: "no-comment".into()
            }
        );
        f.has_comment = true;
        assert!(matches!(r.route(&f), Routing::Alert(_)));
    }

    #[test]
    fn score_and_tag_matchers_select() {
        let mut worst = rule("worst", "#worst");
        worst.score_at_or_below = Some(1);
        worst.tags = vec!["VIP".into()];
        let r = rules(vec![worst], Some("#csat"));
        let tags = vec!["vip".to_string()];
        let mut f = facts("zendesk", Sentiment::Negative);
        f.tags = &tags;
        assert!(matches!(r.route(&f), Routing::Alert(ref v) if v[0].channel == "#worst"));
        f.score = 2;
        assert!(matches!(r.route(&f), Routing::Alert(ref v) if v[0].channel == "#csat"));
    }

    #[test]
    fn repeat_detractors_and_vips_are_matched_and_the_agent_dm_is_per_rule() {
        let mut repeat = rule("repeat", "#repeat");
        repeat.repeat_negative = Some(Duration::from_secs(30 * 86_400));
        repeat.dm_agent = true;
        let mut vip = rule("vip", "#vip");
        vip.vip = Some(true);
        let mut settings = toml_free_settings();
        settings.rules = vec![repeat, vip];
        settings.slack.default_channel = Some("#csat".into());
        settings.slack.bot_token = Some("xoxb-test".to_string().into());
        settings.alerts.vip_companies = vec!["Initech".into()];
        settings.alerts.vip_tags = vec!["Enterprise".into()];
        let r = Rules::from_settings(&settings);
        let channel = |f: &RatingFacts<'_>| match r.route(f) {
            Routing::Alert(routes) => routes[0].channel.clone(),
            other => panic!("{other:?}"),
        };
        let mut f = facts("zendesk", Sentiment::Negative);
        assert_eq!(channel(&f), "#csat");
        f.previous_negative_ms_ago = Some(31 * 86_400_000);
        assert_eq!(channel(&f), "#csat", "outside the window");
        f.previous_negative_ms_ago = Some(29 * 86_400_000);
        assert_eq!(channel(&f), "#repeat");
        f.previous_negative_ms_ago = None;
        f.company = Some(" initech ");
        assert_eq!(channel(&f), "#vip");
        f.company = Some("Globex");
        let tags = vec!["enterprise".to_string()];
        f.tags = &tags;
        assert_eq!(channel(&f), "#vip", "by tag");
        assert_eq!(r.repeat_window(), Some(Duration::from_secs(30 * 86_400)));
        assert!(r.dm_agent(Some("repeat")));
        assert!(!r.dm_agent(Some("vip")) && !r.dm_agent(None));
    }
}
