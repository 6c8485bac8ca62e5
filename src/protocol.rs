//! Messages from background work to the UI: the only thing the two sides share.
//!
//! The UI starts work on threads (loading a CSV, training, predicting, explaining, exporting)
//! and reads these events each frame with `try_recv`; every sender asks the UI to repaint after
//! sending. Nothing here depends on egui.

use std::path::PathBuf;

use crate::data::duplicates::Duplicates;
use crate::data::store::Workspace;
use crate::data::Problem;
use crate::engine::explain::Explanation;
use crate::engine::train::TrainEvent;

/// A training run recorded in the workspace, with the curves needed to redraw it.
#[derive(Debug, Clone, Default)]
pub struct PastRun {
    pub id: i64,
    pub started: String,
    pub status: String,
    /// Where its fine-tuned model was written, if it still exists.
    pub model_dir: Option<PathBuf>,
    /// (step, loss) per training step.
    pub train_loss: Vec<(f64, f64)>,
    /// (epoch, value) per epoch.
    pub val_f1: Vec<(f64, f64)>,
    pub val_loss: Vec<(f64, f64)>,
}

/// Everything the window needs once a CSV is open, prepared off the UI thread.
pub struct Opened {
    pub csv: PathBuf,
    pub workspace: Workspace,
    pub problems: Vec<Problem>,
    pub duplicates: Duplicates,
    pub past_runs: Vec<PastRun>,
    /// The latest finished run's predictions (one slot per row) and its model directory.
    pub predictions: Option<(i64, PathBuf, Vec<Option<f32>>)>,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// `id,target`, Kaggle's submission format.
    Kaggle,
    /// Every row with its label, prediction, probability and flags.
    FullPredictions,
    /// The source file's own layout with the current labels.
    Dataset,
    /// Every label edit, oldest first.
    History,
}

impl ExportKind {
    pub const ALL: [ExportKind; 4] = [
        ExportKind::Kaggle,
        ExportKind::FullPredictions,
        ExportKind::Dataset,
        ExportKind::History,
    ];

    pub fn title(self) -> &'static str {
        match self {
            ExportKind::Kaggle => "Kaggle submission (id,target)",
            ExportKind::FullPredictions => "Full predictions with probabilities",
            ExportKind::Dataset => "Corrected dataset (original layout)",
            ExportKind::History => "Edit history",
        }
    }

    pub fn needs_predictions(self) -> bool {
        matches!(self, ExportKind::Kaggle | ExportKind::FullPredictions)
    }
}

/// A labelled row the out-of-sample model doubts (see `engine::quality`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuspectRow {
    /// Row index in the workspace.
    pub row: usize,
    pub given: u8,
    pub suggested: u8,
    /// 1 - p(given label), out of sample.
    pub score: f32,
}

pub enum Event {
    /// A CSV finished loading into its workspace.
    Loaded(Box<Opened>),
    LoadProgress {
        done: u64,
        total: u64,
    },
    LoadFailed {
        csv: PathBuf,
        message: String,
    },
    /// The user picked a file in the native open dialog (None: cancelled, or no dialog).
    Picked(Option<PathBuf>),
    /// The user picked a destination in the native save dialog.
    SavePicked(Option<PathBuf>),
    Train(TrainEvent),
    /// The training thread recorded its run in the workspace under this id.
    RunRecorded {
        workspace: PathBuf,
        run: i64,
    },
    /// p(disaster) for every row of the workspace file `workspace`, from the model in `model_dir`.
    Predicted {
        workspace: PathBuf,
        model_dir: PathBuf,
        p_disaster: Vec<f32>,
    },
    PredictFailed {
        message: String,
    },
    /// Word contributions for row `row`, by the model in `model_dir`.
    Explained {
        model_dir: PathBuf,
        row: usize,
        result: Result<Explanation, String>,
    },
    Exported {
        path: PathBuf,
        kind: ExportKind,
        rows: usize,
    },
    ExportFailed {
        path: PathBuf,
        message: String,
    },
    /// Suspect labels of the workspace file `workspace`, most suspect first.
    Suspects {
        workspace: PathBuf,
        suspects: Vec<SuspectRow>,
        /// Estimated label errors among rows labelled 0 and among rows labelled 1.
        estimated_errors: [usize; 2],
        /// Out-of-sample accuracy of the fast model.
        accuracy: f64,
    },
    SuspectsFailed {
        message: String,
    },
    /// Validation metrics of the fast baseline (frozen encoder + logistic regression) on the
    /// split the Train panel's settings give.
    Baseline {
        workspace: PathBuf,
        f1: f64,
        accuracy: f64,
    },
    BaselineFailed {
        message: String,
    },
    /// A simulated labelling session on the labelled rows: (labels used, held-out F1) for the
    /// next-to-label queue and for random order.
    LearningCurve {
        workspace: PathBuf,
        queue: Vec<(f64, f64)>,
        random: Vec<(f64, f64)>,
    },
    /// Unlabelled rows of `workspace` worth labelling next, first first, with the fast model's
    /// p(disaster) for each; ranked by a model fitted on `labelled` rows.
    NextToLabel {
        workspace: PathBuf,
        queue: Vec<(usize, f32)>,
        labelled: usize,
    },
    /// Long work reporting how far it is (`what` says which).
    Progress {
        what: String,
        done: usize,
        total: usize,
    },
    /// Background bookkeeping failed (recording a run); the work itself went on.
    Warning(String),
}
