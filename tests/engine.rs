//! Engine behaviour on a tiny random BERT: training really trains every layer, runs are
//! reproducible and cancellable, checkpoints round-trip, bad models fail clearly.

mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tweetlab::engine::infer;
use tweetlab::engine::kernels::{kernels, with_kernels, Kernels};
use tweetlab::engine::model::source::{inspect_dir, resolve};
use tweetlab::engine::model::tokenize::{Batch, Encoded};
use tweetlab::engine::model::LoadedModel;
use tweetlab::engine::train::{
    self, train_step, Distillation, EpochRecord, Optimisers, RunRecord, StepRecord, Targets,
    TrainConfig, TrainEvent, TrainJob,
};
use tweetlab::engine::EngineError;

use common::*;

fn load(dir: &std::path::Path) -> LoadedModel {
    let files = inspect_dir(dir, "test").unwrap();
    LoadedModel::load(&files, &Device::Cpu, None, 3).unwrap()
}

fn batch_of(model: &LoadedModel, texts: &[String], labels: &[u8]) -> (Batch, Tensor) {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let enc = model.tokenizer.encode_all(&refs, 48).unwrap();
    let items: Vec<&Encoded> = enc.iter().collect();
    let b = Batch::from_encoded(&items, model.tokenizer.pad_id, None, &Device::Cpu).unwrap();
    let y: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    (b, Tensor::new(y.as_slice(), &Device::Cpu).unwrap())
}

fn run_job(job: TrainJob) -> Vec<TrainEvent> {
    let handle = train::spawn(job);
    let events: Vec<TrainEvent> = handle.events.iter().collect();
    handle.join();
    events
}

/// Fine-tunes the tiny model on all sample rows (no validation) into `out` and loads the result.
fn train_tiny_into(dir: &std::path::Path, out: &std::path::Path, epochs: usize) -> LoadedModel {
    let (texts, labels) = sample_rows();
    let events = run_job(TrainJob {
        model: Some(dir.to_string_lossy().to_string()),
        texts,
        labels,
        classes: binary_classes(),
        out_dir: out.to_path_buf(),
        config: train::TrainConfig {
            epochs,
            val_split: 0.0,
            ..tiny_train_config()
        },
        distil: None,
    });
    assert!(
        matches!(events.last(), Some(TrainEvent::Finished { .. })),
        "{:?}",
        events.last()
    );
    load(out)
}

#[test]
fn one_step_gives_every_parameter_a_gradient_and_changes_it() {
    // Both implementations: the fused CPU kernels (the default) and the composed reference.
    for kernels in [Kernels::Fused, Kernels::Plain] {
        with_kernels(kernels, one_step_changes_every_parameter);
    }
}

fn one_step_changes_every_parameter() {
    let (_tmp, dir) = tiny_model();
    one_step_changes_every_parameter_of(&dir, 2 * 16 + 5 + 4);
    // Every family tweetlab reads: checkpoints made by transformers (tests/fixtures).
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (name, tensors) in [
        ("tiny-roberta", 2 * 16 + 5 + 4),
        ("tiny-xlm-roberta", 2 * 16 + 5 + 4),
        ("tiny-distilbert", 2 * 16 + 4 + 4),
        // MPNet: no token types, one relative position bias table for every layer.
        ("tiny-mpnet", 2 * 16 + 4 + 1 + 4),
    ] {
        one_step_changes_every_parameter_of(&fixtures.join(name), tensors);
    }
}

/// One training step on `dir`'s model (with at least `tensors` weights) changes every one.
fn one_step_changes_every_parameter_of(dir: &std::path::Path, tensors: usize) {
    let model = load(dir);
    let (texts, labels) = sample_rows();
    let (b, y) = batch_of(&model, &texts[..16], &labels[..16]);
    let before: HashMap<String, Vec<f32>> = model
        .net
        .vars
        .iter()
        .map(|(n, v)| {
            (
                n.clone(),
                v.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
            )
        })
        .collect();
    // Without weight decay a parameter can only change through its gradient.
    let mut opt = Optimisers::new(&model.net.vars, 1e-3, 0.0).unwrap();
    assert_eq!(opt.implementation(), kernels().name());
    train_step(
        &model,
        &mut opt,
        &b,
        &Targets::Labels(y.clone()),
        &mut StdRng::seed_from_u64(0),
        1.0,
        1,
    )
    .unwrap();
    let mut unchanged = Vec::new();
    for (name, var) in &model.net.vars {
        let after: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        if after == before[name] {
            unchanged.push(name.clone());
        }
    }
    assert!(
        model.net.vars.len() >= tensors,
        "{}: {} parameters",
        dir.display(),
        model.net.vars.len()
    );
    assert!(
        unchanged.is_empty(),
        "{}: not updated by one step with {} kernels: {unchanged:?}",
        dir.display(),
        kernels().name()
    );
}

#[test]
fn training_lowers_the_loss_and_events_arrive_in_order() {
    let (tmp, dir) = tiny_model();
    let (texts, labels) = sample_rows();
    let out = tmp.path().join("out");
    let config = tiny_train_config();
    let events = run_job(TrainJob {
        model: Some(dir.to_string_lossy().to_string()),
        texts,
        labels,
        classes: binary_classes(),
        out_dir: out.clone(),
        config: config.clone(),
        distil: None,
    });
    let first_non_status = events
        .iter()
        .position(|e| !matches!(e, TrainEvent::Status { .. }))
        .unwrap();
    let TrainEvent::Started {
        total_steps,
        steps_per_epoch,
        train_rows,
        val_rows,
        ..
    } = events[first_non_status].clone()
    else {
        panic!(
            "expected Started after the status lines, got {:?}",
            events[first_non_status]
        );
    };
    assert_eq!(train_rows + val_rows, 203);
    assert_eq!(total_steps, steps_per_epoch * config.epochs);
    let steps: Vec<(usize, f32)> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step(s) => Some((s.step, s.loss)),
            _ => None,
        })
        .collect();
    assert_eq!(
        steps.iter().map(|s| s.0).collect::<Vec<_>>(),
        (1..=total_steps).collect::<Vec<_>>()
    );
    let epochs: Vec<(usize, f64)> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Epoch(e) => {
                assert!(e.val.is_some());
                Some((e.epoch, e.train_loss))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        epochs.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(
        epochs[2].1 < epochs[0].1,
        "train loss per epoch: {epochs:?}"
    );
    assert!(
        matches!(events.last(), Some(TrainEvent::Finished { .. })),
        "last event {:?}",
        events.last()
    );
    // Each Step of epoch e comes before Epoch e.
    let epoch1_at = events
        .iter()
        .position(|e| matches!(e, TrainEvent::Epoch(r) if r.epoch == 1))
        .unwrap();
    let step_after = events[..epoch1_at]
        .iter()
        .filter(|e| matches!(e, TrainEvent::Step(_)))
        .count();
    assert_eq!(step_after, steps_per_epoch);
    assert!(out.join("model.safetensors").is_file() && out.join("tweetlab_run.json").is_file());
}

#[test]
fn same_seed_gives_the_same_run() {
    let (tmp, dir) = tiny_model();
    let (texts, labels) = sample_rows();
    let losses = |name: &str| -> Vec<f32> {
        run_job(TrainJob {
            model: Some(dir.to_string_lossy().to_string()),
            texts: texts.clone(),
            labels: labels.clone(),
            classes: binary_classes(),
            out_dir: tmp.path().join(name),
            config: train::TrainConfig {
                epochs: 1,
                ..tiny_train_config()
            },
            distil: None,
        })
        .into_iter()
        .filter_map(|e| match e {
            TrainEvent::Step(s) => Some(s.loss),
            _ => None,
        })
        .collect()
    };
    let a = losses("a");
    assert!(!a.is_empty());
    assert_eq!(a, losses("b"));
}

#[test]
fn checkpoint_round_trip_gives_identical_logits() {
    let (tmp, dir) = tiny_model();
    let (texts, _) = sample_rows();
    let out = tmp.path().join("ckpt");
    let a = train_tiny_into(&dir, &out, 1);
    let refs: Vec<&str> = texts.iter().take(40).map(String::as_str).collect();
    assert!(a.head_is_trained());
    assert!(a.trained.is_some());
    let la = infer::logits(&a, &refs, 48, 16, &mut |_, _| {}, None).unwrap();
    // Saving the loaded model and loading that copy gives the same numbers, whatever the batching.
    let copy = tmp.path().join("copy");
    tweetlab::engine::model::checkpoint::save(&copy, &a).unwrap();
    RunRecord::read(&out)
        .unwrap()
        .unwrap()
        .write(&copy)
        .unwrap();
    let b = load(&copy);
    let lb = infer::logits(&b, &refs, 48, 7, &mut |_, _| {}, None).unwrap();
    let max_diff = la
        .iter()
        .zip(&lb)
        .flat_map(|(x, y)| [(x[0] - y[0]).abs(), (x[1] - y[1]).abs()])
        .fold(0f32, f32::max);
    assert!(max_diff < 1e-5, "logits differ by {max_diff}");
    // The checkpoint's config is what transformers needs.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    assert_eq!(config["id2label"]["1"], "disaster");
    let names =
        candle_core::safetensors::load(out.join("model.safetensors"), &Device::Cpu).unwrap();
    assert!(
        names.contains_key("classifier.weight") && names.contains_key("bert.pooler.dense.weight")
    );
    assert!(names
        .keys()
        .all(|n| n.starts_with("bert.") || n.starts_with("classifier.")));
}

#[test]
fn cancel_stops_the_run_within_a_step() {
    let (tmp, dir) = tiny_model();
    let (texts, labels) = sample_rows();
    let handle = train::spawn(TrainJob {
        model: Some(dir.to_string_lossy().to_string()),
        texts,
        labels,
        classes: binary_classes(),
        out_dir: tmp.path().join("never"),
        config: train::TrainConfig {
            epochs: 1000,
            ..tiny_train_config()
        },
        distil: None,
    });
    let mut steps_after_cancel = 0;
    // Events already queued when we cancel were produced before the cancel.
    let mut queued_at_cancel = None;
    let mut last = None;
    for e in handle.events.iter() {
        if let TrainEvent::Step(StepRecord { step, .. }) = e {
            if queued_at_cancel.is_some() {
                steps_after_cancel += 1;
            } else if step == 3 {
                handle.cancel();
                queued_at_cancel = Some(handle.events.len());
            }
        }
        last = Some(e);
    }
    let steps_after_cancel = steps_after_cancel - queued_at_cancel.unwrap().min(steps_after_cancel);
    handle.join();
    assert!(
        matches!(last, Some(TrainEvent::Cancelled { .. })),
        "last event {last:?}"
    );
    assert!(
        steps_after_cancel <= 1,
        "{steps_after_cancel} steps after cancel"
    );
}

#[test]
fn a_diverged_loss_stops_with_a_clear_error() {
    let (_tmp, dir) = tiny_model();
    let model = load(&dir);
    let (texts, labels) = sample_rows();
    let (b, y) = batch_of(&model, &texts[..8], &labels[..8]);
    let w = &model.net.vars["classifier.weight"];
    w.set(&(w.as_tensor().ones_like().unwrap() * f64::NAN).unwrap())
        .unwrap();
    let mut opt = Optimisers::new(&model.net.vars, 1e-3, 0.0).unwrap();
    let err = train_step(
        &model,
        &mut opt,
        &b,
        &Targets::Labels(y.clone()),
        &mut StdRng::seed_from_u64(0),
        1.0,
        5,
    )
    .unwrap_err();
    assert!(
        matches!(err, EngineError::NonFiniteLoss { step: 5, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("lower the learning rate"), "{err}");
}

#[test]
fn bad_model_directories_say_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let e = resolve(Some(missing.to_str().unwrap()), &|_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a directory"), "{e}");

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = inspect_dir(&empty, "empty").unwrap_err().to_string();
    assert!(
        e.contains("config.json") && e.contains("model.safetensors"),
        "{e}"
    );

    let (_t, dir) = tiny_model();
    std::fs::write(dir.join("config.json"), "{\"hidden_size\": 32}").unwrap();
    let files = inspect_dir(&dir, "broken").unwrap();
    let e = LoadedModel::load(&files, &Device::Cpu, None, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("config.json has vocab_size"), "{e}");

    // Weights that lack an encoder tensor name it.
    let (_t2, dir2) = tiny_model();
    let path = dir2.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    tensors.remove("bert.encoder.layer.1.output.dense.weight");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let files = inspect_dir(&dir2, "partial").unwrap();
    let e = LoadedModel::load(&files, &Device::Cpu, None, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("bert.encoder.layer.1.output.dense.weight"),
        "{e}"
    );

    // An unknown Hub id offline lists what was tried.
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let e = resolve(Some("nobody/no-such-model-xyz"), &|_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("Tried") && e.contains("--model DIR"), "{e}");
}

#[test]
fn explanation_ranks_disaster_words_above_stop_words() {
    let (tmp, dir) = tiny_model();
    let model = train_tiny_into(&dir, &tmp.path().join("explainer"), 12);
    let text = "The wildfire forced an evacuation of the town and the flood is rising";
    let e = tweetlab::engine::explain::explain(&model, text, 48, None).unwrap();
    assert_eq!(e.class, 1, "p = {:?}", e.probabilities);
    // Words map back to the original text.
    for w in &e.words {
        assert_eq!(&text[w.start..w.end], w.word);
    }
    let score = |words: &[&str]| -> f32 {
        let s: Vec<f32> = e
            .words
            .iter()
            .filter(|w| words.contains(&w.word.as_str()))
            .map(|w| w.score)
            .collect();
        assert_eq!(s.len(), words.len(), "missing words in {:?}", e.words);
        s.iter().sum::<f32>() / s.len() as f32
    };
    let disaster = score(&["wildfire", "evacuation", "flood"]);
    let stop = score(&["of", "and", "is"]);
    assert!(
        disaster > stop + 0.1,
        "disaster words {disaster} vs stop words {stop}: {:?}",
        e.words
    );
}

/// One record from the loop to the workspace: the steps and epochs a run reports read back
/// equal from the workspace (`RunLog`, as the window redraws past runs) and from the run file.
#[test]
fn a_run_record_reads_back_equal_through_the_workspace_and_the_run_file() {
    use tweetlab::data::store::{RunStatus, Workspace};
    use tweetlab::engine::train::record::{recorded_runs, RunRecorder, RunSettings};
    let (tmp, dir) = tiny_model();
    let out = tmp.path().join("run");
    let config = TrainConfig {
        epochs: 2,
        ..tiny_train_config()
    };
    let (texts, labels) = sample_rows();
    let events = run_job(TrainJob {
        model: Some(dir.display().to_string()),
        texts,
        labels,
        classes: binary_classes(),
        out_dir: out.clone(),
        config: config.clone(),
        distil: None,
    });
    let data = tweetlab::data::load_csv(&sample_train_csv()).unwrap();
    let db = tmp.path().join("ws.sqlite");
    let ws = Workspace::create(&db, &sample_train_csv(), &data).unwrap();
    let settings = RunSettings {
        model: dir.display().to_string(),
        out_dir: out.clone(),
        config,
        labelled_rows: 203,
    };
    let mut recorder = RunRecorder::start(&db, &settings).unwrap();
    for e in &events {
        recorder.record(e).unwrap();
    }
    let steps: Vec<StepRecord> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step(s) => Some(*s),
            _ => None,
        })
        .collect();
    let epochs: Vec<EpochRecord> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Epoch(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(epochs.len(), 2);
    assert!(epochs.iter().all(|e| e.val.is_some()));

    let runs = recorded_runs(&ws.run_log().unwrap()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Finished);
    assert_eq!(runs[0].settings.as_ref(), Some(&settings));
    assert_eq!(runs[0].steps, steps);
    assert_eq!(runs[0].epochs, epochs);
    assert_eq!(runs[0].model_dir(), Some(out.as_path()));
    assert_eq!(RunRecord::read(&out).unwrap().unwrap().epochs, epochs);
}

/// A crafted config.json (an initialiser range that overflows f32, an absurd layer count) is
/// refused with the field's name; a training run on it ends with `Failed`, never a dead thread.
#[test]
fn crafted_configs_are_refused_and_runs_on_them_fail_cleanly() {
    for (field, value) in [
        ("initializer_range", serde_json::json!(1e39)),
        ("num_hidden_layers", serde_json::json!(1_000_000_000u64)),
    ] {
        let (tmp, dir) = tiny_model();
        let path = dir.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config[field] = value;
        std::fs::write(&path, config.to_string()).unwrap();
        let files = inspect_dir(&dir, "crafted").unwrap();
        let err = LoadedModel::load(&files, &Device::Cpu, None, 0)
            .err()
            .expect("a crafted config is refused");
        assert!(err.to_string().contains(field), "{err}");
        let (texts, labels) = sample_rows();
        let events = run_job(TrainJob {
            model: Some(dir.display().to_string()),
            texts,
            labels,
            classes: binary_classes(),
            out_dir: tmp.path().join("out"),
            config: tiny_train_config(),
            distil: None,
        });
        match events.last() {
            Some(TrainEvent::Failed { message }) => assert!(message.contains(field), "{message}"),
            other => panic!("the run ended with {other:?}"),
        }
    }
}

/// Settings that cannot train are refused before any work: a max length with no room for text,
/// and labels of one class only.
#[test]
fn runs_that_cannot_learn_are_refused_with_a_reason() {
    let (tmp, dir) = tiny_model();
    let (texts, labels) = sample_rows();
    let job = |texts: Vec<String>, labels: Vec<u8>, max_len| TrainJob {
        model: Some(dir.display().to_string()),
        texts,
        labels,
        classes: binary_classes(),
        out_dir: tmp.path().join("out"),
        config: TrainConfig {
            max_len,
            ..tiny_train_config()
        },
        distil: None,
    };
    let failure = |events: Vec<TrainEvent>| match events.last() {
        Some(TrainEvent::Failed { message }) => message.clone(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let m = failure(run_job(job(texts.clone(), labels.clone(), 1)));
    assert!(m.contains("max length 1"), "{m}");
    let ones = vec![1u8; texts.len()];
    let m = failure(run_job(job(texts, ones, 48)));
    assert!(m.contains("every labelled row is `disaster`"), "{m}");
    assert!(
        !tmp.path().join("out").exists(),
        "nothing trained, nothing written"
    );
}

/// The default 0/1 classes, as a file of 0/1 labels has them.
fn binary_classes() -> Vec<String> {
    tweetlab::data::LabelSet::default().names()
}

#[test]
fn a_cancelled_prediction_says_so_by_type() {
    let (_tmp, dir) = tiny_model();
    let model = load(&dir);
    let (texts, _) = sample_rows();
    let refs: Vec<&str> = texts.iter().take(8).map(String::as_str).collect();
    let cancel = std::sync::atomic::AtomicBool::new(true);
    let got = infer::logits(&model, &refs, 48, 4, &mut |_, _| {}, Some(&cancel));
    assert!(matches!(got, Err(EngineError::Cancelled)), "{got:?}");
}

/// Predicted classes of `model` for `texts`.
fn predicted(model: &LoadedModel, texts: &[String]) -> Vec<u8> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    infer::probabilities(model, &refs, 48, 32, &mut |_, _| {})
        .unwrap()
        .iter()
        .map(|p| infer::top_class(p))
        .collect()
}

#[test]
fn a_student_follows_the_teacher_as_far_as_it_is_told_to() {
    let (tmp, dir) = tiny_model();
    let teacher_dir = tmp.path().join("teacher");
    let teacher = train_tiny_into(&dir, &teacher_dir, 15);
    let (texts, labels) = sample_rows();
    let teacher_says = predicted(&teacher, &texts);
    // Half the rows with their labels flipped, the other half without labels.
    let half = texts.len() / 2;
    let flipped: Vec<u8> = labels[..half].iter().map(|l| 1 - l).collect();
    let student = |teacher_weight: f64, out: &str| {
        let out = tmp.path().join(out);
        let events = run_job(TrainJob {
            model: Some(dir.to_string_lossy().to_string()),
            texts: texts[..half].to_vec(),
            labels: flipped.clone(),
            classes: binary_classes(),
            out_dir: out.clone(),
            config: train::TrainConfig {
                epochs: 15,
                val_split: 0.0,
                ..tiny_train_config()
            },
            distil: Some(Distillation {
                teacher_weight,
                unlabelled: texts[half..].to_vec(),
                ..Distillation::new(teacher_dir.clone())
            }),
        });
        let started = events.iter().find_map(|e| match e {
            TrainEvent::Started { train_rows, .. } => Some(*train_rows),
            _ => None,
        });
        assert_eq!(
            started,
            Some(texts.len()),
            "labelled and unlabelled rows train"
        );
        let estimates = events
            .iter()
            .filter(|e| matches!(e, TrainEvent::Estimate { seconds_per_epoch, .. } if *seconds_per_epoch > 0.0))
            .count();
        assert_eq!(estimates, 1, "one epoch estimate, from the first steps");
        assert!(
            matches!(events.last(), Some(TrainEvent::Finished { .. })),
            "{:?}",
            events.last()
        );
        let record = RunRecord::read(&out).unwrap().unwrap();
        let distilled = record.distilled.expect("the record says it was distilled");
        assert_eq!(distilled.unlabelled_rows, texts.len() - half);
        assert_eq!(distilled.teacher_weight, teacher_weight);
        let says = predicted(&load(&out), &texts[..half]);
        says.iter()
            .zip(&teacher_says[..half])
            .filter(|(a, b)| a == b)
            .count() as f64
            / half as f64
    };
    let teacher_accuracy = teacher_says[..half]
        .iter()
        .zip(&labels[..half])
        .filter(|(p, l)| p == l)
        .count() as f64
        / half as f64;
    assert!(
        teacher_accuracy > 0.8,
        "the teacher learnt: {teacher_accuracy}"
    );
    let listening = student(1.0, "listens");
    let not_listening = student(0.0, "labels-only");
    assert!(
        listening > 0.8 && not_listening < 0.5,
        "on the flipped rows the student agrees with the teacher {listening:.2} of the time when the teacher is all it hears, {not_listening:.2} when only labels count"
    );
}

#[test]
fn a_teacher_of_other_classes_is_refused_by_name() {
    let (tmp, dir) = tiny_model();
    let teacher_dir = tmp.path().join("teacher");
    train_tiny_into(&dir, &teacher_dir, 1);
    let (texts, labels) = sample_rows();
    let events = run_job(TrainJob {
        model: Some(dir.to_string_lossy().to_string()),
        texts,
        labels,
        classes: vec!["calm".into(), "alarm".into()],
        out_dir: tmp.path().join("student"),
        config: tiny_train_config(),
        distil: Some(Distillation::new(teacher_dir)),
    });
    match events.last() {
        Some(TrainEvent::Failed { message }) => assert!(
            message.contains("calm, alarm") && message.contains("not_disaster, disaster"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}
