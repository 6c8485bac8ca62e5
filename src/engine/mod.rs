//! The model side of tweetlab: candle only, no UI. The CLI and the window's jobs call the same
//! functions here.
//!
//! Rooms, each using only those above it:
//! - `kernels`: the op switch (fused CPU kernels or composed candle ops), the fused kernels with
//!   their backward passes, AdamW;
//! - `model`: the encoder and head (Hugging Face weight names), tokenizer, finding a model,
//!   loading it, writing it in the Hugging Face layout;
//! - `infer` and `explain`: batched forward passes over texts;
//! - `train`: settings, the step, evaluation, the loop on its thread, the run record;
//! - `bench`: the throughput benchmark.
//!
//! `batching`, `device` and `metrics` are small helpers any room may use.

pub mod batching;
pub mod bench;
pub mod device;
pub mod explain;
pub mod infer;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod train;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model not found: {0}")]
    ModelNotFound(String),
    #[error("unusable model: {0}")]
    BadModel(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("device: {0}")]
    Device(String),
    #[error("training data: {0}")]
    Data(String),
    /// The caller's cancel flag was set: not a failure to report as one.
    #[error("cancelled")]
    Cancelled,
    #[error(
        "the loss became {loss} at step {step}: training diverged; lower the learning rate (--lr) or check the data"
    )]
    NonFiniteLoss { step: usize, loss: f32 },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

impl EngineError {
    pub fn io(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.into(),
            message: err.to_string(),
        }
    }
}
