//! Shared test fixtures: a tiny BERT (2 layers, hidden 32) with random weights and a WordPiece
//! vocabulary learnt from the bundled sample data. No download, a few milliseconds per step.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::Device;
use tweetlab::data::load_csv;
use tweetlab::engine::model::checkpoint::write_model_files;
use tweetlab::engine::model::classifier::{Classifier, Pooling};
use tweetlab::engine::model::config::EncoderConfig;
use tweetlab::engine::model::tokenize::train_wordpiece;
use tweetlab::engine::train::TrainConfig;

pub fn sample_train_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/train.csv")
}

/// (texts, labels) of the bundled labelled sample.
pub fn sample_rows() -> (Vec<String>, Vec<u8>) {
    let data = load_csv(&sample_train_csv()).expect("sample data loads");
    data.labelled().map(|(t, l)| (t.text.clone(), l)).unzip()
}

pub fn tiny_config_json(vocab_size: usize) -> serde_json::Value {
    serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 128,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute"
    })
}

/// Writes a "pretrained" tiny model (encoder and pooler, no classifier head) into `dir`.
pub fn write_tiny_model(dir: &Path, seed: u64) {
    let (texts, _) = sample_rows();
    let tokenizer = train_wordpiece(texts.iter(), 800).expect("vocabulary trains");
    let config = tiny_config_json(tokenizer.vocab_size());
    let bert = EncoderConfig::from_json(&config, "tiny").unwrap();
    let net = Classifier::random(&bert, Pooling::Cls, 2, &Device::Cpu, seed).unwrap();
    let tensors: Vec<_> = net
        .named_tensors()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("classifier."))
        .collect();
    write_model_files(dir, &tensors, &tokenizer, &config).unwrap();
}

/// A temp dir holding a tiny pretrained model; keep the guard alive while using the path.
pub fn tiny_model() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    write_tiny_model(&dir, 7);
    (tmp, dir)
}

/// Settings that let the tiny model learn quickly on the sample data.
pub fn tiny_train_config() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        lr: 1e-3,
        batch_size: 16,
        max_len: 48,
        val_split: 0.2,
        seed: 11,
        warmup_ratio: 0.1,
        device: tweetlab::engine::device::DeviceChoice::Cpu,
        ..TrainConfig::default()
    }
}

/// Frames until the window stops asking for them. A background job's events ask for frames too,
/// and a burst of them can outlast kittest's step budget (CI saw six frames where `run` allows
/// four) without the window misbehaving, so a blown budget is retried after a pause; only a window
/// that never settles fails.
pub trait Settle {
    fn settle(&mut self);
}

impl<State> Settle for egui_kittest::Harness<'_, State> {
    #[track_caller]
    fn settle(&mut self) {
        let start = std::time::Instant::now();
        while self.run_ok().is_none() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "the window kept asking for frames for a minute"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Runs this test process's dense layers in f32: checks against transformers' f32 numbers
/// (1e-4) and against the composed ops ask for it on a CPU where `auto` picks bf16; bf16 is held
/// to f32 in `tests/bf16.rs`.
#[allow(dead_code)]
pub fn fp32_dense_layers() {
    tweetlab::engine::kernels::set_precision(tweetlab::engine::kernels::Precision::Fp32);
}

/// Checks `model`'s encoder against what transformers computed (`tests/make_encoder_reference.py`
/// wrote `dir`, each text run alone): the same token ids, and last hidden states within 1e-4 for
/// every real token with the texts padded into one batch (padding must change no text's states).
pub fn assert_matches_encoder_reference(model: &tweetlab::engine::model::LoadedModel, dir: &Path) {
    use tweetlab::engine::kernels::Mode;
    fp32_dense_layers();
    use tweetlab::engine::model::tokenize::{Batch, Encoded};
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let texts: Vec<&str> = reference["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let want_ids: Vec<Vec<u32>> = serde_json::from_value(reference["input_ids"].clone()).unwrap();
    let states =
        candle_core::safetensors::load(dir.join("hidden_states.safetensors"), &Device::Cpu)
            .unwrap();

    let enc = model.tokenizer.encode_all(&texts, 64).unwrap();
    for (i, e) in enc.iter().enumerate() {
        assert_eq!(e.ids, want_ids[i], "token ids of text {i}");
    }
    let items: Vec<&Encoded> = enc.iter().collect();
    let batch = Batch::from_encoded(&items, model.tokenizer.pad_id, None, &Device::Cpu).unwrap();
    assert!(
        batch.input_ids.dim(1).unwrap() > enc[3].len(),
        "the batch must pad the short texts for this test to check padding"
    );
    let ours = model
        .net
        .encoder
        .forward(
            &batch.input_ids,
            &batch.type_ids,
            &batch.attention_mask,
            &mut Mode::Eval,
        )
        .unwrap();
    for (i, e) in enc.iter().enumerate() {
        let theirs = &states[&format!("text.{i}")];
        let mine = ours.get(i).unwrap().narrow(0, 0, e.len()).unwrap();
        assert_eq!(mine.dims(), theirs.dims(), "text {i}");
        let max = (mine - theirs)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            max < 1e-4,
            "text {i}: max difference {max} from transformers"
        );
    }
}
