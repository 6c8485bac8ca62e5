//! One optimisation step: the learning-rate schedule, AdamW (fused on the CPU, candle-nn's
//! elsewhere) with global-norm clipping, and forward + backward + update with phase timings.

use std::collections::BTreeMap;

use candle_core::{backprop::GradStore, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;

use super::distil::{distillation_loss, SoftTargets};
use crate::engine::kernels::adamw::FusedAdamW;
use crate::engine::kernels::{kernels_in_use, Kernels, Mode};
use crate::engine::model::tokenize::Batch;
use crate::engine::model::LoadedModel;
use crate::engine::EngineError;

/// Hugging Face's linear schedule: warm up from 0 to `peak`, then decay linearly to 0.
pub fn learning_rate(peak: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else {
        peak * (total.saturating_sub(step)) as f64 / (total - warmup).max(1) as f64
    }
}

/// Biases and LayerNorm parameters get no weight decay, as in Hugging Face's Trainer.
fn decays(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains("LayerNorm"))
}

/// Rescales `grads` so that their global norm is at most `max_norm`; returns the norm before.
pub fn clip_gradients(
    grads: &mut GradStore,
    vars: &[Var],
    max_norm: f64,
) -> candle_core::Result<f64> {
    let mut total = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v) {
            total += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = total.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for v in vars {
            if let Some(g) = grads.remove(v) {
                grads.insert(v, (g * scale)?);
            }
        }
    }
    Ok(norm)
}

/// Layer-wise learning-rate decay: transformer layer `i` of `layers` learns at
/// `decay^(layers - i)` of the rate, the embeddings at `decay^(layers + 1)`, the head at the
/// full rate (lower layers hold general features that fine-tuning should move least).
pub fn layer_lr_scale(name: &str, layers: usize, decay: f64) -> f64 {
    if decay == 1.0 {
        return 1.0;
    }
    let layer = name
        .split_once(".layer.")
        .and_then(|(_, rest)| rest.split('.').next())
        .and_then(|i| i.parse::<usize>().ok());
    match layer {
        Some(i) => decay.powi(layers.saturating_sub(i) as i32),
        None if name.contains(".embeddings.") => decay.powi(layers as i32 + 1),
        None => 1.0,
    }
}

/// AdamW over every parameter, biases and LayerNorm weights without weight decay.
pub struct Optimisers {
    kind: OptimiserKind,
    pub vars: Vec<Var>,
}

enum OptimiserKind {
    /// candle-nn's AdamW, one per group of parameters sharing weight decay and learning-rate
    /// scale: the reference, and the one used off the CPU.
    Plain(Vec<(AdamW, f64)>),
    /// One in-place pass per parameter (CPU, f32).
    Fused(FusedAdamW),
}

impl Optimisers {
    pub fn new(
        vars: &BTreeMap<String, Var>,
        lr: f64,
        weight_decay: f64,
    ) -> candle_core::Result<Self> {
        Self::with_lr_scales(vars, lr, weight_decay, |_| 1.0)
    }

    /// [`Self::new`] with each parameter learning at `lr_scale(name)` of the rate.
    pub fn with_lr_scales(
        vars: &BTreeMap<String, Var>,
        lr: f64,
        weight_decay: f64,
        lr_scale: impl Fn(&str) -> f64,
    ) -> candle_core::Result<Self> {
        let fused = vars.values().all(|v| {
            v.dtype() == candle_core::DType::F32 && kernels_in_use(v.device()) == Kernels::Fused
        });
        let wd = |n: &str| if decays(n) { weight_decay } else { 0.0 };
        let kind = if fused {
            OptimiserKind::Fused(FusedAdamW::new_scaled(
                vars.iter()
                    .map(|(n, v)| (v.clone(), wd(n), lr_scale(n)))
                    .collect(),
                lr,
            ))
        } else {
            // Groups keyed by the bits of (weight decay, scale), in first-seen order.
            let mut groups: Vec<((u64, u64), Vec<Var>)> = Vec::new();
            for (n, v) in vars {
                let key = (wd(n).to_bits(), lr_scale(n).to_bits());
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, vs)) => vs.push(v.clone()),
                    None => groups.push((key, vec![v.clone()])),
                }
            }
            let optimisers = groups
                .into_iter()
                .map(|((wd, scale), vs)| {
                    let scale = f64::from_bits(scale);
                    let params = ParamsAdamW {
                        lr: lr * scale,
                        weight_decay: f64::from_bits(wd),
                        ..Default::default()
                    };
                    AdamW::new(vs, params).map(|o| (o, scale))
                })
                .collect::<candle_core::Result<_>>()?;
            OptimiserKind::Plain(optimisers)
        };
        Ok(Self {
            kind,
            vars: vars.values().cloned().collect(),
        })
    }

    /// Which implementation steps: "fused" or "plain".
    pub fn implementation(&self) -> &'static str {
        match self.kind {
            OptimiserKind::Plain(_) => "plain",
            OptimiserKind::Fused(_) => "fused",
        }
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        match &mut self.kind {
            OptimiserKind::Plain(groups) => {
                for (o, scale) in groups {
                    o.set_learning_rate(lr * *scale);
                }
            }
            OptimiserKind::Fused(f) => f.lr = lr,
        }
    }

    /// Clips the global gradient norm to `max_norm` (0 turns clipping off), then steps.
    /// Returns the norm before clipping.
    pub fn clip_and_step(
        &mut self,
        grads: &mut GradStore,
        max_norm: f64,
    ) -> candle_core::Result<f64> {
        match &mut self.kind {
            OptimiserKind::Plain(groups) => {
                let norm = clip_gradients(grads, &self.vars, max_norm)?;
                for (o, _) in groups {
                    o.step(grads)?;
                }
                Ok(norm)
            }
            OptimiserKind::Fused(f) => f.clip_and_step(grads, max_norm),
        }
    }
}

/// What a batch is trained towards.
pub enum Targets {
    /// Class indices [batch] (u32): cross-entropy.
    Labels(Tensor),
    /// A teacher's probabilities, with or without labels: [`distillation_loss`].
    Distil(SoftTargets),
}

impl Targets {
    pub fn loss(&self, logits: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Labels(y) => candle_nn::loss::cross_entropy(logits, y),
            Self::Distil(t) => distillation_loss(logits, t),
        }
    }
}

/// One optimisation step on `batch`; returns the loss.
pub fn train_step(
    model: &LoadedModel,
    opt: &mut Optimisers,
    batch: &Batch,
    targets: &Targets,
    rng: &mut StdRng,
    max_grad_norm: f64,
    step: usize,
) -> Result<f32, EngineError> {
    train_step_timed(
        model,
        opt,
        batch,
        targets,
        rng,
        max_grad_norm,
        step,
        &mut StepTimes::default(),
    )
}

/// Seconds spent in each phase of the training steps timed so far (for `tweetlab bench`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct StepTimes {
    pub forward_s: f64,
    pub backward_s: f64,
    pub optimiser_s: f64,
}

/// [`train_step`], adding the time of each phase to `times`. The loss is read back before the
/// backward pass starts, so on CUDA the forward time includes waiting for the device.
#[allow(clippy::too_many_arguments)]
pub fn train_step_timed(
    model: &LoadedModel,
    opt: &mut Optimisers,
    batch: &Batch,
    targets: &Targets,
    rng: &mut StdRng,
    max_grad_norm: f64,
    step: usize,
    times: &mut StepTimes,
) -> Result<f32, EngineError> {
    let t0 = std::time::Instant::now();
    let logits = model.net.forward(batch, &mut Mode::Train { rng })?;
    let loss = targets.loss(&logits)?;
    let loss_value = loss.to_scalar::<f32>()?;
    if !loss_value.is_finite() {
        return Err(EngineError::NonFiniteLoss {
            step,
            loss: loss_value,
        });
    }
    let t1 = std::time::Instant::now();
    let mut grads = loss.backward()?;
    let t2 = std::time::Instant::now();
    opt.clip_and_step(&mut grads, max_grad_norm)?;
    let t3 = std::time::Instant::now();
    times.forward_s += (t1 - t0).as_secs_f64();
    times.backward_s += (t2 - t1).as_secs_f64();
    times.optimiser_s += (t3 - t2).as_secs_f64();
    Ok(loss_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_decay_scales_lower_layers_down_and_leaves_the_head() {
        let s = |n: &str| layer_lr_scale(n, 6, 0.5);
        assert_eq!(s("bert.encoder.layer.5.output.dense.weight"), 0.5);
        assert_eq!(
            s("roberta.encoder.layer.0.attention.self.query.bias"),
            0.5f64.powi(6)
        );
        assert_eq!(s("distilbert.transformer.layer.4.ffn.lin1.weight"), 0.25);
        assert_eq!(s("bert.embeddings.word_embeddings.weight"), 0.5f64.powi(7));
        assert_eq!(s("classifier.out_proj.weight"), 1.0);
        assert_eq!(s("bert.pooler.dense.weight"), 1.0);
        assert_eq!(
            layer_lr_scale("bert.embeddings.LayerNorm.weight", 6, 1.0),
            1.0
        );
    }

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let lrs: Vec<f64> = (0..10).map(|s| learning_rate(1.0, s, 2, 10)).collect();
        assert!((lrs[0] - 0.5).abs() < 1e-12 && (lrs[1] - 1.0).abs() < 1e-12);
        assert!(lrs[2..].windows(2).all(|w| w[1] < w[0]));
        assert!(lrs[9] > 0.0 && learning_rate(1.0, 10, 2, 10) == 0.0);
    }
}
