//! Starting the window's background jobs: each copies what its job needs out of the window's
//! state, marks its kind running in the job registry, and hands the work to a thread (`workers`
//! holds the bodies). Every job, training included, starts here.

use std::path::{Path, PathBuf};

use super::export_dialog::ExportRequest;
use super::job_registry::JobKind;
use super::open_file::OpenFile;
use super::protocol::{
    DialogEvent, Event, ExportKind, JobEvent, LoadEvent, Progress, ReviewEvent, Scoped,
};
use super::workers::{self, ExplainRequest, ExportJob, Reporter};
use super::TweetlabApp;
use crate::data::export::Predictions;
use crate::data::save::SaveJob;
use crate::data::Tweet;
use crate::engine::device::DeviceChoice;
use crate::engine::train::record::RunSettings;
use crate::engine::train::{self, Distillation, TrainConfig, TrainJob};
use crate::label_quality;
use crate::workbench::jobs;
use crate::workbench::review::{self, SuspectsFound};

/// Runs `work` on a thread named `name` and sends the event it returns; if it panics, sends
/// `failed(message)` instead, so the job's owner never waits for ever.
pub fn spawn(
    name: &str,
    reporter: &Reporter,
    work: impl FnOnce(&Reporter) -> Event + Send + 'static,
    failed: impl FnOnce(String) -> Event + Send + 'static,
) {
    let reporter = reporter.clone();
    let sender = reporter.clone();
    jobs::spawn(
        name,
        move || work(&reporter),
        move |outcome| sender.send(outcome.unwrap_or_else(failed)),
    );
}

/// An event of a job for the workspace file `workspace`.
fn scoped<T>(workspace: &Path, event: T) -> Scoped<T> {
    Scoped {
        workspace: workspace.to_path_buf(),
        event,
    }
}

impl TweetlabApp {
    /// Starts loading `csv` on a background thread.
    pub fn open(&mut self, csv: PathBuf) {
        self.open_as(csv, workers::Opening::Known);
    }

    /// Opens `csv` read with the import dialog's choice.
    pub(super) fn open_as(&mut self, csv: PathBuf, opening: workers::Opening) {
        self.path_field = csv.display().to_string();
        self.loading = Some((csv.clone(), 0.0));
        self.status = format!("loading {}", csv.display());
        let failed_csv = csv.clone();
        spawn(
            "load",
            &self.reporter,
            move |r| {
                Event::Load(match workers::load(&csv, opening, r) {
                    Ok(workers::LoadOutcome::Opened(opened)) => LoadEvent::Loaded(opened),
                    Ok(workers::LoadOutcome::NeedsChoice(needed)) => LoadEvent::NeedsChoice(needed),
                    Err(e) => LoadEvent::Failed {
                        csv,
                        message: format!("{e:#}"),
                    },
                })
            },
            |message| {
                Event::Load(LoadEvent::Failed {
                    csv: failed_csv,
                    message,
                })
            },
        );
    }

    /// Opens the import dialog for `csv` (what it shows is read off the UI thread).
    pub(super) fn choose_import(&mut self, csv: PathBuf) {
        self.loading = Some((csv.clone(), 0.0));
        self.status = format!("reading the start of {}", csv.display());
        let failed_csv = csv.clone();
        spawn(
            "import-preview",
            &self.reporter,
            move |_| {
                Event::Load(match workers::choice_needed(&csv, None) {
                    Ok(needed) => LoadEvent::NeedsChoice(Box::new(needed)),
                    Err(e) => LoadEvent::Failed {
                        csv,
                        message: format!("{e:#}"),
                    },
                })
            },
            |message| {
                Event::Load(LoadEvent::Failed {
                    csv: failed_csv,
                    message,
                })
            },
        );
    }

    pub(super) fn pick_file(&self) {
        spawn(
            "open-dialog",
            &self.reporter,
            |_| workers::pick_file(),
            |_| Event::Dialog(DialogEvent::Picked(None)),
        );
    }

    pub(super) fn pick_save(&self) {
        let suggested = PathBuf::from(self.export.path.trim());
        spawn(
            "save-dialog",
            &self.reporter,
            move |_| workers::pick_save(&suggested),
            |_| Event::Dialog(DialogEvent::SavePicked(None)),
        );
    }

    /// Fine-tunes the Train panel's model on the labelled rows, recording the run in the
    /// workspace; the run's events reach the panel through a forwarding thread.
    pub(super) fn start_training(&mut self) {
        let model = self.train.settings.model.clone();
        let config = self.train.settings.config.clone();
        self.start_run(model, config, None);
    }

    /// Trains the fast model on `teacher`'s probabilities mixed with the labels, on the
    /// labelled rows and the file's unlabelled ones.
    pub(super) fn start_distillation(&mut self, teacher: PathBuf) {
        let student = self.train.settings.fast_model.clone();
        // The student's own recipe; the split, lengths, seed and device as the panel has them.
        let recipe = TrainConfig::for_model(&student);
        let config = TrainConfig {
            lr: recipe.lr,
            epochs: recipe.epochs,
            ..self.train.settings.config.clone()
        };
        self.start_run(student, config, Some(Distillation::new(teacher)));
    }

    fn start_run(&mut self, model: String, config: TrainConfig, mut distil: Option<Distillation>) {
        let Some(file) = &self.file else { return };
        if self.train.is_running() {
            self.error = Some("a training run is already in progress".into());
            return;
        }
        let (texts, labels): (Vec<String>, Vec<u8>) = file
            .workspace
            .rows()
            .iter()
            .filter_map(|t| t.label.map(|l| (t.text.clone(), l)))
            .unzip();
        if texts.len() < 2 {
            self.error = Some("label at least two tweets before training".into());
            return;
        }
        if let Some(d) = distil.as_mut() {
            d.unlabelled = file
                .workspace
                .rows()
                .iter()
                .filter(|t| t.label.is_none())
                .map(|t| t.text.clone())
                .collect();
        }
        let workspace = file.workspace.path().to_path_buf();
        let out_dir = workers::new_run_dir(&workspace);
        let settings = RunSettings {
            model: model.clone(),
            out_dir: out_dir.clone(),
            config,
            labelled_rows: texts.len(),
        };
        let handle = train::spawn(TrainJob {
            model: Some(model.clone()),
            texts,
            labels,
            classes: file.workspace.layout().labels.names(),
            out_dir,
            config: settings.config.clone(),
            distil,
        });
        let events = handle.events.clone();
        self.train.started(
            handle,
            workspace.clone(),
            file.workspace.layout().labels.names(),
            model,
        );
        let reporter = self.reporter.clone();
        std::thread::Builder::new()
            .name("tweetlab-record-run".into())
            .spawn(move || workers::forward_training(events, &workspace, &settings, &reporter))
            .expect("can spawn a thread");
    }

    /// Predicts every row of the open file with a run's model, if that file is still open.
    pub(super) fn start_prediction(
        &mut self,
        workspace: PathBuf,
        model_dir: PathBuf,
        run: Option<i64>,
    ) {
        let Some(file) = self.file.as_ref().filter(|f| f.is(&workspace)) else {
            self.status = format!(
                "training finished; its model is in {} (another file is open now)",
                model_dir.display()
            );
            return;
        };
        let texts: Vec<String> = file
            .workspace
            .rows()
            .iter()
            .map(|t| t.text.clone())
            .collect();
        self.status = "training finished; predicting every row".into();
        self.jobs.start(JobKind::Predict);
        let failed_ws = workspace.clone();
        spawn(
            "predict",
            &self.reporter,
            move |_| {
                let event = match review::predict_and_store(&workspace, &model_dir, &texts, run) {
                    Ok(p) => JobEvent::Done(p),
                    Err(e) => JobEvent::Failed(format!("{e:#}")),
                };
                Event::Predict(scoped(&workspace, event))
            },
            move |m| Event::Predict(scoped(&failed_ws, JobEvent::Failed(m))),
        );
    }

    /// Asks the explainer for the cursor row when the detail panel shows it and no
    /// explanation is cached or on its way.
    pub(super) fn request_explanation(&mut self) {
        let (Some(row), Some(file)) = (self.table.selected_row(), &self.file) else {
            return;
        };
        let Some(model_dir) = &file.model_dir else {
            return;
        };
        if !self.settings.show_detail || !self.explanations.wants(row) {
            return;
        }
        self.explanations.request(ExplainRequest {
            model_dir: model_dir.clone(),
            row,
            text: file.workspace.rows()[row].text.clone(),
            class: self.explanations.class,
        });
    }

    /// Copies what `request` needs out of the workspace and writes it on a worker.
    pub(super) fn start_export(&mut self, request: ExportRequest) {
        let Some(file) = &self.file else { return };
        let history = if request.kind == ExportKind::History {
            match file.workspace.history() {
                Ok(h) => h,
                Err(e) => {
                    self.error = Some(e.to_string());
                    return;
                }
            }
        } else {
            Vec::new()
        };
        let predictions = if request.kind.needs_predictions() {
            match file
                .predictions
                .iter()
                .cloned()
                .collect::<Option<Vec<Vec<f32>>>>()
            {
                Some(probabilities) => Predictions {
                    classes: file.workspace.layout().labels.names(),
                    probabilities,
                },
                None => {
                    self.error =
                        Some("Some rows have no prediction yet: train a model first.".into());
                    return;
                }
            }
        } else {
            Predictions::default()
        };
        self.jobs.start(JobKind::Export);
        self.status = format!("writing {}", request.path.display());
        let job = ExportJob {
            kind: request.kind,
            path: request.path,
            layout: file.workspace.layout().clone(),
            rows: file.workspace.rows().to_vec(),
            predictions,
            history,
        };
        spawn(
            "export",
            &self.reporter,
            move |_| Event::Export(workers::export(job)),
            |m| Event::Export(JobEvent::Failed(m)),
        );
    }

    /// Save: the current labels into the source file itself, once confirmed.
    pub(super) fn save_to_source(&mut self) {
        let Some(file) = &self.file else { return };
        let ws = &file.workspace;
        let job = SaveJob {
            source: ws.source().to_path_buf(),
            layout: ws.layout().clone(),
            rows: ws.rows().to_vec(),
            fingerprint: ws.fingerprint().cloned(),
        };
        self.jobs.start(JobKind::Save);
        self.status = format!("saving {}", job.source.display());
        let workspace = ws.path().to_path_buf();
        let failed_ws = workspace.clone();
        spawn(
            "save",
            &self.reporter,
            move |_| Event::Save(scoped(&workspace, workers::save(&workspace, job))),
            move |m| Event::Save(scoped(&failed_ws, JobEvent::Failed(m))),
        );
    }

    /// The fast baseline on the split the training settings give.
    pub(super) fn start_baseline(&mut self) {
        let Some(file) = &self.file else { return };
        let labelled = labelled_rows(file);
        let classes = file.workspace.layout().labels.len();
        let model = self.train.settings.model.clone();
        let (val_split, seed) = (
            self.train.settings.config.val_split,
            self.train.settings.config.seed,
        );
        self.jobs.start(JobKind::Baseline);
        with_embeddings(
            "baseline",
            &self.reporter,
            file.workspace.path(),
            labelled,
            model,
            Event::Baseline,
            move |rows, vectors| {
                let labels: Vec<u8> = rows.iter().map(|t| t.label.unwrap_or(0)).collect();
                Ok(label_quality::baseline(
                    vectors, &labels, classes, val_split, seed,
                ))
            },
        );
    }

    /// Looks for suspect labels: the fast mode, or (`full`) the Train panel's model fine-tuned
    /// once per fold.
    pub(super) fn find_suspects(&mut self, full: bool) {
        let Some(file) = &self.file else { return };
        self.jobs.start(JobKind::Suspects);
        let rows = file.workspace.rows().to_vec();
        let classes = file.workspace.layout().labels.names();
        let workspace = file.workspace.path().to_path_buf();
        let review = |p: Scoped<JobEvent<_>>| {
            Event::Review(Scoped {
                workspace: p.workspace,
                event: ReviewEvent::Suspects(p.event),
            })
        };
        if !full {
            with_embeddings(
                "suspects",
                &self.reporter,
                &workspace,
                rows,
                review::EMBEDDING_MODEL.to_string(),
                review,
                move |rows, vectors| {
                    Ok(SuspectsFound::of(&review::suspects(
                        rows,
                        vectors,
                        classes.len(),
                    )))
                },
            );
            return;
        }
        let model = self.train.settings.model.clone();
        let config = self.train.settings.config.clone();
        let failed_ws = workspace.clone();
        spawn(
            "suspects",
            &self.reporter,
            move |r| {
                let result = (|| -> anyhow::Result<_> {
                    let work = tempfile::tempdir()?;
                    let report = label_quality::suspects_fine_tuned(
                        &rows,
                        &classes,
                        &model,
                        &config,
                        review::FOLDS,
                        work.path(),
                        &mut |done, folds| {
                            let what =
                                format!("fine-tuning fold {} of {folds}", (done + 1).min(folds));
                            let progress = JobEvent::Progress(Progress {
                                what,
                                done,
                                total: folds,
                            });
                            r.send(review(scoped(&workspace, progress)))
                        },
                    )?;
                    Ok(SuspectsFound::of(&report))
                })();
                review(scoped(&workspace, done_or_failed(result)))
            },
            move |m| review(scoped(&failed_ws, JobEvent::Failed(m))),
        );
    }

    /// Ranks the unlabelled rows for the label-next queue.
    pub(super) fn rank_unlabelled(&mut self) {
        let Some(file) = &self.file else { return };
        self.jobs.start(JobKind::Rank);
        let classes = file.workspace.layout().labels.len();
        with_embeddings(
            "ranking",
            &self.reporter,
            file.workspace.path(),
            file.workspace.rows().to_vec(),
            review::EMBEDDING_MODEL.to_string(),
            |p| {
                Event::Review(Scoped {
                    workspace: p.workspace,
                    event: ReviewEvent::Ranking(p.event),
                })
            },
            move |rows, vectors| review::rank(rows, vectors, classes),
        );
    }

    /// Simulates the label-next queue against random order on the labelled rows.
    pub(super) fn simulate_curve(&mut self) {
        let Some(file) = &self.file else { return };
        self.jobs.start(JobKind::Simulate);
        let classes = file.workspace.layout().labels.len();
        with_embeddings(
            "simulation",
            &self.reporter,
            file.workspace.path(),
            labelled_rows(file),
            review::EMBEDDING_MODEL.to_string(),
            |p| {
                Event::Review(Scoped {
                    workspace: p.workspace,
                    event: ReviewEvent::Simulation(p.event),
                })
            },
            move |rows, vectors| {
                Ok(review::simulate(
                    rows,
                    vectors,
                    classes,
                    review::CurveSettings::default(),
                ))
            },
        );
    }

    /// Asks the training thread to stop before its next step.
    pub(super) fn cancel_training(&self) {
        self.train.cancel();
    }
}

/// The labelled rows in file order, as training and the baseline get them.
fn labelled_rows(file: &OpenFile) -> Vec<Tweet> {
    file.workspace
        .rows()
        .iter()
        .filter(|t| t.label.is_some())
        .cloned()
        .collect()
}

fn done_or_failed<T>(result: anyhow::Result<T>) -> JobEvent<T> {
    match result {
        Ok(t) => JobEvent::Done(t),
        Err(e) => JobEvent::Failed(format!("{e:#}")),
    }
}

/// Runs `work` on a thread with the frozen embeddings of `rows` by `model` (cached in the
/// workspace file `workspace`, progress reported as the job's own) and reports its result as
/// the job's end; `wrap` makes the job's events window events. The label-quality jobs are this
/// plus their own `work`.
fn with_embeddings<T: Send + 'static>(
    name: &str,
    reporter: &Reporter,
    workspace: &Path,
    rows: Vec<Tweet>,
    model: String,
    wrap: impl Fn(Scoped<JobEvent<T>>) -> Event + Send + Sync + Copy + 'static,
    work: impl FnOnce(&[Tweet], &[Vec<f32>]) -> anyhow::Result<T> + Send + 'static,
) {
    let workspace = workspace.to_path_buf();
    let failed_ws = workspace.clone();
    spawn(
        name,
        reporter,
        move |r| {
            let progress = |p: Progress| r.send(wrap(scoped(&workspace, JobEvent::Progress(p))));
            let result = review::frozen_embeddings(
                &workspace,
                &rows,
                &model,
                DeviceChoice::Auto,
                review::EMBEDDING_MAX_LEN,
                &progress,
            )
            .and_then(|vectors| work(&rows, &vectors));
            wrap(scoped(&workspace, done_or_failed(result)))
        },
        move |m| wrap(scoped(&failed_ws, JobEvent::Failed(m))),
    );
}
