//! Status bar: rows, labels, edits, what the engine is doing, the last error.

use super::TweetlabApp;

pub fn show(app: &mut TweetlabApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        if let Some(ws) = &app.workspace {
            let labelled = ws.rows().iter().filter(|t| t.label.is_some()).count();
            ui.label(format!(
                "{} rows · {labelled} labelled · {} edited",
                ws.rows().len(),
                ws.edited_rows()
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
