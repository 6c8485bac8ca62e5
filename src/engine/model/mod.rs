//! The model room: the encoder families and their classification heads (Hugging Face weight
//! names),
//! parameters and their loading, the tokenizer, finding a model (`source`), writing one in the
//! Hugging Face layout (`checkpoint`), and [`LoadedModel`], a classifier ready to use.

pub mod catalog;
pub mod checkpoint;
pub mod classifier;
pub mod config;
pub mod encoder;
pub mod params;
pub mod source;
pub mod tokenize;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::engine::device::{self, DeviceChoice};
use crate::engine::EngineError;
use checkpoint::TrainedWith;
use classifier::{Classifier, Pooling};
use config::{EncoderConfig, Family};
use params::normalise_names;
use source::{ModelFiles, TokenizerFile};
use tokenize::TextTokenizer;

pub struct LoadedModel {
    pub net: Classifier,
    pub tokenizer: TextTokenizer,
    /// The checkpoint's config.json as read, so that saving keeps every field.
    pub raw_config: serde_json::Value,
    pub files: ModelFiles,
    /// Present when the directory is a tweetlab checkpoint.
    pub trained: Option<TrainedWith>,
    /// The class names, in head order (config.json's `id2label` when saved).
    pub labels: Vec<String>,
    pub device: Device,
}

/// Reads every tensor of a `model.safetensors` or `pytorch_model.bin`.
pub fn read_weights(path: &Path) -> Result<Vec<(String, Tensor)>, EngineError> {
    let is_pickle = path.extension().is_some_and(|e| e == "bin");
    if is_pickle {
        check_pickle_sizes(path)?;
    }
    let tensors = if is_pickle {
        candle_core::pickle::read_all(path)
    } else {
        candle_core::safetensors::load(path, &Device::Cpu).map(|m| m.into_iter().collect())
    };
    tensors
        .map_err(|e| EngineError::BadModel(format!("{}: cannot read weights: {e}", path.display())))
}

/// A `pytorch_model.bin` names each tensor's shape in its pickle, and candle's reader
/// allocates that much before reading: a crafted file could ask for terabytes. Every tensor must
/// fit in the file it claims to come from.
fn check_pickle_sizes(path: &Path) -> Result<(), EngineError> {
    let bad = |m: String| EngineError::BadModel(format!("{}: {m}", path.display()));
    let file_len = std::fs::metadata(path)
        .map_err(|e| EngineError::io(path, e))?
        .len();
    let infos = candle_core::pickle::read_pth_tensor_info(path, false, None)
        .map_err(|e| bad(format!("cannot read weights: {e}")))?;
    for t in infos {
        let bytes = t
            .layout
            .dims()
            .iter()
            .try_fold(t.dtype.size_in_bytes(), |acc, &d| acc.checked_mul(d))
            .and_then(|b| b.checked_add(t.layout.start_offset() * t.dtype.size_in_bytes()));
        if bytes.is_none_or(|b| b as u64 > file_len) {
            return Err(bad(format!(
                "tensor {} claims shape {:?} of {:?}, more than the file's {file_len} bytes: refused",
                t.name,
                t.layout.dims(),
                t.dtype
            )));
        }
    }
    Ok(())
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

/// The class names a checkpoint's config.json gives its `rows` head outputs (`id2label`), else
/// `LABEL_i` as `transformers` names them.
fn config_labels(config: &serde_json::Value, rows: usize) -> Vec<String> {
    let id2label = config.get("id2label").and_then(|m| m.as_object());
    (0..rows)
        .map(|i| {
            id2label
                .and_then(|m| m.get(&i.to_string()))
                .and_then(|n| n.as_str())
                .map_or_else(|| format!("LABEL_{i}"), str::to_string)
        })
        .collect()
}

impl LoadedModel {
    /// Loads `files` onto `device` with the checkpoint's own head (a model without one gets a
    /// fresh two-class head). A tweetlab checkpoint's own pooling wins over `pooling`; a head the
    /// weights lack is initialised from `seed`.
    pub fn load(
        files: &ModelFiles,
        device: &Device,
        pooling: Option<Pooling>,
        seed: u64,
    ) -> Result<Self, EngineError> {
        Self::load_for(files, device, pooling, seed, None)
    }

    /// [`Self::load`] for training on `classes`: the checkpoint's head is kept only when it was
    /// trained on the same classes, else a fresh one with one output per class is made.
    pub fn load_for(
        files: &ModelFiles,
        device: &Device,
        pooling: Option<Pooling>,
        seed: u64,
        classes: Option<&[String]>,
    ) -> Result<Self, EngineError> {
        let raw_config = read_json(&files.config)?;
        let config = EncoderConfig::from_json(&raw_config, &files.origin)?;
        let trained = TrainedWith::read(&files.dir)?;
        let pooling = trained
            .as_ref()
            .map(|r| r.pooling)
            .or(pooling)
            .unwrap_or_default();
        if config.family == Family::Roberta {
            if let TokenizerFile::Vocab(vocab) = &files.tokenizer {
                return Err(EngineError::BadModel(format!(
                    "{}: a {} model needs tokenizer.json (or vocab.json and merges.txt); {} alone is a slow tokenizer's file (BERTweet's, with bpe.codes) that tweetlab cannot read. \
                     Convert it where transformers runs: AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR) writes tokenizer.json when a fast tokenizer exists for the model",
                    files.origin,
                    config.model_type,
                    vocab.display()
                )));
            }
        }
        let mut tokenizer = TextTokenizer::load(&files.tokenizer, lowercase(&files.dir))?;
        tokenizer.max_tokens = config.max_tokens();
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(EngineError::BadModel(format!(
                "{}: the tokenizer has {} entries but the model only {} embeddings",
                files.origin,
                tokenizer.vocab_size(),
                config.vocab_size
            )));
        }
        let mut tensors: HashMap<String, Tensor> =
            normalise_names(read_weights(&files.weights)?, config.family);
        let output = config.family.head_output();
        let head_rows = tensors
            .get(&format!("{output}.weight"))
            .map(|w| w.dims()[0]);
        let saved = head_rows.map(|rows| config_labels(&raw_config, rows));
        let labels = match (classes, saved) {
            (Some(wanted), Some(saved)) if wanted == saved.as_slice() => saved,
            (Some(wanted), _) => {
                tensors.retain(|name, _| !name.starts_with(&format!("{output}.")));
                wanted.to_vec()
            }
            (None, Some(saved)) => saved,
            (None, None) => crate::data::labels::BINARY_NAMES.map(String::from).to_vec(),
        };
        if labels.len() < 2 {
            return Err(EngineError::BadModel(format!(
                "{}: a classifier needs two classes or more, this one has {}",
                files.origin,
                labels.len()
            )));
        }
        let net = Classifier::from_tensors(
            tensors,
            &config,
            pooling,
            labels.len(),
            device,
            seed,
            &files.origin,
        )?;
        Ok(Self {
            net,
            tokenizer,
            raw_config,
            files: files.clone(),
            trained,
            labels,
            device: device.clone(),
        })
    }

    /// A fine-tuned model directory (from `tweetlab train` or the window) on the device
    /// `choice` picks; refused when its classification head was never trained.
    pub fn load_finetuned(dir: &Path, choice: DeviceChoice) -> Result<Self, EngineError> {
        let files = source::inspect_dir(dir, &dir.display().to_string())?;
        let model = Self::load(&files, &device::select(choice)?, None, 0)?;
        if !model.head_is_trained() {
            return Err(EngineError::BadModel(format!(
                "{} has no trained classifier head: fine-tune it first with `tweetlab train --model {} ...`",
                dir.display(),
                dir.display()
            )));
        }
        Ok(model)
    }

    /// The longest input the model was trained with, else 128 tokens (or what its positions
    /// cover, if fewer).
    pub fn default_max_len(&self) -> usize {
        self.trained
            .map_or(128, |t| t.max_len)
            .min(self.tokenizer.max_tokens)
    }

    /// Whether the classification head was trained (not freshly initialised).
    pub fn head_is_trained(&self) -> bool {
        let family = self.net.encoder.config.family;
        !self
            .net
            .load_report
            .initialised
            .iter()
            .any(|n| family.may_be_initialised(n))
    }
}
