//! AdamW with gradient clipping in one pass per parameter, on the CPU.
//!
//! candle-nn's `AdamW` runs about a dozen tensor ops per parameter, each a full pass over it and
//! a fresh allocation; for MiniLM's 22.7M parameters that is ~100 ms a step and, at its peak,
//! several copies of the word-embedding matrix. Here the moments live in plain vectors and each
//! parameter is updated in place, reading its gradient once. Same formula as candle-nn's, which
//! stays in use off the CPU and under `--kernels plain`; `tests/kernels.rs` compares the two.

use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{bail, CpuStorage, InplaceOp2, Layout, Result, Tensor, Var};
use rayon::prelude::*;

use crate::engine::kernels::fused::multiversion;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

struct Param {
    var: Var,
    weight_decay: f64,
    /// This parameter's share of the learning rate (layer-wise decay; 1 without).
    lr_scale: f64,
    m: Vec<f32>,
    v: Vec<f32>,
}

pub struct FusedAdamW {
    params: Vec<Param>,
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    step_t: i32,
}

impl FusedAdamW {
    /// `vars` with their weight decay; the usual betas (0.9, 0.999) and eps 1e-8, as candle-nn's
    /// `ParamsAdamW::default()`.
    pub fn new(vars: Vec<(Var, f64)>, lr: f64) -> Self {
        Self::new_scaled(vars.into_iter().map(|(v, wd)| (v, wd, 1.0)).collect(), lr)
    }

    /// `vars` with their weight decay and their share of the learning rate.
    pub fn new_scaled(vars: Vec<(Var, f64, f64)>, lr: f64) -> Self {
        let params = vars
            .into_iter()
            .map(|(var, weight_decay, lr_scale)| {
                let n = var.elem_count();
                Param {
                    var,
                    weight_decay,
                    lr_scale,
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                }
            })
            .collect();
        Self {
            params,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step_t: 0,
        }
    }

    /// Scales the gradients so their global norm is at most `max_norm` (0: no clipping), then
    /// takes one AdamW step. Returns the norm before clipping.
    pub fn clip_and_step(&mut self, grads: &GradStore, max_norm: f64) -> Result<f64> {
        let grads: Vec<Option<Tensor>> = self
            .params
            .iter()
            .map(|p| {
                grads
                    .get(p.var.as_tensor())
                    .map(Tensor::contiguous)
                    .transpose()
            })
            .collect::<Result<_>>()?;
        let mut total = 0f64;
        for g in grads.iter().flatten() {
            total += with_cpu_f32(g, |g| {
                Ok(g.par_chunks(CHUNK)
                    .map(|c| c.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>())
                    // Collected, then added in order: the same norm on every run.
                    .collect::<Vec<f64>>()
                    .iter()
                    .sum::<f64>())
            })?;
        }
        let norm = total.sqrt();
        let clip = if max_norm > 0.0 && norm > max_norm {
            max_norm / (norm + 1e-6)
        } else {
            1.0
        };
        self.step_t += 1;
        let scale_m = 1.0 / (1.0 - self.beta1.powi(self.step_t));
        let scale_v = 1.0 / (1.0 - self.beta2.powi(self.step_t));
        for (p, g) in self.params.iter_mut().zip(&grads) {
            let Some(g) = g else { continue };
            let lr = self.lr * p.lr_scale;
            let update = Update {
                moments: RefCell::new((&mut p.m, &mut p.v)),
                hyper: Hyper {
                    clip: clip as f32,
                    lr: lr as f32,
                    decay: (1.0 - lr * p.weight_decay) as f32,
                    beta1: self.beta1 as f32,
                    beta2: self.beta2 as f32,
                    scale_m: scale_m as f32,
                    scale_v: scale_v as f32,
                    eps: self.eps as f32,
                },
            };
            p.var.as_tensor().inplace_op2(g, &update)?;
        }
        Ok(norm)
    }
}

fn with_cpu_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(CpuStorage::F32(data)) => match layout.contiguous_offsets() {
            Some((a, b)) => f(&data[a..b]),
            None => bail!("fused AdamW: gradient is not contiguous"),
        },
        _ => bail!("fused AdamW: f32 CPU tensors only"),
    }
}

/// One parameter's update, applied in place to its storage.
struct Update<'a> {
    moments: RefCell<(&'a mut Vec<f32>, &'a mut Vec<f32>)>,
    hyper: Hyper,
}

multiversion! {
    /// The AdamW update of one chunk of a parameter, its gradient and its moments.
    fn adamw_chunk(theta: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], h: Hyper) {
        for (((t, g), m), v) in theta.iter_mut().zip(grad).zip(m).zip(v) {
            let g = g * h.clip;
            *m = *m * h.beta1 + g * (1.0 - h.beta1);
            *v = *v * h.beta2 + g * g * (1.0 - h.beta2);
            let m_hat = *m * h.scale_m;
            let v_hat = *v * h.scale_v;
            *t = *t * h.decay - h.lr * (m_hat / (v_hat.sqrt() + h.eps));
        }
    }
}

#[derive(Clone, Copy)]
struct Hyper {
    clip: f32,
    lr: f32,
    decay: f32,
    beta1: f32,
    beta2: f32,
    scale_m: f32,
    scale_v: f32,
    eps: f32,
}

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "fused-adamw"
    }

    fn cpu_fwd(
        &self,
        theta: &mut CpuStorage,
        theta_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(theta), CpuStorage::F32(grad)) = (theta, grad) else {
            bail!("fused AdamW: f32 parameters only")
        };
        let (Some((t0, t1)), Some((g0, g1))) = (
            theta_layout.contiguous_offsets(),
            grad_layout.contiguous_offsets(),
        ) else {
            bail!("fused AdamW: parameters and gradients must be contiguous")
        };
        let theta = &mut theta[t0..t1];
        let grad = &grad[g0..g1];
        let mut moments = self.moments.borrow_mut();
        let (m, v) = &mut *moments;
        if grad.len() != theta.len() || m.len() != theta.len() {
            bail!("fused AdamW: gradient and parameter sizes differ")
        }
        let h = self.hyper;
        theta
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .for_each(|(((theta, grad), m), v)| adamw_chunk(theta, grad, m, v, h));
        Ok(())
    }
}
