//! Latency samples and their percentiles: every sample is kept and sorted, so p99.9 is exact (the
//! runs here record at most a few hundred thousand samples, well within memory).

use std::time::Duration;

/// Latency samples in seconds.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    values: Vec<f64>,
    sorted: bool,
}

impl Samples {
    /// Records one sample.
    pub fn push(&mut self, value: Duration) {
        self.values.push(value.as_secs_f64());
        self.sorted = false;
    }

    /// Records one sample given in seconds.
    pub fn push_secs(&mut self, seconds: f64) {
        self.values.push(seconds);
        self.sorted = false;
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.values.sort_by(f64::total_cmp);
            self.sorted = true;
        }
    }

    /// The `q` quantile (0..=1) in seconds, nearest rank; `NaN` without samples.
    pub fn quantile(&mut self, q: f64) -> f64 {
        if self.values.is_empty() {
            return f64::NAN;
        }
        self.sort();
        let rank = (q * self.values.len() as f64).ceil() as usize;
        self.values[rank.clamp(1, self.values.len()) - 1]
    }

    /// The quantile in milliseconds.
    pub fn ms(&mut self, q: f64) -> f64 {
        self.quantile(q) * 1000.0
    }

    /// The largest sample in seconds.
    pub fn max(&mut self) -> f64 {
        self.quantile(1.0)
    }
}

/// The medians of the second and of the third figures of the rounds of `mode` in `results`.
pub fn medians<M: PartialEq>(results: &[(M, f64, f64)], mode: M) -> (f64, f64) {
    let of = |figure: fn(&(M, f64, f64)) -> f64| -> f64 {
        let values: Vec<f64> = results.iter().filter(|r| r.0 == mode).map(figure).collect();
        median(&values)
    };
    (of(|r| r.1), of(|r| r.2))
}

/// The median of a few measurements (rounds of the same run).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut samples = Samples::default();
        for ms in 1..=1000 {
            samples.push(Duration::from_millis(ms));
        }
        assert!((samples.ms(0.5) - 500.0).abs() < 1e-9);
        assert!((samples.ms(0.99) - 990.0).abs() < 1e-9);
        assert!((samples.ms(0.999) - 999.0).abs() < 1e-9);
        assert!((samples.max() - 1.0).abs() < 1e-9);
        assert!(Samples::default().quantile(0.5).is_nan());
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn medians_take_only_the_rounds_of_the_mode() {
        let results = [
            ("a", 1.0, 30.0),
            ("b", 100.0, 100.0),
            ("a", 3.0, 10.0),
            ("a", 2.0, 20.0),
        ];
        assert_eq!(medians(&results, "a"), (2.0, 20.0));
        assert_eq!(medians(&results, "b"), (100.0, 100.0));
    }
}
