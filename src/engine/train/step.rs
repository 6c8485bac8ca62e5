//! One optimisation step: the learning-rate schedule, AdamW (fused on the CPU, candle-nn's
//! elsewhere) with global-norm clipping, and forward + backward + update with phase timings.

use std::collections::BTreeMap;

use candle_core::{backprop::GradStore, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;

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

/// AdamW over every parameter, biases and LayerNorm weights without weight decay.
pub struct Optimisers {
    kind: OptimiserKind,
    pub vars: Vec<Var>,
}

enum OptimiserKind {
    /// candle-nn's AdamW, two groups (with and without decay): the reference, and the one used
    /// off the CPU.
    Plain { decay: AdamW, no_decay: AdamW },
    /// One in-place pass per parameter (CPU, f32).
    Fused(FusedAdamW),
}

impl Optimisers {
    pub fn new(
        vars: &BTreeMap<String, Var>,
        lr: f64,
        weight_decay: f64,
    ) -> candle_core::Result<Self> {
        let fused = vars.values().all(|v| {
            v.dtype() == candle_core::DType::F32 && kernels_in_use(v.device()) == Kernels::Fused
        });
        let kind = if fused {
            OptimiserKind::Fused(FusedAdamW::new(
                vars.iter()
                    .map(|(n, v)| (v.clone(), if decays(n) { weight_decay } else { 0.0 }))
                    .collect(),
                lr,
            ))
        } else {
            let (d, nd): (Vec<_>, Vec<_>) = vars.iter().partition(|(n, _)| decays(n));
            let params = |wd| ParamsAdamW {
                lr,
                weight_decay: wd,
                ..Default::default()
            };
            OptimiserKind::Plain {
                decay: AdamW::new(
                    d.into_iter().map(|(_, v)| v.clone()).collect(),
                    params(weight_decay),
                )?,
                no_decay: AdamW::new(
                    nd.into_iter().map(|(_, v)| v.clone()).collect(),
                    params(0.0),
                )?,
            }
        };
        Ok(Self {
            kind,
            vars: vars.values().cloned().collect(),
        })
    }

    /// Which implementation steps: "fused" or "plain".
    pub fn implementation(&self) -> &'static str {
        match self.kind {
            OptimiserKind::Plain { .. } => "plain",
            OptimiserKind::Fused(_) => "fused",
        }
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        match &mut self.kind {
            OptimiserKind::Plain { decay, no_decay } => {
                decay.set_learning_rate(lr);
                no_decay.set_learning_rate(lr);
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
            OptimiserKind::Plain { decay, no_decay } => {
                let norm = clip_gradients(grads, &self.vars, max_norm)?;
                decay.step(grads)?;
                no_decay.step(grads)?;
                Ok(norm)
            }
            OptimiserKind::Fused(f) => f.clip_and_step(grads, max_norm),
        }
    }
}

/// One optimisation step on `batch`; returns the loss.
pub fn train_step(
    model: &LoadedModel,
    opt: &mut Optimisers,
    batch: &Batch,
    labels: &Tensor,
    rng: &mut StdRng,
    max_grad_norm: f64,
    step: usize,
) -> Result<f32, EngineError> {
    train_step_timed(
        model,
        opt,
        batch,
        labels,
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
    labels: &Tensor,
    rng: &mut StdRng,
    max_grad_norm: f64,
    step: usize,
    times: &mut StepTimes,
) -> Result<f32, EngineError> {
    let t0 = std::time::Instant::now();
    let logits = model.net.forward(batch, &mut Mode::Train { rng })?;
    let loss = candle_nn::loss::cross_entropy(&logits, labels)?;
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
    fn schedule_warms_up_then_decays_to_zero() {
        let lrs: Vec<f64> = (0..10).map(|s| learning_rate(1.0, s, 2, 10)).collect();
        assert!((lrs[0] - 0.5).abs() < 1e-12 && (lrs[1] - 1.0).abs() < 1e-12);
        assert!(lrs[2..].windows(2).all(|w| w[1] < w[0]));
        assert!(lrs[9] > 0.0 && learning_rate(1.0, 10, 2, 10) == 0.0);
    }
}
