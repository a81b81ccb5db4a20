//! The figure types every output shares (CLI, API, exports, digests, drop
//! alerts, dashboard) and the tally that builds them from store counts.
//! A measure with no responses is `None` (JSON `null`), never 0.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::{self, NpsCounts};
use crate::domain::Scale;
use crate::store::{FollowUpCount, ScoreCount};

/// CSAT over ratings on the CSAT scales (binary, two-, three-, five-point,
/// signed seven-point): top-box share with its 95 % Wilson interval, in percent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Csat {
    pub responses: u64,
    pub positive: u64,
    pub neutral: u64,
    pub negative: u64,
    pub percent: Option<f64>,
    pub ci95: Option<[f64; 2]>,
}

/// NPS over 0–10 ratings: promoters 9–10, passives 7–8, detractors 0–6;
/// score = % promoters − % detractors, with a 95 % adjusted-Wald interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Nps {
    pub responses: u64,
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
    pub score: Option<f64>,
    pub ci95: Option<[f64; 2]>,
}

/// CES over 1–7 ratings (7 easiest): the average with its 95 % t-interval,
/// and the share of 5–7.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ces {
    pub responses: u64,
    pub average: Option<f64>,
    /// x̄ ± t(0.975, n−1)·s/√n within 1–7, two decimals; `null` below 2
    /// responses.
    #[serde(default)]
    pub ci95: Option<[f64; 2]>,
    pub easy_percent: Option<f64>,
}

/// Closing the loop, over ratings that were negative in some version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    pub negatives: u64,
    /// An alert was posted for it.
    pub alerted: u64,
    pub acknowledged: u64,
    pub followed_up: u64,
    /// Its latest version is no longer negative.
    pub recovered: u64,
    /// followed_up / negatives, in percent.
    pub followed_up_percent: Option<f64>,
    /// From when csatwatch first recorded the rating to "I'm on it".
    pub median_minutes_to_ack: Option<f64>,
    /// From when csatwatch first recorded the rating to "Followed up".
    pub median_minutes_to_follow_up: Option<f64>,
    /// Followed-up ratings per recorded outcome (`reached_customer`,
    /// `resolved`, …; `unrecorded` when none was given).
    pub by_outcome: BTreeMap<String, u64>,
}

/// The four measures of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub csat: Csat,
    pub nps: Nps,
    pub ces: Ces,
    pub follow_up: FollowUp,
}

impl Figures {
    /// Responses over all three surveys.
    pub fn responses(&self) -> u64 {
        self.csat.responses + self.nps.responses + self.ces.responses
    }

    pub fn nps_counts(&self) -> NpsCounts {
        NpsCounts {
            promoters: self.nps.promoters,
            passives: self.nps.passives,
            detractors: self.nps.detractors,
        }
    }
}

/// Raw counts of one group, added up from store rows; turned into
/// [`Figures`] at the end.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    csat: [u64; 3],
    nps: [u64; 3],
    ces_n: u64,
    ces_sum: i64,
    ces_squares: i64,
    ces_easy: u64,
    negatives: u64,
    alerted: u64,
    acked: u64,
    followed_up: u64,
    recovered: u64,
    outcomes: BTreeMap<String, u64>,
    ack_minutes: Vec<f64>,
    follow_up_minutes: Vec<f64>,
}

impl Tally {
    pub fn add_scores(&mut self, row: &ScoreCount) {
        let n = row.n.max(0) as u64;
        let scale: Option<Scale> = row.scale.parse().ok();
        match scale {
            Some(Scale::Nps) => {
                let i = match row.score {
                    9.. => 0,
                    7..=8 => 1,
                    _ => 2,
                };
                self.nps[i] += n;
            }
            Some(Scale::Ces) => {
                self.ces_n += n;
                self.ces_sum += row.score * n as i64;
                self.ces_squares += row.score * row.score * n as i64;
                if row.score >= 5 {
                    self.ces_easy += n;
                }
            }
            Some(_) => {
                let i = match row.sentiment.as_str() {
                    "positive" => 0,
                    "neutral" => 1,
                    _ => 2,
                };
                self.csat[i] += n;
            }
            None => {}
        }
    }

    pub fn add_follow_ups(&mut self, row: &FollowUpCount) {
        let n = row.n.max(0) as u64;
        self.negatives += n;
        self.alerted += if row.alerted != 0 { n } else { 0 };
        self.acked += if row.acked != 0 { n } else { 0 };
        self.recovered += if row.recovered != 0 { n } else { 0 };
        if row.followed_up != 0 {
            self.followed_up += n;
            let outcome = row.outcome.clone().unwrap_or_else(|| "unrecorded".into());
            *self.outcomes.entry(outcome).or_default() += n;
        }
    }

    pub fn add_times(&mut self, ack_ms: Option<i64>, follow_up_ms: Option<i64>) {
        if let Some(ms) = ack_ms {
            self.ack_minutes.push(ms.max(0) as f64 / 60_000.0);
        }
        if let Some(ms) = follow_up_ms {
            self.follow_up_minutes.push(ms.max(0) as f64 / 60_000.0);
        }
    }

    /// Adds another group's counts (for totals).
    pub fn merge(&mut self, other: &Tally) {
        for i in 0..3 {
            self.csat[i] += other.csat[i];
            self.nps[i] += other.nps[i];
        }
        self.ces_n += other.ces_n;
        self.ces_sum += other.ces_sum;
        self.ces_squares += other.ces_squares;
        self.ces_easy += other.ces_easy;
        self.negatives += other.negatives;
        self.alerted += other.alerted;
        self.acked += other.acked;
        self.followed_up += other.followed_up;
        self.recovered += other.recovered;
        for (k, v) in &other.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += v;
        }
        self.ack_minutes.extend_from_slice(&other.ack_minutes);
        self.follow_up_minutes
            .extend_from_slice(&other.follow_up_minutes);
    }

    pub fn figures(&self) -> Figures {
        let [positive, neutral, negative] = self.csat;
        let responses = positive + neutral + negative;
        let csat = Csat {
            responses,
            positive,
            neutral,
            negative,
            percent: percent(positive, responses),
            ci95: stats::wilson(positive, responses)
                .map(|(lo, hi)| [stats::round1(lo * 100.0), stats::round1(hi * 100.0)]),
        };
        let [promoters, passives, detractors] = self.nps;
        let nps = Nps {
            responses: promoters + passives + detractors,
            promoters,
            passives,
            detractors,
            score: stats::nps_score(promoters, passives, detractors).map(stats::round1),
            ci95: stats::nps_interval(promoters, passives, detractors)
                .map(|(lo, hi)| [stats::round1(lo), stats::round1(hi)]),
        };
        let ces = Ces {
            responses: self.ces_n,
            average: (self.ces_n > 0)
                .then(|| (self.ces_sum as f64 / self.ces_n as f64 * 100.0).round() / 100.0),
            // Clamped to the scale, as a mean of 1–7 answers is.
            ci95: stats::mean_interval(self.ces_n, self.ces_sum as f64, self.ces_squares as f64)
                .map(|(lo, hi)| [round2(lo.max(1.0)), round2(hi.min(7.0))]),
            easy_percent: percent(self.ces_easy, self.ces_n),
        };
        let follow_up = FollowUp {
            negatives: self.negatives,
            alerted: self.alerted,
            acknowledged: self.acked,
            followed_up: self.followed_up,
            recovered: self.recovered,
            followed_up_percent: percent(self.followed_up, self.negatives),
            median_minutes_to_ack: stats::median(&mut self.ack_minutes.clone()).map(stats::round1),
            median_minutes_to_follow_up: stats::median(&mut self.follow_up_minutes.clone())
                .map(stats::round1),
            by_outcome: self.outcomes.clone(),
        };
        Figures {
            csat,
            nps,
            ces,
            follow_up,
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `part / whole` in percent, one decimal; `None` when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| stats::round1(part as f64 / whole as f64 * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(scale: &str, score: i64, sentiment: &str, n: i64) -> ScoreCount {
        ScoreCount {
            grp: "0".into(),
            scale: scale.into(),
            score,
            sentiment: sentiment.into(),
            n,
        }
    }

    #[test]
    fn figures_from_counts_on_every_scale() {
        let mut t = Tally::default();
        t.add_scores(&scores("five_point", 5, "positive", 30));
        t.add_scores(&scores("five_point", 4, "positive", 12));
        t.add_scores(&scores("binary", 0, "negative", 5));
        t.add_scores(&scores("three_point", 2, "neutral", 3));
        t.add_scores(&scores("nps", 10, "positive", 60));
        t.add_scores(&scores("nps", 7, "neutral", 25));
        t.add_scores(&scores("nps", 3, "negative", 15));
        // CES vector C1 from the statistics reference: mean 5.48.
        for (score, n) in [(1, 2), (2, 3), (3, 5), (4, 10), (5, 20), (6, 35), (7, 25)] {
            t.add_scores(&scores("ces", score, "positive", n));
        }
        let f = t.figures();
        assert_eq!(
            (
                f.csat.responses,
                f.csat.positive,
                f.csat.neutral,
                f.csat.negative
            ),
            (50, 42, 3, 5)
        );
        assert_eq!(f.csat.percent, Some(84.0));
        assert_eq!(f.csat.ci95, Some([71.5, 91.7]));
        assert_eq!(f.nps.score, Some(45.0));
        assert_eq!(f.nps.ci95, Some([29.3, 58.0]));
        assert_eq!(f.ces.average, Some(5.48));
        // Its t-interval [5.197, 5.763], to two decimals.
        assert_eq!(f.ces.ci95, Some([5.2, 5.76]));
        assert_eq!(f.ces.easy_percent, Some(80.0));
        assert_eq!(f.responses(), 250);
    }

    #[test]
    fn empty_measures_are_null_not_zero() {
        let f = Tally::default().figures();
        assert_eq!(f.csat.percent, None);
        assert_eq!(f.csat.ci95, None);
        assert_eq!(f.nps.score, None);
        assert_eq!(f.ces.average, None);
        assert_eq!(f.ces.ci95, None);
        assert_eq!(f.follow_up.median_minutes_to_ack, None);
        let json = serde_json::to_value(&f).unwrap();
        assert!(json["csat"]["percent"].is_null());
    }

    #[test]
    fn follow_ups_count_outcomes_and_medians() {
        let mut t = Tally::default();
        let row = |followed_up, outcome: Option<&str>, n| FollowUpCount {
            grp: "0".into(),
            alerted: 1,
            acked: 1,
            followed_up,
            recovered: 0,
            outcome: outcome.map(str::to_string),
            n,
        };
        t.add_follow_ups(&row(1, Some("resolved"), 2));
        t.add_follow_ups(&row(1, None, 1));
        t.add_follow_ups(&row(0, None, 1));
        t.add_times(Some(60_000), Some(600_000));
        t.add_times(Some(180_000), None);
        let f = t.figures().follow_up;
        assert_eq!(
            (f.negatives, f.alerted, f.acknowledged, f.followed_up),
            (4, 4, 4, 3)
        );
        assert_eq!(f.followed_up_percent, Some(75.0));
        assert_eq!(f.by_outcome.get("resolved"), Some(&2));
        assert_eq!(f.by_outcome.get("unrecorded"), Some(&1));
        assert_eq!(f.median_minutes_to_ack, Some(2.0));
        assert_eq!(f.median_minutes_to_follow_up, Some(10.0));
    }
}
