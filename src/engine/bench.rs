//! Throughput micro-benchmark, the same measurement as `shared/bench/bench_torch.py`: fp32,
//! training batch 32 and inference batch 64, every sequence exactly 64 tokens, warm-up steps
//! then timed steps. Prints the same JSON fields so the two compare directly.
//!
//! The batches are padded to `seq` as in bench_torch.py, but tweetlab skips padded positions
//! unless `--dense` is given: compare `--dense` figures for the same work, the default for what
//! a user gets.

use std::time::Instant;

use candle_core::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use crate::engine::kernels::Mode;
use crate::engine::model::tokenize::{Batch, Encoded};
use crate::engine::model::LoadedModel;
use crate::engine::train::{train_step_timed, Optimisers, StepTimes, Targets};
use crate::engine::EngineError;

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub seq: usize,
    pub train_bs: usize,
    pub infer_bs: usize,
    pub steps: usize,
    pub warmup: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            seq: 64,
            train_bs: 32,
            infer_bs: 64,
            steps: 20,
            warmup: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    #[serde(rename = "impl")]
    pub implementation: String,
    pub model: String,
    pub device: String,
    pub threads: usize,
    pub seq: usize,
    pub train_bs: usize,
    pub infer_bs: usize,
    pub steps: usize,
    pub warmup: usize,
    pub train_samples_per_s: f64,
    pub train_ms_per_step: f64,
    pub infer_samples_per_s: f64,
    pub infer_ms_per_batch: f64,
    pub loadavg_1m: f64,
    pub host: String,
    /// Which kernels ran: "fused" (CPU custom ops) or "plain" (composed candle ops).
    pub kernels: String,
    /// Whether padded positions were skipped (tweetlab's default on the CPU) or computed like
    /// PyTorch does (`--dense`).
    pub unpadded: bool,
    /// The dense layers' arithmetic: "fp32", "bf16-amx", "bf16-avx512" or "bf16-emulated".
    pub precision: String,
    /// Milliseconds per timed training step in forward (with the loss), backward, and gradient
    /// clipping plus the AdamW update.
    pub train_forward_ms: f64,
    pub train_backward_ms: f64,
    pub train_optimiser_ms: f64,
}

/// The texts bench_torch.py uses, so token content matches too.
fn bench_texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let s = format!(
                "Forest fire near La Ronge Sask. Canada #{i} residents asked to shelter in place while officers notify everyone; no other evacuation orders expected number {i}"
            );
            let end = (40 + (i * 7) % 120).min(s.len());
            s[..end].to_string()
        })
        .collect()
}

/// Encodes `n` bench texts padded (and truncated) to exactly `seq` tokens.
fn fixed_batch(model: &LoadedModel, n: usize, seq: usize) -> Result<Batch, EngineError> {
    let texts = bench_texts(n);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let encoded = model.tokenizer.encode_all(&refs, seq)?;
    let items: Vec<&Encoded> = encoded.iter().collect();
    Ok(Batch::from_encoded(
        &items,
        model.tokenizer.pad_id,
        Some(seq),
        &model.device,
    )?)
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Runs the benchmark on `model` (whose weights it trains: load a fresh copy for real work).
pub fn run(
    model: &LoadedModel,
    cfg: &BenchConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchReport, EngineError> {
    let sync = |t: &Tensor| -> Result<(), EngineError> {
        // Reading a value waits for queued device work (CUDA is asynchronous).
        t.sum_all()?.to_scalar::<f32>()?;
        Ok(())
    };
    let train_batch = fixed_batch(model, cfg.train_bs, cfg.seq)?;
    let labels: Vec<u32> = (0..cfg.train_bs as u32).map(|i| i % 2).collect();
    let labels = Targets::Labels(Tensor::new(labels.as_slice(), &model.device)?);
    let mut opt = Optimisers::new(&model.net.vars, 5e-5, 0.01)?;
    let mut rng = StdRng::seed_from_u64(0);
    progress("training steps");
    let mut t0 = Instant::now();
    let mut times = StepTimes::default();
    for i in 0..cfg.warmup + cfg.steps {
        if i == cfg.warmup {
            t0 = Instant::now();
            times = StepTimes::default();
        }
        train_step_timed(
            model,
            &mut opt,
            &train_batch,
            &labels,
            &mut rng,
            1.0,
            i + 1,
            &mut times,
        )?;
    }
    let first_var = opt.vars.first().map(|v| v.as_tensor().clone());
    if let Some(v) = &first_var {
        sync(v)?;
    }
    let t_train = t0.elapsed().as_secs_f64();

    progress("inference batches");
    let infer_batch = fixed_batch(model, cfg.infer_bs, cfg.seq)?;
    let mut t0 = Instant::now();
    for i in 0..cfg.warmup + cfg.steps {
        if i == cfg.warmup {
            t0 = Instant::now();
        }
        let logits = model.net.forward(&infer_batch, &mut Mode::Eval)?;
        sync(&logits)?;
    }
    let t_inf = t0.elapsed().as_secs_f64();
    let steps = cfg.steps.max(1) as f64;
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    Ok(BenchReport {
        implementation: "tweetlab".into(),
        model: model.files.origin.clone(),
        device: crate::engine::device::describe(&model.device),
        threads: candle_core::utils::get_num_threads(),
        seq: cfg.seq,
        train_bs: cfg.train_bs,
        infer_bs: cfg.infer_bs,
        steps: cfg.steps,
        warmup: cfg.warmup,
        train_samples_per_s: round2(steps * cfg.train_bs as f64 / t_train),
        train_ms_per_step: round1(1000.0 * t_train / steps),
        infer_samples_per_s: round2(steps * cfg.infer_bs as f64 / t_inf),
        infer_ms_per_batch: round1(1000.0 * t_inf / steps),
        loadavg_1m: loadavg(),
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        kernels: crate::engine::kernels::kernels_in_use(&model.device)
            .name()
            .into(),
        unpadded: crate::engine::kernels::unpadded_in_use(&model.device),
        precision: crate::engine::kernels::matmul_path_in_use(&model.device)
            .name()
            .into(),
        train_forward_ms: round1(1000.0 * times.forward_s / steps),
        train_backward_ms: round1(1000.0 * times.backward_s / steps),
        train_optimiser_ms: round1(1000.0 * times.optimiser_s / steps),
    })
}
