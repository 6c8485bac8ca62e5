//! Parity with Hugging Face `transformers`: a small checkpoint in tweetlab's export layout
//! (tests/fixtures/tiny-classifier) and the probabilities that
//! `AutoModelForSequenceClassification.from_pretrained` computed for it (tests/hf_parity.py,
//! run once with torch; CI needs no torch). tweetlab must reproduce them within 1e-4.

mod common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use tweetlab::engine::infer;
use tweetlab::engine::model::checkpoint::{classification_config, write_model_files};
use tweetlab::engine::model::classifier::{Classifier, Pooling};
use tweetlab::engine::model::config::EncoderConfig;
use tweetlab::engine::model::config::Family;
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
        let bert = EncoderConfig::from_json(&config, "tiny").unwrap();
        let net = Classifier::random(&bert, Pooling::Cls, classes, &Device::Cpu, 5).unwrap();
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
    let model = matches_transformers_in(&fixture(classes));
    assert_eq!(model.labels, class_names(classes));
}

/// Loads the checkpoint in `dir` and checks tweetlab's token ids (when the fixture has them)
/// and probabilities against transformers' in `dir/transformers_probs.json`.
fn matches_transformers_in(dir: &Path) -> LoadedModel {
    common::fp32_dense_layers();
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
    let max_len = expected["max_len"].as_u64().map_or(128, |m| m as usize);
    let files = inspect_dir(dir, "fixture").unwrap();
    let model = LoadedModel::load(&files, &Device::Cpu, None, 0).unwrap();
    assert!(model.head_is_trained());
    // The names transformers read from config.json are the ones tweetlab wrote and reads.
    let hf_labels: Vec<String> = expected["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(hf_labels, model.labels);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    if let Some(ids) = expected["input_ids"].as_array() {
        let ours = model.tokenizer.encode_all(&refs, max_len).unwrap();
        for ((theirs, ours), text) in ids.iter().zip(&ours).zip(&texts) {
            let theirs: Vec<u32> = theirs
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(ours.ids, theirs, "token ids of {text:?}");
        }
    }
    let got = infer::probabilities(&model, &refs, max_len, 4, &mut |_, _| {}).unwrap();
    let classes = model.labels.len();
    let column = |c: usize| want.iter().map(move |row| row[c]);
    let spread = column(0).fold(f64::MIN, f64::max) - column(0).fold(f64::MAX, f64::min);
    assert!(
        spread > 0.1,
        "fixture probabilities too uniform to test anything: {want:?}"
    );
    assert_eq!(got.len(), want.len());
    for ((g, w), t) in got.iter().zip(&want).zip(&texts) {
        assert_eq!(g.len(), classes);
        for (gc, wc) in g.iter().zip(w) {
            assert!(
                (*gc as f64 - wc).abs() < 1e-4,
                "{t:?}: tweetlab {g:?}, transformers {w:?}"
            );
        }
    }
    model
}

fn family_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Checkpoints made by transformers itself (tests/make_family_fixtures.py): RoBERTa with a
/// byte-level BPE, XLM-RoBERTa with a Unigram tokenizer and three classes, DistilBERT, MPNet
/// (relative position bias, WordPiece with `<s>`).
#[test]
fn roberta_xlm_roberta_distilbert_and_mpnet_checkpoints_match_transformers() {
    for (name, family, labels) in [
        ("tiny-roberta", Family::Roberta, 2),
        ("tiny-xlm-roberta", Family::Roberta, 3),
        ("tiny-distilbert", Family::DistilBert, 2),
        ("tiny-mpnet", Family::Mpnet, 2),
    ] {
        let model = matches_transformers_in(&family_fixture(name));
        assert_eq!(model.net.encoder.config.family, family, "{name}");
        assert_eq!(model.labels.len(), labels, "{name}");
        assert!(model.head_is_trained(), "{name}");
    }
}

/// Older RoBERTa checkpoints ship `vocab.json` and `merges.txt` instead of tokenizer.json:
/// the same ids and probabilities from those.
#[test]
fn a_roberta_without_tokenizer_json_reads_vocab_and_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("roberta");
    std::fs::create_dir(&dir).unwrap();
    let src = family_fixture("tiny-roberta");
    for f in [
        "config.json",
        "model.safetensors",
        "transformers_probs.json",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let tokenizer: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("tokenizer.json")).unwrap())
            .unwrap();
    std::fs::write(
        dir.join("vocab.json"),
        tokenizer["model"]["vocab"].to_string(),
    )
    .unwrap();
    let merges: Vec<String> = tokenizer["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            serde_json::Value::Array(pair) => format!(
                "{} {}",
                pair[0].as_str().unwrap(),
                pair[1].as_str().unwrap()
            ),
            other => other.as_str().unwrap().to_string(),
        })
        .collect();
    std::fs::write(
        dir.join("merges.txt"),
        format!("#version: 0.2\n{}\n", merges.join("\n")),
    )
    .unwrap();
    matches_transformers_in(&dir);
}

/// A fine-tuned model saves under the names, class and config its family's
/// `*ForSequenceClassification` loads, and reads back to the same probabilities.
#[test]
fn each_family_saves_in_its_own_transformers_layout() {
    for name in [
        "tiny-roberta",
        "tiny-xlm-roberta",
        "tiny-distilbert",
        "tiny-mpnet",
    ] {
        let src = family_fixture(name);
        let model =
            LoadedModel::load(&inspect_dir(&src, name).unwrap(), &Device::Cpu, None, 0).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join(name);
        tweetlab::engine::model::checkpoint::save(&out, &model).unwrap();
        let read = |dir: &Path| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap()
        };
        assert_eq!(
            read(&out)["architectures"],
            read(&src)["architectures"],
            "{name}"
        );
        let names = |dir: &Path| -> std::collections::BTreeSet<String> {
            tweetlab::engine::model::read_weights(&dir.join("model.safetensors"))
                .unwrap()
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        assert_eq!(names(&out), names(&src), "{name}");
        std::fs::copy(
            src.join("transformers_probs.json"),
            out.join("transformers_probs.json"),
        )
        .unwrap();
        matches_transformers_in(&out);
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

/// MPNet's relative position buckets equal transformers' for every key - query distance of
/// inputs of 1 to 512 tokens (the fixture holds them for -511..=511).
#[test]
fn mpnet_relative_buckets_match_transformers() {
    let probs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(family_fixture("tiny-mpnet").join("transformers_probs.json"))
            .unwrap(),
    )
    .unwrap();
    let from = probs["relative_buckets"]["from"].as_i64().unwrap();
    let expected: Vec<usize> = probs["relative_buckets"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(expected.len(), 1023);
    for (i, want) in expected.iter().enumerate() {
        let relative = from + i as i64;
        assert_eq!(
            tweetlab::engine::model::encoder::relative_position_bucket(relative, 32),
            *want,
            "key - query = {relative}"
        );
    }
}
