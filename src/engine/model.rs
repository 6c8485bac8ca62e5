//! A classifier ready to use: network, tokenizer and the config it came with.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::bert::BertConfig;
use super::checkpoint::RunMetadata;
use super::classifier::{BertClassifier, Pooling};
use super::params::normalise_names;
use super::source::ModelFiles;
use super::tokenize::TextTokenizer;
use super::EngineError;

pub struct LoadedModel {
    pub net: BertClassifier,
    pub tokenizer: TextTokenizer,
    /// The checkpoint's config.json as read, so that saving keeps every field.
    pub raw_config: serde_json::Value,
    pub files: ModelFiles,
    /// Present when the directory is a tweetlab checkpoint.
    pub run: Option<RunMetadata>,
    pub device: Device,
}

/// Reads every tensor of a `model.safetensors` or `pytorch_model.bin`.
pub fn read_weights(path: &Path) -> Result<Vec<(String, Tensor)>, EngineError> {
    let is_pickle = path.extension().is_some_and(|e| e == "bin");
    let tensors = if is_pickle {
        candle_core::pickle::read_all(path)
    } else {
        candle_core::safetensors::load(path, &Device::Cpu).map(|m| m.into_iter().collect())
    };
    tensors
        .map_err(|e| EngineError::BadModel(format!("{}: cannot read weights: {e}", path.display())))
}

fn read_json(path: &Path) -> Result<serde_json::Value, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| EngineError::BadModel(format!("{}: invalid JSON: {e}", path.display())))
}

/// Whether the tokenizer lowercases: tokenizer_config.json's `do_lower_case`, else yes.
fn lowercase(dir: &Path) -> bool {
    read_json(&dir.join("tokenizer_config.json"))
        .ok()
        .and_then(|v| v.get("do_lower_case").and_then(|b| b.as_bool()))
        .unwrap_or(true)
}

impl LoadedModel {
    /// Loads `files` onto `device`. A tweetlab checkpoint's own pooling wins over `pooling`;
    /// a head the weights lack is initialised from `seed`.
    pub fn load(
        files: &ModelFiles,
        device: &Device,
        pooling: Option<Pooling>,
        seed: u64,
    ) -> Result<Self, EngineError> {
        let raw_config = read_json(&files.config)?;
        let config = BertConfig::from_json(&raw_config, &files.origin)?;
        let run = RunMetadata::read(&files.dir)?;
        let pooling = run
            .as_ref()
            .map(|r| r.pooling)
            .or(pooling)
            .unwrap_or_default();
        let tokenizer = TextTokenizer::load(&files.tokenizer, lowercase(&files.dir))?;
        if tokenizer.vocab_size() > config.base.vocab_size {
            return Err(EngineError::BadModel(format!(
                "{}: the tokenizer has {} entries but the model only {} embeddings",
                files.origin,
                tokenizer.vocab_size(),
                config.base.vocab_size
            )));
        }
        let tensors: HashMap<String, Tensor> = normalise_names(read_weights(&files.weights)?);
        let net =
            BertClassifier::from_tensors(tensors, &config, pooling, device, seed, &files.origin)?;
        Ok(Self {
            net,
            tokenizer,
            raw_config,
            files: files.clone(),
            run,
            device: device.clone(),
        })
    }

    /// The longest input the model was trained with, else 128 tokens.
    pub fn default_max_len(&self) -> usize {
        self.run.as_ref().map_or(128, |r| r.config.max_len)
    }

    /// Whether the classification head was trained (not freshly initialised).
    pub fn head_is_trained(&self) -> bool {
        !self
            .net
            .load_report
            .initialised
            .iter()
            .any(|n| n.starts_with("classifier"))
    }
}
