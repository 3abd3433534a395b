//! Statistics of a report: mean and sample standard deviation over seeds, the 95% confidence
//! interval of a mean and of a difference of means (Welch), and one-sided t-test p-values
//! (the Student-t distribution from `statrs`).

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean and sample standard deviation of some values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stats {
    /// Over the finite values; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Self> {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let std = if n > 1 { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        Some(Self { mean, std, n })
    }
}

/// An estimate with its 95% confidence interval and the one-sided p-value of a test that it is
/// above a threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Test {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Degrees of freedom of the t distribution used.
    pub df: f64,
    /// P(the estimate this large or larger | the true value is the threshold).
    pub p: f64,
}

/// The two-sided 95% interval and the one-sided p-value of `estimate > threshold` for an
/// estimate with standard error `se` and `df` degrees of freedom. A zero standard error (every
/// seed gave the same value) gives a point interval and p = 0 or 1.
fn t_test(estimate: f64, se: f64, df: f64, threshold: f64) -> Test {
    if se <= 0.0 || !se.is_finite() || df <= 0.0 {
        let p = if estimate > threshold { 0.0 } else { 1.0 };
        return Test { estimate, low: estimate, high: estimate, df, p };
    }
    let t = StudentsT::new(0.0, 1.0, df).expect("df > 0");
    let q = t.inverse_cdf(0.975);
    Test { estimate, low: estimate - q * se, high: estimate + q * se, df, p: t.sf((estimate - threshold) / se) }
}

/// Welch's test of `a - b > threshold` for two samples' statistics (each with n >= 2): the
/// difference of means, its 95% interval with Welch-Satterthwaite degrees of freedom, and the
/// one-sided p-value. `None` when a side has fewer than 2 values.
pub fn welch(a: Stats, b: Stats, threshold: f64) -> Option<Test> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let (va, vb) = (a.std.powi(2) / a.n as f64, b.std.powi(2) / b.n as f64);
    let se = (va + vb).sqrt();
    let df = if va + vb > 0.0 {
        (va + vb).powi(2) / (va.powi(2) / (a.n - 1) as f64 + vb.powi(2) / (b.n - 1) as f64)
    } else {
        (a.n + b.n - 2) as f64
    };
    Some(t_test(a.mean - b.mean, se, df, threshold))
}

/// The one-sample t-test of `mean > threshold` (n >= 2): the mean, its 95% interval and the
/// one-sided p-value. `None` with fewer than 2 values.
pub fn one_sample(a: Stats, threshold: f64) -> Option<Test> {
    if a.n < 2 {
        return None;
    }
    Some(t_test(a.mean, a.std / (a.n as f64).sqrt(), (a.n - 1) as f64, threshold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_the_sample_deviation_and_skip_non_finite_values() {
        let s = Stats::of(&[1.0, 2.0, 3.0, f64::NAN]).unwrap();
        assert_eq!((s.mean, s.std, s.n), (2.0, 1.0, 3));
        assert_eq!(Stats::of(&[f64::INFINITY]), None);
        assert_eq!(Stats::of(&[4.0]).unwrap().std, 0.0);
    }

    const QUANTILE: f64 = 2.499331092946662;

    #[test]
    fn welch_matches_scipy() {
        // scipy.stats.ttest_ind([1, 2, 3, 4], [2, 4, 6, 8, 10], equal_var=False):
        // t = -2.2514, df = 5.5208, two-sided p = 0.069134 (so one-sided "a > b" p = 0.965433).
        let a = Stats::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        let b = Stats::of(&[2.0, 4.0, 6.0, 8.0, 10.0]).unwrap();
        let w = welch(a, b, 0.0).unwrap();
        assert!((w.df - 5.5208).abs() < 1e-3, "{w:?}");
        assert!((w.p - (1.0 - 0.069134 / 2.0)).abs() < 1e-5, "{w:?}");
        assert!((w.estimate + 3.5).abs() < 1e-12);
        // The interval is symmetric about the estimate, scipy's t.ppf(0.975, 5.5208) standard errors.
        let se = (5.0f64 / 12.0 + 10.0 / 5.0).sqrt();
        assert!((w.high - w.estimate - QUANTILE * se).abs() < 1e-6, "{w:?}");
        assert!(welch(Stats::of(&[1.0]).unwrap(), b, 0.0).is_none());
        // Identical seeds: no spread, a point interval.
        let c = Stats::of(&[5.0, 5.0]).unwrap();
        let d = Stats::of(&[1.0, 1.0]).unwrap();
        let w = welch(c, d, 0.0).unwrap();
        assert_eq!((w.low, w.high, w.p), (4.0, 4.0, 0.0));
        assert_eq!(welch(c, d, 5.0).unwrap().p, 1.0);
        // One sample: scipy.stats.ttest_1samp([1, 2, 3, 4], 1.0, alternative="greater").pvalue.
        let o = one_sample(a, 1.0).unwrap();
        assert!((o.p - 0.051364039).abs() < 1e-6, "{o:?}");
    }
}
