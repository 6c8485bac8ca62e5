//! Distillation: a student learns from a teacher run's probabilities, softened by a temperature,
//! mixed with the true labels where rows have them; rows without a label learn from the teacher
//! alone (Hinton et al. 2015, with the usual T² scaling so the soft term's gradients keep their
//! size as T grows).

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

/// The teacher and how much the student listens to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Distillation {
    /// A fine-tuned run's directory (its `config.json`, weights and class names).
    pub teacher: PathBuf,
    /// Softmax temperature of both teacher and student in the soft term (1 = the teacher's own
    /// probabilities; higher spreads them, passing on how it ranks the other classes).
    pub temperature: f64,
    /// Share of a labelled row's loss from the teacher; the rest comes from its label.
    pub teacher_weight: f64,
    /// Texts without a label: the teacher's probabilities are all they are trained on.
    pub unlabelled: Vec<String>,
}

impl Distillation {
    /// Measured against 2 on three held-out seeds (README, "MPNet and distillation").
    pub const DEFAULT_TEMPERATURE: f64 = 1.0;
    pub const DEFAULT_TEACHER_WEIGHT: f64 = 0.5;

    pub fn new(teacher: PathBuf) -> Self {
        Self {
            teacher,
            temperature: Self::DEFAULT_TEMPERATURE,
            teacher_weight: Self::DEFAULT_TEACHER_WEIGHT,
            unlabelled: Vec::new(),
        }
    }

    pub fn record(&self, teacher_model: &str) -> DistilRecord {
        DistilRecord {
            teacher: self.teacher.display().to_string(),
            teacher_model: teacher_model.to_string(),
            temperature: self.temperature,
            teacher_weight: self.teacher_weight,
            unlabelled_rows: self.unlabelled.len(),
        }
    }
}

/// How a distilled run was made, in its run record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistilRecord {
    /// The teacher run's directory.
    pub teacher: String,
    /// The model the teacher was fine-tuned from.
    pub teacher_model: String,
    pub temperature: f64,
    pub teacher_weight: f64,
    pub unlabelled_rows: usize,
}

/// One row's targets: its label if it has one, the teacher's logits if the teacher scored it.
#[derive(Debug, Clone, Copy)]
pub struct RowTarget<'a> {
    pub label: Option<u8>,
    pub teacher_logits: Option<&'a [f32]>,
}

/// The targets of one batch as the loss needs them: `hard` holds each row's one-hot label times
/// its label weight, `soft` the teacher's tempered probabilities times its teacher weight and T².
#[derive(Debug)]
pub struct SoftTargets {
    hard: Tensor,
    soft: Tensor,
    /// Mean over the batch of Σ soft·log p (the teacher's own entropy term): it does not move
    /// the gradients, and with it the soft term is the KL divergence, 0 when the student agrees.
    constant: f64,
    temperature: f64,
}

impl SoftTargets {
    /// Weights per row: label and teacher → `1 - teacher_weight` and `teacher_weight`; label
    /// only → 1 and 0; teacher only → 0 and 1.
    pub fn new(
        rows: &[RowTarget<'_>],
        classes: usize,
        temperature: f64,
        teacher_weight: f64,
        device: &Device,
        dtype: DType,
    ) -> candle_core::Result<Self> {
        let n = rows.len();
        let t2 = temperature * temperature;
        let mut hard = vec![0f64; n * classes];
        let mut soft = vec![0f64; n * classes];
        let mut constant = 0f64;
        for (i, row) in rows.iter().enumerate() {
            let (hard_w, soft_w) = match (row.label, row.teacher_logits) {
                (Some(_), Some(_)) => (1.0 - teacher_weight, teacher_weight),
                (Some(_), None) => (1.0, 0.0),
                (None, Some(_)) => (0.0, 1.0),
                (None, None) => (0.0, 0.0),
            };
            if let Some(l) = row.label {
                hard[i * classes + l as usize] = hard_w;
            }
            if let Some(z) = row.teacher_logits {
                for (k, p) in tempered_softmax(z, temperature).into_iter().enumerate() {
                    soft[i * classes + k] = soft_w * t2 * p;
                    if p > 0.0 {
                        constant += soft_w * t2 * p * p.ln();
                    }
                }
            }
        }
        let tensor = |v: Vec<f64>| Tensor::from_vec(v, (n, classes), device)?.to_dtype(dtype);
        Ok(Self {
            hard: tensor(hard)?,
            soft: tensor(soft)?,
            constant: constant / n.max(1) as f64,
            temperature,
        })
    }
}

/// softmax(z / T) in f64.
pub fn tempered_softmax(logits: &[f32], temperature: f64) -> Vec<f64> {
    let scaled: Vec<f64> = logits.iter().map(|&z| z as f64 / temperature).collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = scaled.iter().map(|z| (z - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Mean over the batch of `teacher weight · T² · KL(p_teacher^T ‖ p_student^T) + label weight ·
/// cross-entropy(label)`, for student `logits` [batch, classes]. Its gradient with respect to
/// logit k of row i is `(w_soft·T·(q_k − p_k) + w_hard·(s_k − y_k)) / batch`, q the student's
/// tempered probabilities and s its plain ones.
pub fn distillation_loss(logits: &Tensor, t: &SoftTargets) -> candle_core::Result<Tensor> {
    let n = logits.dim(0)? as f64;
    let log_q = candle_nn::ops::log_softmax(&(logits / t.temperature)?, 1)?;
    let log_s = candle_nn::ops::log_softmax(logits, 1)?;
    let soft = (&t.soft * &log_q)?.sum_all()?;
    let hard = (&t.hard * &log_s)?.sum_all()?;
    ((soft + hard)? * (-1.0 / n))? + t.constant
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn targets() -> Vec<RowTarget<'static>> {
        const Z: [[f32; 3]; 3] = [[2.0, -1.0, 0.5], [0.1, 0.2, -3.0], [-0.7, 1.5, 0.3]];
        vec![
            RowTarget {
                label: Some(0),
                teacher_logits: Some(&Z[0]),
            },
            RowTarget {
                label: None,
                teacher_logits: Some(&Z[1]),
            },
            RowTarget {
                label: Some(2),
                teacher_logits: None,
            },
            RowTarget {
                label: Some(1),
                teacher_logits: Some(&Z[2]),
            },
        ]
    }

    fn loss_at(x: &[f64], t: &SoftTargets) -> f64 {
        let z = Tensor::from_vec(x.to_vec(), (4, 3), &Device::Cpu).unwrap();
        distillation_loss(&z, t)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    #[test]
    fn gradients_match_finite_differences_and_the_closed_form() {
        for temperature in [1.0, 2.0, 4.0] {
            let rows = targets();
            let alpha = 0.3;
            let t =
                SoftTargets::new(&rows, 3, temperature, alpha, &Device::Cpu, DType::F64).unwrap();
            let x: Vec<f64> = (0..12).map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0).collect();
            let var = Var::from_vec(x.clone(), (4, 3), &Device::Cpu).unwrap();
            let loss = distillation_loss(var.as_tensor(), &t).unwrap();
            let grad = loss.backward().unwrap();
            let g: Vec<f64> = grad
                .get(&var)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let h = 1e-6;
            for i in 0..12 {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += h;
                down[i] -= h;
                let numeric = (loss_at(&up, &t) - loss_at(&down, &t)) / (2.0 * h);
                assert!(
                    (numeric - g[i]).abs() < 1e-7,
                    "T {temperature}, logit {i}: backward {} vs finite difference {numeric}",
                    g[i]
                );
            }
            // The closed form: (w_soft·T·(q − p) + w_hard·(s − y)) / batch.
            for (r, row) in rows.iter().enumerate() {
                let z: Vec<f32> = x[r * 3..r * 3 + 3].iter().map(|&v| v as f32).collect();
                let q = tempered_softmax(&z, temperature);
                let s = tempered_softmax(&z, 1.0);
                let (w_hard, w_soft) = match (row.label, row.teacher_logits) {
                    (Some(_), Some(_)) => (1.0 - alpha, alpha),
                    (Some(_), None) => (1.0, 0.0),
                    _ => (0.0, 1.0),
                };
                for c in 0..3 {
                    let p = row
                        .teacher_logits
                        .map_or(0.0, |tz| tempered_softmax(tz, temperature)[c]);
                    let y = f64::from(row.label == Some(c as u8));
                    let expected = (w_soft * temperature * (q[c] - p) + w_hard * (s[c] - y)) / 4.0;
                    // The student's logits went through f32 for `tempered_softmax` here.
                    assert!((expected - g[r * 3 + c]).abs() < 1e-6);
                }
            }
        }
    }

    #[test]
    fn the_soft_term_is_zero_when_the_student_agrees_and_positive_otherwise() {
        let z = [1.0f32, -2.0];
        let rows = [RowTarget {
            label: None,
            teacher_logits: Some(&z),
        }];
        let t = SoftTargets::new(&rows, 2, 2.0, 0.5, &Device::Cpu, DType::F64).unwrap();
        let same = Tensor::new(&[[1.0f64, -2.0]], &Device::Cpu).unwrap();
        let other = Tensor::new(&[[-1.0f64, 2.0]], &Device::Cpu).unwrap();
        let at = |x: &Tensor| {
            distillation_loss(x, &t)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        assert!(at(&same).abs() < 1e-12, "{}", at(&same));
        assert!(at(&other) > 0.1);
    }

    #[test]
    fn with_labels_only_it_is_cross_entropy() {
        let rows = [
            RowTarget {
                label: Some(1),
                teacher_logits: None,
            },
            RowTarget {
                label: Some(0),
                teacher_logits: None,
            },
        ];
        let t = SoftTargets::new(&rows, 2, 2.0, 0.5, &Device::Cpu, DType::F32).unwrap();
        let z = Tensor::new(&[[0.3f32, -0.4], [1.2, 0.1]], &Device::Cpu).unwrap();
        let y = Tensor::new(&[1u32, 0], &Device::Cpu).unwrap();
        let ce = candle_nn::loss::cross_entropy(&z, &y)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let ours = distillation_loss(&z, &t)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((ce - ours).abs() < 1e-6, "{ce} vs {ours}");
    }
}
