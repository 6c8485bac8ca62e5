//! Train panel: settings, Start / Cancel, live loss and validation curves with past runs on the
//! same axes, the confusion matrix of the latest epoch, and the fast baseline. It owns the
//! training run and the baseline's result and handles their events; `jobs` starts both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use egui_plot::{HLine, Legend, Line, Plot, PlotPoint, PlotPoints, Points};

use super::job_registry::{JobKind, Jobs};
use super::protocol::{JobEvent, Request, TrainJobEvent};
use crate::data::store::RunStatus;
use crate::engine::device::{self, DeviceChoice};
use crate::engine::kernels::{MatmulPath, Precision};
use crate::engine::metrics::Metrics;
use crate::engine::model::source::{canonical, DEFAULT_MODEL};
use crate::engine::train::record::{EpochRecord, RecordedRun, StepRecord};
use crate::engine::train::{fmt_duration, TrainConfig, TrainEvent, TrainHandle};

/// What the panel's buttons ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrainAction {
    Start,
    Cancel,
    Baseline,
    /// Train the fast model on this run's probabilities and the labels.
    Distil {
        teacher: PathBuf,
    },
}

/// The model and settings the next run uses.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    pub model: String,
    pub config: TrainConfig,
    /// The student of "Distil into the fast model".
    pub fast_model: String,
    /// Seconds of training steps per 1,000 training rows, per model (by its canonical name),
    /// measured on this machine: what the Known models menu shows before a run starts.
    pub measured_speed: BTreeMap<String, f64>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.to_string(),
            config: TrainConfig::default(),
            fast_model: DEFAULT_MODEL.to_string(),
            measured_speed: BTreeMap::new(),
        }
    }
}

/// A menu of the encoders known to work, with size and epoch time (measured on this machine
/// where a run of it started here, else scaled from the default model's); picking one puts its
/// id in the Model field.
fn known_models_menu(
    ui: &mut egui::Ui,
    model: &mut String,
    measured: &BTreeMap<String, f64>,
    val_split: f64,
) -> egui::Response {
    use crate::engine::model::catalog::{
        epoch_seconds, KNOWN_MODELS, MEASURED_DEFAULT_SECONDS_PER_1000,
    };
    const KAGGLE_ROWS: usize = 6091;
    egui::ComboBox::from_id_salt("known_models")
        .selected_text("choose…")
        .width(120.0)
        .show_ui(ui, |ui| {
            for m in KNOWN_MODELS.iter().filter(|m| m.readable()) {
                let time = match measured.get(canonical(m.id)) {
                    Some(per_1000) => {
                        let train_rows = KAGGLE_ROWS as f64 * (1.0 - val_split);
                        format!(
                            "{} of training steps per epoch of 6,091 tweets, measured here",
                            fmt_duration(per_1000 * train_rows / 1000.0)
                        )
                    }
                    None => format!(
                        "~{:.0} min per epoch of 6,091 tweets, estimated",
                        epoch_seconds(m, KAGGLE_ROWS, MEASURED_DEFAULT_SECONDS_PER_1000) / 60.0
                    ),
                };
                let text = format!("{}  ({:.0}M, {}, {time})", m.id, m.params_m, m.languages);
                ui.selectable_value(model, m.id.to_string(), text)
                    .on_hover_text(m.note);
            }
        })
        .response
}

/// Training loss per step, raw and as an exponential moving average, kept ready to plot.
#[derive(Debug, Clone, Default)]
pub struct LossCurve {
    pub raw: Vec<PlotPoint>,
    pub smoothed: Vec<PlotPoint>,
}

impl LossCurve {
    pub fn push(&mut self, step: &StepRecord) {
        let (x, y) = (step.step as f64, f64::from(step.loss));
        let avg = self
            .smoothed
            .last()
            .map_or(y, |p| SMOOTHING * p.y + (1.0 - SMOOTHING) * y);
        self.raw.push(PlotPoint::new(x, y));
        self.smoothed.push(PlotPoint::new(x, avg));
    }
}

/// Validation F1 and loss per epoch.
#[derive(Debug, Clone, Default)]
pub struct EpochCurves {
    pub f1: Vec<PlotPoint>,
    pub loss: Vec<PlotPoint>,
}

impl EpochCurves {
    pub fn push(&mut self, epoch: &EpochRecord) {
        let x = epoch.epoch as f64;
        if let Some(m) = &epoch.val {
            self.f1.push(PlotPoint::new(x, m.f1));
        }
        if let Some(l) = epoch.val_loss {
            self.loss.push(PlotPoint::new(x, l));
        }
    }
}

/// A recorded run, with its curves ready to plot.
pub struct PlottedRun {
    pub id: i64,
    /// "run 3": short, for the plots' legends.
    pub name: String,
    /// With its start time and outcome, for the list of runs.
    pub label: String,
    pub loss: LossCurve,
    pub val: EpochCurves,
    /// The model it was fine-tuned from, and where its own model is, once it finished.
    pub base_model: Option<String>,
    pub model_dir: Option<PathBuf>,
}

impl PlottedRun {
    pub fn from_recorded(run: &RecordedRun) -> Self {
        let mut loss = LossCurve::default();
        run.steps.iter().for_each(|s| loss.push(s));
        let mut val = EpochCurves::default();
        run.epochs.iter().for_each(|e| val.push(e));
        Self {
            id: run.id,
            name: format!("run {}", run.id),
            label: format!("run {} ({}, {})", run.id, run.started, run.status),
            loss,
            val,
            base_model: run.settings.as_ref().map(|s| s.model.clone()),
            model_dir: (run.status == RunStatus::Finished)
                .then(|| run.model_dir().map(PathBuf::from))
                .flatten(),
        }
    }
}

/// The run in progress: its thread, the workspace file it records into, and its id there.
struct CurrentRun {
    handle: TrainHandle,
    workspace: PathBuf,
    id: Option<i64>,
    base_model: String,
    /// Rows trained on per epoch, once the run has started.
    train_rows: Option<usize>,
}

#[derive(Default)]
pub struct TrainPanel {
    pub settings: TrainSettings,
    run: Option<CurrentRun>,
    /// The current or last run's curves.
    pub loss: LossCurve,
    pub val: EpochCurves,
    /// (step, total steps, samples/s) of the run in progress.
    progress: Option<(usize, usize, f64)>,
    /// Seconds an epoch's training steps take, measured on the run's first steps.
    pub epoch_estimate: Option<f64>,
    /// Validation metrics of the latest epoch (confusion matrix).
    pub last_val: Option<Metrics>,
    /// The class names of the current or last run, for the confusion matrix.
    pub classes: Vec<String>,
    /// Earlier runs of this workspace, and which of them are drawn.
    pub past: Vec<PlottedRun>,
    pub past_shown: BTreeSet<i64>,
    /// Validation metrics of the fast baseline with the current split settings.
    pub baseline_result: Option<Metrics>,
}

impl TrainPanel {
    pub fn new(settings: TrainSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// A run of `base_model` started by `jobs` on the labelled rows of the workspace file
    /// `workspace`.
    pub fn started(
        &mut self,
        handle: TrainHandle,
        workspace: PathBuf,
        classes: Vec<String>,
        base_model: String,
    ) {
        self.classes = classes;
        self.loss = LossCurve::default();
        self.val = EpochCurves::default();
        self.progress = None;
        self.epoch_estimate = None;
        self.last_val = None;
        self.run = Some(CurrentRun {
            handle,
            workspace,
            id: None,
            base_model,
            train_rows: None,
        });
    }

    /// The newest finished run of a model other than the fast one whose model is still on
    /// disk: what "Distil into the fast model" learns from.
    pub fn teacher(&self) -> Option<&PlottedRun> {
        let fast = canonical(&self.settings.fast_model);
        self.past
            .iter()
            .filter(|r| r.model_dir.is_some())
            .filter(|r| {
                r.base_model
                    .as_deref()
                    .is_some_and(|m| canonical(m) != fast)
            })
            .max_by_key(|r| r.id)
    }

    /// Takes an event of the training run; the run's end asks the app to predict with it.
    pub fn on_event(&mut self, event: TrainJobEvent) -> Option<Request> {
        let event = match event {
            TrainJobEvent::Recorded { workspace, run } => {
                if let Some(current) = self.run.as_mut().filter(|c| c.workspace == workspace) {
                    current.id = Some(run);
                }
                return None;
            }
            TrainJobEvent::NotRecorded(message) => {
                return Some(Request::Status(format!(
                    "warning: this run is not recorded in the workspace: {message}"
                )))
            }
            TrainJobEvent::Run(e) => e,
        };
        match event {
            TrainEvent::Status { message } => Some(Request::Status(message)),
            TrainEvent::Started {
                device,
                train_rows,
                val_rows,
                total_steps,
                ..
            } => {
                self.progress = Some((0, total_steps, 0.0));
                if let Some(run) = self.run.as_mut() {
                    run.train_rows = Some(train_rows);
                }
                Some(Request::Status(format!(
                    "training on {device}: {train_rows} rows, {val_rows} for validation"
                )))
            }
            TrainEvent::Estimate {
                seconds_per_epoch,
                measured_steps,
            } => {
                self.epoch_estimate = Some(seconds_per_epoch);
                if let Some(CurrentRun {
                    base_model,
                    train_rows: Some(rows),
                    ..
                }) = &self.run
                {
                    self.settings.measured_speed.insert(
                        canonical(base_model).to_string(),
                        seconds_per_epoch / (*rows).max(1) as f64 * 1000.0,
                    );
                }
                Some(Request::Status(format!(
                    "an epoch's training steps will take about {} on this machine (measured on {measured_steps} steps)",
                    fmt_duration(seconds_per_epoch)
                )))
            }
            TrainEvent::Step(step) => {
                self.loss.push(&step);
                self.progress = Some((step.step, step.total_steps, step.samples_per_s));
                None
            }
            TrainEvent::Epoch(epoch) => {
                self.val.push(&epoch);
                let m = epoch.val?;
                let status = format!(
                    "epoch {}: validation {} {:.3}, accuracy {:.3}",
                    epoch.epoch,
                    m.f1_name(),
                    m.f1,
                    m.accuracy
                );
                self.last_val = Some(m);
                Some(Request::Status(status))
            }
            TrainEvent::CheckpointSaved { epoch, .. } => {
                Some(Request::Status(format!("saved epoch {epoch}")))
            }
            TrainEvent::Finished { dir, .. } => {
                let (workspace, run) = self.finish(Some(dir.clone()))?;
                Some(Request::Predict {
                    workspace,
                    model_dir: dir,
                    run,
                })
            }
            TrainEvent::Cancelled { steps_done } => {
                self.finish(None);
                Some(Request::Status(format!(
                    "training cancelled after {steps_done} steps"
                )))
            }
            TrainEvent::Failed { message } => {
                self.finish(None);
                Some(Request::Error(format!("Training failed: {message}")))
            }
        }
    }

    /// Takes an event of the fast baseline.
    pub fn on_baseline(&mut self, jobs: &mut Jobs, event: JobEvent<Metrics>) -> Option<Request> {
        match jobs.on_event(JobKind::Baseline, event)? {
            Ok(m) => {
                let status = format!("fast baseline: validation {} {:.3}", m.f1_name(), m.f1);
                self.baseline_result = Some(m);
                Some(Request::Status(status))
            }
            Err(message) => Some(Request::Error(format!(
                "The fast baseline failed: {message}"
            ))),
        }
    }

    /// The run ended (with its model in `model_dir` when it finished): its thread is joined
    /// and it joins the past runs, so the next run can be compared with it.
    fn finish(&mut self, model_dir: Option<PathBuf>) -> Option<(PathBuf, Option<i64>)> {
        let run = self.run.take()?;
        self.progress = None;
        if let Some(id) = run.id {
            self.past.retain(|r| r.id != id);
            self.past.push(PlottedRun {
                id,
                name: format!("run {id}"),
                label: format!("run {id} (this session)"),
                loss: self.loss.clone(),
                val: self.val.clone(),
                base_model: Some(run.base_model.clone()),
                model_dir,
            });
        }
        run.handle.join();
        Some((run.workspace, run.id))
    }

    /// A new workspace: its own past runs, nothing current.
    pub fn set_past_runs(&mut self, runs: &[RecordedRun]) {
        self.baseline_result = None;
        self.past = runs.iter().map(PlottedRun::from_recorded).collect();
        self.past_shown.clear();
        if self.run.is_none() {
            self.loss = LossCurve::default();
            self.val = EpochCurves::default();
            self.last_val = None;
        }
    }

    pub fn cancel(&self) {
        if let Some(r) = &self.run {
            r.handle.cancel();
        }
    }

    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    /// Draws the panel; `labelled` counts the labelled rows.
    pub fn show(&mut self, ui: &mut egui::Ui, labelled: usize, jobs: &Jobs) -> Option<TrainAction> {
        let mut action = None;
        ui.heading("Train");
        egui::Grid::new("train_settings")
            .num_columns(2)
            .show(ui, |ui| {
                let l = ui.label("Model");
                ui.text_edit_singleline(&mut self.settings.model)
                    .labelled_by(l.id)
                    .on_hover_text("a Hub id or a local model directory");
                ui.end_row();
                // On a row of its own: the panel keeps its width (a wider first row made it grow
                // after the first frame, and the table beside it laid out twice).
                let l = ui.label("Known models");
                let before = self.settings.model.clone();
                known_models_menu(
                    ui,
                    &mut self.settings.model,
                    &self.settings.measured_speed,
                    self.settings.config.val_split,
                )
                .labelled_by(l.id);
                if self.settings.model != before {
                    // A model with a measured recipe brings its learning rate and epochs.
                    let recipe = TrainConfig::for_model(&self.settings.model);
                    self.settings.config.lr = recipe.lr;
                    self.settings.config.epochs = recipe.epochs;
                }
                ui.end_row();
                let l = ui.label("Epochs");
                ui.add(egui::DragValue::new(&mut self.settings.config.epochs).range(1..=50))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Learning rate");
                ui.add(
                    egui::DragValue::new(&mut self.settings.config.lr)
                        .range(1e-6..=1e-2)
                        .speed(1e-6)
                        .custom_formatter(|v, _| format!("{v:.1e}")),
                )
                .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Batch size");
                ui.add(egui::DragValue::new(&mut self.settings.config.batch_size).range(1..=256))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Max length");
                ui.add(egui::DragValue::new(&mut self.settings.config.max_len).range(8..=512))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Validation share");
                ui.add(
                    egui::DragValue::new(&mut self.settings.config.val_split)
                        .range(0.0..=0.5)
                        .speed(0.01),
                )
                .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Seed");
                ui.add(egui::DragValue::new(&mut self.settings.config.seed))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Device");
                let d = &mut self.settings.config.device;
                egui::ComboBox::from_id_salt("device")
                    .selected_text(format!("{d:?}").to_lowercase())
                    .show_ui(ui, |ui| {
                        ui.selectable_value(d, DeviceChoice::Auto, "auto (CUDA if present)");
                        ui.selectable_value(d, DeviceChoice::Cpu, "cpu");
                        ui.add_enabled_ui(device::CUDA_COMPILED, |ui| {
                            ui.selectable_value(d, DeviceChoice::Cuda, "cuda")
                                .on_disabled_hover_text(
                                    "This build has no CUDA: cargo build --release --features cuda",
                                );
                        });
                    })
                    .response
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Precision");
                let p = &mut self.settings.config.precision;
                egui::ComboBox::from_id_salt("precision")
                    // The menu's entry names the CPU's path (built only while the menu is
                    // open); the closed box stays the same on every machine.
                    .selected_text(p.name())
                    .show_ui(ui, |ui| {
                        let auto = format!("auto ({} on this CPU)", MatmulPath::auto_here().name());
                        ui.selectable_value(p, Precision::Auto, auto);
                        ui.selectable_value(p, Precision::Fp32, "fp32");
                        ui.selectable_value(p, Precision::Bf16, "bf16");
                    })
                    .response
                    .on_hover_text(
                        "The dense layers' arithmetic on the CPU. auto: bf16 where the CPU has \
                         AMX or AVX512-BF16, fp32 elsewhere; bf16 without them is emulated and \
                         slower. Weights and sums stay f32.",
                    )
                    .labelled_by(l.id);
                ui.end_row();
            });
        let running = self.is_running();
        ui.horizontal(|ui| match running {
            false => {
                if ui
                    .add_enabled(labelled >= 2, egui::Button::new("Start training"))
                    .clicked()
                {
                    action = Some(TrainAction::Start);
                }
                ui.label(format!("{labelled} labelled rows"));
                if ui
                    .add_enabled(
                        labelled >= 10 && !jobs.is_running(JobKind::Baseline),
                        egui::Button::new("Fast baseline"),
                    )
                    .on_hover_text("Frozen encoder + logistic regression on the same validation split, in seconds once the embeddings are cached")
                    .clicked()
                {
                    action = Some(TrainAction::Baseline);
                }
                if let Some(teacher) = self.teacher().filter(|_| labelled >= 2) {
                    let fast = &self.settings.fast_model;
                    // The hover text is built only while hovered, not every frame.
                    if ui
                        .button("Distil into the fast model")
                        .on_hover_ui(|ui| {
                            ui.label(format!(
                                "Train {fast} on {}'s probabilities ({}) mixed with the labels, on the labelled rows and the unlabelled ones: most of the accuracy, several times faster to predict",
                                teacher.name,
                                teacher.base_model.as_deref().unwrap_or("?")
                            ));
                        })
                        .clicked()
                    {
                        action = teacher.model_dir.clone().map(|teacher| TrainAction::Distil { teacher });
                    }
                }
            }
            true => {
                if ui.button("Cancel").clicked() {
                    action = Some(TrainAction::Cancel);
                }
            }
        });
        if let (Some(seconds), true) = (self.epoch_estimate, running) {
            ui.label(format!(
                "An epoch's training steps take about {} on this machine (measured on the first steps).",
                fmt_duration(seconds)
            ));
        }
        if let Some((step, total, sps)) = self.progress {
            let left = if sps > 0.0 {
                (total - step) as f64 * self.settings.config.batch_size as f64 / sps
            } else {
                f64::NAN
            };
            ui.add(
                egui::ProgressBar::new(step as f32 / total.max(1) as f32).text(format!(
                    "step {step}/{total} · {sps:.1} samples/s · ETA {left:.0} s"
                )),
            );
        }
        let past: Vec<&PlottedRun> = self
            .past
            .iter()
            .filter(|r| self.past_shown.contains(&r.id))
            .collect();
        Plot::new("loss_plot")
            .height(160.0)
            .legend(Legend::default())
            .x_axis_label("step")
            .show(ui, |plot| {
                plot.line(Line::new(
                    "training loss",
                    PlotPoints::Borrowed(&self.loss.raw),
                ));
                plot.line(Line::new(
                    "smoothed",
                    PlotPoints::Borrowed(&self.loss.smoothed),
                ));
                for r in &past {
                    plot.line(Line::new(
                        format!("{} loss (smoothed)", r.name),
                        PlotPoints::Borrowed(&r.loss.smoothed),
                    ));
                }
            });
        Plot::new("val_plot")
            .height(120.0)
            .legend(Legend::default())
            .x_axis_label("epoch")
            .show(ui, |plot| {
                // Markers as well as lines: after one epoch a line has nothing to draw.
                for (name, points, colour) in [
                    ("validation F1", &self.val.f1, F1_COLOUR),
                    ("validation loss", &self.val.loss, VAL_LOSS_COLOUR),
                ] {
                    plot.line(Line::new(name, PlotPoints::Borrowed(points)).color(colour));
                    plot.points(
                        Points::new(name, PlotPoints::Borrowed(points))
                            .color(colour)
                            .radius(3.0),
                    );
                }
                if let Some(m) = &self.baseline_result {
                    plot.hline(HLine::new("fast baseline F1", m.f1));
                }
                for r in &past {
                    plot.line(Line::new(
                        format!("{} validation F1", r.name),
                        PlotPoints::Borrowed(&r.val.f1),
                    ));
                }
            });
        if jobs.is_running(JobKind::Baseline) {
            ui.label("Fast baseline: working…");
        } else if let Some(m) = &self.baseline_result {
            ui.label(format!(
                "Fast baseline (frozen encoder + logistic regression, same split): F1 {:.3} · accuracy {:.3}",
                m.f1, m.accuracy
            ));
        }
        if let Some(m) = &self.last_val {
            confusion_matrix(ui, m, &self.classes);
        }
        if !self.past.is_empty() {
            ui.collapsing(format!("Past runs ({})", self.past.len()), |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("past_runs")
                    .max_height(120.0)
                    .show(ui, |ui| {
                        for r in self.past.iter().rev() {
                            let mut on = self.past_shown.contains(&r.id);
                            if ui.checkbox(&mut on, &r.label).changed() {
                                if on {
                                    self.past_shown.insert(r.id);
                                } else {
                                    self.past_shown.remove(&r.id);
                                }
                            }
                        }
                    });
            });
        }
        action
    }
}

/// Rows: given label; columns: predicted label (validation split, latest epoch); with more than
/// two classes, each class's F1 beside its row. `classes` names them (numbers when unknown).
fn confusion_matrix(ui: &mut egui::Ui, m: &Metrics, classes: &[String]) {
    let c = &m.confusion.matrix;
    let k = c.len();
    let name = |i: usize| {
        if k == 2 {
            // 0/1 as the table shows them.
            i.to_string()
        } else {
            classes.get(i).cloned().unwrap_or_else(|| i.to_string())
        }
    };
    if k > 2 {
        ui.label(format!(
            "Validation: macro-F1 {:.3} · accuracy {:.3} · macro precision {:.3} · macro recall {:.3}",
            m.f1, m.accuracy, m.precision, m.recall
        ));
    } else {
        ui.label(format!(
            "Validation: F1 {:.3} · accuracy {:.3} · precision {:.3} · recall {:.3}",
            m.f1, m.accuracy, m.precision, m.recall
        ));
    }
    egui::Grid::new("confusion").striped(true).show(ui, |ui| {
        ui.label("given \\ predicted");
        for j in 0..k {
            ui.strong(name(j));
        }
        if k > 2 {
            ui.strong("F1");
        }
        ui.end_row();
        for (i, row) in c.iter().enumerate() {
            ui.strong(name(i));
            for n in row {
                ui.label(n.to_string());
            }
            if k > 2 {
                ui.label(format!("{:.3}", m.per_class[i].f1));
            }
            ui.end_row();
        }
    });
}

const F1_COLOUR: egui::Color32 = egui::Color32::from_rgb(255, 127, 14);
const VAL_LOSS_COLOUR: egui::Color32 = egui::Color32::from_rgb(31, 119, 180);

/// Weight of the past in the smoothed loss curve (exponential moving average).
const SMOOTHING: f64 = 0.9;
