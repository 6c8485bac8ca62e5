//! Status bar: rows, labels, edits since import, last autosave, what the engine is doing.

use super::TweetlabApp;

pub fn show(app: &mut TweetlabApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        if app.workspace.is_some() {
            let (labelled, edited) = app.counts();
            let rows = app.workspace.as_ref().map_or(0, |w| w.rows().len());
            ui.label(format!(
                "{rows} rows · {labelled} labelled · {edited} edited"
            ));
            match &app.last_autosave {
                Some(at) => ui.weak(format!("saved to workspace {at}")),
                None => ui.weak("edits are saved as you make them"),
            };
            ui.separator();
        }
        let engine = if app.train.is_running() {
            "engine: training"
        } else if app.predicting {
            "engine: predicting"
        } else if app.exporting {
            "engine: exporting"
        } else if app.review.running {
            "engine: finding suspect labels"
        } else if app.explanations.pending.is_some() {
            "engine: explaining"
        } else {
            "engine: idle"
        };
        ui.label(engine);
        ui.separator();
        ui.label(&app.status);
        if let Some(err) = &app.error {
            ui.separator();
            ui.colored_label(
                ui.visuals().error_fg_color,
                err.lines().next().unwrap_or(""),
            );
        }
    });
}
