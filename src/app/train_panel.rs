//! Train panel: settings, Start / Cancel, live loss and validation curves, and the selected
//! tweet in full.

use std::path::PathBuf;

use egui_plot::{Legend, Line, Plot, PlotPoint, PlotPoints};

use crate::data::Tweet;
use crate::engine::source::DEFAULT_MODEL;
use crate::engine::train::{self, TrainConfig, TrainEvent, TrainHandle, TrainJob};

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
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Draws the panel; `labelled` counts the labelled rows. Returns true on Start.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        rows: &[Tweet],
        labelled: usize,
        selected: Option<usize>,
        predictions: &[Option<f32>],
    ) -> bool {
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
        Plot::new("loss_plot")
            .height(160.0)
            .legend(Legend::default())
            .show(ui, |plot| {
                plot.line(Line::new(
                    "training loss",
                    PlotPoints::Borrowed(&self.losses),
                ));
                plot.line(Line::new("smoothed", PlotPoints::Borrowed(&self.smoothed)));
            });
        Plot::new("val_plot")
            .height(120.0)
            .legend(Legend::default())
            .show(ui, |plot| {
                plot.line(Line::new(
                    "validation F1",
                    PlotPoints::Borrowed(&self.val_f1),
                ));
                plot.line(Line::new(
                    "validation loss",
                    PlotPoints::Borrowed(&self.val_loss),
                ));
            });
        ui.separator();
        ui.heading("Tweet");
        match selected.and_then(|i| rows.get(i).map(|t| (i, t))) {
            Some((i, t)) => {
                ui.label(format!(
                    "id {} · line {} · label {}",
                    t.id,
                    t.line,
                    t.label.map_or("none".into(), |l| l.to_string())
                ));
                if let Some(p) = predictions.get(i).copied().flatten() {
                    ui.label(format!("p(disaster) = {p:.3}"));
                }
                egui::ScrollArea::vertical()
                    .id_salt("tweet_text")
                    .show(ui, |ui| {
                        ui.add(egui::Label::new(&t.text).wrap());
                    });
            }
            None => {
                ui.label("Select a tweet (click, or j / k).");
            }
        }
        start
    }
}

/// Weight of the past in the smoothed loss curve (exponential moving average).
const SMOOTHING: f64 = 0.9;
