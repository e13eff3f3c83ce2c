//! The notebook's exploratory numbers: class counts and review lengths.

use serde::{Deserialize, Serialize};

/// How many texts of each class a split holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClassCounts {
    /// Class names, by class id.
    pub names: Vec<String>,
    /// Texts of each class, by class id.
    pub counts: Vec<usize>,
}

impl ClassCounts {
    /// Counts class ids against the class names `names`; an id beyond them is not counted.
    pub fn from_labels(names: &[String], labels: impl IntoIterator<Item = u32>) -> Self {
        let mut counts = vec![0; names.len()];
        for label in labels {
            if let Some(c) = counts.get_mut(label as usize) {
                *c += 1;
            }
        }
        Self {
            names: names.to_vec(),
            counts,
        }
    }

    /// All texts.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// `name: count` for each class, e.g. `negative: 12500, positive: 12500`.
    pub fn describe(&self) -> String {
        self.names
            .iter()
            .zip(&self.counts)
            .map(|(name, count)| format!("{name}: {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Summary of sequence lengths, as the notebook prints them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LengthStats {
    /// Number of sequences.
    pub count: usize,
    /// Mean length.
    pub mean: f64,
    /// Shortest.
    pub min: usize,
    /// Median (50th percentile).
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Longest.
    pub max: usize,
}

impl LengthStats {
    /// Summarizes `lengths`; `None` if there are none.
    pub fn from_lengths(lengths: &[usize]) -> Option<Self> {
        if lengths.is_empty() {
            return None;
        }
        let mut sorted = lengths.to_vec();
        sorted.sort_unstable();
        let sum: usize = sorted.iter().sum();
        Some(Self {
            count: sorted.len(),
            mean: sum as f64 / sorted.len() as f64,
            min: sorted[0],
            p50: percentile(&sorted, 50.0),
            p90: percentile(&sorted, 90.0),
            p95: percentile(&sorted, 95.0),
            max: sorted[sorted.len() - 1],
        })
    }

    /// Share of sequences longer than `maxlen` (they lose words when truncated).
    pub fn share_longer_than(lengths: &[usize], maxlen: usize) -> f64 {
        if lengths.is_empty() {
            return 0.0;
        }
        lengths.iter().filter(|&&l| l > maxlen).count() as f64 / lengths.len() as f64
    }
}

/// The `q`-th percentile of sorted values with linear interpolation (NumPy's default).
pub fn percentile(sorted: &[usize], q: f64) -> f64 {
    let pos = (sorted.len() - 1) as f64 * q / 100.0;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] as f64 * (1.0 - frac) + sorted[hi] as f64 * frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy() {
        // numpy.percentile([1, 2, 3, 4, 10], [50, 90, 95]) == [3.0, 7.6, 8.8]
        let s = LengthStats::from_lengths(&[10, 1, 3, 2, 4]).unwrap();
        assert_eq!(s.p50, 3.0);
        assert!((s.p90 - 7.6).abs() < 1e-12);
        assert!((s.p95 - 8.8).abs() < 1e-12);
        assert_eq!((s.min, s.max, s.count), (1, 10, 5));
        assert!((s.mean - 4.0).abs() < 1e-12);
        assert!(LengthStats::from_lengths(&[]).is_none());
    }

    #[test]
    fn class_counts_and_share() {
        let names = ["neg".to_string(), "pos".to_string(), "mixed".to_string()];
        let c = ClassCounts::from_labels(&names, [0, 1, 1, 0, 1, 2, 7]);
        assert_eq!((c.counts.as_slice(), c.total()), ([2, 3, 1].as_slice(), 6));
        assert_eq!(c.describe(), "neg: 2, pos: 3, mixed: 1");
        assert_eq!(LengthStats::share_longer_than(&[1, 5, 10, 20], 5), 0.5);
    }
}
