//! Top bar: open a CSV by dialog or by path.

use std::path::PathBuf;

use super::{workers, TweetlabApp};

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
        let label = ui.label("Path:");
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut app.path_field)
                    .hint_text("path/to/tweets.csv")
                    .desired_width(360.0),
            )
            .labelled_by(label.id);
        let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Load").clicked() || enter) && !app.path_field.trim().is_empty() {
            app.open(PathBuf::from(app.path_field.trim()));
        }
        ui.separator();
        let device =
            if crate::engine::device::CUDA_COMPILED && candle_core::utils::cuda_is_available() {
                "CUDA"
            } else {
                "CPU"
            };
        ui.label(format!("device: {device}"));
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("?").on_hover_text("Keyboard shortcuts").clicked() {
                app.show_help = !app.show_help;
            }
        });
    });
}
