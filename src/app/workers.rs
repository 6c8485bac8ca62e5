//! The bodies of the window's background threads. Each takes what `jobs` copied for it, does
//! its work without touching UI state, and reports through a [`Reporter`]; `jobs::spawn` turns a
//! panic into the job's own failure.

use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, Sender};

use super::protocol::{
    ChoiceNeeded, DialogEvent, Event, ExportKind, Exported, JobEvent, LearningCurve, LoadEvent,
    Opened, Predicted, Progress, SuspectRow, SuspectsFound, TrainJobEvent,
};
use crate::data::dataset::Layout;
use crate::data::duplicates::find_duplicates;
use crate::data::export::{self, PredictionFormat};
use crate::data::import::{self, ImportMemory};
use crate::data::save::{save_to_source, SaveJob, Saved};
use crate::data::store::{EditRecord, RunLog, RunStatus, Workspace};
use crate::data::{load_csv_with, ImportOptions, Tweet};
use crate::engine::device::DeviceChoice;
use crate::engine::explain::{self, Explanation};
use crate::engine::infer;
use crate::engine::model::LoadedModel;
use crate::engine::train::record::{recorded_runs, RunRecorder, RunSettings};
use crate::label_quality::{self, NextQueue, SuspectReport};

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
        let _ = self.tx.send(event);
        self.ctx.request_repaint();
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

/// How a file is opened: as before (its workspace's choice, one remembered for its header, or
/// detection; a file that needs a choice gets the dialog), or with the analyst's new choice.
pub enum Opening {
    Known,
    Chosen(ImportOptions),
}

/// What opening a file came to.
pub enum LoadOutcome {
    Opened(Box<Opened>),
    NeedsChoice(Box<ChoiceNeeded>),
}

/// Opens the workspace of `csv` (importing the CSV the first time), finds duplicates and reads
/// the past runs and the latest finished run's predictions.
pub fn load(csv: &Path, opening: Opening, reporter: &Reporter) -> anyhow::Result<LoadOutcome> {
    let db = Workspace::default_path(csv);
    let progress = |done, total| reporter.send(Event::Load(LoadEvent::Progress { done, total }));
    let (workspace, arrival) = match opening {
        Opening::Chosen(options) => {
            let data = load_csv_with(csv, &options, &mut { progress })?;
            let (mut ws, arrival) = Workspace::import_again(&db, csv, &data)?;
            ws.set_import_options(&options)?;
            // Remembering is a convenience: a read-only data folder must not stop the import.
            let _ = ImportMemory::user().remember(&data.layout.header, &options);
            (ws, arrival)
        }
        Opening::Known => {
            let stored = Workspace::stored_import_options(&db);
            let options = match stored {
                Some(o) => o,
                None if db.exists() => ImportOptions::default(),
                None => {
                    // A file seen for the first time: a choice remembered for its header, else
                    // the dialog when its columns are not all recognised.
                    let needed = choice_needed(csv, None)?;
                    match &needed.known {
                        Some(o) => o.clone(),
                        None => {
                            let p = import::preview(&needed.sample, needed.whole_file, None)
                                .map_err(|e| anyhow::anyhow!("{}: {e}", csv.display()))?;
                            if p.needs_choice() {
                                let reason = if p.text.is_none() {
                                    "No column is named like a text column: choose the text column."
                                } else {
                                    "No column is named like a label column, but some look like one: choose the label column (or none)."
                                };
                                return Ok(LoadOutcome::NeedsChoice(Box::new(ChoiceNeeded {
                                    reason: Some(reason.into()),
                                    ..needed
                                })));
                            }
                            ImportOptions::default()
                        }
                    }
                }
            };
            Workspace::open_or_import(&db, csv, || load_csv_with(csv, &options, &mut { progress }))?
        }
    };
    let problems = workspace.problems().to_vec();
    let duplicates = find_duplicates(workspace.rows());
    let log = workspace.run_log()?;
    let past_runs = recorded_runs(&log)?;
    let predictions = past_runs
        .iter()
        .rev()
        .filter(|r| r.status == RunStatus::Finished)
        .find_map(|r| {
            let dir = r.model_dir()?.to_path_buf();
            let p = log.predictions(r.id, workspace.rows().len()).ok()?;
            p.iter().any(Option::is_some).then_some((r.id, dir, p))
        });
    Ok(LoadOutcome::Opened(Box::new(Opened {
        csv: csv.to_path_buf(),
        workspace,
        arrival,
        problems,
        duplicates,
        past_runs,
        predictions,
    })))
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

/// Predicts every text with the fine-tuned model in `model_dir`, and stores the probabilities
/// with run `run` of the workspace file `workspace` so that they come back when it is reopened.
pub fn predict(
    workspace: &Path,
    model_dir: &Path,
    texts: &[String],
    run: Option<i64>,
) -> anyhow::Result<Predicted> {
    let model = LoadedModel::load_finetuned(model_dir, DeviceChoice::Auto)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let p = infer::probabilities(&model, &refs, model.default_max_len(), 64, &mut |_, _| {})?;
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

/// One request to the explainer: row `row`, whose text is `text`, by the model in `model_dir`.
pub struct ExplainRequest {
    pub model_dir: PathBuf,
    pub row: usize,
    pub text: String,
    /// The class whose words to score (None: the predicted one).
    pub class: Option<u8>,
}

/// The explainer's loop: one tweet at a time, keeping the last model loaded. Requests that queue
/// up while it works are skipped except the newest, so holding `j` does not build a backlog.
pub fn explain_loop(requests: Receiver<ExplainRequest>, reporter: &Reporter) {
    let mut loaded: Option<(PathBuf, LoadedModel)> = None;
    while let Ok(mut request) = requests.recv() {
        while let Ok(newer) = requests.try_recv() {
            request = newer;
        }
        let result = (|| -> anyhow::Result<Explanation> {
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
        })();
        reporter.send(Event::Explain(super::protocol::Explained {
            model_dir: request.model_dir,
            row: request.row,
            class: request.class,
            result: result.map_err(|e| format!("{e:#}")),
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

/// Frozen embeddings of `rows` by `model`, cached in the workspace file `workspace`;
/// `progress` hears each step.
pub fn frozen_embeddings(
    workspace: &Path,
    rows: &[Tweet],
    model: &str,
    progress: &dyn Fn(Progress),
) -> anyhow::Result<Vec<Vec<f32>>> {
    let texts: Vec<&str> = rows.iter().map(|t| t.text.as_str()).collect();
    let (vectors, _) = label_quality::cached_embeddings(
        workspace,
        &texts,
        model,
        DeviceChoice::Auto,
        64,
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

/// The suspects a report names, as the review window lists them.
pub fn suspects_found(report: &SuspectReport) -> SuspectsFound {
    SuspectsFound {
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

/// How many rows one ranking of the next-to-label queue holds.
pub const QUEUE_LENGTH: usize = 100;

/// Ranks the unlabelled rows for labelling next (`label_quality::rank_unlabelled`).
pub fn rank(rows: &[Tweet], vectors: &[Vec<f32>], classes: usize) -> anyhow::Result<NextQueue> {
    label_quality::rank_unlabelled(rows, vectors, classes, QUEUE_LENGTH)
}

/// Simulates labelling the labelled rows in the queue's order and in random order (20% held
/// out, 20 labels at a time, up to 1000, 3 orders), for the review window's plot.
pub fn simulate(labelled: &[Tweet], vectors: &[Vec<f32>], classes: usize) -> LearningCurve {
    let labels: Vec<u8> = labelled.iter().map(|t| t.label.unwrap_or(0)).collect();
    let points = label_quality::compare_strategies(vectors, &labels, classes, 20, 20, 1000, 3);
    LearningCurve {
        queue: points.iter().map(|p| (p.0 as f64, p.1)).collect(),
        random: points.iter().map(|p| (p.0 as f64, p.2)).collect(),
    }
}
