//! Top bar: open (dialog, recent files, path), save, export, train / cancel, device.

use std::path::PathBuf;

use super::{workers, TweetlabApp};
use crate::protocol::ExportKind;

pub fn show(app: &mut TweetlabApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.heading("tweetlab");
        ui.separator();
        if ui
            .button("Open…")
            .on_hover_text("Choose a CSV in the file dialog")
            .clicked()
        {
            workers::pick_file(app.tx.clone(), app.ctx.clone());
        }
        let mut reopen = None;
        ui.menu_button("Recent", |ui| {
            if app.settings.recent.is_empty() {
                ui.weak("nothing yet");
            }
            for path in &app.settings.recent {
                if ui
                    .add_enabled(
                        path.is_file(),
                        egui::Button::new(path.display().to_string()),
                    )
                    .clicked()
                {
                    reopen = Some(path.clone());
                    ui.close();
                }
            }
        });
        if let Some(path) = reopen {
            app.open(path);
        }
        let label = ui.label("Path:");
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut app.path_field)
                    .hint_text("path/to/tweets.csv")
                    .desired_width(280.0),
            )
            .labelled_by(label.id);
        let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Load").clicked() || enter) && !app.path_field.trim().is_empty() {
            app.open(PathBuf::from(app.path_field.trim()));
        }
        ui.separator();
        let has_ws = app.workspace.is_some() && !app.exporting;
        if ui
            .add_enabled(has_ws, egui::Button::new("Save"))
            .on_hover_text("Write the current labels into the CSV you opened (asks first)")
            .clicked()
        {
            app.save.open = true;
        }
        if ui
            .add_enabled(has_ws, egui::Button::new("Save as…"))
            .on_hover_text("Write the corrected dataset to another file")
            .clicked()
        {
            app.open_export(ExportKind::Dataset);
        }
        if ui
            .add_enabled(has_ws, egui::Button::new("Export…"))
            .on_hover_text("Kaggle submission, full predictions, corrected dataset, edit history")
            .clicked()
        {
            let kind = if app.predictions.iter().any(Option::is_some) {
                ExportKind::Kaggle
            } else {
                ExportKind::Dataset
            };
            app.open_export(kind);
        }
        if ui
            .add_enabled(app.workspace.is_some(), egui::Button::new("Review…"))
            .on_hover_text("Suspect labels and conflicting duplicates, one key per decision")
            .clicked()
        {
            app.toggle_review();
        }
        ui.separator();
        if app.train.is_running() {
            if ui.button("Cancel training").clicked() {
                app.train.cancel();
            }
        } else if ui
            .add_enabled(app.workspace.is_some(), egui::Button::new("Train"))
            .on_hover_text("Fine-tune with the settings in the Train panel")
            .clicked()
        {
            app.start_training();
        }
        ui.separator();
        ui.label(format!("device: {}", device_name(app.train.config.device)));
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("?").on_hover_text("Keyboard shortcuts").clicked() {
                app.show_help = !app.show_help;
            }
        });
    });
}

/// What training would run on with the chosen device setting, without opening a device.
fn device_name(choice: crate::engine::device::DeviceChoice) -> &'static str {
    use crate::engine::device::{DeviceChoice, CUDA_COMPILED};
    static CUDA_PRESENT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let cuda =
        *CUDA_PRESENT.get_or_init(|| CUDA_COMPILED && candle_core::utils::cuda_is_available());
    match choice {
        DeviceChoice::Cpu => "CPU",
        DeviceChoice::Auto if cuda => "CUDA (GPU 0)",
        DeviceChoice::Auto => "CPU",
        DeviceChoice::Cuda if cuda => "CUDA (GPU 0)",
        DeviceChoice::Cuda => "CUDA unavailable",
    }
}
