//! Fused CPU kernels with their own backward passes, as candle custom ops.
//!
//! Each replaces a chain of small candle ops (each one a full pass over memory and a fresh
//! allocation) with one pass forward and one pass backward, split over the CPU threads. The
//! composed versions in [`crate::engine::kernels::plain`] stay as the reference: `tests/kernels.rs` compares
//! outputs and gradients of both on random inputs.
//!
//! Only f32 on the CPU; `ops` falls back to the composed ops on other devices and dtypes.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::bf16::{self, MatmulPath};

/// Defines `fn $name(args)` three times, for AVX-512, for AVX2+FMA and for the baseline x86-64
/// (SSE2) the binary is built for, and picks one at run time: the kernels' loops are written
/// plainly and left to the compiler to vectorise for the widest units present. The same binary
/// still runs on any x86-64 CPU.
macro_rules! multiversion {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn generic($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) {
                    generic($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) {
                    generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the CPU has every feature the function is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// Rows handed to one rayon task: big enough that scheduling costs nothing next to the work.
const ROWS_PER_TASK: usize = 64;

/// `n` floats for a kernel that writes every one of them before anything reads them, without
/// the zeroing `vec![0.0; n]` pays (mimalloc clears reused pages for it; README, Measured).
/// candle's own CPU kernels allocate their outputs the same way (`alloc_uninit`).
#[allow(clippy::uninit_vec)]
fn output_buffer(n: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    // SAFETY: every caller overwrites the whole buffer before reading it or handing it on.
    unsafe { v.set_len(n) };
    v
}

/// The f32 data of a contiguous CPU tensor, or an error naming `op`.
fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: only f32 is supported, got {:?}", storage.dtype())
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: the input must be contiguous"),
    }
}

/// Runs `f` on the f32 data of `t` (made contiguous first when needed).
fn with_f32<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(cpu) => f(f32_slice(cpu, layout, op)?),
        _ => bail!("{op}: the fused kernels run on the CPU only"),
    }
}

fn cpu_tensor(data: Vec<f32>, shape: &Shape) -> Result<Tensor> {
    Tensor::from_vec(data, shape, &candle_core::Device::Cpu)
}

/// `e^x` for f32, branch-free so loops over it vectorise (relative error below 2e-7).
/// Inputs below -87 give 0, as `expf` does to within f32's range.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let x_clamped = x.clamp(-87.0, 88.0);
    let t = x_clamped * std::f32::consts::LOG2_E;
    // Round to nearest by the 1.5 * 2^23 trick: `round()` is a libm call that stops the loop
    // from vectorising.
    const SHIFTER: f32 = 12_582_912.0;
    let n = (t + SHIFTER) - SHIFTER;
    let f = (t - n) * std::f32::consts::LN_2; // |f| <= ln2/2
                                              // exp(f) by its Taylor series to degree 7: error < 1e-8 on |f| <= 0.347.
    let p = 1.0
        + f * (1.0
            + f * (0.5
                + f * (1.0 / 6.0
                    + f * (1.0 / 24.0
                        + f * (1.0 / 120.0 + f * (1.0 / 720.0 + f * (1.0 / 5040.0)))))));
    // 2^n from the bits of `t + SHIFTER`, whose low mantissa bits hold n: an `as i32` cast
    // would be checked for range lane by lane and keep the loop scalar.
    let scale = f32::from_bits((t + SHIFTER).to_bits().wrapping_add(127) << 23);
    let y = p * scale;
    if x < -87.0 {
        0.0
    } else {
        y
    }
}

/// `erf(x)`, Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7 with exact arithmetic).
#[inline(always)]
fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp_f32(-a * a);
    y.copysign(x)
}

/// Lanes of the reductions below: independent partial sums the compiler can keep in vector
/// registers (a plain `sum()` over f32 must add in order, so it never vectorises).
const LANES: usize = 16;

/// Sum of `f(a[i], b[i])`, in `LANES` partial sums.
#[inline(always)]
fn sum_lanes(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let (a_body, a_tail) = a.split_at(a.len() - a.len() % LANES);
    let b_body = &b[..a_body.len()];
    for (ca, cb) in a_body.chunks_exact(LANES).zip(b_body.chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += f(ca[i], cb[i]);
        }
    }
    let mut total = acc.iter().sum::<f32>();
    for (x, y) in a_tail.iter().zip(&b[a_body.len()..]) {
        total += f(*x, *y);
    }
    total
}

/// Largest element (NEG_INFINITY for an empty slice), in `LANES` partial maxima.
#[inline(always)]
fn max_lanes(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let (body, tail) = a.split_at(a.len() - a.len() % LANES);
    for c in body.chunks_exact(LANES) {
        for i in 0..LANES {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    acc.iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, v| if *v > m { *v } else { m })
}

/// Scales and masks each row, then softmax in place (shared by both softmax kernels).
#[inline(always)]
fn softmax_row(row: &mut [f32], mask: &[f32], scale: f32) {
    for (x, m) in row.iter_mut().zip(mask) {
        *x = *x * scale + m;
    }
    let max = max_lanes(row);
    for x in row.iter_mut() {
        *x = exp_f32(*x - max);
    }
    let inv = 1.0 / sum_lanes(row, row, |x, _| x);
    for x in row.iter_mut() {
        *x *= inv;
    }
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi).
const INV_SQRT_2PI: f32 = 0.398_942_3;

#[inline(always)]
fn gelu(z: f32) -> f32 {
    0.5 * z * (1.0 + erf_f32(z * FRAC_1_SQRT_2))
}

#[inline(always)]
fn gelu_grad(z: f32) -> f32 {
    0.5 * (1.0 + erf_f32(z * FRAC_1_SQRT_2)) + z * INV_SQRT_2PI * exp_f32(-0.5 * z * z)
}

/// Adds per-chunk partial vectors in chunk order. rayon's own `reduce` combines partials in an
/// order that depends on work stealing, which would make a seeded run differ in the last bits
/// from one run to the next; collecting keeps the order fixed.
fn sum_in_order(partials: Vec<Vec<f32>>, width: usize) -> Vec<f32> {
    let mut total = vec![0f32; width];
    for p in partials {
        for (t, v) in total.iter_mut().zip(&p) {
            *t += v;
        }
    }
    total
}

/// Sums `rows` (each `width` long) column-wise, in parallel chunks: the bias gradients.
fn column_sums(rows: &[f32], width: usize) -> Vec<f32> {
    let partials = rows
        .par_chunks(width * ROWS_PER_TASK)
        .map(|chunk| {
            let mut acc = vec![0f32; width];
            for row in chunk.chunks_exact(width) {
                for (a, v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
            acc
        })
        .collect();
    sum_in_order(partials, width)
}

// ---------------------------------------------------------------------------------------------
// LayerNorm

multiversion! {
    /// LayerNorm of whole rows of `x` into `out`, keeping (mean, 1/std) per row.
    fn layer_norm_rows(
        out: &mut [f32],
        x: &[f32],
        stats: &mut [(f32, f32)],
        w: &[f32],
        b: &[f32],
        eps: f32,
    ) {
        let h = w.len();
        for ((y, x), st) in out.chunks_exact_mut(h).zip(x.chunks_exact(h)).zip(stats) {
            let mean = sum_lanes(x, x, |v, _| v) / h as f32;
            let var = sum_lanes(x, x, |v, _| (v - mean) * (v - mean)) / h as f32;
            let rstd = 1.0 / (var + eps).sqrt();
            for (((y, x), w), b) in y.iter_mut().zip(x).zip(w).zip(b) {
                *y = (x - mean) * rstd * w + b;
            }
            *st = (mean, rstd);
        }
    }
}

multiversion! {
    /// LayerNorm's backward pass over whole rows; adds the rows' weight and bias gradients to
    /// `dw` and `db`.
    fn layer_norm_backward_rows(
        dx: &mut [f32],
        x: &[f32],
        dy: &[f32],
        stats: &[(f32, f32)],
        w: &[f32],
        dw: &mut [f32],
        db: &mut [f32],
        xhat: &mut [f32],
    ) {
        let h = w.len();
        for (((dx, x), dy), &(mean, rstd)) in dx
            .chunks_exact_mut(h)
            .zip(x.chunks_exact(h))
            .zip(dy.chunks_exact(h))
            .zip(stats)
        {
            for i in 0..h {
                let xh = (x[i] - mean) * rstd;
                xhat[i] = xh;
                dw[i] += dy[i] * xh;
                db[i] += dy[i];
            }
            let mean_g = sum_lanes(dy, w, |g, w| g * w) / h as f32;
            // Σ dy·w·x̂, in LANES partial sums as in `sum_lanes`.
            let mut acc = [0f32; LANES];
            let body = h - h % LANES;
            for start in (0..body).step_by(LANES) {
                for (i, a) in acc.iter_mut().enumerate() {
                    let j = start + i;
                    *a += dy[j] * w[j] * xhat[j];
                }
            }
            let mut sum_gx = acc.iter().sum::<f32>();
            for j in body..h {
                sum_gx += dy[j] * w[j] * xhat[j];
            }
            let mean_gx = sum_gx / h as f32;
            for i in 0..h {
                dx[i] = rstd * (dy[i] * w[i] - mean_g - xhat[i] * mean_gx);
            }
        }
    }
}

/// LayerNorm over the last dimension. The forward pass keeps each row's mean and 1/std for the
/// backward pass, which then needs one read of the input and the output gradient.
struct LayerNormOp {
    eps: f32,
    /// (mean, rstd) per row, written by the forward pass.
    stats: Mutex<Vec<(f32, f32)>>,
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(xs, xl, self.name())?;
        let w = f32_slice(ws, wl, self.name())?;
        let b = f32_slice(bs, bl, self.name())?;
        let h = w.len();
        if b.len() != h || xl.dims().last() != Some(&h) {
            bail!("{}: weight, bias and input widths differ", self.name())
        }
        let rows = x.len() / h;
        let mut out = output_buffer(x.len());
        let mut stats = vec![(0f32, 0f32); rows];
        out.par_chunks_mut(h * ROWS_PER_TASK)
            .zip(x.par_chunks(h * ROWS_PER_TASK))
            .zip(stats.par_chunks_mut(ROWS_PER_TASK))
            .for_each(|((out, x), stats)| layer_norm_rows(out, x, stats, w, b, self.eps));
        *self.stats.lock().expect("layer-norm stats lock") = stats;
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = self.stats.lock().expect("layer-norm stats lock");
        let h = w.elem_count();
        let (dx, dw, db) = with_f32(x, self.name(), |x| {
            with_f32(w, self.name(), |w| {
                with_f32(grad, self.name(), |dy| {
                    if stats.len() * h != x.len() {
                        bail!("{}: backward without a matching forward pass", self.name())
                    }
                    let mut dx = vec![0f32; x.len()];
                    let partial = dx
                        .par_chunks_mut(h * ROWS_PER_TASK)
                        .zip(x.par_chunks(h * ROWS_PER_TASK))
                        .zip(dy.par_chunks(h * ROWS_PER_TASK))
                        .zip(stats.par_chunks(ROWS_PER_TASK))
                        .map(|(((dx, x), dy), stats)| {
                            let mut dw = vec![0f32; h];
                            let mut db = vec![0f32; h];
                            let mut xhat = vec![0f32; h];
                            layer_norm_backward_rows(
                                dx, x, dy, stats, w, &mut dw, &mut db, &mut xhat,
                            );
                            (dw, db)
                        })
                        .collect::<Vec<_>>();
                    let (dw, db): (Vec<_>, Vec<_>) = partial.into_iter().unzip();
                    Ok((dx, sum_in_order(dw, h), sum_in_order(db, h)))
                })
            })
        })?;
        Ok((
            Some(cpu_tensor(dx, x.shape())?),
            Some(cpu_tensor(dw, w.shape())?),
            Some(cpu_tensor(db, w.shape())?),
        ))
    }
}

/// LayerNorm over the last dimension of `xs` (f32, CPU).
pub fn layer_norm(xs: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    xs.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNormOp {
            eps: eps as f32,
            stats: Mutex::new(Vec::new()),
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Attention softmax

multiversion! {
    /// The softmax's backward pass over whole rows of length `lk`.
    fn masked_softmax_backward_rows(ds: &mut [f32], p: &[f32], dp: &[f32], lk: usize, scale: f32) {
        for ((ds, p), dp) in ds
            .chunks_exact_mut(lk)
            .zip(p.chunks_exact(lk))
            .zip(dp.chunks_exact(lk))
        {
            let dot = sum_lanes(p, dp, |p, g| p * g);
            for ((d, p), g) in ds.iter_mut().zip(p).zip(dp) {
                *d = scale * p * (g - dot);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bias + GELU

multiversion! {
    /// `gelu(x + b)` over whole rows.
    fn bias_gelu_rows(out: &mut [f32], x: &[f32], b: &[f32]) {
        let n = b.len();
        for (y, x) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
            for ((y, x), b) in y.iter_mut().zip(x).zip(b) {
                *y = gelu(x + b);
            }
        }
    }
}

multiversion! {
    /// `dy * gelu'(x + b)` over whole rows.
    fn bias_gelu_backward_rows(dx: &mut [f32], x: &[f32], dy: &[f32], b: &[f32]) {
        let n = b.len();
        for ((dx, x), dy) in dx
            .chunks_exact_mut(n)
            .zip(x.chunks_exact(n))
            .zip(dy.chunks_exact(n))
        {
            for (((d, x), g), b) in dx.iter_mut().zip(x).zip(dy).zip(b) {
                *d = g * gelu_grad(x + b);
            }
        }
    }
}

/// `gelu_erf(xs + bias)` for `xs` `[..., N]` and `bias` `[N]`: the intermediate layer's bias
/// add and activation in one pass. The backward pass recomputes `xs + bias` instead of keeping it.
struct BiasGeluOp;

impl CustomOp2 for BiasGeluOp {
    fn name(&self) -> &'static str {
        "fused-bias-gelu"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(xs, xl, self.name())?;
        let b = f32_slice(bs, bl, self.name())?;
        let n = b.len();
        if xl.dims().last() != Some(&n) {
            bail!("{}: bias width differs from the input's", self.name())
        }
        let mut out = output_buffer(x.len());
        out.par_chunks_mut(n * ROWS_PER_TASK)
            .zip(x.par_chunks(n * ROWS_PER_TASK))
            .for_each(|(out, x)| bias_gelu_rows(out, x, b));
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = b.elem_count();
        let dx = with_f32(x, self.name(), |x| {
            with_f32(b, self.name(), |b| {
                with_f32(grad, self.name(), |dy| {
                    let mut dx = vec![0f32; x.len()];
                    dx.par_chunks_mut(n * ROWS_PER_TASK)
                        .zip(x.par_chunks(n * ROWS_PER_TASK))
                        .zip(dy.par_chunks(n * ROWS_PER_TASK))
                        .for_each(|((dx, x), dy)| bias_gelu_backward_rows(dx, x, dy, b));
                    Ok(dx)
                })
            })
        })?;
        let db = column_sums(&dx, n);
        Ok((
            Some(cpu_tensor(dx, x.shape())?),
            Some(cpu_tensor(db, b.shape())?),
        ))
    }
}

/// `gelu_erf(xs + bias)`, bias broadcast over the last dimension (f32, CPU).
pub fn bias_gelu(xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
    xs.contiguous()?.apply_op2(&bias.contiguous()?, BiasGeluOp)
}

// ---------------------------------------------------------------------------------------------
// Linear

/// `gemm`'s thread setting, as candle's own matmul picks it.
fn gemm_parallelism() -> gemm::Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}

/// `dst[m, n] = a * dst + lhs[m, k] · rhs[k, n]`, row-major `dst`; `lhs` and `rhs` given by their
/// (row, column) strides so transposes cost nothing.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_into(
    dst: &mut [f32],
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    assert!(dst.len() >= m * n);
    assert!(m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(k == 0 || n == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: the asserts above keep every index the kernel reads or writes inside the slices;
    // `dst` does not overlap the inputs (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm_parallelism(),
        )
    }
}

/// A dense layer `xs · Wᵀ (+ b)` for Hugging Face's `[out, in]` weights, as one op that calls
/// gemm itself: the bias is the product's starting value (no separate add), the transposed
/// weight is read through its strides, and the backward pass is two gemm calls and a column sum,
/// instead of candle's matmul, transpose and broadcast-add nodes and their gradient copies.
struct LinearOp {
    /// f32 or one of the bf16 paths, for all three products (forward, input and weight grads).
    path: MatmulPath,
}

impl LinearOp {
    fn forward(
        &self,
        x: &[f32],
        xl: &Layout,
        w: &[f32],
        wl: &Layout,
        bias: Option<&[f32]>,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, k) = wl.shape().dims2()?;
        if xl.dims().last() != Some(&k) || bias.is_some_and(|b| b.len() != n) {
            bail!("fused-linear: input, weight and bias shapes disagree")
        }
        let m = x.len() / k;
        let mut out = match bias {
            Some(b) => {
                let mut out = Vec::with_capacity(m * n);
                for _ in 0..m {
                    out.extend_from_slice(b);
                }
                out
            }
            // Written whole by the product (which does not read it without a bias).
            None => output_buffer(m * n),
        };
        let product = (m, n, k);
        bf16::matmul(
            self.path,
            &mut out,
            product,
            bias.is_some(),
            x,
            (k, 1),
            w,
            (1, k),
        );
        let mut dims = xl.dims().to_vec();
        *dims.last_mut().expect("input has a last dimension") = n;
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }

    /// Gradients of the input and the weight (and the bias, when asked).
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
        with_bias: bool,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let (n, k) = w.dims2()?;
        let (dx, dw, db) = with_f32(x, "fused-linear", |x| {
            with_f32(w, "fused-linear", |w| {
                with_f32(grad, "fused-linear", |dy| {
                    let m = x.len() / k;
                    let mut dx = output_buffer(m * k);
                    bf16::matmul(self.path, &mut dx, (m, k, n), false, dy, (n, 1), w, (k, 1));
                    let mut dw = output_buffer(n * k);
                    bf16::matmul(self.path, &mut dw, (n, k, m), false, dy, (1, n), x, (k, 1));
                    let db = with_bias.then(|| column_sums(dy, n));
                    Ok((dx, dw, db))
                })
            })
        })?;
        Ok((
            cpu_tensor(dx, x.shape())?,
            cpu_tensor(dw, w.shape())?,
            db.map(|db| cpu_tensor(db, &Shape::from(n))).transpose()?,
        ))
    }
}

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(xs, xl, "fused-linear")?;
        let w = f32_slice(ws, wl, "fused-linear")?;
        self.forward(x, xl, w, wl, None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.backward(x, w, grad, false)?;
        Ok((Some(dx), Some(dw)))
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(xs, xl, "fused-linear")?;
        let w = f32_slice(ws, wl, "fused-linear")?;
        let b = f32_slice(bs, bl, "fused-linear")?;
        self.forward(x, xl, w, wl, Some(b))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = self.backward(x, w, grad, true)?;
        Ok((Some(dx), Some(dw), db))
    }
}

/// `xs · weightᵀ + bias` over the last dimension of `xs` (f32, CPU; `weight` is `[out, in]`).
pub fn linear(xs: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let xs = xs.contiguous()?;
    let weight = weight.contiguous()?;
    let op = LinearOp {
        path: super::matmul_path_in_use(xs.device()),
    };
    match bias {
        Some(b) => xs.apply_op3(&weight, &b.contiguous()?, op),
        None => xs.apply_op2(&weight, op),
    }
}

// ---------------------------------------------------------------------------------------------
// Attention

/// A strided matrix inside a slice: element `(i, j)` at `offset + i * rs + j * cs`.
#[derive(Clone, Copy, Debug)]
struct View {
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl View {
    fn row_major(offset: usize, rows: usize, cols: usize, rs: usize) -> Self {
        Self {
            offset,
            rows,
            cols,
            rs,
            cs: 1,
        }
    }

    fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// One past the largest index the view touches.
    fn end(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            self.offset
        } else {
            self.offset + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// A base pointer that rayon tasks share to write disjoint blocks of one output.
pub(super) struct Shared<T>(pub(super) *mut T, usize);
impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shared<T> {}
// SAFETY: every task writes a block no other task touches (by construction: one
// (batch item, head) block each), and the buffer outlives the parallel loop.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    pub(super) fn new(v: &mut [T]) -> Self {
        Self(v.as_mut_ptr(), v.len())
    }

    /// The block `[start, start + len)`.
    ///
    /// # Safety
    /// No other live reference may overlap the block.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn block(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start + len <= self.1);
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

type SharedOut = Shared<f32>;

/// `dst = lhs · rhs` on one thread (the caller runs many of these in parallel).
///
/// # Safety
/// `dst.0` must point to `dst.1` floats that no one else reads or writes inside `dv`.
unsafe fn gemm_view(dst: SharedOut, dv: View, lhs: &[f32], lv: View, rhs: &[f32], rv: View) {
    assert!(lv.rows == dv.rows && rv.cols == dv.cols && lv.cols == rv.rows);
    assert!(dv.end() <= dst.1 && lv.end() <= lhs.len() && rv.end() <= rhs.len());
    gemm::gemm(
        dv.rows,
        dv.cols,
        lv.cols,
        dst.0.add(dv.offset),
        dv.cs as isize,
        dv.rs as isize,
        false,
        lhs.as_ptr().add(lv.offset),
        lv.cs as isize,
        lv.rs as isize,
        rhs.as_ptr().add(rv.offset),
        rv.cs as isize,
        rv.rs as isize,
        0.0,
        1.0,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

multiversion! {
    /// Softmax of each row of `p` (rows of `mask.len()`) after scaling and adding `mask`, in place.
    fn softmax_rows_in_place(p: &mut [f32], mask: &[f32], scale: f32) {
        for row in p.chunks_exact_mut(mask.len()) {
            softmax_row(row, mask, scale);
        }
    }
}

/// Fills `keep` with 1 (kept, probability `1 - p`) or 0 from a SplitMix64 stream seeded by `seed`.
fn fill_keep_mask(keep: &mut [u8], p: f32, seed: u64) {
    let keep_below = ((1.0 - p as f64) * 4_294_967_296.0) as u64;
    let mut state = seed;
    for pair in keep.chunks_mut(2) {
        let r = splitmix64(&mut state);
        for (k, m) in pair.iter_mut().enumerate() {
            *m = (((r >> (32 * k)) & 0xFFFF_FFFF) < keep_below) as u8;
        }
    }
}

/// `x * keep * scale`, elementwise.
fn apply_keep_mask(x: &[f32], keep: &[u8], scale: f32) -> Vec<f32> {
    x.iter()
        .zip(keep)
        .map(|(x, k)| x * scale * (*k as f32))
        .collect()
}

/// Self-attention for short sequences as one op: for each (sequence, head), scores `Q·Kᵀ`,
/// scale and mask, softmax, dropout, times `V`, written straight into the output. q, k and v
/// are rows of `H` (`[B, L, H]` on the padded grid, or `[T, H]` with only the real tokens, one
/// sequence after another); a sequence is a run of rows (`segments`). The heads are read in
/// place through strides: no head split or merge copies, and no `[B, heads, L, L]` tensors in
/// the graph. The forward pass keeps the probabilities and the dropout mask for the backward.
///
/// MPNet adds a trained position bias `[heads, L, L]` to the scaled scores. It needs a gradient,
/// so it is an input of the op; candle's custom ops take three inputs at most, so that op
/// ([`BiasedAttentionOp`]) takes k and v side by side as one `[rows, 2H]` input.
struct AttentionOp {
    heads: usize,
    scale: f32,
    /// Each sequence's first row and length.
    segments: Vec<(usize, usize)>,
    /// Additive mask per row (padding keys), or `None` when every row is a real token.
    mask: Option<Vec<f32>>,
    /// Dropout probability on the attention probabilities, and its seed.
    dropout: Option<(f32, u64)>,
    /// Side `L` of the position bias `[heads, L, L]`, when the op has one (k and v then come as
    /// one input, side by side).
    bias_side: Option<usize>,
    /// Probabilities (per sequence and head, `len x len`) and dropout keep-mask, written by the
    /// forward pass.
    saved: Mutex<(Vec<f32>, Vec<u8>)>,
}

/// One (sequence, head) block of the work.
#[derive(Clone, Copy)]
struct HeadTask {
    /// The head's columns in the sequence's rows of q (and of the output).
    q: View,
    /// The same for k and for v.
    k: View,
    v: View,
    /// `len x len`, row-major.
    square: View,
    /// Where its probabilities start.
    probs_at: usize,
    /// Its first row, for the mask.
    row: usize,
    /// Where its head's `L x L` block of the position bias starts.
    bias_at: usize,
}

/// The gradients of one attention op's inputs.
struct AttentionGrads {
    dq: Vec<f32>,
    /// d(k), or d(k and v side by side) when the op has a position bias.
    dk: Vec<f32>,
    /// Empty when the op has a position bias (it is in `dk`).
    dv: Vec<f32>,
    dbias: Option<Vec<f32>>,
}

impl AttentionOp {
    /// Rows, hidden size and head size from q's layout, checked against the segments and mask.
    fn dims(&self, layout: &Layout) -> Result<(usize, usize, usize)> {
        let dims = layout.dims();
        let h = *dims.last().unwrap_or(&0);
        let rows = layout.shape().elem_count() / h.max(1);
        let covered = self.segments.iter().all(|&(r, l)| r + l <= rows);
        let bias_covers = self
            .bias_side
            .is_none_or(|side| self.segments.iter().all(|s| s.1 <= side));
        if !h.is_multiple_of(self.heads)
            || !covered
            || !bias_covers
            || self.mask.as_ref().is_some_and(|m| m.len() != rows)
        {
            bail!("fused-attention: hidden size, heads, sequences, mask and bias disagree")
        }
        Ok((rows, h, h / self.heads))
    }

    /// Width of the rows k and v are read from: `H`, or `2H` when they come side by side.
    fn kv_width(&self, h: usize) -> usize {
        if self.bias_side.is_some() {
            2 * h
        } else {
            h
        }
    }

    /// Every (sequence, head) block, in the order their probabilities are stored.
    fn tasks(&self, h: usize, d: usize) -> (Vec<HeadTask>, usize) {
        let kv = self.kv_width(h);
        // v's columns start after k's when they come side by side.
        let v_from = kv - h;
        let side = self.bias_side.unwrap_or(0);
        let mut tasks = Vec::with_capacity(self.segments.len() * self.heads);
        let mut at = 0;
        for &(row, l) in &self.segments {
            for hi in 0..self.heads {
                tasks.push(HeadTask {
                    q: View::row_major(row * h + hi * d, l, d, h),
                    k: View::row_major(row * kv + hi * d, l, d, kv),
                    v: View::row_major(row * kv + v_from + hi * d, l, d, kv),
                    square: View::row_major(0, l, l, l),
                    probs_at: at,
                    row,
                    bias_at: hi * side * side,
                });
                at += l * l;
            }
        }
        (tasks, at)
    }

    fn keep_scale(&self) -> f32 {
        self.dropout.map_or(1.0, |(p, _)| 1.0 / (1.0 - p))
    }

    /// A `[rows, width]` buffer for the (sequence, head) blocks to fill: left unzeroed when the
    /// sequences (which never overlap) cover every row.
    fn block_output(&self, rows: usize, width: usize) -> Vec<f32> {
        if self.segments.iter().map(|s| s.1).sum::<usize>() == rows {
            output_buffer(rows * width)
        } else {
            vec![0f32; rows * width]
        }
    }

    /// The additive mask of a block's keys (zeros without a mask).
    fn mask_of<'a>(&'a self, t: &HeadTask, zeros: &'a [f32]) -> &'a [f32] {
        let l = t.square.rows;
        match &self.mask {
            Some(m) => &m[t.row..t.row + l],
            None => &zeros[..l],
        }
    }

    /// Scale, mask (and position bias), softmax: a block's scores become its probabilities.
    fn softmax(&self, p: &mut [f32], t: &HeadTask, zeros: &[f32], bias: Option<&[f32]>) {
        let mask = self.mask_of(t, zeros);
        match (bias, self.bias_side) {
            (Some(bias), Some(side)) => {
                softmax_rows_biased(p, mask, &bias[t.bias_at..], side, self.scale)
            }
            _ => softmax_rows_in_place(p, mask, self.scale),
        }
    }

    /// The context `[rows, h]`; `k` and `v` are the same slice when they come side by side.
    fn forward(
        &self,
        q: &[f32],
        ql: &Layout,
        k: &[f32],
        v: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        let (rows, h, d) = self.dims(ql)?;
        let (tasks, probs_len) = self.tasks(h, d);
        let longest = self.segments.iter().map(|s| s.1).max().unwrap_or(0);
        let zeros = vec![0f32; longest];
        // Rows outside every sequence (none from this module's callers) stay zero.
        let mut out = self.block_output(rows, h);
        let mut probs = output_buffer(probs_len);
        let mut keep = vec![1u8; if self.dropout.is_some() { probs_len } else { 0 }];
        let keep_scale = self.keep_scale();
        let out_ptr = SharedOut::new(&mut out);
        let probs_ptr = SharedOut::new(&mut probs);
        let keep_ptr = Shared::new(&mut keep);
        tasks.par_iter().enumerate().for_each(|(i, t)| {
            let l = t.square.rows;
            // SAFETY: each task's probabilities and keep mask are its own block.
            let p = unsafe { probs_ptr.block(t.probs_at, l * l) };
            // Scores into `p`, then the softmax in place.
            unsafe { gemm_view(SharedOut::new(p), t.square, q, t.q, k, t.k.t()) };
            self.softmax(p, t, &zeros, bias);
            // Dropout applies to what multiplies V; `p` itself stays for the backward pass.
            let dropped: Vec<f32>;
            let weights: &[f32] = match self.dropout {
                Some((prob, seed)) => {
                    let keep = unsafe { keep_ptr.block(t.probs_at, l * l) };
                    let task_seed = seed ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
                    fill_keep_mask(keep, prob, task_seed);
                    dropped = apply_keep_mask(p, keep, keep_scale);
                    &dropped
                }
                None => p,
            };
            // SAFETY: the (sequence, head) block of the output belongs to this task alone.
            unsafe { gemm_view(out_ptr, t.q, weights, t.square, v, t.v) };
        });
        *self.saved.lock().expect("attention state lock") = (probs, keep);
        Ok(out)
    }

    /// Gradients from the forward pass's probabilities; `dout` is `[rows, h]`.
    fn backward(
        &self,
        q: &[f32],
        ql: &Layout,
        k: &[f32],
        v: &[f32],
        dout: &[f32],
    ) -> Result<AttentionGrads> {
        let (rows, h, d) = self.dims(ql)?;
        let (tasks, probs_len) = self.tasks(h, d);
        let saved = self.saved.lock().expect("attention state lock");
        let (probs, keep) = (&saved.0, &saved.1);
        if probs.len() != probs_len {
            bail!("fused-attention: backward without a matching forward pass")
        }
        let keep_scale = self.keep_scale();
        let mut dq = self.block_output(rows, h);
        let mut dk = self.block_output(rows, self.kv_width(h));
        let mut dv = match self.bias_side {
            Some(_) => Vec::new(),
            None => self.block_output(rows, h),
        };
        // The gradient of each block's biased scores, kept to sum over sequences per head.
        let mut dscores = match self.bias_side {
            Some(_) => output_buffer(probs_len),
            None => Vec::new(),
        };
        let (dq_ptr, dk_ptr) = (SharedOut::new(&mut dq), SharedOut::new(&mut dk));
        // Side by side, dv's blocks are the other columns of dk's buffer.
        let dv_ptr = match self.bias_side {
            Some(_) => dk_ptr,
            None => SharedOut::new(&mut dv),
        };
        let dscores_ptr = SharedOut::new(&mut dscores);
        tasks.par_iter().for_each(|t| {
            let (square, l) = (t.square, t.square.rows);
            let p = &probs[t.probs_at..][..l * l];
            let mask = (!keep.is_empty()).then(|| &keep[t.probs_at..][..l * l]);
            // The weights that multiplied V.
            let weights = match mask {
                Some(m) => apply_keep_mask(p, m, keep_scale),
                None => p.to_vec(),
            };
            let mut dw = vec![0f32; l * l];
            let mut ds = vec![0f32; l * l];
            // SAFETY (all gemm calls): each writes a buffer of this task or a block of the
            // gradients that belongs to this task alone.
            unsafe {
                // dV = weightsᵀ · dO;  d(weights) = dO · Vᵀ
                gemm_view(dv_ptr, t.v, &weights, square.t(), dout, t.q);
                gemm_view(SharedOut::new(&mut dw), square, dout, t.q, v, t.v.t());
            }
            if let Some(m) = mask {
                dw = apply_keep_mask(&dw, m, keep_scale);
            }
            // Through the softmax and the scale.
            masked_softmax_backward_rows(&mut ds, p, &dw, l, self.scale);
            if self.bias_side.is_some() {
                // The bias is added after the scale: its gradient is the scores' without it.
                let inv = 1.0 / self.scale;
                let block = unsafe { dscores_ptr.block(t.probs_at, l * l) };
                for (b, s) in block.iter_mut().zip(&ds) {
                    *b = s * inv;
                }
            }
            unsafe {
                // dQ = dS · K;  dK = dSᵀ · Q
                gemm_view(dq_ptr, t.q, &ds, square, k, t.k);
                gemm_view(dk_ptr, t.k, &ds, square.t(), q, t.q);
            }
        });
        let dbias = self
            .bias_side
            .map(|side| self.sum_per_head(&tasks, &dscores, side));
        Ok(AttentionGrads { dq, dk, dv, dbias })
    }

    /// The position bias's gradient `[heads, L, L]`: each head's blocks summed over the
    /// sequences, in sequence order (so a seeded run repeats to the bit).
    fn sum_per_head(&self, tasks: &[HeadTask], dscores: &[f32], side: usize) -> Vec<f32> {
        let mut grad = vec![0f32; self.heads * side * side];
        grad.par_chunks_mut((side * side).max(1))
            .enumerate()
            .for_each(|(head, block)| {
                for t in tasks.iter().filter(|t| t.bias_at == head * side * side) {
                    let l = t.square.rows;
                    let ds = &dscores[t.probs_at..][..l * l];
                    for (dst, src) in block.chunks_exact_mut(side).zip(ds.chunks_exact(l)) {
                        for (g, s) in dst.iter_mut().zip(src) {
                            *g += s;
                        }
                    }
                }
            });
        grad
    }
}

multiversion! {
    /// [`softmax_rows_in_place`] with a bias per row and column besides the mask: row `r` of
    /// `p` adds `bias[r * stride..][..mask.len()]`.
    fn softmax_rows_biased(p: &mut [f32], mask: &[f32], bias: &[f32], stride: usize, scale: f32) {
        let mut add = vec![0f32; mask.len()];
        for (r, row) in p.chunks_exact_mut(mask.len()).enumerate() {
            for ((a, m), b) in add.iter_mut().zip(mask).zip(&bias[r * stride..]) {
                *a = b + m;
            }
            softmax_row(row, &add, scale);
        }
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let q = f32_slice(qs, ql, self.name())?;
        let k = f32_slice(ks, kl, self.name())?;
        let v = f32_slice(vs, vl, self.name())?;
        if kl.dims() != ql.dims() || vl.dims() != ql.dims() {
            bail!("{}: q, k and v shapes differ", self.name())
        }
        let out = self.forward(q, ql, k, v, None)?;
        Ok((CpuStorage::F32(out), ql.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = with_f32(q, self.name(), |qd| {
            with_f32(k, self.name(), |kd| {
                with_f32(v, self.name(), |vd| {
                    with_f32(grad, self.name(), |dout| {
                        self.backward(qd, q.layout(), kd, vd, dout)
                    })
                })
            })
        })?;
        Ok((
            Some(cpu_tensor(g.dq, q.shape())?),
            Some(cpu_tensor(g.dk, k.shape())?),
            Some(cpu_tensor(g.dv, v.shape())?),
        ))
    }
}

/// [`AttentionOp`] with MPNet's position bias: inputs q `[…, H]`, k and v side by side
/// `[…, 2H]`, and the bias `[heads, L, L]` (its gradient summed over the sequences).
struct BiasedAttentionOp(AttentionOp);

impl CustomOp3 for BiasedAttentionOp {
    fn name(&self) -> &'static str {
        "fused-attention-biased"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        kvs: &CpuStorage,
        kvl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let q = f32_slice(qs, ql, self.name())?;
        let kv = f32_slice(kvs, kvl, self.name())?;
        let bias = f32_slice(bs, bl, self.name())?;
        let mut kv_dims = ql.dims().to_vec();
        if let Some(last) = kv_dims.last_mut() {
            *last *= 2;
        }
        let side = self.0.bias_side.unwrap_or(0);
        if kvl.dims() != kv_dims.as_slice() || bl.dims() != [self.0.heads, side, side] {
            bail!(
                "{}: k and v must be q's width twice, the bias [heads, L, L]",
                self.name()
            )
        }
        let out = self.0.forward(q, ql, kv, kv, Some(bias))?;
        Ok((CpuStorage::F32(out), ql.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        kv: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = with_f32(q, self.name(), |qd| {
            with_f32(kv, self.name(), |kvd| {
                with_f32(grad, self.name(), |dout| {
                    self.0.backward(qd, q.layout(), kvd, kvd, dout)
                })
            })
        })?;
        let dbias = g.dbias.unwrap_or_default();
        Ok((
            Some(cpu_tensor(g.dq, q.shape())?),
            Some(cpu_tensor(g.dk, kv.shape())?),
            Some(cpu_tensor(dbias, bias.shape())?),
        ))
    }
}

fn attention_op(
    segments: Vec<(usize, usize)>,
    mask: Option<Vec<f32>>,
    heads: usize,
    scale: f64,
    dropout: Option<(f64, u64)>,
) -> AttentionOp {
    AttentionOp {
        heads,
        scale: scale as f32,
        segments,
        mask,
        dropout: dropout
            .filter(|(p, _)| *p > 0.0)
            .map(|(p, seed)| (p as f32, seed)),
        bias_side: None,
        saved: Mutex::new((Vec::new(), Vec::new())),
    }
}

/// Runs `op` on q, k, v, with the position bias `[heads, L, L]` when there is one.
fn apply_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    position_bias: Option<&Tensor>,
    op: AttentionOp,
) -> Result<Tensor> {
    let q = q.contiguous()?;
    match position_bias {
        None => q.apply_op3(&k.contiguous()?, &v.contiguous()?, op),
        Some(bias) => {
            let kv = Tensor::cat(&[k, v], k.rank() - 1)?;
            let op = AttentionOp {
                bias_side: Some(bias.dim(1)?),
                ..op
            };
            q.apply_op3(&kv, &bias.contiguous()?, BiasedAttentionOp(op))
        }
    }
}

/// Multi-head attention over `q`, `k`, `v` `[B, L, H]` (already projected), with an additive
/// mask `[B, 1, 1, L]` (or `[B, L]`) and an optional position bias `[heads, L, L]` (MPNet's),
/// scores scaled by `scale`, and dropout `(p, seed)` on the probabilities when training.
/// Returns the context `[B, L, H]` (f32, CPU).
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    position_bias: Option<&Tensor>,
    heads: usize,
    scale: f64,
    dropout: Option<(f64, u64)>,
) -> Result<Tensor> {
    let (b, l, _) = q.dims3()?;
    let mask = mask.flatten_all()?.to_vec1::<f32>()?;
    let segments = (0..b).map(|i| (i * l, l)).collect();
    let op = attention_op(segments, Some(mask), heads, scale, dropout);
    apply_attention(q, k, v, position_bias, op)
}

/// [`attention`] over real tokens only: `q`, `k`, `v` `[T, H]` hold the sequences one after
/// another, `lengths` long each, with no padding to mask; each sequence's positions count from
/// 0 in the position bias. Returns the context `[T, H]`.
#[allow(clippy::too_many_arguments)]
pub fn attention_packed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    position_bias: Option<&Tensor>,
    lengths: &[usize],
    heads: usize,
    scale: f64,
    dropout: Option<(f64, u64)>,
) -> Result<Tensor> {
    let mut row = 0;
    let segments = lengths
        .iter()
        .map(|&l| {
            row += l;
            (row - l, l)
        })
        .collect();
    let op = attention_op(segments, None, heads, scale, dropout);
    apply_attention(q, k, v, position_bias, op)
}

// ---------------------------------------------------------------------------------------------
// Dropout

/// SplitMix64: a tiny, good-quality generator, one per chunk so chunks fill in parallel and the
/// mask depends only on the seed, not on the thread count.
#[inline(always)]
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Inverted dropout in one pass: keeps each element with probability `1 - p`, scaled by
/// `1 / (1 - p)`. The keep mask (one byte per element) is kept for the backward pass instead of
/// an f32 mask tensor and a multiply.
struct DropoutOp {
    p: f32,
    seed: u64,
    mask: Mutex<Vec<u8>>,
}

const DROPOUT_CHUNK: usize = 1 << 14;

impl candle_core::CustomOp1 for DropoutOp {
    fn name(&self) -> &'static str {
        "fused-dropout"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(xs, xl, self.name())?;
        let keep_below = ((1.0 - self.p as f64) * 4_294_967_296.0) as u64;
        let scale = 1.0 / (1.0 - self.p);
        let mut out = vec![0f32; x.len()];
        let mut mask = vec![0u8; x.len()];
        out.par_chunks_mut(DROPOUT_CHUNK)
            .zip(mask.par_chunks_mut(DROPOUT_CHUNK))
            .zip(x.par_chunks(DROPOUT_CHUNK))
            .enumerate()
            .for_each(|(i, ((out, mask), x))| {
                let mut state = self.seed ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
                for ((out, mask), x) in out.chunks_mut(2).zip(mask.chunks_mut(2)).zip(x.chunks(2)) {
                    let r = splitmix64(&mut state);
                    for (k, ((o, m), x)) in out.iter_mut().zip(mask.iter_mut()).zip(x).enumerate() {
                        let keep = (r >> (32 * k)) & 0xFFFF_FFFF < keep_below;
                        *m = keep as u8;
                        *o = if keep { x * scale } else { 0.0 };
                    }
                }
            });
        *self.mask.lock().expect("dropout mask lock") = mask;
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let mask = self.mask.lock().expect("dropout mask lock");
        let scale = 1.0 / (1.0 - self.p);
        let dx = with_f32(grad, self.name(), |g| {
            if g.len() != mask.len() {
                bail!("{}: backward without a matching forward pass", self.name())
            }
            let mut dx = vec![0f32; g.len()];
            dx.par_chunks_mut(DROPOUT_CHUNK)
                .zip(g.par_chunks(DROPOUT_CHUNK))
                .zip(mask.par_chunks(DROPOUT_CHUNK))
                .for_each(|((dx, g), m)| {
                    for ((d, g), m) in dx.iter_mut().zip(g).zip(m) {
                        *d = g * scale * (*m as f32);
                    }
                });
            Ok(dx)
        })?;
        Ok(Some(cpu_tensor(dx, arg.shape())?))
    }
}

/// Inverted dropout with probability `p` (0 < p < 1), masks drawn from `seed` (f32, CPU).
pub fn dropout(xs: &Tensor, p: f64, seed: u64) -> Result<Tensor> {
    xs.contiguous()?.apply_op1(DropoutOp {
        p: p as f32,
        seed,
        mask: Mutex::new(Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_match_libm() {
        let mut worst_exp = 0f32;
        let mut worst_erf = 0f32;
        for i in -2000..=2000 {
            let x = i as f32 * 0.01;
            worst_exp = worst_exp.max(((exp_f32(x) - x.exp()) / x.exp()).abs());
            let libm_erf = candle_core::cpu::erf::erf_f64(x as f64) as f32;
            worst_erf = worst_erf.max((erf_f32(x) - libm_erf).abs());
        }
        assert!(worst_exp < 1e-6, "exp relative error {worst_exp}");
        assert!(worst_erf < 1e-6, "erf absolute error {worst_erf}");
        assert_eq!(exp_f32(-1e9), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
    }
}
