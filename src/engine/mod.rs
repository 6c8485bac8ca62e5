//! The model side of tweetlab: candle only, no UI. The CLI and the GUI worker call the same
//! functions here.

pub mod adamw;
pub mod batching;
pub mod bench;
pub mod bert;
pub mod checkpoint;
pub mod classifier;
pub mod device;
pub mod embed;
pub mod explain;
pub mod fused;
pub mod infer;
pub mod logreg;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod params;
pub mod quality;
pub mod source;
pub mod tokenize;
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
