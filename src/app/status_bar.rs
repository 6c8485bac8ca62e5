//! Status bar: rows, labels, edits, what the engine is doing, the last error.

use super::TweetlabApp;

pub fn show(app: &mut TweetlabApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        if app.workspace.is_some() {
            let (labelled, edited) = app.counts();
            let rows = app.workspace.as_ref().map_or(0, |w| w.rows().len());
            ui.label(format!(
                "{rows} rows · {labelled} labelled · {edited} edited"
            ));
            ui.separator();
        }
        ui.label(&app.status);
        if let Some(err) = app.error.clone() {
            ui.separator();
            ui.colored_label(ui.visuals().error_fg_color, err);
            if ui.small_button("dismiss").clicked() {
                app.error = None;
            }
        }
    });
}
