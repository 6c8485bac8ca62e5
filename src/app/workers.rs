//! Background threads the UI starts. Each sends `protocol::Event`s and wakes the UI.

use std::path::{Path, PathBuf};

use crossbeam_channel::Sender;

use crate::data::store::Workspace;
use crate::data::{load_csv_with, ImportOptions};
use crate::engine::device::{self, DeviceChoice};
use crate::engine::infer;
use crate::engine::model::LoadedModel;
use crate::engine::source;
use crate::engine::train::TrainHandle;
use crate::protocol::Event;

fn send(tx: &Sender<Event>, ctx: &egui::Context, event: Event) {
    let _ = tx.send(event);
    ctx.request_repaint();
}

/// Opens the workspace of `csv` (importing the CSV the first time).
pub fn load(csv: PathBuf, tx: Sender<Event>, ctx: egui::Context) {
    std::thread::spawn(move || {
        let result = (|| -> anyhow::Result<(Workspace, Vec<crate::data::Problem>)> {
            let db = Workspace::default_path(&csv);
            if db.is_file() {
                return Ok((Workspace::open(&db)?, Vec::new()));
            }
            let data = load_csv_with(&csv, &ImportOptions::default(), &mut |done, total| {
                send(&tx, &ctx, Event::LoadProgress { done, total })
            })?;
            Ok((Workspace::create(&db, &csv, &data)?, data.problems))
        })();
        match result {
            Ok((ws, problems)) => send(
                &tx,
                &ctx,
                Event::Loaded {
                    csv,
                    workspace: Box::new(ws),
                    problems,
                },
            ),
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

/// Shows the native file dialog off the UI thread. Without a desktop portal rfd returns None
/// at once; the UI then points at the path field.
pub fn pick_file(tx: Sender<Event>, ctx: egui::Context) {
    std::thread::spawn(move || {
        let picked = rfd::FileDialog::new()
            .add_filter("CSV or TSV", &["csv", "tsv", "txt"])
            .pick_file();
        send(&tx, &ctx, Event::Picked(picked));
    });
}

/// Forwards a training run's events to the UI.
pub fn forward_training(handle: &TrainHandle, tx: Sender<Event>, ctx: egui::Context) {
    let events = handle.events.clone();
    std::thread::spawn(move || {
        for e in events.iter() {
            send(&tx, &ctx, Event::Train(e));
        }
    });
}

/// Predicts every text of `workspace` with the fine-tuned model in `model_dir`.
pub fn predict(
    workspace: PathBuf,
    model_dir: PathBuf,
    texts: Vec<String>,
    tx: Sender<Event>,
    ctx: egui::Context,
) {
    std::thread::spawn(move || {
        let result = (|| -> anyhow::Result<Vec<f32>> {
            let files = source::inspect_dir(&model_dir, &model_dir.display().to_string())?;
            let model = LoadedModel::load(&files, &device::select(DeviceChoice::Auto)?, None, 0)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            Ok(infer::probabilities(
                &model,
                &refs,
                model.default_max_len(),
                64,
                &mut |_, _| {},
            )?)
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

/// Where a workspace keeps its fine-tuned models: next to the workspace file.
pub fn runs_dir(workspace: &Path) -> PathBuf {
    workspace.with_extension("runs")
}
