//! Binary classification metrics, positive class = 1 (disaster).

use serde::{Deserialize, Serialize};

/// Confusion counts: rows are the given label, columns the prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub true_negative: usize,
    pub false_positive: usize,
    pub false_negative: usize,
    pub true_positive: usize,
}

impl Confusion {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u8, u8)>) -> Self {
        let mut c = Self::default();
        for (given, predicted) in pairs {
            match (given, predicted) {
                (0, 0) => c.true_negative += 1,
                (0, _) => c.false_positive += 1,
                (_, 0) => c.false_negative += 1,
                _ => c.true_positive += 1,
            }
        }
        c
    }

    /// `[[tn, fp], [fn, tp]]`, the layout scikit-learn prints.
    pub fn matrix(&self) -> [[usize; 2]; 2] {
        [
            [self.true_negative, self.false_positive],
            [self.false_negative, self.true_positive],
        ]
    }

    pub fn total(&self) -> usize {
        self.true_negative + self.false_positive + self.false_negative + self.true_positive
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub confusion: Confusion,
}

impl Metrics {
    pub fn from_confusion(c: Confusion) -> Self {
        let ratio = |num: usize, den: usize| {
            if den == 0 {
                0.0
            } else {
                num as f64 / den as f64
            }
        };
        let precision = ratio(c.true_positive, c.true_positive + c.false_positive);
        let recall = ratio(c.true_positive, c.true_positive + c.false_negative);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Self {
            accuracy: ratio(c.true_positive + c.true_negative, c.total()),
            precision,
            recall,
            f1,
            confusion: c,
        }
    }

    /// Metrics for probabilities of class 1, thresholded at 0.5.
    pub fn from_probabilities(labels: &[u8], p_disaster: &[f32]) -> Self {
        Self::from_confusion(Confusion::from_pairs(
            labels
                .iter()
                .zip(p_disaster)
                .map(|(&y, &p)| (y, u8::from(p >= 0.5))),
        ))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "confusion_matrix": self.confusion.matrix(),
            "support": self.confusion.total(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        // given, predicted: 3 TP, 1 FN, 1 FP, 5 TN
        let pairs = [
            (1, 1),
            (1, 1),
            (1, 1),
            (1, 0),
            (0, 1),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 0),
        ];
        let m = Metrics::from_confusion(Confusion::from_pairs(pairs));
        assert_eq!(m.confusion.matrix(), [[5, 1], [1, 3]]);
        assert!((m.accuracy - 0.8).abs() < 1e-12);
        assert!((m.precision - 0.75).abs() < 1e-12);
        assert!((m.recall - 0.75).abs() < 1e-12);
        assert!((m.f1 - 0.75).abs() < 1e-12);
    }

    #[test]
    fn no_positive_predictions_gives_zero_f1_not_nan() {
        let m = Metrics::from_probabilities(&[1, 0], &[0.1, 0.2]);
        assert_eq!(m.f1, 0.0);
        assert_eq!(m.precision, 0.0);
    }
}
