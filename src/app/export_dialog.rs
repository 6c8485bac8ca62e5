//! Export dialog (Kaggle submission, full predictions, corrected dataset, edit history) and the
//! Save confirmation. Both only collect what to write; the app copies the data and a worker
//! writes it atomically.

use std::path::{Path, PathBuf};

use super::protocol::ExportKind;

/// What the user asked to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    pub kind: ExportKind,
    pub path: PathBuf,
}

pub struct ExportDialog {
    pub open: bool,
    pub kind: ExportKind,
    pub path: String,
    /// The user's own path for the current kind (not replaced by the suggested one).
    path_edited: bool,
    /// Waiting for "replace the existing file?".
    confirm: Option<PathBuf>,
    /// Set while a save dialog is open off the UI thread.
    pub browsing: bool,
}

impl Default for ExportDialog {
    fn default() -> Self {
        Self {
            open: false,
            kind: ExportKind::Kaggle,
            path: String::new(),
            path_edited: false,
            confirm: None,
            browsing: false,
        }
    }
}

/// A file name next to the source CSV for each kind of export.
pub fn suggested_path(source: &Path, kind: ExportKind) -> PathBuf {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "tweets".into());
    let name = match kind {
        ExportKind::Kaggle => "submission.csv".to_string(),
        ExportKind::FullPredictions => format!("{stem}-predictions.csv"),
        ExportKind::Dataset => format!("{stem}-corrected.csv"),
        ExportKind::History => format!("{stem}-history.csv"),
    };
    source.with_file_name(name)
}

impl ExportDialog {
    /// Opens the dialog on `kind`.
    pub fn open_for(&mut self, kind: ExportKind, source: &Path) {
        self.open = true;
        self.kind = kind;
        self.path_edited = false;
        self.path = suggested_path(source, kind).display().to_string();
        self.confirm = None;
    }

    /// A path picked in the native dialog.
    pub fn picked(&mut self, path: PathBuf) {
        self.path = path.display().to_string();
        self.path_edited = true;
        self.browsing = false;
    }

    /// Draws the dialog. `source` is the CSV the workspace came from; `has_predictions` says
    /// whether prediction exports are possible. Returns (request, browse clicked).
    pub fn show(
        &mut self,
        ctx: &egui::Context,
        source: &Path,
        has_predictions: bool,
    ) -> (Option<ExportRequest>, bool) {
        let (mut request, mut browse) = (None, false);
        if !self.open {
            return (None, false);
        }
        let mut open = true;
        egui::Window::new("Export")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                let before = self.kind;
                for kind in ExportKind::ALL {
                    let enabled = has_predictions || !kind.needs_predictions();
                    ui.add_enabled_ui(enabled, |ui| {
                        ui.radio_value(&mut self.kind, kind, kind.title())
                            .on_disabled_hover_text("Train a model first: no predictions yet");
                    });
                }
                if self.kind != before && !self.path_edited {
                    self.path = suggested_path(source, self.kind).display().to_string();
                }
                ui.horizontal(|ui| {
                    let l = ui.label("File:");
                    let field = ui
                        .add(egui::TextEdit::singleline(&mut self.path).desired_width(360.0))
                        .labelled_by(l.id);
                    if field.changed() {
                        self.path_edited = true;
                    }
                    if ui
                        .add_enabled(!self.browsing, egui::Button::new("Browse…"))
                        .clicked()
                    {
                        self.browsing = true;
                        browse = true;
                    }
                });
                let ready = !self.path.trim().is_empty()
                    && (has_predictions || !self.kind.needs_predictions());
                match self.confirm.clone() {
                    None => {
                        if ui.add_enabled(ready, egui::Button::new("Export")).clicked() {
                            let path = PathBuf::from(self.path.trim());
                            if path.exists() {
                                self.confirm = Some(path);
                            } else {
                                request = Some(ExportRequest {
                                    kind: self.kind,
                                    path,
                                });
                            }
                        }
                    }
                    Some(path) => {
                        let is_source = same_file(&path, source);
                        ui.colored_label(
                            ui.visuals().warn_fg_color,
                            if is_source {
                                format!(
                                    "{} is the file you opened. Replace it with this export?",
                                    path.display()
                                )
                            } else {
                                format!("{} exists. Replace it?", path.display())
                            },
                        );
                        ui.horizontal(|ui| {
                            if ui.button("Replace").clicked() {
                                request = Some(ExportRequest {
                                    kind: self.kind,
                                    path: path.clone(),
                                });
                                self.confirm = None;
                            }
                            if ui.button("Keep it").clicked() {
                                self.confirm = None;
                            }
                        });
                    }
                }
            });
        if !open {
            self.open = false;
            self.confirm = None;
        }
        if request.is_some() {
            self.open = false;
        }
        (request, browse)
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// "Save": write the current labels back into the CSV that was opened, after asking.
#[derive(Default)]
pub struct SaveConfirm {
    pub open: bool,
}

impl SaveConfirm {
    /// Returns true when the user confirmed overwriting `source`.
    pub fn show(&mut self, ctx: &egui::Context, source: &Path, edited: usize) -> bool {
        if !self.open {
            return false;
        }
        let mut confirmed = false;
        egui::Window::new("Save")
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                ui.label(format!(
                    "Write the current labels into {}?\n{edited} rows differ from the labels it was opened with. Only the label cells change; every other line and byte of the file stays as it is. Your edits are already kept in the workspace; saving only changes the CSV.",
                    source.display()
                ));
                ui.horizontal(|ui| {
                    if ui.button("Overwrite the CSV").clicked() {
                        confirmed = true;
                        self.open = false;
                    }
                    if ui.button("Cancel").clicked() {
                        self.open = false;
                    }
                });
            });
        confirmed
    }
}
