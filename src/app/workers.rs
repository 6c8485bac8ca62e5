//! The bodies of the window's background threads. Each takes what `jobs` copied for it, does
//! its work without touching UI state, and reports through a [`Reporter`]; `jobs::spawn` turns a
//! panic into the job's own failure.

use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, Sender};

use super::protocol::{
    ChoiceNeeded, DialogEvent, Event, ExportKind, Exported, JobEvent, LoadEvent, Opened,
    TrainJobEvent,
};
use crate::data::dataset::Layout;
use crate::data::export::{self, PredictionFormat};
use crate::data::import::{self, ImportMemory};
use crate::data::save::{save_to_source, SaveJob, Saved};
use crate::data::store::{EditRecord, Workspace};
use crate::data::Tweet;
use crate::engine::device::DeviceChoice;
use crate::engine::explain::{self, Explanation};
use crate::engine::model::LoadedModel;
use crate::engine::train::record::{RunRecorder, RunSettings};
use crate::workbench::{self, jobs, OpenOutcome};

/// Sends events to the window and wakes it.
#[derive(Clone)]
pub struct Reporter {
    tx: Sender<Event>,
    ctx: egui::Context,
}

impl Reporter {
    pub fn new(tx: Sender<Event>, ctx: egui::Context) -> Self {
        Self { tx, ctx }
    }

    /// Wakes `ctx` from now on (the context actually drawing the window).
    pub fn set_context(&mut self, ctx: &egui::Context) {
        self.ctx = ctx.clone();
    }

    pub fn send(&self, event: Event) {
        self.deliver(event);
    }

    /// Sends `event` and wakes the window; false once the window is gone.
    pub fn deliver(&self, event: Event) -> bool {
        let sent = self.tx.send(event).is_ok();
        self.ctx.request_repaint();
        sent
    }
}

/// The start of `csv` for the import dialog, with the choice made before for this file (its
/// workspace) or for its header.
pub fn choice_needed(csv: &Path, reason: Option<String>) -> anyhow::Result<ChoiceNeeded> {
    let (sample, whole_file) = import::read_sample(csv)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", csv.display()))?;
    let known = Workspace::stored_import_options(&Workspace::default_path(csv)).or_else(|| {
        import::preview(&sample, whole_file, None)
            .ok()
            .and_then(|p| ImportMemory::user().recall(&p.header))
    });
    Ok(ChoiceNeeded {
        csv: csv.to_path_buf(),
        sample,
        whole_file,
        known,
        reason,
    })
}

pub use crate::workbench::Opening;

/// What opening a file came to.
pub enum LoadOutcome {
    Opened(Box<Opened>),
    NeedsChoice(Box<ChoiceNeeded>),
}

/// Opens the workspace of `csv` (`workbench::open`); a file that needs a choice gets the
/// import dialog, with the start of the file.
pub fn load(csv: &Path, opening: Opening, reporter: &Reporter) -> anyhow::Result<LoadOutcome> {
    let mut progress =
        |done, total| reporter.send(Event::Load(LoadEvent::Progress { done, total }));
    Ok(match workbench::open::open(csv, opening, &mut progress)? {
        OpenOutcome::Opened(opened) => LoadOutcome::Opened(opened),
        OpenOutcome::NeedsChoice { reason } => {
            LoadOutcome::NeedsChoice(Box::new(choice_needed(csv, Some(reason.to_string()))?))
        }
    })
}

/// The native open dialog. Without a desktop portal rfd returns None at once; the window then
/// points at the path field.
pub fn pick_file() -> Event {
    let picked = rfd::FileDialog::new()
        .add_filter("CSV or TSV", &["csv", "tsv", "txt"])
        .pick_file();
    Event::Dialog(DialogEvent::Picked(picked))
}

/// The native save dialog, starting at `suggested`.
pub fn pick_save(suggested: &Path) -> Event {
    let mut dialog = rfd::FileDialog::new().add_filter("CSV", &["csv"]);
    if let Some(dir) = suggested.parent() {
        dialog = dialog.set_directory(dir);
    }
    if let Some(name) = suggested.file_name() {
        dialog = dialog.set_file_name(name.to_string_lossy());
    }
    Event::Dialog(DialogEvent::SavePicked(dialog.save_file()))
}

/// Forwards a training run's events to the window and records the run in the workspace file
/// `workspace` through its own connection. Ends when the run's last event has passed.
pub fn forward_training(
    events: Receiver<crate::engine::train::TrainEvent>,
    workspace: &Path,
    settings: &RunSettings,
    reporter: &Reporter,
) {
    let send = |e: TrainJobEvent| reporter.send(Event::Train(e));
    let mut recorder = match RunRecorder::start(workspace, settings) {
        Ok(r) => {
            send(TrainJobEvent::Recorded {
                workspace: workspace.to_path_buf(),
                run: r.run_id(),
            });
            Some(r)
        }
        Err(e) => {
            send(TrainJobEvent::NotRecorded(format!("{e:#}")));
            None
        }
    };
    for e in events.iter() {
        if let Some(r) = &mut recorder {
            if let Err(err) = r.record(&e) {
                send(TrainJobEvent::NotRecorded(format!(
                    "recording the run stopped: {err:#}"
                )));
                recorder = None;
            }
        }
        send(TrainJobEvent::Run(e));
    }
}

/// One request to the explainer: row `row`, whose text is `text`, by the model in `model_dir`.
pub struct ExplainRequest {
    pub model_dir: PathBuf,
    pub row: usize,
    pub text: String,
    /// The class whose words to score (None: the predicted one).
    pub class: Option<u8>,
}

/// Computes one explanation; it may keep state (the last model loaded) between requests.
pub type Explain = Box<dyn FnMut(&ExplainRequest) -> anyhow::Result<Explanation> + Send>;

/// The explainer the window uses: word contributions by the fine-tuned model of each request,
/// keeping the last model loaded.
pub fn model_explainer() -> Explain {
    let mut loaded: Option<(PathBuf, LoadedModel)> = None;
    Box::new(move |request| {
        if loaded.as_ref().map(|(d, _)| d) != Some(&request.model_dir) {
            loaded = None;
            let model = LoadedModel::load_finetuned(&request.model_dir, DeviceChoice::Auto)?;
            loaded = Some((request.model_dir.clone(), model));
        }
        let (_, model) = loaded.as_ref().expect("loaded above");
        Ok(explain::explain(
            model,
            &request.text,
            model.default_max_len(),
            request.class,
        )?)
    })
}

/// The explainer's loop: one tweet at a time. Requests that queue up while it works are skipped
/// except the newest, so holding `j` does not build a backlog. A request whose explanation
/// panics is answered with the panic as its failure, and a fresh explainer (`new`) takes the
/// next one: the loop never dies and no request goes unanswered.
pub fn explain_loop(
    requests: Receiver<ExplainRequest>,
    reporter: &Reporter,
    new: &dyn Fn() -> Explain,
) {
    let mut explainer = new();
    while let Ok(mut request) = requests.recv() {
        while let Ok(newer) = requests.try_recv() {
            request = newer;
        }
        let result = match jobs::guarded("explainer", || explainer(&request)) {
            Ok(result) => result.map_err(|e| format!("{e:#}")),
            Err(panicked) => {
                explainer = new();
                Err(panicked)
            }
        };
        reporter.send(Event::Explain(super::protocol::Explained {
            model_dir: request.model_dir,
            row: request.row,
            class: request.class,
            result,
        }));
    }
}

/// What an export writes, copied out of the workspace so the window can go on editing.
pub struct ExportJob {
    pub kind: ExportKind,
    pub path: PathBuf,
    pub layout: Layout,
    pub rows: Vec<Tweet>,
    pub predictions: export::Predictions,
    pub history: Vec<EditRecord>,
}

pub fn export(job: ExportJob) -> JobEvent<Exported> {
    let rows = match job.kind {
        ExportKind::History => job.history.len(),
        _ => job.rows.len(),
    };
    let written = match job.kind {
        ExportKind::Kaggle => export::write_predictions(
            &job.path,
            &job.rows,
            &job.layout.labels,
            &job.predictions,
            PredictionFormat::Kaggle,
        ),
        ExportKind::FullPredictions => export::write_predictions(
            &job.path,
            &job.rows,
            &job.layout.labels,
            &job.predictions,
            PredictionFormat::Full,
        ),
        ExportKind::Dataset => export::write_dataset(&job.path, &job.layout, &job.rows),
        ExportKind::History => export::write_history(&job.path, &job.history),
    };
    match written {
        Ok(()) => JobEvent::Done(Exported {
            path: job.path,
            kind: job.kind,
            rows,
        }),
        Err(e) => JobEvent::Failed(format!(
            "Could not write {}: {e}\nNothing was changed there; choose another folder or free some space.",
            job.path.display()
        )),
    }
}

/// Save: the current labels into the source file itself (`data::save`), and the new
/// fingerprint into the workspace file `workspace`.
pub fn save(workspace: &Path, job: SaveJob) -> JobEvent<Saved> {
    match save_to_source(&job) {
        Ok(saved) => match Workspace::store_fingerprint(workspace, &saved.fingerprint) {
            Ok(()) => JobEvent::Done(saved),
            Err(e) => JobEvent::Failed(format!(
                "saved {}, but the workspace could not record it: {e}",
                saved.path.display()
            )),
        },
        Err(e) => JobEvent::Failed(e.to_string()),
    }
}

/// Where a workspace keeps its fine-tuned models: next to the workspace file.
pub fn runs_dir(workspace: &Path) -> PathBuf {
    workspace.with_extension("runs")
}

/// A directory for a new run of `workspace`, named by the time, that no run has taken: two
/// runs started within one second (a distillation right after a quick run) must not share one,
/// or the second would overwrite the first, its teacher.
pub fn new_run_dir(workspace: &Path) -> PathBuf {
    let runs = runs_dir(workspace);
    let stem = format!(
        "run-{}",
        crate::data::store::now_rfc3339().replace(':', "-")
    );
    (1..)
        .map(|n| match n {
            1 => runs.join(&stem),
            n => runs.join(format!("{stem}-{n}")),
        })
        // Created here, so the name is taken from now on; any other failure than the name
        // being taken shows when the run writes there.
        .find(|d| {
            let _ = std::fs::create_dir_all(&runs);
            std::fs::create_dir(d)
                .map_or_else(|e| e.kind() != std::io::ErrorKind::AlreadyExists, |()| true)
        })
        .expect("a free name")
}
