//! Parity with Hugging Face `transformers`: a small checkpoint in tweetlab's export layout
//! (tests/fixtures/tiny-classifier) and the probabilities that
//! `AutoModelForSequenceClassification.from_pretrained` computed for it (tests/hf_parity.py,
//! run once with torch; CI needs no torch). tweetlab must reproduce them within 1e-4.

mod common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use tweetlab::engine::infer;
use tweetlab::engine::model::bert::BertConfig;
use tweetlab::engine::model::checkpoint::{classification_config, write_model_files};
use tweetlab::engine::model::classifier::{BertClassifier, Pooling};
use tweetlab::engine::model::source::inspect_dir;
use tweetlab::engine::model::tokenize::train_wordpiece;
use tweetlab::engine::model::LoadedModel;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-classifier")
}

/// Regenerates the checkpoint (run with `--ignored`, then tests/hf_parity.py).
#[test]
#[ignore]
fn write_tiny_fixture() {
    let (texts, _) = common::sample_rows();
    let tokenizer = train_wordpiece(texts.iter(), 800).unwrap();
    let mut config = common::tiny_config_json(tokenizer.vocab_size());
    // Wide weights so that probabilities spread well away from 0.5.
    config["initializer_range"] = serde_json::json!(0.3);
    let bert = BertConfig::from_json(&config, "tiny").unwrap();
    let net = BertClassifier::random(&bert, Pooling::Cls, &Device::Cpu, 5).unwrap();
    let dir = fixture();
    write_model_files(
        &dir,
        &net.named_tensors(),
        &tokenizer,
        &classification_config(&config),
    )
    .unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"tokenizer_class": "BertTokenizer", "do_lower_case": true, "model_max_length": 128}"#,
    )
    .unwrap();
}

#[test]
fn tiny_checkpoint_matches_transformers() {
    let dir = fixture();
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("transformers_probs.json")).unwrap(),
    )
    .unwrap();
    let texts: Vec<String> = expected["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let want: Vec<f64> = expected["p_disaster"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect();
    let files = inspect_dir(&dir, "fixture").unwrap();
    let model = LoadedModel::load(&files, &Device::Cpu, None, 0).unwrap();
    assert!(model.head_is_trained());
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let got = infer::probabilities(&model, &refs, 128, 4, &mut |_, _| {}).unwrap();
    let spread = want.iter().cloned().fold(f64::MIN, f64::max)
        - want.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        spread > 0.1,
        "fixture probabilities too uniform to test anything: {want:?}"
    );
    for ((g, w), t) in got.iter().zip(&want).zip(&texts) {
        assert!(
            (*g as f64 - w).abs() < 1e-4,
            "{t:?}: tweetlab {g}, transformers {w}"
        );
    }
}
