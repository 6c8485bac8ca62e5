//! Status bar: rows, labels, edits since import, last autosave, what the engine is doing, the
//! latest message. It draws from what it is given.

use super::open_file::Counts;

/// What the status bar shows.
pub struct StatusView<'a> {
    /// Rows, counts and last autosave of the open file, if one is open.
    pub file: Option<(usize, Counts, Option<&'a str>)>,
    /// What the busiest background job is doing, if any.
    pub busy: Option<&'a str>,
    pub status: &'a str,
    pub error: Option<&'a str>,
    /// The team project's line, in team mode; offline shows as a warning.
    pub team: Option<(String, bool)>,
}

pub fn show(ui: &mut egui::Ui, view: &StatusView) {
    ui.horizontal(|ui| {
        if let Some((rows, counts, last_autosave)) = view.file {
            ui.label(format!(
                "{rows} rows · {} labelled · {} edited",
                counts.labelled, counts.edited
            ));
            match last_autosave {
                Some(at) => ui.weak(format!("saved to workspace {at}")),
                None => ui.weak("edits are saved as you make them"),
            };
            ui.separator();
        }
        if let Some((line, offline)) = &view.team {
            if *offline {
                ui.colored_label(ui.visuals().warn_fg_color, line);
            } else {
                ui.label(line);
            }
            ui.separator();
        }
        ui.label(format!("engine: {}", view.busy.unwrap_or("idle")));
        ui.separator();
        ui.label(view.status);
        if let Some(err) = view.error {
            ui.separator();
            ui.colored_label(
                ui.visuals().error_fg_color,
                err.lines().next().unwrap_or(""),
            );
        }
    });
}
