//! What background work sends the window, grouped by the owner that handles it.
//!
//! The window starts work on threads (`jobs`), and reads these events at the start of every
//! frame; every sender asks for a repaint after sending. Each job reports its own progress,
//! result and failure ([`JobEvent`]), so one job's failure or progress never touches another's
//! state. Events of jobs started for one workspace file carry it ([`Scoped`]); `update` drops
//! those of a file that is no longer open, in one place. Handling an event may ask the app for
//! something in return ([`Request`]).

use std::path::PathBuf;

use crate::data::save::Saved;
use crate::data::ImportOptions;
use crate::engine::explain::Explanation;
use crate::engine::metrics::Metrics;
use crate::engine::train::TrainEvent;
use crate::label_quality::NextQueue;
pub use crate::workbench::review::{
    LearningCurve, Predicted, RowProbabilities, SuspectRow, SuspectsFound,
};
pub use crate::workbench::{JobEvent, Opened, Progress};

pub enum Event {
    /// Opening a CSV (the app's).
    Load(LoadEvent),
    /// The native file dialogs (the app's and the export dialog's).
    Dialog(DialogEvent),
    /// The training run (the Train panel's).
    Train(TrainJobEvent),
    /// The fast baseline (the Train panel's).
    Baseline(Scoped<JobEvent<Metrics>>),
    /// Predicting every row after a run (the app's).
    Predict(Scoped<JobEvent<Predicted>>),
    /// Word contributions (the detail panel's explanations).
    Explain(Explained),
    /// Writing an export (the app's).
    Export(JobEvent<Exported>),
    /// Writing the labels into the source file (the app's).
    Save(Scoped<JobEvent<Saved>>),
    /// The review window's three jobs.
    Review(Scoped<ReviewEvent>),
    /// The team project's worker (team mode's), by the number of the join it serves.
    Team(u64, crate::workbench::team::TeamEvent),
}

/// An event of a job started for the workspace file `workspace`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoped<T> {
    pub workspace: PathBuf,
    pub event: T,
}

pub enum LoadEvent {
    Progress {
        done: u64,
        total: u64,
    },
    Loaded(Box<Opened>),
    Failed {
        csv: PathBuf,
        message: String,
    },
    /// The file needs the analyst's import choice first (or they asked to make it).
    NeedsChoice(Box<ChoiceNeeded>),
}

/// What the import dialog starts from: the start of the file, and a choice made before for it
/// or its header.
pub struct ChoiceNeeded {
    pub csv: PathBuf,
    pub sample: Vec<u8>,
    pub whole_file: bool,
    pub known: Option<ImportOptions>,
    /// Why the dialog opened by itself.
    pub reason: Option<String>,
}

pub enum DialogEvent {
    /// The user picked a file in the native open dialog (None: cancelled, or no dialog).
    Picked(Option<PathBuf>),
    /// The user picked a destination in the native save dialog.
    SavePicked(Option<PathBuf>),
}

pub enum TrainJobEvent {
    /// The run was recorded in the workspace file `workspace` under this id.
    Recorded {
        workspace: PathBuf,
        run: i64,
    },
    /// Recording the run failed; training goes on unrecorded.
    NotRecorded(String),
    Run(TrainEvent),
}

/// Word contributions for row `row`, by the model in `model_dir`.
pub struct Explained {
    pub model_dir: PathBuf,
    pub row: usize,
    /// The class asked for (None: the predicted one).
    pub class: Option<u8>,
    pub result: Result<Explanation, String>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub path: PathBuf,
    pub kind: ExportKind,
    pub rows: usize,
}

/// The review window's jobs, each with its own progress, result and failure.
#[derive(Debug, Clone, PartialEq)]
pub enum ReviewEvent {
    Suspects(JobEvent<SuspectsFound>),
    Ranking(JobEvent<NextQueue>),
    Simulation(JobEvent<LearningCurve>),
}

/// What an export writes.
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

/// What handling an event asks of the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Status(String),
    Error(String),
    /// A run finished: predict every row of its workspace file with its model.
    Predict {
        workspace: PathBuf,
        model_dir: PathBuf,
        run: Option<i64>,
    },
    /// A review queue changed: put the table cursor on its current tweet.
    FocusReviewRow,
}
