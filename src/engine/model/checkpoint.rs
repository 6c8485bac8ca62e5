//! Saving a fine-tuned model as a directory that Hugging Face `transformers` loads as its
//! family's `*ForSequenceClassification`, and what loading reads of tweetlab's run record.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::data::atomic::write_bytes_atomic;
use crate::engine::model::classifier::Pooling;
use crate::engine::model::config::{EncoderConfig, Family};
use crate::engine::model::tokenize::TextTokenizer;
use crate::engine::model::LoadedModel;
use crate::engine::EngineError;

/// File with tweetlab's record of how a checkpoint was made.
pub const RUN_FILE: &str = "tweetlab_run.json";

/// What loading needs to know of a tweetlab checkpoint: the head's pooling and the input length
/// it was trained with. Read from the run file (`train::record::RunRecord`, a superset), so
/// the model layer does not depend on the training layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainedWith {
    pub pooling: Pooling,
    pub max_len: usize,
}

impl TrainedWith {
    /// Reads `dir/tweetlab_run.json` if there is one.
    pub fn read(dir: &Path) -> Result<Option<Self>, EngineError> {
        #[derive(Deserialize)]
        struct Config {
            max_len: usize,
        }
        #[derive(Deserialize)]
        struct View {
            pooling: Pooling,
            config: Config,
        }
        let path = dir.join(RUN_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| EngineError::io(&path, e))?;
        let view: View = serde_json::from_str(&text)
            .map_err(|e| EngineError::BadModel(format!("{}: {e}", path.display())))?;
        Ok(Some(Self {
            pooling: view.pooling,
            max_len: view.config.max_len,
        }))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::io(path, e)
}

/// The config.json `transformers` needs to build the model's `*ForSequenceClassification`
/// (from its `model_type`) with a head over `labels`, in order.
pub fn classification_config(raw: &serde_json::Value, labels: &[String]) -> serde_json::Value {
    let mut config = raw.clone();
    let architecture = EncoderConfig::from_json(raw, "").map_or_else(
        |_| "BertForSequenceClassification".into(),
        |c| c.architecture(),
    );
    if let Some(obj) = config.as_object_mut() {
        obj.insert("architectures".into(), serde_json::json!([architecture]));
        obj.insert("num_labels".into(), serde_json::json!(labels.len()));
        let id2label: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), serde_json::json!(l)))
            .collect();
        let label2id: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), serde_json::json!(i)))
            .collect();
        obj.insert("id2label".into(), id2label.into());
        obj.insert("label2id".into(), label2id.into());
        obj.insert(
            "problem_type".into(),
            serde_json::json!("single_label_classification"),
        );
        obj.remove("_name_or_path");
    }
    config
}

/// Writes named tensors as safetensors (with the `format: pt` metadata `transformers` expects).
pub fn write_weights(
    path: &Path,
    tensors: &[(String, candle_core::Tensor)],
) -> Result<(), EngineError> {
    let on_cpu: Vec<(String, candle_core::Tensor)> = tensors
        .iter()
        .map(|(n, t)| {
            t.to_device(&candle_core::Device::Cpu)
                .map(|t| (n.clone(), t))
        })
        .collect::<Result<_, _>>()?;
    let metadata: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let bytes = safetensors::serialize(on_cpu.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
        .map_err(|e| EngineError::io(path, e))?;
    write_bytes_atomic(path, &bytes).map_err(io(path))
}

/// Writes config.json, tokenizer.json and model.safetensors: a model directory that
/// `source::inspect_dir` accepts.
pub fn write_model_files(
    dir: &Path,
    tensors: &[(String, candle_core::Tensor)],
    tokenizer: &TextTokenizer,
    config: &serde_json::Value,
) -> Result<(), EngineError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write_weights(&dir.join("model.safetensors"), tensors)?;
    let path = dir.join("config.json");
    write_bytes_atomic(
        &path,
        &serde_json::to_vec_pretty(config).expect("JSON value"),
    )
    .map_err(io(&path))?;
    let path = dir.join("tokenizer.json");
    let json = tokenizer
        .tokenizer()
        .to_string(true)
        .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
    write_bytes_atomic(&path, json.as_bytes()).map_err(io(&path))
}

/// Writes the model's current weights, config and tokenizer files into `dir`, each file
/// atomically. The run record is the training layer's (`train::record::RunRecord::write`).
pub fn save(dir: &Path, model: &LoadedModel) -> Result<(), EngineError> {
    write_model_files(
        dir,
        &model.net.named_tensors(),
        &model.tokenizer,
        &classification_config(&model.raw_config, &model.labels),
    )?;
    // Companion files that transformers' tokenizer loading reads, copied when the source has
    // them (a checkpoint saved into its own source directory already has them).
    for name in [
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
    ] {
        let from = model.files.dir.join(name);
        let to = dir.join(name);
        if from.is_file() && from != to {
            let bytes = std::fs::read(&from).map_err(io(&from))?;
            write_bytes_atomic(&to, &bytes).map_err(io(&to))?;
        }
    }
    let tok_config = dir.join("tokenizer_config.json");
    if !tok_config.is_file() {
        let config = &model.net.encoder.config;
        let mut json = serde_json::json!({
            "tokenizer_class": config.tokenizer_class(),
            "model_max_length": config.max_tokens(),
        });
        if config.family != Family::Roberta {
            json["do_lower_case"] = true.into();
        }
        write_bytes_atomic(
            &tok_config,
            &serde_json::to_vec_pretty(&json).expect("JSON"),
        )
        .map_err(io(&tok_config))?;
    }
    Ok(())
}
