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

/// Serialised one way everywhere (`eval --json`, `train --json`, the run file, the workspace):
/// `accuracy`, `precision`, `recall`, `f1`, `confusion_matrix` (`[[tn, fp], [fn, tp]]`) and
/// `support`. Run files written before that spelt the counts out as `confusion`; they still read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "MetricsJson", from = "MetricsJson")]
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
}

#[derive(Clone, Serialize, Deserialize)]
struct MetricsJson {
    accuracy: f64,
    precision: f64,
    recall: f64,
    f1: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    confusion_matrix: Option<[[usize; 2]; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    support: Option<usize>,
    /// The spelt-out counts of older run files; never written.
    #[serde(default, skip_serializing)]
    confusion: Option<Confusion>,
}

impl From<Metrics> for MetricsJson {
    fn from(m: Metrics) -> Self {
        Self {
            accuracy: m.accuracy,
            precision: m.precision,
            recall: m.recall,
            f1: m.f1,
            confusion_matrix: Some(m.confusion.matrix()),
            support: Some(m.confusion.total()),
            confusion: None,
        }
    }
}

impl From<MetricsJson> for Metrics {
    fn from(j: MetricsJson) -> Self {
        let confusion = match (j.confusion_matrix, j.confusion) {
            (Some([[tn, fp], [fn_, tp]]), _) => Confusion {
                true_negative: tn,
                false_positive: fp,
                false_negative: fn_,
                true_positive: tp,
            },
            (None, Some(c)) => c,
            (None, None) => Confusion::default(),
        };
        Self {
            accuracy: j.accuracy,
            precision: j.precision,
            recall: j.recall,
            f1: j.f1,
            confusion,
        }
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
    fn one_serialisation_that_reads_back_and_old_run_files_still_read() {
        let m = Metrics::from_probabilities(&[1, 0, 1, 1], &[0.9, 0.6, 0.2, 0.7]);
        let json = serde_json::to_value(m).unwrap();
        assert_eq!(
            json["confusion_matrix"],
            serde_json::json!([[0, 1], [1, 2]])
        );
        assert_eq!(json["support"], 4);
        assert!(json.get("confusion").is_none());
        assert_eq!(serde_json::from_value::<Metrics>(json).unwrap(), m);
        let old = serde_json::json!({"accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5,
            "confusion": {"true_negative": 1, "false_positive": 1, "false_negative": 1, "true_positive": 1}});
        let read: Metrics = serde_json::from_value(old).unwrap();
        assert_eq!(read.confusion.matrix(), [[1, 1], [1, 1]]);
        assert_eq!(read.f1, 0.5);
    }

    #[test]
    fn no_positive_predictions_gives_zero_f1_not_nan() {
        let m = Metrics::from_probabilities(&[1, 0], &[0.1, 0.2]);
        assert_eq!(m.f1, 0.0);
        assert_eq!(m.precision, 0.0);
    }
}
