//! Label quality: which labels look wrong, and which unlabelled tweets to label next. Everything
//! here stands on frozen sentence embeddings cached in the workspace (`embeddings`), a logistic
//! regression in plain Rust (`logreg`), out-of-sample probabilities by k-fold cross-validation
//! and confident learning (`confident`), and simulated labelling sessions (`curves`). Shared by
//! the CLI and the window's jobs.

pub mod confident;
pub mod curves;
pub mod embeddings;
pub mod logreg;

use std::path::Path;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::data::Tweet;
use crate::engine::model::LoadedModel;
use confident::LabelIssues;
use logreg::LogReg;

pub use curves::{compare_strategies, learning_curve, CurvePoint, Strategy};
pub use embeddings::{cached_embeddings, embeddings};

/// Suspect labels of a dataset, by the fast mode: frozen embeddings + a logistic regression per
/// fold.
#[derive(Debug, Clone, Serialize)]
pub struct SuspectReport {
    /// Row index (into the dataset) of each labelled row, in the order `issues` refers to.
    pub labelled_rows: Vec<usize>,
    /// Out-of-sample probabilities of every class, per labelled row.
    pub probabilities: Vec<Vec<f32>>,
    pub issues: LabelIssues,
    /// Accuracy of the out-of-sample predictions against the given labels.
    pub accuracy: f64,
}

/// `classes` is the size of the label set.
pub fn suspects(
    rows: &[Tweet],
    embeddings: &[Vec<f32>],
    classes: usize,
    folds: usize,
    seed: u64,
) -> SuspectReport {
    let (labelled_rows, labels) = labelled(rows);
    let features: Vec<Vec<f32>> = labelled_rows
        .iter()
        .map(|&i| embeddings[i].clone())
        .collect();
    let p = confident::cross_val_probs(&features, &labels, classes, folds, seed);
    report(labelled_rows, &labels, p)
}

/// Row indices of the labelled rows, and their labels.
fn labelled(rows: &[Tweet]) -> (Vec<usize>, Vec<u8>) {
    (0..rows.len())
        .filter_map(|i| rows[i].label.map(|l| (i, l)))
        .unzip()
}

fn report(labelled_rows: Vec<usize>, labels: &[u8], p: Vec<Vec<f32>>) -> SuspectReport {
    let correct = labels
        .iter()
        .zip(&p)
        .filter(|(&l, p)| l == crate::engine::infer::top_class(p))
        .count();
    SuspectReport {
        accuracy: correct as f64 / labels.len().max(1) as f64,
        issues: confident::find_label_issues(labels, &p),
        labelled_rows,
        probabilities: p,
    }
}

/// Suspect labels by the full mode: for each of `folds` stratified folds, `model` is fine-tuned
/// (with `config`, no validation split) on the other folds in `work_dir` and predicts this one.
/// `classes` names the label set. Slow (one fine-tuning per fold); `progress(folds_done, folds)`.
pub fn suspects_fine_tuned(
    rows: &[Tweet],
    classes: &[String],
    model: &str,
    config: &crate::engine::train::TrainConfig,
    folds: usize,
    work_dir: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SuspectReport> {
    use crate::engine::train::{self, TrainConfig, TrainJob};
    let (labelled_rows, labels) = labelled(rows);
    let fold_of = confident::stratified_folds(&labels, folds, config.seed);
    let mut p = vec![vec![1.0 / classes.len() as f32; classes.len()]; labels.len()];
    let folds = folds.max(2);
    for f in 0..folds {
        let (fit, held): (Vec<usize>, Vec<usize>) =
            (0..labels.len()).partition(|&i| fold_of[i] != f);
        let out_dir = work_dir.join(format!("fold-{f}"));
        let job = TrainJob {
            model: Some(model.to_string()),
            texts: fit
                .iter()
                .map(|&i| rows[labelled_rows[i]].text.clone())
                .collect(),
            labels: fit.iter().map(|&i| labels[i]).collect(),
            classes: classes.to_vec(),
            out_dir: out_dir.clone(),
            config: TrainConfig {
                val_split: 0.0,
                ..config.clone()
            },
            distil: None,
        };
        // Events are not needed here; the run's outcome is its result.
        let (events, _) = crossbeam_channel::unbounded();
        train::run(&job, &events, &std::sync::atomic::AtomicBool::new(false))?;
        let fine_tuned = LoadedModel::load_finetuned(&out_dir, config.device)?;
        let texts: Vec<&str> = held
            .iter()
            .map(|&i| rows[labelled_rows[i]].text.as_str())
            .collect();
        let held_p = crate::engine::infer::probabilities(
            &fine_tuned,
            &texts,
            fine_tuned.default_max_len(),
            64,
            &mut |_, _| {},
        )?;
        for (&i, q) in held.iter().zip(held_p) {
            p[i] = q;
        }
        progress(f + 1, folds);
    }
    Ok(report(labelled_rows, &labels, p))
}

/// The fast baseline: a logistic regression on frozen embeddings, fitted on the training part of
/// the same stratified split a fine-tuning run with `val_split` and `seed` uses, and scored on
/// its validation part. `features[i]` and `labels[i]` are the labelled rows in file order, as
/// the training job gets them.
pub fn baseline(
    features: &[Vec<f32>],
    labels: &[u8],
    classes: usize,
    val_split: f64,
    seed: u64,
) -> crate::engine::metrics::Metrics {
    use logreg::FitOptions;
    let (train, val) = crate::engine::train::stratified_split(labels, val_split, seed);
    let x: Vec<&[f32]> = train.iter().map(|&i| features[i].as_slice()).collect();
    let y: Vec<u8> = train.iter().map(|&i| labels[i]).collect();
    let model = LogReg::fit(&x, &y, classes, FitOptions::default());
    let p: Vec<Vec<f32>> = val.iter().map(|&i| model.predict(&features[i])).collect();
    let truth: Vec<u8> = val.iter().map(|&i| labels[i]).collect();
    crate::engine::metrics::Metrics::from_probabilities(&truth, &p)
}

/// Writes `id,given,suggested,score`, one row per labelled row, most suspect first; labels as
/// the file writes them (`labels`).
pub fn write_suspects(
    path: &Path,
    rows: &[Tweet],
    labels: &crate::data::LabelSet,
    report: &SuspectReport,
) -> std::io::Result<()> {
    crate::data::atomic::write_atomic(path, |w| write_suspects_to(w, rows, labels, report))
}

pub fn write_suspects_to<W: std::io::Write>(
    w: W,
    rows: &[Tweet],
    labels: &crate::data::LabelSet,
    report: &SuspectReport,
) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    let io = |e: csv::Error| std::io::Error::other(e.to_string());
    csv.write_record(["id", "given", "suggested", "score"])
        .map_err(io)?;
    for s in &report.issues.ranked {
        let row = &rows[report.labelled_rows[s.index]];
        csv.write_record([
            row.id.as_str(),
            labels.cell(s.given),
            labels.cell(s.suggested),
            &format!("{:.6}", s.score),
        ])
        .map_err(io)?;
    }
    csv.flush()
}

/// Cosine distance under which two queued tweets count as copies of each other. Exact
/// duplicates sit at 0; 0.05 is a judgement of "the same tweet again", not a tuned value.
pub const DIVERSITY: f32 = 0.05;

/// Unlabelled rows worth labelling next, first first, with the fast model's probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct NextQueue {
    /// (row index, every class's probability).
    pub rows: Vec<(usize, Vec<f32>)>,
    /// How many labelled rows the fast model was fitted on.
    pub fitted_on: usize,
}

/// Ranks the unlabelled `rows` for labelling next: the fast model fitted on every labelled row,
/// least certain first, near-copies of rows already queued pushed back; at most `length` rows.
/// `vectors[i]` is row i's embedding; `classes` is the size of the label set.
pub fn rank_unlabelled(
    rows: &[Tweet],
    vectors: &[Vec<f32>],
    classes: usize,
    length: usize,
) -> Result<NextQueue> {
    let (labelled, unlabelled): (Vec<usize>, Vec<usize>) =
        (0..rows.len()).partition(|&i| rows[i].label.is_some());
    let y: Vec<u8> = labelled
        .iter()
        .map(|&i| rows[i].label.unwrap_or(0))
        .collect();
    if y.iter().all(|&l| Some(&l) == y.first()) {
        bail!("label tweets of at least two classes first");
    }
    let x: Vec<&[f32]> = labelled.iter().map(|&i| vectors[i].as_slice()).collect();
    let fast = LogReg::fit(&x, &y, classes, Default::default());
    let p: Vec<Vec<f32>> = unlabelled
        .iter()
        .map(|&i| fast.predict(&vectors[i]))
        .collect();
    let candidates: Vec<Vec<f32>> = unlabelled.iter().map(|&i| vectors[i].clone()).collect();
    let order = confident::next_to_label(&p, &candidates, length, DIVERSITY);
    Ok(NextQueue {
        rows: order
            .into_iter()
            .map(|k| (unlabelled[k], p[k].clone()))
            .collect(),
        fitted_on: labelled.len(),
    })
}
