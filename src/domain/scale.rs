//! Rating scales: what a raw helpdesk score means.
//!
//! Every scale maps its values onto one integer `value` (so a per-source
//! `negative_at_or_below` threshold means the same thing on every scale), a
//! normalised score in `0.0..=1.0`, and a [`Sentiment`]. The defaults are the
//! table in DESIGN.md.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How the customer felt, as far as alerting and reporting are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sentiment {
    Negative,
    Neutral,
    Positive,
}

impl Sentiment {
    pub fn as_str(self) -> &'static str {
        match self {
            Sentiment::Negative => "negative",
            Sentiment::Neutral => "neutral",
            Sentiment::Positive => "positive",
        }
    }
}

impl fmt::Display for Sentiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Sentiment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "negative" => Ok(Sentiment::Negative),
            "neutral" => Ok(Sentiment::Neutral),
            "positive" => Ok(Sentiment::Positive),
            other => Err(format!(
                "unknown sentiment {other:?}; use negative, neutral or positive"
            )),
        }
    }
}

/// The kind of survey a scale belongs to; reports keep them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SurveyKind {
    Csat,
    Nps,
    Ces,
}

impl SurveyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyKind::Csat => "csat",
            SurveyKind::Nps => "nps",
            SurveyKind::Ces => "ces",
        }
    }
}

impl FromStr for SurveyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csat" => Ok(SurveyKind::Csat),
            "nps" => Ok(SurveyKind::Nps),
            "ces" => Ok(SurveyKind::Ces),
            other => Err(format!(
                "unknown survey type {other:?}; use csat, nps or ces"
            )),
        }
    }
}

/// A rating scale. The integer values per scale:
///
/// | scale | values | default negative |
/// |---|---|---|
/// | `binary` | bad = 0, good = 1 | ≤ 0 |
/// | `three_point` | not good = 1, okay = 2, great = 3 | ≤ 1 |
/// | `two_point` | 1 (bad), 2 (good): Zendesk's newer CSAT | ≤ 1 |
/// | `five_point` | 1..=5 | ≤ 2 |
/// | `signed_seven_point` | 103, 102, 101, 100, −101, −102, −103 | < 100 |
/// | `nps` | 0..=10 | ≤ 6 |
/// | `ces` | 1..=7 | ≤ 3 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    Binary,
    TwoPoint,
    ThreePoint,
    FivePoint,
    /// Seven coded answers, happiest first: 103, 102, 101, 100 (neutral),
    /// −101, −102, −103.
    #[serde(alias = "freshdesk")]
    SignedSevenPoint,
    Nps,
    Ces,
}

impl Scale {
    pub const ALL: [Scale; 7] = [
        Scale::Binary,
        Scale::TwoPoint,
        Scale::ThreePoint,
        Scale::FivePoint,
        Scale::SignedSevenPoint,
        Scale::Nps,
        Scale::Ces,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Binary => "binary",
            Scale::TwoPoint => "two_point",
            Scale::ThreePoint => "three_point",
            Scale::FivePoint => "five_point",
            Scale::SignedSevenPoint => "signed_seven_point",
            Scale::Nps => "nps",
            Scale::Ces => "ces",
        }
    }

    pub fn survey(self) -> SurveyKind {
        match self {
            Scale::Nps => SurveyKind::Nps,
            Scale::Ces => SurveyKind::Ces,
            _ => SurveyKind::Csat,
        }
    }

    /// Whether `value` is one this scale can hold.
    pub fn contains(self, value: i64) -> bool {
        match self {
            Scale::Binary => (0..=1).contains(&value),
            Scale::TwoPoint => (1..=2).contains(&value),
            Scale::ThreePoint => (1..=3).contains(&value),
            Scale::FivePoint => (1..=5).contains(&value),
            Scale::SignedSevenPoint => matches!(value, 100..=103 | -103..=-101),
            Scale::Nps => (0..=10).contains(&value),
            Scale::Ces => (1..=7).contains(&value),
        }
    }

    /// The highest value that counts as negative by default.
    pub fn default_negative_at_or_below(self) -> i64 {
        match self {
            Scale::Binary => 0,
            Scale::TwoPoint => 1,
            Scale::ThreePoint => 1,
            Scale::FivePoint => 2,
            Scale::SignedSevenPoint => -101,
            Scale::Nps => 6,
            Scale::Ces => 3,
        }
    }

    /// The lowest value that counts as positive; between the two is neutral.
    pub fn positive_at_or_above(self) -> i64 {
        match self {
            Scale::Binary => 1,
            Scale::TwoPoint => 2,
            Scale::ThreePoint => 3,
            Scale::FivePoint => 4,
            Scale::SignedSevenPoint => 101,
            Scale::Nps => 9,
            Scale::Ces => 5,
        }
    }

    /// The sentiment of `value`, with an optional per-source threshold.
    pub fn sentiment(self, value: i64, negative_at_or_below: Option<i64>) -> Sentiment {
        let negative = negative_at_or_below.unwrap_or(self.default_negative_at_or_below());
        if value <= negative {
            Sentiment::Negative
        } else if value >= self.positive_at_or_above() {
            Sentiment::Positive
        } else {
            Sentiment::Neutral
        }
    }

    /// `value` mapped onto `0.0..=1.0` (worst to best).
    pub fn normalise(self, value: i64) -> f64 {
        let v = value as f64;
        let n = match self {
            Scale::Binary => v,
            Scale::TwoPoint => v - 1.0,
            Scale::ThreePoint => (v - 1.0) / 2.0,
            Scale::FivePoint => (v - 1.0) / 4.0,
            // 103..100 → 1.0..0.5, -101..-103 → 0.33..0.0
            Scale::SignedSevenPoint => {
                if value >= 100 {
                    0.5 + (v - 100.0) / 6.0
                } else {
                    0.5 + (v + 100.0) / 6.0
                }
            }
            Scale::Nps => v / 10.0,
            Scale::Ces => (v - 1.0) / 6.0,
        };
        n.clamp(0.0, 1.0)
    }

    /// A short word for `value` as a person would say it: "Bad", "2/5", "Detractor 3/10".
    pub fn label(self, value: i64) -> String {
        match self {
            Scale::Binary => if value >= 1 { "Good" } else { "Bad" }.to_string(),
            Scale::TwoPoint => if value >= 2 { "Good" } else { "Bad" }.to_string(),
            Scale::ThreePoint => match value {
                3 => "Great".to_string(),
                2 => "Okay".to_string(),
                _ => "Not good".to_string(),
            },
            Scale::FivePoint => format!("{value}/5"),
            Scale::SignedSevenPoint => match value {
                103 => "Extremely happy".to_string(),
                102 => "Very happy".to_string(),
                101 => "Happy".to_string(),
                100 => "Neutral".to_string(),
                -101 => "Unhappy".to_string(),
                -102 => "Very unhappy".to_string(),
                _ => "Extremely unhappy".to_string(),
            },
            Scale::Nps => {
                let group = match value {
                    0..=6 => "Detractor",
                    7..=8 => "Passive",
                    _ => "Promoter",
                };
                format!("{group} {value}/10")
            }
            Scale::Ces => format!("Effort {value}/7"),
        }
    }

    /// Reads a raw score as a helpdesk or an operator writes it: a number, or
    /// one of the words of the binary and three-point scales in any case
    /// ("bad", "Bad, I'm unsatisfied", "not_good", "Not Good", "okay", "ok").
    pub fn parse_value(self, raw: &str) -> Option<i64> {
        let trimmed = raw.trim();
        if let Ok(n) = trimmed.parse::<i64>() {
            return self.contains(n).then_some(n);
        }
        if let Ok(f) = trimmed.parse::<f64>()
            && f.fract() == 0.0
            && f.is_finite()
        {
            let n = f as i64;
            return self.contains(n).then_some(n);
        }
        let word: String = trimmed
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
            .collect();
        let first = word.split_whitespace().collect::<Vec<_>>();
        let head = first.first().copied().unwrap_or("");
        let joined = first.join(" ");
        match self {
            Scale::Binary | Scale::TwoPoint => {
                let (bad, good) = if self == Scale::Binary {
                    (0, 1)
                } else {
                    (1, 2)
                };
                match head {
                    "bad" | "negative" | "unsatisfied" | "dissatisfied" => Some(bad),
                    "good" | "positive" | "satisfied" => Some(good),
                    _ => None,
                }
            }
            Scale::ThreePoint => {
                if joined.starts_with("not good") || joined == "notgood" || head == "bad" {
                    Some(1)
                } else if matches!(head, "okay" | "ok") {
                    Some(2)
                } else if matches!(head, "great" | "good") {
                    Some(3)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        // The seven-point scale's name before it was named for what it is.
        if wanted == "freshdesk" {
            return Ok(Scale::SignedSevenPoint);
        }
        Scale::ALL
            .into_iter()
            .find(|scale| scale.as_str() == wanted)
            .ok_or_else(|| {
                format!(
                    "unknown scale {s:?}; use one of binary, two_point, three_point, five_point, signed_seven_point, nps, ces"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_table_defaults_hold() {
        assert_eq!(Scale::Binary.sentiment(0, None), Sentiment::Negative);
        assert_eq!(Scale::Binary.sentiment(1, None), Sentiment::Positive);
        assert_eq!(Scale::ThreePoint.sentiment(1, None), Sentiment::Negative);
        assert_eq!(Scale::ThreePoint.sentiment(2, None), Sentiment::Neutral);
        assert_eq!(Scale::FivePoint.sentiment(2, None), Sentiment::Negative);
        assert_eq!(Scale::FivePoint.sentiment(3, None), Sentiment::Neutral);
        assert_eq!(Scale::FivePoint.sentiment(4, None), Sentiment::Positive);
        assert_eq!(
            Scale::SignedSevenPoint.sentiment(-101, None),
            Sentiment::Negative
        );
        assert_eq!(
            Scale::SignedSevenPoint.sentiment(100, None),
            Sentiment::Neutral
        );
        assert_eq!(
            Scale::SignedSevenPoint.sentiment(101, None),
            Sentiment::Positive
        );
        assert_eq!(Scale::Nps.sentiment(6, None), Sentiment::Negative);
        assert_eq!(Scale::Nps.sentiment(7, None), Sentiment::Neutral);
        assert_eq!(Scale::Nps.sentiment(9, None), Sentiment::Positive);
        assert_eq!(Scale::Ces.sentiment(3, None), Sentiment::Negative);
        assert_eq!(Scale::Ces.sentiment(4, None), Sentiment::Neutral);
    }

    #[test]
    fn a_source_threshold_moves_the_negative_boundary() {
        assert_eq!(Scale::FivePoint.sentiment(3, Some(3)), Sentiment::Negative);
        assert_eq!(
            Scale::SignedSevenPoint.sentiment(100, Some(100)),
            Sentiment::Negative
        );
    }

    #[test]
    fn words_are_read_in_every_spelling() {
        assert_eq!(Scale::Binary.parse_value("bad"), Some(0));
        assert_eq!(Scale::Binary.parse_value("Bad, I'm unsatisfied"), Some(0));
        assert_eq!(Scale::Binary.parse_value("Good, I'm satisfied"), Some(1));
        assert_eq!(Scale::ThreePoint.parse_value("not_good"), Some(1));
        assert_eq!(Scale::ThreePoint.parse_value("Not Good"), Some(1));
        assert_eq!(Scale::ThreePoint.parse_value("not-good"), Some(1));
        assert_eq!(Scale::ThreePoint.parse_value("Okay"), Some(2));
        assert_eq!(Scale::ThreePoint.parse_value("great"), Some(3));
        assert_eq!(Scale::FivePoint.parse_value("2"), Some(2));
        assert_eq!(Scale::FivePoint.parse_value("2.0"), Some(2));
        assert_eq!(Scale::FivePoint.parse_value("6"), None);
        assert_eq!(Scale::SignedSevenPoint.parse_value("-102"), Some(-102));
        assert_eq!(Scale::SignedSevenPoint.parse_value("99"), None);
        // Its name before it was named for what it is still reads.
        assert_eq!("freshdesk".parse::<Scale>(), Ok(Scale::SignedSevenPoint));
        assert_eq!(
            serde_json::from_str::<Scale>("\"freshdesk\"").unwrap(),
            Scale::SignedSevenPoint
        );
        assert_eq!(Scale::Binary.parse_value("offered"), None);
    }

    #[test]
    fn normalised_scores_run_from_worst_to_best() {
        for scale in Scale::ALL {
            let values: Vec<i64> = (-103..=103).filter(|v| scale.contains(*v)).collect();
            let norms: Vec<f64> = values.iter().map(|v| scale.normalise(*v)).collect();
            assert!(norms.windows(2).all(|w| w[0] < w[1]), "{scale}: {norms:?}");
            assert_eq!(norms.first().copied(), Some(0.0), "{scale}");
            assert_eq!(norms.last().copied(), Some(1.0), "{scale}");
        }
    }

    #[test]
    fn labels_read_as_a_person_would_say_them() {
        assert_eq!(Scale::Binary.label(0), "Bad");
        assert_eq!(Scale::FivePoint.label(1), "1/5");
        assert_eq!(Scale::Nps.label(3), "Detractor 3/10");
        assert_eq!(Scale::ThreePoint.label(1), "Not good");
    }
}
