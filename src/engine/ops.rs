//! Differentiable building blocks for the trainable encoder.
//!
//! candle's fused `layer_norm` and `softmax_last_dim` record no backward op: a model built on
//! them trains only its head, silently. Everything here is composed from ops that candle can
//! differentiate. These plain-op versions are the reference that faster fused kernels must match.

use candle_core::{DType, Device, Module, Tensor, D};
use rand::rngs::StdRng;
use rand::Rng;

/// LayerNorm over the last dimension, from differentiable tensor ops.
pub fn layer_norm(
    xs: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    let mean = xs.mean_keepdim(D::Minus1)?;
    let centred = xs.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.broadcast_mul(weight)?.broadcast_add(bias)
}

/// Softmax over the last dimension (the generic candle op, which has a backward pass).
pub fn softmax_last_dim(xs: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::ops::softmax(xs, D::Minus1)
}

/// A dense layer with Hugging Face's `[out, in]` weight layout.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let dims = xs.dims().to_vec();
        let in_dim = *dims.last().expect("input has a last dimension");
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let out = xs
            .reshape((rows, in_dim))?
            .matmul(&self.weight.t()?)?
            .broadcast_add(&self.bias)?;
        let mut out_dims = dims;
        *out_dims.last_mut().expect("non-empty") = self.weight.dim(0)?;
        out.reshape(out_dims)
    }
}

#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        layer_norm(xs, &self.weight, &self.bias, self.eps)
    }
}

/// Whether a forward pass trains (dropout on, driven by a seeded generator) or infers.
///
/// candle cannot seed its CPU random generator, so dropout masks come from our own `StdRng`:
/// the same seed gives the same run.
pub enum Mode<'a> {
    Eval,
    Train { rng: &'a mut StdRng },
}

impl Mode<'_> {
    pub fn is_train(&self) -> bool {
        matches!(self, Mode::Train { .. })
    }

    /// Inverted dropout: zero each element with probability `p`, scale the rest by 1/(1-p).
    pub fn dropout(&mut self, xs: &Tensor, p: f64) -> candle_core::Result<Tensor> {
        match self {
            Mode::Eval => Ok(xs.clone()),
            Mode::Train { .. } if p <= 0.0 => Ok(xs.clone()),
            Mode::Train { rng } => {
                let n = xs.elem_count();
                let keep = 1.0 - p as f32;
                let scale = 1.0 / keep;
                let mask: Vec<f32> = (0..n)
                    .map(|_| {
                        if rng.random::<f32>() < keep {
                            scale
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let mask = Tensor::from_vec(mask, xs.shape(), &Device::Cpu)?
                    .to_device(xs.device())?
                    .to_dtype(xs.dtype())?;
                xs.mul(&mask)
            }
        }
    }
}

/// Additive attention mask `[B, 1, 1, L]`: 0 for real tokens, a large negative for padding.
pub fn additive_attention_mask(attention_mask: &Tensor) -> candle_core::Result<Tensor> {
    let (b, l) = attention_mask.dims2()?;
    let mask = attention_mask.to_dtype(DType::F32)?;
    ((mask.ones_like()? - mask)? * -1e9)?.reshape((b, 1, 1, l))
}
