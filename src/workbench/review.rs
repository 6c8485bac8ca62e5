//! Predicting and reviewing an open file with one set of settings: predictions stored with their
//! run, suspect labels, the label-next queue and the simulated learning curve. The window's
//! review jobs and the command line's `suspects` and `learning-curve` read the same defaults.

use std::path::{Path, PathBuf};

use crate::data::store::RunLog;
use crate::data::Tweet;
use crate::engine::device::DeviceChoice;
use crate::engine::infer;
use crate::engine::model::{source, LoadedModel};
use crate::label_quality::{self, NextQueue, SuspectReport};
use crate::workbench::jobs::Progress;

/// The encoder whose frozen embeddings feed suspects, ranking and the learning curve.
pub const EMBEDDING_MODEL: &str = source::DEFAULT_MODEL;
/// Longest input, in tokens, of those embeddings (and their cache key).
pub const EMBEDDING_MAX_LEN: usize = 64;
/// Cross-validation folds for suspects: every row is scored by a model that did not see it.
pub const FOLDS: usize = 5;
/// Seed of the folds.
pub const SEED: u64 = 42;
/// How many rows one ranking of the label-next queue holds.
pub const QUEUE_LENGTH: usize = 100;
/// Rows labelled at random before the first model of a simulated session.
pub const CURVE_START: usize = 20;
/// Rows labelled between two retrainings.
pub const CURVE_STEP: usize = 20;
/// Labels at which a simulation stops.
pub const CURVE_UNTIL: usize = 1000;
/// Random orders (and starting sets) averaged.
pub const CURVE_REPEATS: u64 = 3;
/// Rows per inference batch when predicting a whole file.
pub const PREDICT_BATCH: usize = 64;

/// Every class's probability per row, where a run predicted that row.
pub type RowProbabilities = Vec<Option<Vec<f32>>>;

/// Every class's probability for every row, from the model in `model_dir`.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    pub model_dir: PathBuf,
    pub probabilities: Vec<Vec<f32>>,
    /// Storing them in the workspace failed: they show now but will not come back.
    pub not_stored: Option<String>,
}

/// Predicts every text with the fine-tuned model in `model_dir`, and stores the probabilities
/// with run `run` of the workspace file `workspace` so that they come back when it is reopened.
pub fn predict_and_store(
    workspace: &Path,
    model_dir: &Path,
    texts: &[String],
    run: Option<i64>,
) -> anyhow::Result<Predicted> {
    let model = LoadedModel::load_finetuned(model_dir, DeviceChoice::Auto)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let p = infer::probabilities(
        &model,
        &refs,
        model.default_max_len(),
        PREDICT_BATCH,
        &mut |_, _| {},
    )?;
    let not_stored = run.and_then(|run| {
        let indexed: Vec<(usize, Vec<f32>)> = p.iter().cloned().enumerate().collect();
        RunLog::open(workspace)
            .and_then(|mut l| l.save_predictions(run, &indexed))
            .err()
            .map(|e| e.to_string())
    });
    Ok(Predicted {
        model_dir: model_dir.to_path_buf(),
        probabilities: p,
        not_stored,
    })
}

/// Frozen embeddings of `rows` by `model`, cached in the workspace file `workspace`;
/// `progress` hears each step.
pub fn frozen_embeddings(
    workspace: &Path,
    rows: &[Tweet],
    model: &str,
    device: DeviceChoice,
    max_len: usize,
    progress: &dyn Fn(Progress),
) -> anyhow::Result<Vec<Vec<f32>>> {
    let texts: Vec<&str> = rows.iter().map(|t| t.text.as_str()).collect();
    let (vectors, _) = label_quality::cached_embeddings(
        workspace,
        &texts,
        model,
        device,
        max_len,
        &|what| {
            progress(Progress {
                what: what.to_string(),
                done: 0,
                total: 0,
            })
        },
        &mut |done, total| {
            progress(Progress {
                what: "embedding tweets".into(),
                done,
                total,
            })
        },
    )?;
    Ok(vectors)
}

/// Suspect labels among `rows` on frozen embeddings, with the default folds and seed.
pub fn suspects(rows: &[Tweet], vectors: &[Vec<f32>], classes: usize) -> SuspectReport {
    label_quality::suspects(rows, vectors, classes, FOLDS, SEED)
}

/// Suspect labels of the open file, most suspect first.
#[derive(Debug, Clone, PartialEq)]
pub struct SuspectsFound {
    pub suspects: Vec<SuspectRow>,
    /// Estimated label errors among the rows of each class.
    pub estimated_errors: Vec<usize>,
    /// Out-of-sample accuracy of the model that scored them.
    pub accuracy: f64,
}

/// A labelled row the out-of-sample model doubts (see `label_quality::confident`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuspectRow {
    /// Row index in the workspace.
    pub row: usize,
    pub given: u8,
    pub suggested: u8,
    /// 1 - p(given label), out of sample.
    pub score: f32,
}

impl SuspectsFound {
    /// The suspects a report names, as row indices of the workspace.
    pub fn of(report: &SuspectReport) -> Self {
        Self {
            suspects: report
                .issues
                .suspects()
                .iter()
                .map(|s| SuspectRow {
                    row: report.labelled_rows[s.index],
                    given: s.given,
                    suggested: s.suggested,
                    score: s.score,
                })
                .collect(),
            estimated_errors: report.issues.estimated_errors.clone(),
            accuracy: report.accuracy,
        }
    }
}

/// Ranks the unlabelled rows for labelling next (`label_quality::rank_unlabelled`).
pub fn rank(rows: &[Tweet], vectors: &[Vec<f32>], classes: usize) -> anyhow::Result<NextQueue> {
    label_quality::rank_unlabelled(rows, vectors, classes, QUEUE_LENGTH)
}

/// A simulated labelling session on the labelled rows: (labels used, held-out F1) for the
/// next-to-label queue and for random order.
#[derive(Debug, Clone, PartialEq)]
pub struct LearningCurve {
    pub queue: Vec<(f64, f64)>,
    pub random: Vec<(f64, f64)>,
}

/// How a simulated session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurveSettings {
    pub start: usize,
    pub step: usize,
    pub until: usize,
    pub repeats: u64,
}

impl Default for CurveSettings {
    fn default() -> Self {
        Self {
            start: CURVE_START,
            step: CURVE_STEP,
            until: CURVE_UNTIL,
            repeats: CURVE_REPEATS,
        }
    }
}

/// Simulates labelling `labelled` (rows with labels) in the queue's order and in random order
/// (20% held out for scoring).
pub fn simulate(
    labelled: &[Tweet],
    vectors: &[Vec<f32>],
    classes: usize,
    settings: CurveSettings,
) -> LearningCurve {
    let labels: Vec<u8> = labelled.iter().map(|t| t.label.unwrap_or(0)).collect();
    let points = label_quality::compare_strategies(
        vectors,
        &labels,
        classes,
        settings.start,
        settings.step,
        settings.until,
        settings.repeats,
    );
    LearningCurve {
        queue: points.iter().map(|p| (p.0 as f64, p.1)).collect(),
        random: points.iter().map(|p| (p.0 as f64, p.2)).collect(),
    }
}
