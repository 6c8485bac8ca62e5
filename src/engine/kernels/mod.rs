//! The kernels room: building blocks for the trainable encoder, every one differentiable, and
//! the switch between their two implementations. `fused` holds the CPU custom ops, `adamw` the
//! optimiser step in one in-place pass.
//!
//! candle's fused `layer_norm` and `softmax_last_dim` record no backward op: a model built on
//! them trains only its head, silently. Here each block has two implementations: [`plain`],
//! composed from ops candle can differentiate (the reference, and the only one off the CPU), and
//! [`fused`], CPU custom ops with hand-written backward passes (the default on the CPU).
//! [`set_kernels`] or `TWEETLAB_KERNELS=plain` picks the reference everywhere.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};

use candle_core::{DType, Device, Module, Tensor};
use rand::rngs::StdRng;
use rand::Rng;

pub mod adamw;
pub mod bf16;
pub mod fused;

pub use bf16::{MatmulPath, Precision};

/// Which implementation of the encoder's building blocks and of AdamW runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// CPU custom ops with their own backward passes (f32 on the CPU only).
    Fused = 0,
    /// Composed candle ops: the reference implementation, and what runs on CUDA.
    Plain = 1,
}

impl Kernels {
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Fused => "fused",
            Kernels::Plain => "plain",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fused" => Some(Kernels::Fused),
            "plain" => Some(Kernels::Plain),
            _ => None,
        }
    }
}

/// The two process-wide choices below, each read from its environment variable on first use,
/// replaced by `set_*` (the CLI's flags) and overridden on one thread by `with_*` (tests compare
/// implementations side by side that way).
#[derive(Clone, Copy)]
enum Switch {
    /// 0: fused, 1: plain (`TWEETLAB_KERNELS`).
    Kernels = 0,
    /// 0: skip padding, 1: compute it (`TWEETLAB_DENSE=1`).
    Dense = 1,
    /// A [`Precision`] (`TWEETLAB_PRECISION`).
    Precision = 2,
}

/// Per switch: 0 while not chosen, else the value + 1.
static CHOSEN: [AtomicU8; 3] = [AtomicU8::new(0), AtomicU8::new(0), AtomicU8::new(0)];

thread_local! {
    static OVERRIDES: Cell<[Option<u8>; 3]> = const { Cell::new([None, None, None]) };
}

impl Switch {
    fn read_env(self) -> u8 {
        match self {
            Switch::Kernels => std::env::var("TWEETLAB_KERNELS")
                .ok()
                .and_then(|v| Kernels::parse(&v))
                .map_or(0, |k| k as u8),
            Switch::Dense => u8::from(std::env::var("TWEETLAB_DENSE").is_ok_and(|v| v == "1")),
            Switch::Precision => std::env::var("TWEETLAB_PRECISION")
                .ok()
                .and_then(|v| Precision::parse(&v))
                .unwrap_or_default() as u8,
        }
    }

    fn get(self) -> u8 {
        if let Some(v) = OVERRIDES.with(|o| o.get()[self as usize]) {
            return v;
        }
        match CHOSEN[self as usize].load(Ordering::Relaxed) {
            0 => {
                let v = self.read_env();
                self.set(v);
                v
            }
            n => n - 1,
        }
    }

    fn set(self, v: u8) {
        CHOSEN[self as usize].store(v + 1, Ordering::Relaxed);
    }

    fn with<R>(self, v: u8, f: impl FnOnce() -> R) -> R {
        let swap = |v: Option<u8>| {
            OVERRIDES.with(|o| {
                let mut all = o.get();
                let before = std::mem::replace(&mut all[self as usize], v);
                o.set(all);
                before
            })
        };
        let before = swap(Some(v));
        let out = f();
        swap(before);
        out
    }
}

/// Chooses the kernels for the whole process (the CLI's `--kernels`).
pub fn set_kernels(k: Kernels) {
    Switch::Kernels.set(k as u8);
}

/// Runs `f` with `k` on this thread only, whatever the process-wide choice.
pub fn with_kernels<R>(k: Kernels, f: impl FnOnce() -> R) -> R {
    Switch::Kernels.with(k as u8, f)
}

/// The choice in force on this thread: [`with_kernels`], else `set_kernels`, else
/// `TWEETLAB_KERNELS`, else fused.
pub fn kernels() -> Kernels {
    match Switch::Kernels.get() {
        0 => Kernels::Fused,
        _ => Kernels::Plain,
    }
}

/// What actually runs on `device`: the fused kernels exist for the CPU only.
pub fn kernels_in_use(device: &Device) -> Kernels {
    if device.is_cpu() {
        kernels()
    } else {
        Kernels::Plain
    }
}

/// Whether the encoder skips work no answer reads (padding, see `encoder::Packing`, and the
/// last layer's other tokens under CLS pooling): with the fused kernels, unless
/// `set_dense(true)` or `TWEETLAB_DENSE=1` asks for all of it to be computed, as PyTorch does
/// (the like-for-like benchmark).
pub fn unpadded_in_use(device: &Device) -> bool {
    kernels_in_use(device) == Kernels::Fused && Switch::Dense.get() == 0
}

/// Computes every padded position (true) or only real tokens (false, the default).
pub fn set_dense(dense: bool) {
    Switch::Dense.set(u8::from(dense));
}

/// Runs `f` with padding computed (`true`) or skipped (`false`) on this thread only.
pub fn with_dense<R>(dense: bool, f: impl FnOnce() -> R) -> R {
    Switch::Dense.with(u8::from(dense), f)
}

/// Chooses the dense layers' precision for the whole process (the CLI's `--precision`).
pub fn set_precision(p: Precision) {
    Switch::Precision.set(p as u8);
}

/// Runs `f` with precision `p` on this thread only.
pub fn with_precision<R>(p: Precision, f: impl FnOnce() -> R) -> R {
    Switch::Precision.with(p as u8, f)
}

/// The precision asked for on this thread: [`with_precision`], else `set_precision`, else
/// `TWEETLAB_PRECISION`, else auto.
pub fn precision() -> Precision {
    match Switch::Precision.get() {
        1 => Precision::Fp32,
        2 => Precision::Bf16,
        _ => Precision::Auto,
    }
}

/// The dense-layer arithmetic that runs on `device` for the precision in force: bf16 paths
/// exist in the fused CPU kernels only.
pub fn matmul_path_in_use(device: &Device) -> MatmulPath {
    if kernels_in_use(device) == Kernels::Fused {
        bf16::choose(precision(), bf16::Bf16Units::detect())
    } else {
        MatmulPath::Fp32
    }
}

fn fused_for(xs: &Tensor) -> bool {
    xs.dtype() == DType::F32 && kernels_in_use(xs.device()) == Kernels::Fused
}

/// The composed reference implementations.
pub mod plain {
    use candle_core::{Tensor, D};

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

    /// `softmax(scores * scale + mask)` over the last dimension (generic candle softmax, which
    /// has a backward pass).
    pub fn masked_softmax(
        scores: &Tensor,
        mask: &Tensor,
        scale: f64,
    ) -> candle_core::Result<Tensor> {
        candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(mask)?, D::Minus1)
    }

    /// `gelu_erf(xs + bias)`, bias broadcast over the last dimension.
    pub fn bias_gelu(xs: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
        xs.broadcast_add(bias)?.gelu_erf()
    }

    /// Multi-head attention from composed ops: split the heads, `softmax(Q·Kᵀ * scale + mask)`,
    /// dropout, times `V`, merge the heads. `q`, `k`, `v` and the result are `[B, L, H]`.
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: &Tensor,
        heads: usize,
        scale: f64,
        dropout: f64,
        mode: &mut super::Mode,
    ) -> candle_core::Result<Tensor> {
        let (b, l, h) = q.dims3()?;
        let split = |t: &Tensor| {
            t.reshape((b, l, heads, h / heads))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(q)?, split(k)?, split(v)?);
        let probs = masked_softmax(&q.matmul(&k.t()?)?, mask, scale)?;
        let probs = mode.dropout(&probs, dropout)?;
        probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, h))
    }

    /// `xs · weightᵀ (+ bias)` over the last dimension, `weight` being `[out, in]`.
    pub fn linear(
        xs: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let out = xs.broadcast_matmul(&weight.t()?)?;
        match bias {
            Some(b) => out.broadcast_add(b),
            None => Ok(out),
        }
    }
}

/// LayerNorm over the last dimension.
pub fn layer_norm(
    xs: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    if fused_for(xs) {
        fused::layer_norm(xs, weight, bias, eps)
    } else {
        plain::layer_norm(xs, weight, bias, eps)
    }
}

/// What attention adds to the scaled scores: `-1e9` at padded keys, `[B, 1, 1, L]`, and MPNet's
/// trained relative position bias, `[heads, L, L]` (one per batch, shared by every layer).
pub struct AttentionMask {
    pub padding: Tensor,
    pub position_bias: Option<Tensor>,
}

impl AttentionMask {
    /// The padding mask of a 0/1 attention mask `[B, L]`, with no position bias.
    pub fn padding(attention_mask: &Tensor) -> candle_core::Result<Self> {
        Ok(Self {
            padding: additive_attention_mask(attention_mask)?,
            position_bias: None,
        })
    }

    /// Both terms as one tensor for the composed ops, for the query rows `rows` of the grid:
    /// `[B, 1 or heads, rows.len(), L]`.
    fn composed(&self, rows: std::ops::Range<usize>) -> candle_core::Result<Tensor> {
        match &self.position_bias {
            Some(bias) => {
                let bias = bias.narrow(1, rows.start, rows.len())?.unsqueeze(0)?;
                self.padding.broadcast_add(&bias)
            }
            None => Ok(self.padding.clone()),
        }
    }
}

/// Multi-head self-attention on projected `q`, `k`, `v` `[B, L, H]` with `mask`'s padding and
/// position bias; returns the context `[B, L, H]`.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &AttentionMask,
    heads: usize,
    scale: f64,
    dropout: f64,
    mode: &mut Mode,
) -> candle_core::Result<Tensor> {
    if fused_for(q) {
        let dropout = mode.fused_dropout(dropout);
        let bias = mask.position_bias.as_ref();
        fused::attention(q, k, v, &mask.padding, bias, heads, scale, dropout)
    } else {
        let composed = mask.composed(0..q.dim(1)?)?;
        plain::attention(q, k, v, &composed, heads, scale, dropout, mode)
    }
}

/// [`attention`] over real tokens only, where the fused kernels run: `q`, `k`, `v` `[T, H]`
/// hold the sequences one after another, `lengths` long each (no padding to mask). `None`
/// where the grid is needed instead (the composed ops).
#[allow(clippy::too_many_arguments)]
pub fn attention_packed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &AttentionMask,
    lengths: &[usize],
    heads: usize,
    scale: f64,
    dropout: f64,
    mode: &mut Mode,
) -> candle_core::Result<Option<Tensor>> {
    if !fused_for(q) {
        return Ok(None);
    }
    let dropout = mode.fused_dropout(dropout);
    let bias = mask.position_bias.as_ref();
    fused::attention_packed(q, k, v, bias, lengths, heads, scale, dropout).map(Some)
}

/// Attention for one query per sequence: `q` `[B, H]` against `k`, `v` `[B, L, H]`; returns
/// `[B, H]`. Composed ops on both kernels: a single query row is a small part of a layer's
/// work, and the generic softmax has a backward pass.
#[allow(clippy::too_many_arguments)]
pub fn single_query_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &AttentionMask,
    heads: usize,
    scale: f64,
    dropout: f64,
    mode: &mut Mode,
) -> candle_core::Result<Tensor> {
    let (b, l, h) = k.dims3()?;
    let d = h / heads;
    let split = |t: &Tensor| t.reshape((b, l, heads, d))?.transpose(1, 2)?.contiguous();
    let q = q.reshape((b, heads, 1, d))?;
    let (k, v) = (split(k)?, split(v)?);
    // The first query's row of the position bias.
    let mask = mask.composed(0..1)?;
    let probs = plain::masked_softmax(&q.matmul(&k.t()?)?, &mask, scale)?;
    let probs = mode.dropout(&probs, dropout)?;
    probs.matmul(&v)?.reshape((b, h))
}

/// `gelu_erf(xs + bias)`, bias broadcast over the last dimension.
pub fn bias_gelu(xs: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    if fused_for(xs) {
        fused::bias_gelu(xs, bias)
    } else {
        plain::bias_gelu(xs, bias)
    }
}

/// A dense layer with Hugging Face's `[out, in]` weight layout.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    /// `xs · Wᵀ` without the bias, for callers that fuse the bias into the next op.
    pub fn forward_no_bias(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        if fused_for(xs) {
            return fused::linear(xs, &self.weight, None);
        }
        let dims = xs.dims().to_vec();
        let in_dim = *dims.last().expect("input has a last dimension");
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let out = xs.reshape((rows, in_dim))?.matmul(&self.weight.t()?)?;
        let mut out_dims = dims;
        *out_dims.last_mut().expect("non-empty") = self.weight.dim(0)?;
        out.reshape(out_dims)
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        if fused_for(xs) {
            return fused::linear(xs, &self.weight, Some(&self.bias));
        }
        self.forward_no_bias(xs)?.broadcast_add(&self.bias)
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

    /// A fused kernel's dropout: `(p, seed)` when training with `p > 0`, the seed drawn from
    /// the run's stream.
    fn fused_dropout(&mut self, p: f64) -> Option<(f64, u64)> {
        match self {
            Mode::Train { rng } if p > 0.0 => Some((p, rng.random::<u64>())),
            _ => None,
        }
    }

    /// Inverted dropout: zero each element with probability `p`, scale the rest by 1/(1-p).
    pub fn dropout(&mut self, xs: &Tensor, p: f64) -> candle_core::Result<Tensor> {
        match self {
            Mode::Eval => Ok(xs.clone()),
            Mode::Train { .. } if p <= 0.0 => Ok(xs.clone()),
            Mode::Train { rng } if fused_for(xs) => fused::dropout(xs, p, rng.random::<u64>()),
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
