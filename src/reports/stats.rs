//! The statistics behind every figure: confidence intervals for a
//! proportion (Wilson) and for NPS (adjusted Wald), and the tests that
//! decide whether two periods differ (pooled two-proportion z-test for
//! CSAT, unpooled difference of means for NPS). Pure functions, no I/O.

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_964;

/// The Wilson score interval for `x` successes out of `n`, as fractions in
/// `0.0..=1.0`; `None` when `n` is 0. Chosen over the textbook (Wald)
/// interval because it stays inside [0, 1] and keeps near 95 % coverage
/// for small samples and for proportions near 0 or 1.
pub fn wilson(x: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = x as f64 / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// NPS in points (−100..=100) from promoter, passive and detractor counts;
/// `None` without responses.
pub fn nps_score(promoters: u64, passives: u64, detractors: u64) -> Option<f64> {
    let n = promoters + passives + detractors;
    (n > 0).then(|| (promoters as f64 - detractors as f64) / n as f64 * 100.0)
}

/// The variance of one answer scored +1 / 0 / −1 (promoter / passive /
/// detractor), from the shares of promoters and detractors.
fn nps_variance(p_promoters: f64, p_detractors: f64) -> f64 {
    let nps = p_promoters - p_detractors;
    (p_promoters + p_detractors - nps * nps).max(0.0)
}

/// A 95 % interval for NPS in points, by the adjusted-Wald method (Rocks
/// 2016): add 3 answers, ¾ of them promoters and ¾ detractors, then take
/// the trinomial mean ± z·SE. It behaves well at small samples where the
/// plain method collapses (all promoters gives a zero-width interval).
pub fn nps_interval(promoters: u64, passives: u64, detractors: u64) -> Option<(f64, f64)> {
    let n = promoters + passives + detractors;
    if n == 0 {
        return None;
    }
    let n_adj = n as f64 + 3.0;
    let p = (promoters as f64 + 0.75) / n_adj;
    let d = (detractors as f64 + 0.75) / n_adj;
    let centre = p - d;
    let se = (nps_variance(p, d) / n_adj).sqrt();
    Some((
        ((centre - Z95 * se) * 100.0).max(-100.0),
        ((centre + Z95 * se) * 100.0).min(100.0),
    ))
}

/// The standard normal cumulative distribution function Φ(x), from the
/// complementary error function (Numerical Recipes' Chebyshev fit,
/// accurate to about 1e-7, plenty for a p-value).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The result of comparing a current period with an earlier one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// current − earlier, in percentage points (CSAT) or NPS points.
    pub difference: f64,
    /// The test statistic; negative when the current period is lower.
    pub z: f64,
    /// Two-sided p-value.
    pub p_two_sided: f64,
    /// One-sided p-value for "the current period is lower".
    pub p_lower: f64,
}

impl Comparison {
    fn from_z(difference: f64, z: f64) -> Comparison {
        Comparison {
            difference,
            z,
            p_two_sided: (2.0 * (1.0 - normal_cdf(z.abs()))).min(1.0),
            p_lower: normal_cdf(z),
        }
    }
}

/// Pooled two-proportion z-test of `x1/n1` (current) against `x2/n2`
/// (earlier). `None` when either side has no responses, or when every
/// answer on both sides is the same (no variance: nothing to test).
pub fn compare_proportions(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<Comparison> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let (p1, p2) = (x1 as f64 / n1f, x2 as f64 / n2f);
    let pooled = (x1 + x2) as f64 / (n1f + n2f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se == 0.0 {
        return None;
    }
    Some(Comparison::from_z((p1 - p2) * 100.0, (p1 - p2) / se))
}

/// Counts of one NPS sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NpsCounts {
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
}

impl NpsCounts {
    pub fn n(&self) -> u64 {
        self.promoters + self.passives + self.detractors
    }

    fn shares(&self) -> (f64, f64) {
        let n = self.n() as f64;
        (self.promoters as f64 / n, self.detractors as f64 / n)
    }
}

/// Difference of two independent NPS samples (current − earlier) with the
/// unpooled standard error √(Var₁/n₁ + Var₂/n₂).
pub fn compare_nps(current: NpsCounts, earlier: NpsCounts) -> Option<Comparison> {
    if current.n() == 0 || earlier.n() == 0 {
        return None;
    }
    let (p1, d1) = current.shares();
    let (p2, d2) = earlier.shares();
    let se = (nps_variance(p1, d1) / current.n() as f64
        + nps_variance(p2, d2) / earlier.n() as f64)
        .sqrt();
    if se == 0.0 {
        return None;
    }
    let diff = (p1 - d1) - (p2 - d2);
    Some(Comparison::from_z(diff * 100.0, diff / se))
}

/// t(0.975, df) for df = 1..=30 (two-sided 95 %).
const T975: [f64; 30] = [
    12.706_205, 4.302_653, 3.182_446, 2.776_445, 2.570_582, 2.446_912, 2.364_624, 2.306_004,
    2.262_157, 2.228_139, 2.200_985, 2.178_813, 2.160_369, 2.144_787, 2.131_450, 2.119_905,
    2.109_816, 2.100_922, 2.093_024, 2.085_963, 2.079_614, 2.073_873, 2.068_658, 2.063_899,
    2.059_539, 2.055_529, 2.051_831, 2.048_407, 2.045_230, 2.042_272,
];

/// The Student t quantile for a two-sided 95 % interval with `df` degrees
/// of freedom: a table up to 30, then the Cornish–Fisher expansion around
/// z (error below 1e-6 from df 30 on).
pub fn t975(df: u64) -> f64 {
    if df == 0 {
        return f64::NAN;
    }
    if df <= 30 {
        return T975[df as usize - 1];
    }
    let (z, v) = (Z95, df as f64);
    let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
    z + (z3 + z) / (4.0 * v)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v * v * v)
}

/// A 95 % t-interval for a mean from the count, sum and sum of squares of
/// the answers: x̄ ± t(0.975, n−1)·s/√n, with the sample standard
/// deviation s (n−1 denominator). `None` below 2 answers.
pub fn mean_interval(n: u64, sum: f64, sum_squares: f64) -> Option<(f64, f64)> {
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let mean = sum / nf;
    let variance = ((sum_squares - nf * mean * mean) / (nf - 1.0)).max(0.0);
    let half = t975(n - 1) * (variance / nf).sqrt();
    Some((mean - half, mean + half))
}

/// The median of some values (sorted in place); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// Benjamini–Hochberg adjusted p-values, in the order given: controls the
/// false-discovery rate when many groups (teams, sources) are tested at
/// once, so 40 teams do not produce two "significant" drops by chance.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![1.0; m];
    let mut running_min: f64 = 1.0;
    for (rank, &i) in order.iter().enumerate().rev() {
        let value = p_values[i] * m as f64 / (rank + 1) as f64;
        running_min = running_min.min(value);
        adjusted[i] = running_min.min(1.0);
    }
    adjusted
}

/// Rounds to one decimal, the precision every figure is shown with.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ces_t_interval_matches_vector_c1() {
        // Reference vector C1: {1:2, 2:3, 3:5, 4:10, 5:20, 6:35, 7:25}.
        let counts = [
            (1.0, 2),
            (2.0, 3),
            (3.0, 5),
            (4.0, 10),
            (5.0, 20),
            (6.0, 35),
            (7.0, 25),
        ];
        let n: u64 = counts.iter().map(|c| c.1).sum();
        let sum: f64 = counts.iter().map(|(s, k)| s * *k as f64).sum();
        let squares: f64 = counts.iter().map(|(s, k)| s * s * *k as f64).sum();
        close(t975(99), 1.984_217, 1e-5);
        close(t975(30), 2.042_272, 1e-6);
        close(t975(31), 2.039_513, 1e-5);
        let (lo, hi) = mean_interval(n, sum, squares).unwrap();
        close(lo, 5.197, 5e-4);
        close(hi, 5.763, 5e-4);
        // Two equal answers: zero width; one answer: no interval.
        assert_eq!(mean_interval(2, 10.0, 50.0), Some((5.0, 5.0)));
        assert_eq!(mean_interval(1, 5.0, 25.0), None);
    }

    fn close(a: f64, b: f64, tolerance: f64) {
        assert!(
            (a - b).abs() <= tolerance,
            "{a} is not within {tolerance} of {b}"
        );
    }

    // Vectors W1–W4, N1–N2 from the project's statistics reference
    // (computed independently with python3's statistics.NormalDist).
    #[test]
    fn wilson_intervals_match_the_reference_vectors() {
        let (lo, hi) = wilson(42, 50).unwrap();
        close(lo, 0.714858, 1e-5);
        close(hi, 0.916626, 1e-5);
        let (lo, hi) = wilson(8, 10).unwrap();
        close(lo, 0.490162, 1e-5);
        close(hi, 0.943318, 1e-5);
        let (lo, hi) = wilson(10, 10).unwrap();
        close(lo, 0.722467, 1e-5);
        close(hi, 1.0, 1e-9);
        let (lo, hi) = wilson(172, 200).unwrap();
        close(lo, 0.805101, 1e-5);
        close(hi, 0.901330, 1e-5);
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn nps_score_and_adjusted_wald_interval_match_the_reference_vectors() {
        close(nps_score(60, 25, 15).unwrap(), 45.0, 1e-9);
        let (lo, hi) = nps_interval(60, 25, 15).unwrap();
        close(lo, 29.343, 2e-3);
        close(hi, 58.036, 2e-3);
        close(nps_score(30, 10, 10).unwrap(), 40.0, 1e-9);
        let (lo, hi) = nps_interval(30, 10, 10).unwrap();
        close(lo, 16.188, 2e-3);
        close(hi, 59.284, 2e-3);
        assert_eq!(nps_score(0, 0, 0), None);
        assert_eq!(nps_interval(0, 0, 0), None);
    }

    #[test]
    fn all_promoters_still_get_an_interval_of_some_width() {
        let (lo, hi) = nps_interval(10, 0, 0).unwrap();
        assert!(lo < 100.0 && hi <= 100.0 && hi - lo > 10.0, "{lo}..{hi}");
    }

    #[test]
    fn the_normal_cdf_is_accurate_at_the_critical_values() {
        close(normal_cdf(0.0), 0.5, 1e-7);
        close(normal_cdf(1.959964), 0.975, 1e-6);
        close(normal_cdf(-2.326348), 0.01, 1e-6);
        close(normal_cdf(-1.281552), 0.10, 1e-6);
    }

    #[test]
    fn a_two_proportion_test_matches_a_hand_computation() {
        // 70/100 now against 85/100 before: pooled p = 0.775,
        // SE = sqrt(0.775·0.225·0.02) = 0.059054, z = −0.15/0.059054 = −2.540.
        let c = compare_proportions(70, 100, 85, 100).unwrap();
        close(c.difference, -15.0, 1e-9);
        close(c.z, -2.540, 1e-3);
        close(c.p_lower, 0.005543, 1e-5);
        close(c.p_two_sided, 0.011086, 1e-5);
        assert!(compare_proportions(1, 0, 1, 1).is_none());
        assert!(compare_proportions(5, 5, 9, 9).is_none());
    }

    #[test]
    fn an_nps_difference_uses_each_periods_variance() {
        // N1 against N2: SE = sqrt(0.5475/100 + 0.64/50) = 0.135185,
        // z = (0.45 − 0.40)/0.135185 = 0.36986.
        let now = NpsCounts {
            promoters: 60,
            passives: 25,
            detractors: 15,
        };
        let before = NpsCounts {
            promoters: 30,
            passives: 10,
            detractors: 10,
        };
        let c = compare_nps(now, before).unwrap();
        close(c.difference, 5.0, 1e-9);
        close(c.z, 0.36986, 1e-4);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn benjamini_hochberg_adjusts_and_keeps_the_order() {
        // Sorted: 0.01·4/1 = 0.04, 0.02·4/2 = 0.04, 0.03·4/3 = 0.04, 0.5·4/4 = 0.5.
        let adjusted = benjamini_hochberg(&[0.5, 0.01, 0.03, 0.02]);
        for (a, b) in adjusted.iter().zip([0.5, 0.04, 0.04, 0.04]) {
            close(*a, b, 1e-12);
        }
        assert!(benjamini_hochberg(&[]).is_empty());
    }
}
