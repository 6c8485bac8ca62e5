//! Messages from background work to the UI: the only thing the two sides share.
//!
//! The UI starts work on threads (loading a CSV, training, predicting) and reads these events
//! each frame with `try_iter`; every sender asks the UI to repaint after sending.

use std::path::PathBuf;

use crate::data::store::Workspace;
use crate::data::Problem;
use crate::engine::train::TrainEvent;

pub enum Event {
    /// A CSV finished loading into its workspace.
    Loaded {
        csv: PathBuf,
        workspace: Box<Workspace>,
        problems: Vec<Problem>,
    },
    LoadProgress {
        done: u64,
        total: u64,
    },
    LoadFailed {
        csv: PathBuf,
        message: String,
    },
    /// The user picked a file in the native dialog (None: cancelled, or no dialog available).
    Picked(Option<PathBuf>),
    Train(TrainEvent),
    /// p(disaster) for every row of the workspace file `workspace`, from the model in `model_dir`.
    Predicted {
        workspace: PathBuf,
        model_dir: PathBuf,
        p_disaster: Vec<f32>,
    },
    PredictFailed {
        message: String,
    },
}
