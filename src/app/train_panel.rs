//! Train panel: settings, Start / Cancel, live loss and validation curves with past runs on the
//! same axes, and the confusion matrix of the latest epoch.

use std::path::PathBuf;

use std::collections::BTreeSet;

use egui_plot::{HLine, Legend, Line, Plot, PlotPoint, PlotPoints, Points};

use crate::engine::device::{self, DeviceChoice};
use crate::engine::metrics::Metrics;
use crate::engine::source::DEFAULT_MODEL;
use crate::engine::train::{self, TrainConfig, TrainEvent, TrainHandle, TrainJob};
use crate::protocol::PastRun;

/// A recorded run, with its curves ready to plot.
pub struct PlottedRun {
    pub id: i64,
    /// "run 3": short, for the plots' legends.
    pub name: String,
    /// With its start time and outcome, for the list of runs.
    pub label: String,
    pub smoothed_loss: Vec<PlotPoint>,
    pub val_f1: Vec<PlotPoint>,
}

impl PlottedRun {
    pub fn from_past(run: &PastRun) -> Self {
        let mut smoothed = Vec::with_capacity(run.train_loss.len());
        for &(x, y) in &run.train_loss {
            let avg = smoothed
                .last()
                .map_or(y, |p: &PlotPoint| SMOOTHING * p.y + (1.0 - SMOOTHING) * y);
            smoothed.push(PlotPoint::new(x, avg));
        }
        Self {
            id: run.id,
            name: format!("run {}", run.id),
            label: format!("run {} ({}, {})", run.id, run.started, run.status),
            smoothed_loss: smoothed,
            val_f1: run
                .val_f1
                .iter()
                .map(|&(x, y)| PlotPoint::new(x, y))
                .collect(),
        }
    }
}

pub struct TrainPanel {
    pub model: String,
    pub config: TrainConfig,
    running: Option<TrainHandle>,
    /// (step, loss) for every training step of the current run, and its moving average
    /// (kept up to date per event, so frames only borrow them).
    pub losses: Vec<PlotPoint>,
    smoothed: Vec<PlotPoint>,
    /// (epoch, validation F1) and (epoch, validation loss).
    pub val_f1: Vec<PlotPoint>,
    pub val_loss: Vec<PlotPoint>,
    progress: Option<(usize, usize, f64)>,
    out_dir: Option<PathBuf>,
    /// Validation metrics of the latest epoch (confusion matrix).
    pub last_val: Option<Metrics>,
    /// The current run's id in the workspace, once recorded.
    pub run_id: Option<i64>,
    /// Earlier runs of this workspace, and which of them are drawn.
    pub past: Vec<PlottedRun>,
    pub past_shown: BTreeSet<i64>,
    /// Validation (F1, accuracy) of the fast baseline with the current split settings.
    pub baseline: Option<(f64, f64)>,
    /// Set while the baseline is being computed.
    pub baseline_running: bool,
}

impl Default for TrainPanel {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.to_string(),
            config: TrainConfig::default(),
            running: None,
            losses: Vec::new(),
            smoothed: Vec::new(),
            val_f1: Vec::new(),
            val_loss: Vec::new(),
            progress: None,
            out_dir: None,
            last_val: None,
            run_id: None,
            past: Vec::new(),
            past_shown: BTreeSet::new(),
            baseline: None,
            baseline_running: false,
        }
    }
}

impl TrainPanel {
    /// Starts a run on the labelled rows; the caller forwards its events.
    pub fn start(
        &mut self,
        texts: Vec<String>,
        labels: Vec<u8>,
        out_dir: PathBuf,
    ) -> Result<&TrainHandle, String> {
        if self.running.is_some() {
            return Err("a training run is already in progress".into());
        }
        if texts.len() < 2 {
            return Err("label at least two tweets before training".into());
        }
        self.losses.clear();
        self.smoothed.clear();
        self.val_f1.clear();
        self.val_loss.clear();
        self.progress = None;
        self.last_val = None;
        self.run_id = None;
        self.out_dir = Some(out_dir.clone());
        let job = TrainJob {
            model: Some(self.model.clone()),
            texts,
            labels,
            out_dir,
            config: self.config.clone(),
        };
        Ok(self.running.insert(train::spawn(job)))
    }

    /// Updates the curves; returns the model directory when a run finished.
    pub fn on_event(
        &mut self,
        event: TrainEvent,
        status: &mut String,
        error: &mut Option<String>,
    ) -> Option<PathBuf> {
        match event {
            TrainEvent::Status { message } => *status = message,
            TrainEvent::Started {
                device,
                train_rows,
                val_rows,
                total_steps,
                ..
            } => {
                *status =
                    format!("training on {device}: {train_rows} rows, {val_rows} for validation");
                self.progress = Some((0, total_steps, 0.0));
            }
            TrainEvent::Step {
                step,
                total_steps,
                loss,
                samples_per_s,
                ..
            } => {
                let (x, y) = (step as f64, f64::from(loss));
                let avg = self
                    .smoothed
                    .last()
                    .map_or(y, |p| SMOOTHING * p.y + (1.0 - SMOOTHING) * y);
                self.losses.push(PlotPoint::new(x, y));
                self.smoothed.push(PlotPoint::new(x, avg));
                self.progress = Some((step, total_steps, samples_per_s));
            }
            TrainEvent::Epoch {
                epoch,
                val_loss,
                val,
                ..
            } => {
                if let Some(m) = val {
                    self.val_f1.push(PlotPoint::new(epoch as f64, m.f1));
                    *status = format!(
                        "epoch {epoch}: validation F1 {:.3}, accuracy {:.3}",
                        m.f1, m.accuracy
                    );
                    self.last_val = Some(m);
                }
                if let Some(l) = val_loss {
                    self.val_loss.push(PlotPoint::new(epoch as f64, l));
                }
            }
            TrainEvent::CheckpointSaved { epoch, .. } => *status = format!("saved epoch {epoch}"),
            TrainEvent::Finished { dir, .. } => {
                self.finish();
                return Some(dir);
            }
            TrainEvent::Cancelled { steps_done } => {
                *status = format!("training cancelled after {steps_done} steps");
                self.finish();
            }
            TrainEvent::Failed { message } => {
                *error = Some(format!("Training failed: {message}"));
                self.finish();
            }
        }
        None
    }

    fn finish(&mut self) {
        if let Some(h) = self.running.take() {
            h.join();
        }
        self.progress = None;
        // The run joins the past runs, so the next run can be compared with it.
        if let Some(id) = self.run_id {
            self.past.retain(|r| r.id != id);
            self.past.push(PlottedRun {
                id,
                name: format!("run {id}"),
                label: format!("run {id} (this session)"),
                smoothed_loss: self.smoothed.clone(),
                val_f1: self.val_f1.clone(),
            });
        }
    }

    /// A new workspace: its own past runs, nothing current.
    pub fn set_past_runs(&mut self, runs: &[PastRun]) {
        self.baseline = None;
        self.past = runs.iter().map(PlottedRun::from_past).collect();
        self.past_shown.clear();
        if self.running.is_none() {
            self.losses.clear();
            self.smoothed.clear();
            self.val_f1.clear();
            self.val_loss.clear();
            self.last_val = None;
        }
    }

    pub fn cancel(&self) {
        if let Some(h) = &self.running {
            h.cancel();
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Draws the panel; `labelled` counts the labelled rows. Returns (Start clicked, Baseline
    /// clicked).
    pub fn show(&mut self, ui: &mut egui::Ui, labelled: usize) -> (bool, bool) {
        let mut baseline = false;
        let mut start = false;
        ui.heading("Train");
        egui::Grid::new("train_settings")
            .num_columns(2)
            .show(ui, |ui| {
                let l = ui.label("Model");
                ui.text_edit_singleline(&mut self.model).labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Epochs");
                ui.add(egui::DragValue::new(&mut self.config.epochs).range(1..=50))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Learning rate");
                ui.add(
                    egui::DragValue::new(&mut self.config.lr)
                        .range(1e-6..=1e-2)
                        .speed(1e-6)
                        .custom_formatter(|v, _| format!("{v:.1e}")),
                )
                .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Batch size");
                ui.add(egui::DragValue::new(&mut self.config.batch_size).range(1..=256))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Max length");
                ui.add(egui::DragValue::new(&mut self.config.max_len).range(8..=512))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Validation share");
                ui.add(
                    egui::DragValue::new(&mut self.config.val_split)
                        .range(0.0..=0.5)
                        .speed(0.01),
                )
                .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Seed");
                ui.add(egui::DragValue::new(&mut self.config.seed))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Device");
                let d = &mut self.config.device;
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
            });
        ui.horizontal(|ui| match &self.running {
            None => {
                if ui
                    .add_enabled(labelled >= 2, egui::Button::new("Start training"))
                    .clicked()
                {
                    start = true;
                }
                ui.label(format!("{labelled} labelled rows"));
                if ui
                    .add_enabled(
                        labelled >= 10 && !self.baseline_running,
                        egui::Button::new("Fast baseline"),
                    )
                    .on_hover_text("Frozen encoder + logistic regression on the same validation split, in seconds once the embeddings are cached")
                    .clicked()
                {
                    baseline = true;
                }
            }
            Some(h) => {
                if ui.button("Cancel").clicked() {
                    h.cancel();
                }
            }
        });
        if let Some((step, total, sps)) = self.progress {
            let left = if sps > 0.0 {
                (total - step) as f64 * self.config.batch_size as f64 / sps
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
                    PlotPoints::Borrowed(&self.losses),
                ));
                plot.line(Line::new("smoothed", PlotPoints::Borrowed(&self.smoothed)));
                for r in &past {
                    plot.line(Line::new(
                        format!("{} loss (smoothed)", r.name),
                        PlotPoints::Borrowed(&r.smoothed_loss),
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
                    ("validation F1", &self.val_f1, F1_COLOUR),
                    ("validation loss", &self.val_loss, VAL_LOSS_COLOUR),
                ] {
                    plot.line(Line::new(name, PlotPoints::Borrowed(points)).color(colour));
                    plot.points(
                        Points::new(name, PlotPoints::Borrowed(points))
                            .color(colour)
                            .radius(3.0),
                    );
                }
                if let Some((f1, _)) = self.baseline {
                    plot.hline(HLine::new("fast baseline F1", f1));
                }
                for r in &past {
                    plot.line(Line::new(
                        format!("{} validation F1", r.name),
                        PlotPoints::Borrowed(&r.val_f1),
                    ));
                }
            });
        match (self.baseline, self.baseline_running) {
            (_, true) => {
                ui.label("Fast baseline: working…");
            }
            (Some((f1, accuracy)), false) => {
                ui.label(format!(
                    "Fast baseline (frozen encoder + logistic regression, same split): F1 {f1:.3} · accuracy {accuracy:.3}"
                ));
            }
            (None, false) => {}
        }
        if let Some(m) = &self.last_val {
            confusion_matrix(ui, m);
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
        (start, baseline)
    }
}

/// Rows: given label; columns: predicted label (validation split, latest epoch).
fn confusion_matrix(ui: &mut egui::Ui, m: &Metrics) {
    let c = &m.confusion;
    ui.label(format!(
        "Validation: F1 {:.3} · accuracy {:.3} · precision {:.3} · recall {:.3}",
        m.f1, m.accuracy, m.precision, m.recall
    ));
    egui::Grid::new("confusion").striped(true).show(ui, |ui| {
        ui.label("given \\ predicted");
        ui.strong("0");
        ui.strong("1");
        ui.end_row();
        ui.strong("0");
        ui.label(c.true_negative.to_string());
        ui.label(c.false_positive.to_string());
        ui.end_row();
        ui.strong("1");
        ui.label(c.false_negative.to_string());
        ui.label(c.true_positive.to_string());
        ui.end_row();
    });
}

const F1_COLOUR: egui::Color32 = egui::Color32::from_rgb(255, 127, 14);
const VAL_LOSS_COLOUR: egui::Color32 = egui::Color32::from_rgb(31, 119, 180);

/// Weight of the past in the smoothed loss curve (exponential moving average).
const SMOOTHING: f64 = 0.9;
