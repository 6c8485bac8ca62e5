//! Background threads the UI starts. Each sends `protocol::Event`s and wakes the UI; none
//! touches UI state.

use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, Sender};

use crate::data::dataset::Layout;
use crate::data::duplicates::find_duplicates;
use crate::data::export::{self, PredictionFormat};
use crate::data::store::{EditRecord, RunLog, Workspace};
use crate::data::{load_csv_with, ImportOptions, Tweet};
use crate::engine::device::{self, DeviceChoice};
use crate::engine::explain;
use crate::engine::infer;
use crate::engine::model::LoadedModel;
use crate::engine::source;
use crate::engine::train::{TrainEvent, TrainHandle};
use crate::protocol::{Event, ExportKind, Opened, PastRun, SuspectRow};

fn send(tx: &Sender<Event>, ctx: &egui::Context, event: Event) {
    let _ = tx.send(event);
    ctx.request_repaint();
}

/// Opens the workspace of `csv` (importing the CSV the first time), finds duplicates and reads
/// the past runs, all off the UI thread.
pub fn load(csv: PathBuf, tx: Sender<Event>, ctx: egui::Context) {
    std::thread::spawn(move || {
        let result = (|| -> anyhow::Result<Opened> {
            let db = Workspace::default_path(&csv);
            let (workspace, problems) = if db.is_file() {
                (Workspace::open(&db)?, Vec::new())
            } else {
                let data = load_csv_with(&csv, &ImportOptions::default(), &mut |done, total| {
                    send(&tx, &ctx, Event::LoadProgress { done, total })
                })?;
                (Workspace::create(&db, &csv, &data)?, data.problems)
            };
            let duplicates = find_duplicates(workspace.rows());
            let log = workspace.run_log()?;
            let past_runs = read_past_runs(&log)?;
            let predictions = past_runs
                .iter()
                .rev()
                .filter(|r| r.status == "finished")
                .find_map(|r| {
                    let dir = r.model_dir.clone()?;
                    let p = log.predictions(r.id, workspace.rows().len()).ok()?;
                    p.iter().any(Option::is_some).then_some((r.id, dir, p))
                });
            Ok(Opened {
                csv: csv.clone(),
                workspace,
                problems,
                duplicates,
                past_runs,
                predictions,
            })
        })();
        match result {
            Ok(opened) => send(&tx, &ctx, Event::Loaded(Box::new(opened))),
            Err(e) => send(
                &tx,
                &ctx,
                Event::LoadFailed {
                    csv,
                    message: format!("{e:#}"),
                },
            ),
        }
    });
}

/// The runs a workspace has recorded, with their curves.
fn read_past_runs(log: &RunLog) -> anyhow::Result<Vec<PastRun>> {
    let mut out = Vec::new();
    for run in log.runs()? {
        let model_dir = run
            .config
            .get("out_dir")
            .and_then(|d| d.as_str())
            .map(PathBuf::from)
            .filter(|d| d.join("config.json").is_file());
        let mut past = PastRun {
            id: run.id,
            started: run.started,
            status: run.status,
            model_dir,
            ..Default::default()
        };
        for (kind, step, value) in log.run_metrics(run.id)? {
            let x = step as f64;
            let get = |k: &str| value.get(k).and_then(|v| v.as_f64());
            match kind.as_str() {
                "step" => past.train_loss.extend(get("loss").map(|y| (x, y))),
                "epoch" => {
                    past.val_f1.extend(get("f1").map(|y| (x, y)));
                    past.val_loss.extend(get("val_loss").map(|y| (x, y)));
                }
                _ => {}
            }
        }
        out.push(past);
    }
    Ok(out)
}

/// Shows the native open dialog off the UI thread. Without a desktop portal rfd returns None
/// at once; the UI then points at the path field.
pub fn pick_file(tx: Sender<Event>, ctx: egui::Context) {
    std::thread::spawn(move || {
        let picked = rfd::FileDialog::new()
            .add_filter("CSV or TSV", &["csv", "tsv", "txt"])
            .pick_file();
        send(&tx, &ctx, Event::Picked(picked));
    });
}

/// Shows the native save dialog off the UI thread.
pub fn pick_save(suggested: PathBuf, tx: Sender<Event>, ctx: egui::Context) {
    std::thread::spawn(move || {
        let mut dialog = rfd::FileDialog::new().add_filter("CSV", &["csv"]);
        if let Some(dir) = suggested.parent() {
            dialog = dialog.set_directory(dir);
        }
        if let Some(name) = suggested.file_name() {
            dialog = dialog.set_file_name(name.to_string_lossy());
        }
        send(&tx, &ctx, Event::SavePicked(dialog.save_file()));
    });
}

/// Forwards a training run's events to the UI and records the run (settings, per-step loss,
/// per-epoch metrics, outcome) in the workspace through its own connection.
pub fn forward_training(
    handle: &TrainHandle,
    workspace: PathBuf,
    settings: serde_json::Value,
    tx: Sender<Event>,
    ctx: egui::Context,
) {
    let events = handle.events.clone();
    std::thread::spawn(move || {
        let mut recorder = start_recording(&workspace, &settings);
        match &recorder {
            Ok((_, run)) => send(
                &tx,
                &ctx,
                Event::RunRecorded {
                    workspace: workspace.clone(),
                    run: *run,
                },
            ),
            Err(e) => send(
                &tx,
                &ctx,
                Event::Warning(format!("this run is not recorded in the workspace: {e:#}")),
            ),
        }
        for e in events.iter() {
            if let Ok((log, run)) = &mut recorder {
                if let Err(err) = record(log, *run, &e) {
                    send(
                        &tx,
                        &ctx,
                        Event::Warning(format!("recording the run stopped: {err:#}")),
                    );
                    recorder = Err(err);
                }
            }
            send(&tx, &ctx, Event::Train(e));
        }
    });
}

fn start_recording(
    workspace: &Path,
    settings: &serde_json::Value,
) -> anyhow::Result<(RunLog, i64)> {
    let mut log = RunLog::open(workspace)?;
    let model = settings
        .get("model")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string();
    let run = log.start_run(&model, settings)?;
    Ok((log, run))
}

fn record(log: &mut RunLog, run: i64, event: &TrainEvent) -> anyhow::Result<()> {
    match event {
        TrainEvent::Step { step, loss, lr, .. } => log.record_metric(
            run,
            "step",
            *step,
            &serde_json::json!({ "loss": loss, "lr": lr }),
        )?,
        TrainEvent::Epoch {
            epoch,
            train_loss,
            val_loss,
            val,
            seconds,
        } => log.record_metric(
            run,
            "epoch",
            *epoch,
            &serde_json::json!({
                "train_loss": train_loss,
                "val_loss": val_loss,
                "f1": val.as_ref().map(|m| m.f1),
                "accuracy": val.as_ref().map(|m| m.accuracy),
                "seconds": seconds,
            }),
        )?,
        TrainEvent::Finished { .. } => log.finish_run(run, "finished")?,
        TrainEvent::Cancelled { .. } => log.finish_run(run, "cancelled")?,
        TrainEvent::Failed { .. } => log.finish_run(run, "failed")?,
        _ => {}
    }
    Ok(())
}

/// Predicts every text of `workspace` with the fine-tuned model in `model_dir`, and stores the
/// probabilities with run `run` so that they come back when the workspace is reopened.
pub fn predict(
    workspace: PathBuf,
    model_dir: PathBuf,
    texts: Vec<String>,
    run: Option<i64>,
    tx: Sender<Event>,
    ctx: egui::Context,
) {
    std::thread::spawn(move || {
        let result = (|| -> anyhow::Result<Vec<f32>> {
            let model = load_model(&model_dir)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let p =
                infer::probabilities(&model, &refs, model.default_max_len(), 64, &mut |_, _| {})?;
            if let Some(run) = run {
                let indexed: Vec<(usize, f32)> = p.iter().copied().enumerate().collect();
                if let Err(e) =
                    RunLog::open(&workspace).and_then(|mut l| l.save_predictions(run, &indexed))
                {
                    send(
                        &tx,
                        &ctx,
                        Event::Warning(format!("predictions not stored in the workspace: {e}")),
                    );
                }
            }
            Ok(p)
        })();
        match result {
            Ok(p_disaster) => send(
                &tx,
                &ctx,
                Event::Predicted {
                    workspace,
                    model_dir,
                    p_disaster,
                },
            ),
            Err(e) => send(
                &tx,
                &ctx,
                Event::PredictFailed {
                    message: format!("{e:#}"),
                },
            ),
        }
    });
}

fn load_model(model_dir: &Path) -> anyhow::Result<LoadedModel> {
    let files = source::inspect_dir(model_dir, &model_dir.display().to_string())?;
    Ok(LoadedModel::load(
        &files,
        &device::select(DeviceChoice::Auto)?,
        None,
        0,
    )?)
}

/// One request to the explainer: row `row`, whose text is `text`, by the model in `model_dir`.
pub struct ExplainRequest {
    pub model_dir: PathBuf,
    pub row: usize,
    pub text: String,
}

/// A long-lived thread that explains one tweet at a time, keeping the last model loaded.
/// Requests that queue up while it works are skipped except the newest, so holding `j` does not
/// build a backlog.
pub struct Explainer {
    requests: Sender<ExplainRequest>,
}

impl Explainer {
    pub fn spawn(tx: Sender<Event>, ctx: egui::Context) -> Self {
        let (requests, rx) = crossbeam_channel::unbounded();
        std::thread::spawn(move || explain_loop(rx, tx, ctx));
        Self { requests }
    }

    pub fn request(&self, request: ExplainRequest) {
        let _ = self.requests.send(request);
    }
}

fn explain_loop(rx: Receiver<ExplainRequest>, tx: Sender<Event>, ctx: egui::Context) {
    let mut loaded: Option<(PathBuf, LoadedModel)> = None;
    while let Ok(mut request) = rx.recv() {
        while let Ok(newer) = rx.try_recv() {
            request = newer;
        }
        let result = (|| -> anyhow::Result<explain::Explanation> {
            if loaded.as_ref().map(|(d, _)| d) != Some(&request.model_dir) {
                loaded = None;
                loaded = Some((request.model_dir.clone(), load_model(&request.model_dir)?));
            }
            let (_, model) = loaded.as_ref().expect("loaded above");
            Ok(explain::explain(
                model,
                &request.text,
                model.default_max_len(),
            )?)
        })();
        send(
            &tx,
            &ctx,
            Event::Explained {
                model_dir: request.model_dir,
                row: request.row,
                result: result.map_err(|e| format!("{e:#}")),
            },
        );
    }
}

/// What an export writes, copied out of the workspace so the UI can go on editing.
pub struct ExportJob {
    pub kind: ExportKind,
    pub path: PathBuf,
    pub layout: Layout,
    pub rows: Vec<Tweet>,
    pub p_disaster: Vec<f32>,
    pub history: Vec<EditRecord>,
}

pub fn export(job: ExportJob, tx: Sender<Event>, ctx: egui::Context) {
    std::thread::spawn(move || {
        let rows = match job.kind {
            ExportKind::History => job.history.len(),
            _ => job.rows.len(),
        };
        let written = match job.kind {
            ExportKind::Kaggle => export::write_predictions(
                &job.path,
                &job.rows,
                &job.p_disaster,
                PredictionFormat::Kaggle,
            ),
            ExportKind::FullPredictions => export::write_predictions(
                &job.path,
                &job.rows,
                &job.p_disaster,
                PredictionFormat::Full,
            ),
            ExportKind::Dataset => export::write_dataset(&job.path, &job.layout, &job.rows),
            ExportKind::History => export::write_history(&job.path, &job.history),
        };
        let event = match written {
            Ok(()) => Event::Exported {
                path: job.path,
                kind: job.kind,
                rows,
            },
            Err(e) => Event::ExportFailed {
                path: job.path,
                message: e.to_string(),
            },
        };
        send(&tx, &ctx, event);
    });
}

/// Where a workspace keeps its fine-tuned models: next to the workspace file.
pub fn runs_dir(workspace: &Path) -> PathBuf {
    workspace.with_extension("runs")
}

/// Runs `work` on a thread with the frozen embeddings of `rows` by `model` (cached in the
/// workspace, progress sent to the UI) and sends the event it returns; a failure anywhere is
/// sent as `failed(message)`. The label-quality workers below are this plus their own `work`.
fn with_embeddings(
    workspace: PathBuf,
    rows: Vec<Tweet>,
    model: String,
    tx: Sender<Event>,
    ctx: egui::Context,
    failed: fn(String) -> Event,
    work: impl FnOnce(&Path, &[Tweet], &[Vec<f32>]) -> anyhow::Result<Event> + Send + 'static,
) {
    std::thread::spawn(move || {
        let result = frozen_embeddings(&workspace, &rows, &model, &tx, &ctx)
            .and_then(|vectors| work(&workspace, &rows, &vectors));
        send(
            &tx,
            &ctx,
            result.unwrap_or_else(|e| failed(format!("{e:#}"))),
        );
    });
}

/// Frozen embeddings of `rows` by `model`, cached in the workspace; progress goes to the UI.
fn frozen_embeddings(
    workspace: &Path,
    rows: &[Tweet],
    model: &str,
    tx: &Sender<Event>,
    ctx: &egui::Context,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let progress = |what: String, done: usize, total: usize| {
        send(tx, ctx, Event::Progress { what, done, total })
    };
    progress(format!("loading {model}"), 0, 0);
    let files = source::resolve(Some(model), &|m| progress(m.to_string(), 0, 0))?;
    let encoder = LoadedModel::load(&files, &device::select(DeviceChoice::Auto)?, None, 0)?;
    let mut cache = crate::data::store::EmbeddingCache::open(workspace)?;
    let texts: Vec<&str> = rows.iter().map(|t| t.text.as_str()).collect();
    let (vectors, _) = crate::label_quality::embeddings(
        &encoder,
        &files.dir.display().to_string(),
        &texts,
        64,
        Some(&mut cache),
        &mut |done, total| progress("embedding tweets".into(), done, total),
    )?;
    Ok(vectors)
}

fn review_failed(message: String) -> Event {
    Event::SuspectsFailed { message }
}

/// Suspect labels in `rows` by the fast mode (a logistic regression per fold).
pub fn find_suspects(
    workspace: PathBuf,
    rows: Vec<Tweet>,
    model: String,
    tx: Sender<Event>,
    ctx: egui::Context,
) {
    with_embeddings(
        workspace,
        rows,
        model,
        tx,
        ctx,
        review_failed,
        |workspace, rows, vectors| {
            let report = crate::label_quality::suspects(rows, vectors, 5, 42);
            Ok(suspects_event(workspace, &report))
        },
    );
}

/// Suspect labels by the full mode: `model` fine-tuned with `config` once per fold (in a
/// temporary folder), each fold scored by the model that did not see it. Progress per fold.
pub fn find_suspects_fine_tuned(
    workspace: PathBuf,
    rows: Vec<Tweet>,
    model: String,
    config: crate::engine::train::TrainConfig,
    tx: Sender<Event>,
    ctx: egui::Context,
) {
    std::thread::spawn(move || {
        let result = (|| -> anyhow::Result<Event> {
            let work = tempfile::tempdir()?;
            let report = crate::label_quality::suspects_fine_tuned(
                &rows,
                &model,
                &config,
                5,
                work.path(),
                &mut |done, folds| {
                    let what = format!("fine-tuning fold {} of {folds}", (done + 1).min(folds));
                    send(
                        &tx,
                        &ctx,
                        Event::Progress {
                            what,
                            done,
                            total: folds,
                        },
                    )
                },
            )?;
            Ok(suspects_event(&workspace, &report))
        })();
        send(
            &tx,
            &ctx,
            result.unwrap_or_else(|e| review_failed(format!("{e:#}"))),
        );
    });
}

fn suspects_event(workspace: &Path, report: &crate::label_quality::SuspectReport) -> Event {
    let suspects = report
        .issues
        .suspects()
        .iter()
        .map(|s| SuspectRow {
            row: report.labelled_rows[s.index],
            given: s.given,
            suggested: s.suggested,
            score: s.score,
        })
        .collect();
    Event::Suspects {
        workspace: workspace.to_path_buf(),
        suspects,
        estimated_errors: report.issues.estimated_errors,
        accuracy: report.accuracy,
    }
}

/// The fast baseline on the labelled rows (in file order, as training gets them).
pub fn baseline(
    workspace: PathBuf,
    labelled: Vec<Tweet>,
    model: String,
    val_split: f64,
    seed: u64,
    tx: Sender<Event>,
    ctx: egui::Context,
) {
    let failed = |message| Event::BaselineFailed { message };
    with_embeddings(
        workspace,
        labelled,
        model,
        tx,
        ctx,
        failed,
        move |workspace, rows, vectors| {
            let labels: Vec<u8> = rows.iter().map(|t| t.label.unwrap_or(0)).collect();
            let m = crate::label_quality::baseline(vectors, &labels, val_split, seed);
            Ok(Event::Baseline {
                workspace: workspace.to_path_buf(),
                f1: m.f1,
                accuracy: m.accuracy,
            })
        },
    );
}

/// Ranks the unlabelled rows for labelling next: the fast model fitted on every labelled row,
/// least certain first, near-copies pushed back (`quality::next_to_label`).
pub fn rank_unlabelled(
    workspace: PathBuf,
    rows: Vec<Tweet>,
    model: String,
    tx: Sender<Event>,
    ctx: egui::Context,
) {
    with_embeddings(
        workspace,
        rows,
        model,
        tx,
        ctx,
        review_failed,
        |workspace, rows, vectors| {
            let (labelled, unlabelled): (Vec<usize>, Vec<usize>) =
                (0..rows.len()).partition(|&i| rows[i].label.is_some());
            let y: Vec<u8> = labelled
                .iter()
                .map(|&i| rows[i].label.unwrap_or(0))
                .collect();
            if !(y.contains(&0) && y.contains(&1)) {
                anyhow::bail!("label at least one tweet of each class first");
            }
            let x: Vec<&[f32]> = labelled.iter().map(|&i| vectors[i].as_slice()).collect();
            let fast = crate::engine::logreg::LogReg::fit(&x, &y, Default::default());
            let p: Vec<f32> = unlabelled
                .iter()
                .map(|&i| fast.predict(&vectors[i]))
                .collect();
            let candidates: Vec<Vec<f32>> =
                unlabelled.iter().map(|&i| vectors[i].clone()).collect();
            let order = crate::engine::quality::next_to_label(
                &p,
                &candidates,
                QUEUE_LENGTH,
                crate::label_quality::DIVERSITY,
            );
            Ok(Event::NextToLabel {
                workspace: workspace.to_path_buf(),
                queue: order.into_iter().map(|k| (unlabelled[k], p[k])).collect(),
                labelled: labelled.len(),
            })
        },
    );
}

/// How many rows one ranking of the next-to-label queue holds.
const QUEUE_LENGTH: usize = 100;

/// Simulates labelling the labelled rows in the queue's order and in random order (20% held
/// out, 20 labels at a time, up to 1000, 3 orders), for the review window's plot.
pub fn simulate_curve(
    workspace: PathBuf,
    labelled: Vec<Tweet>,
    model: String,
    tx: Sender<Event>,
    ctx: egui::Context,
) {
    with_embeddings(
        workspace,
        labelled,
        model,
        tx,
        ctx,
        review_failed,
        |workspace, rows, vectors| {
            let labels: Vec<u8> = rows.iter().map(|t| t.label.unwrap_or(0)).collect();
            let points =
                crate::label_quality::compare_strategies(vectors, &labels, 20, 20, 1000, 3);
            Ok(Event::LearningCurve {
                workspace: workspace.to_path_buf(),
                queue: points.iter().map(|p| (p.0 as f64, p.1)).collect(),
                random: points.iter().map(|p| (p.0 as f64, p.2)).collect(),
            })
        },
    );
}
