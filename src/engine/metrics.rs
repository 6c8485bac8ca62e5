//! Classification metrics for 2 to K classes: a K×K confusion matrix, precision, recall and F1
//! per class, and one headline F1: class 1's for two classes (the Kaggle metric, class 1 =
//! disaster), the macro average for more.

use serde::{Deserialize, Serialize};

use crate::engine::infer::top_class;

/// Confusion counts: `matrix[given][predicted]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confusion {
    pub matrix: Vec<Vec<usize>>,
}

impl Confusion {
    pub fn new(classes: usize) -> Self {
        Self {
            matrix: vec![vec![0; classes]; classes],
        }
    }

    /// Counts `(given, predicted)` pairs over `classes` classes.
    pub fn from_pairs(classes: usize, pairs: impl IntoIterator<Item = (u8, u8)>) -> Self {
        let mut c = Self::new(classes);
        for (given, predicted) in pairs {
            let (g, p) = (given as usize, predicted as usize);
            let needed = g.max(p) + 1;
            if needed > c.classes() {
                c.grow(needed);
            }
            c.matrix[g][p] += 1;
        }
        c
    }

    fn grow(&mut self, classes: usize) {
        for row in &mut self.matrix {
            row.resize(classes, 0);
        }
        self.matrix.resize(classes, vec![0; classes]);
    }

    pub fn classes(&self) -> usize {
        self.matrix.len()
    }

    pub fn total(&self) -> usize {
        self.matrix.iter().flatten().sum()
    }

    pub fn correct(&self) -> usize {
        (0..self.classes()).map(|i| self.matrix[i][i]).sum()
    }

    /// Rows given this class.
    pub fn support(&self, class: usize) -> usize {
        self.matrix[class].iter().sum()
    }

    /// Rows predicted as this class.
    pub fn predicted(&self, class: usize) -> usize {
        self.matrix.iter().map(|row| row[class]).sum()
    }
}

/// One class's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// Serialised one way everywhere (`eval --json`, `train --json`, the run file, the workspace):
/// `accuracy`, `precision`, `recall`, `f1` (the headline: class 1's for two classes, macro
/// averages for more), `macro_f1`, `per_class`, `confusion_matrix` (`[given][predicted]`; for
/// two classes `[[tn, fp], [fn, tp]]`) and `support`. Run files written before spelt two-class
/// counts out as `confusion`; they still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "MetricsJson", from = "MetricsJson")]
pub struct Metrics {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    pub confusion: Confusion,
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn harmonic(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

impl Metrics {
    pub fn from_confusion(c: Confusion) -> Self {
        let k = c.classes();
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|i| {
                let precision = ratio(c.matrix[i][i], c.predicted(i));
                let recall = ratio(c.matrix[i][i], c.support(i));
                ClassMetrics {
                    precision,
                    recall,
                    f1: harmonic(precision, recall),
                    support: c.support(i),
                }
            })
            .collect();
        let mean = |f: fn(&ClassMetrics) -> f64| {
            if k == 0 {
                0.0
            } else {
                per_class.iter().map(f).sum::<f64>() / k as f64
            }
        };
        let macro_f1 = mean(|m| m.f1);
        let headline = if k == 2 {
            per_class[1]
        } else {
            ClassMetrics {
                precision: mean(|m| m.precision),
                recall: mean(|m| m.recall),
                f1: macro_f1,
                support: c.total(),
            }
        };
        Self {
            accuracy: ratio(c.correct(), c.total()),
            precision: headline.precision,
            recall: headline.recall,
            f1: headline.f1,
            macro_f1,
            per_class,
            confusion: c,
        }
    }

    /// Metrics of the most probable class of each row of `probabilities` (one probability per
    /// class) against `labels`.
    pub fn from_probabilities(labels: &[u8], probabilities: &[Vec<f32>]) -> Self {
        let classes = probabilities.first().map_or(2, Vec::len).max(2);
        Self::from_confusion(Confusion::from_pairs(
            classes,
            labels
                .iter()
                .zip(probabilities)
                .map(|(&y, p)| (y, top_class(p))),
        ))
    }

    /// How many classes the figures are over.
    pub fn classes(&self) -> usize {
        self.confusion.classes()
    }

    /// The name of the headline F1: "F1" for two classes, "macro-F1" for more.
    pub fn f1_name(&self) -> &'static str {
        if self.classes() > 2 {
            "macro-F1"
        } else {
            "F1"
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct MetricsJson {
    accuracy: f64,
    precision: f64,
    recall: f64,
    f1: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    macro_f1: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    per_class: Vec<ClassMetrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    confusion_matrix: Option<Vec<Vec<usize>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    support: Option<usize>,
    /// The spelt-out two-class counts of older run files; never written.
    #[serde(default, skip_serializing)]
    confusion: Option<OldConfusion>,
}

#[derive(Clone, Copy, Deserialize)]
struct OldConfusion {
    true_negative: usize,
    false_positive: usize,
    false_negative: usize,
    true_positive: usize,
}

impl From<Metrics> for MetricsJson {
    fn from(m: Metrics) -> Self {
        Self {
            accuracy: m.accuracy,
            precision: m.precision,
            recall: m.recall,
            f1: m.f1,
            macro_f1: Some(m.macro_f1),
            support: Some(m.confusion.total()),
            confusion_matrix: Some(m.confusion.matrix),
            per_class: m.per_class,
            confusion: None,
        }
    }
}

impl From<MetricsJson> for Metrics {
    fn from(j: MetricsJson) -> Self {
        let matrix = match (j.confusion_matrix, j.confusion) {
            (Some(m), _) => Some(m),
            (None, Some(c)) => Some(vec![
                vec![c.true_negative, c.false_positive],
                vec![c.false_negative, c.true_positive],
            ]),
            (None, None) => None,
        };
        let square = |m: &Vec<Vec<usize>>| m.iter().all(|row| row.len() == m.len());
        match matrix {
            // The counts decide; the figures are recomputed from them exactly as first made.
            Some(matrix) if square(&matrix) && !matrix.is_empty() => {
                Self::from_confusion(Confusion { matrix })
            }
            _ => Self {
                accuracy: j.accuracy,
                precision: j.precision,
                recall: j.recall,
                f1: j.f1,
                macro_f1: j.macro_f1.unwrap_or(j.f1),
                per_class: j.per_class,
                confusion: Confusion::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(p: &[f32]) -> Vec<Vec<f32>> {
        p.iter().map(|&p| vec![1.0 - p, p]).collect()
    }

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
        let m = Metrics::from_confusion(Confusion::from_pairs(2, pairs));
        assert_eq!(m.confusion.matrix, vec![vec![5, 1], vec![1, 3]]);
        assert!((m.accuracy - 0.8).abs() < 1e-12);
        assert!((m.precision - 0.75).abs() < 1e-12);
        assert!((m.recall - 0.75).abs() < 1e-12);
        assert!((m.f1 - 0.75).abs() < 1e-12);
        // Class 0: precision 5/6, recall 5/6.
        assert!((m.per_class[0].f1 - 5.0 / 6.0).abs() < 1e-12);
        assert!((m.macro_f1 - (0.75 + 5.0 / 6.0) / 2.0).abs() < 1e-12);
        assert_eq!(m.f1_name(), "F1");
    }

    #[test]
    fn three_classes_give_per_class_figures_and_a_macro_headline() {
        // Class 0: 2 right, 1 as class 2. Class 1: 1 right. Class 2: 1 right, 1 as class 0.
        let pairs = [(0, 0), (0, 0), (0, 2), (1, 1), (2, 2), (2, 0)];
        let m = Metrics::from_confusion(Confusion::from_pairs(3, pairs));
        assert_eq!(
            m.confusion.matrix,
            vec![vec![2, 0, 1], vec![0, 1, 0], vec![1, 0, 1]]
        );
        let f1: Vec<f64> = m.per_class.iter().map(|c| c.f1).collect();
        let want = [2.0 / 3.0, 1.0, 0.5];
        for (g, w) in f1.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{f1:?}");
        }
        assert!((m.f1 - (2.0 / 3.0 + 1.0 + 0.5) / 3.0).abs() < 1e-12);
        assert_eq!(m.f1, m.macro_f1);
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(m.per_class[2].support, 2);
        assert_eq!(m.f1_name(), "macro-F1");
        let probs = vec![vec![0.2, 0.7, 0.1], vec![0.5, 0.1, 0.4]];
        let m = Metrics::from_probabilities(&[1, 2], &probs);
        assert_eq!(m.confusion.matrix[1][1], 1);
        assert_eq!(m.confusion.matrix[2][0], 1);
    }

    #[test]
    fn one_serialisation_that_reads_back_and_old_run_files_still_read() {
        let m = Metrics::from_probabilities(&[1, 0, 1, 1], &binary(&[0.9, 0.6, 0.2, 0.7]));
        let json = serde_json::to_value(&m).unwrap();
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
        assert_eq!(read.confusion.matrix, vec![vec![1, 1], vec![1, 1]]);
        assert_eq!(read.f1, 0.5);
        let three = Metrics::from_confusion(Confusion::from_pairs(3, [(0, 1), (2, 2)]));
        let json = serde_json::to_value(&three).unwrap();
        assert_eq!(serde_json::from_value::<Metrics>(json).unwrap(), three);
    }

    #[test]
    fn no_positive_predictions_gives_zero_f1_not_nan() {
        let m = Metrics::from_probabilities(&[1, 0], &binary(&[0.1, 0.2]));
        assert_eq!(m.f1, 0.0);
        assert_eq!(m.precision, 0.0);
    }
}
