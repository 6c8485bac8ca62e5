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

/// The two-class fixture (tweetlab's 0/1 names) and a four-class one with named classes.
fn fixture(classes: usize) -> PathBuf {
    let name = match classes {
        2 => "tiny-classifier".to_string(),
        k => format!("tiny-classifier-{k}"),
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn class_names(classes: usize) -> Vec<String> {
    match classes {
        2 => tweetlab::data::LabelSet::default().names(),
        _ => ["urgent", "informative", "not informative", "off topic"][..classes]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

/// Regenerates the checkpoints (run with `--ignored`, then tests/hf_parity.py on each).
#[test]
#[ignore]
fn write_tiny_fixtures() {
    for classes in [2, 4] {
        let (texts, _) = common::sample_rows();
        let tokenizer = train_wordpiece(texts.iter(), 800).unwrap();
        let mut config = common::tiny_config_json(tokenizer.vocab_size());
        // Wide weights so that probabilities spread well away from uniform.
        config["initializer_range"] = serde_json::json!(0.3);
        let bert = BertConfig::from_json(&config, "tiny").unwrap();
        let net = BertClassifier::random(&bert, Pooling::Cls, classes, &Device::Cpu, 5).unwrap();
        let dir = fixture(classes);
        write_model_files(
            &dir,
            &net.named_tensors(),
            &tokenizer,
            &classification_config(&config, &class_names(classes)),
        )
        .unwrap();
        std::fs::write(
            dir.join("tokenizer_config.json"),
            r#"{"tokenizer_class": "BertTokenizer", "do_lower_case": true, "model_max_length": 128}"#,
        )
        .unwrap();
    }
}

fn matches_transformers(classes: usize) {
    let dir = fixture(classes);
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
    let want: Vec<Vec<f64>> = expected["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap())
                .collect()
        })
        .collect();
    let files = inspect_dir(&dir, "fixture").unwrap();
    let model = LoadedModel::load(&files, &Device::Cpu, None, 0).unwrap();
    assert!(model.head_is_trained());
    // The names transformers read from config.json are the ones tweetlab wrote and reads.
    let hf_labels: Vec<String> = expected["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(model.labels, class_names(classes));
    assert_eq!(hf_labels, model.labels);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let got = infer::probabilities(&model, &refs, 128, 4, &mut |_, _| {}).unwrap();
    let column = |c: usize| want.iter().map(move |row| row[c]);
    let spread = column(0).fold(f64::MIN, f64::max) - column(0).fold(f64::MAX, f64::min);
    assert!(
        spread > 0.1,
        "fixture probabilities too uniform to test anything: {want:?}"
    );
    for ((g, w), t) in got.iter().zip(&want).zip(&texts) {
        assert_eq!(g.len(), classes);
        for (gc, wc) in g.iter().zip(w) {
            assert!(
                (*gc as f64 - wc).abs() < 1e-4,
                "{t:?}: tweetlab {g:?}, transformers {w:?}"
            );
        }
    }
}

#[test]
fn two_class_checkpoint_matches_transformers() {
    matches_transformers(2);
}

#[test]
fn four_class_checkpoint_matches_transformers() {
    matches_transformers(4);
}
