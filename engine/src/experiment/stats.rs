//! The statistics of an experiment's table: means and standard deviations over seeds, and
//! bootstrap intervals over the held-out pairs.

use crate::rng::SeededRng;

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The sample standard deviation (n - 1 in the denominator); 0 for fewer than two values.
pub fn sample_sd(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
}

/// The `q` quantile of `sorted` (ascending), interpolated linearly between neighbours.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64)
}

/// Resamples of the held-out pairs: `count` draws of `pairs` indices with replacement, seeded,
/// shared by every statistic of a table so that paired comparisons resample the same pairs.
pub struct Bootstrap {
    resamples: Vec<Vec<usize>>,
}

impl Bootstrap {
    pub const RESAMPLES: usize = 2000;

    pub fn new(pairs: usize, count: usize, seed: u64) -> Self {
        let mut rng = SeededRng::derive(seed, "bootstrap");
        let resamples = (0..count).map(|_| (0..pairs).map(|_| rng.below(pairs)).collect()).collect();
        Self { resamples }
    }

    /// The central 95% interval of `statistic` over the resamples (`statistic` maps a
    /// resample's pair indices to a number, e.g. the mean accuracy over seeds on those pairs).
    pub fn interval_95(&self, statistic: impl Fn(&[usize]) -> f64) -> (f64, f64) {
        let mut values: Vec<f64> = self.resamples.iter().map(|r| statistic(r)).collect();
        values.sort_by(f64::total_cmp);
        (quantile(&values, 0.025), quantile(&values, 0.975))
    }
}

/// The mean over runs of each run's accuracy on the pairs at `indices`, where `correct[run][pair]`
/// says whether the run ranked the pair right.
pub fn mean_accuracy(correct: &[Vec<bool>], indices: &[usize]) -> f64 {
    let per_run: Vec<f64> = correct.iter().map(|run| indices.iter().filter(|&&i| run[i]).count() as f64 / indices.len() as f64).collect();
    mean(&per_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_sd_by_hand() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations sum to 32, 32 / 7.
        let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&values), 5.0);
        assert!((sample_sd(&values) - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(sample_sd(&[3.0]), 0.0);
    }

    #[test]
    fn quantiles_interpolate() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!((quantile(&sorted, 0.0), quantile(&sorted, 0.5), quantile(&sorted, 1.0)), (1.0, 3.0, 5.0));
        assert_eq!(quantile(&sorted, 0.125), 1.5);
    }

    #[test]
    fn the_bootstrap_interval_brackets_the_accuracy_and_narrows_with_more_pairs() {
        // A run right on 70% of its pairs: the interval holds 0.7, about +-1.96 * sqrt(.21 / n).
        let width = |n: usize| {
            let correct = vec![(0..n).map(|i| i % 10 < 7).collect::<Vec<bool>>()];
            let (low, high) = Bootstrap::new(n, Bootstrap::RESAMPLES, 7).interval_95(|r| mean_accuracy(&correct, r));
            assert!(low < 0.7 && 0.7 < high, "{low} {high}");
            let expected = 2.0 * 1.96 * (0.21 / n as f64).sqrt();
            assert!(((high - low) - expected).abs() < 0.25 * expected, "width {} against {expected}", high - low);
            high - low
        };
        assert!(width(400) < width(100));
        // Every pair right: no spread at all.
        let all = vec![vec![true; 50]];
        assert_eq!(Bootstrap::new(50, 100, 1).interval_95(|r| mean_accuracy(&all, r)), (1.0, 1.0));
    }
}
