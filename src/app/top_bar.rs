//! Top bar: open (dialog, recent files, path), save, export, train / cancel, device. It draws
//! from what it is given and returns what was clicked; the app applies it.

use std::path::PathBuf;

use super::protocol::ExportKind;
use crate::engine::device::DeviceChoice;

/// What the top bar needs to know.
pub struct TopBarView<'a> {
    pub recent: &'a [PathBuf],
    /// A file is open.
    pub has_file: bool,
    /// The open file's predictions, looked at only when Export is clicked (a pass over every
    /// row is no per-frame work).
    pub predictions: &'a [Option<Vec<f32>>],
    /// Nothing is being written (Save and Export wait for it).
    pub can_write: bool,
    pub training: bool,
    pub device: DeviceChoice,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TopBarAction {
    PickFile,
    Open(PathBuf),
    Save,
    Export(ExportKind),
    ToggleReview,
    Train,
    CancelTraining,
    ToggleHelp,
    /// The import dialog for the open file (else a file to choose).
    ImportWithOptions,
    Quit,
    Undo,
    Redo,
    Find,
    ToggleDetail,
    ToggleAdvance,
    SetTheme(super::settings::Theme),
    ToggleFrameStats,
    /// File > Connect to team project…
    ConnectTeam,
    LeaveTeam,
    ToggleTeamReview,
}

/// Draws the bar; `path_field` is the path the user is typing.
pub fn show(ui: &mut egui::Ui, view: &TopBarView, path_field: &mut String) -> Option<TopBarAction> {
    let mut action = None;
    ui.horizontal(|ui| {
        ui.heading("tweetlab");
        ui.separator();
        if ui
            .button("Open…")
            .on_hover_text("Choose a CSV in the file dialog")
            .clicked()
        {
            action = Some(TopBarAction::PickFile);
        }
        ui.menu_button("Recent", |ui| {
            if view.recent.is_empty() {
                ui.weak("nothing yet");
            }
            for path in view.recent {
                if ui
                    .add_enabled(
                        path.is_file(),
                        egui::Button::new(path.display().to_string()),
                    )
                    .clicked()
                {
                    action = Some(TopBarAction::Open(path.clone()));
                    ui.close();
                }
            }
        });
        let label = ui.label("Path:");
        let field = ui
            .add(
                egui::TextEdit::singleline(path_field)
                    .hint_text("path/to/tweets.csv")
                    .desired_width(280.0),
            )
            .labelled_by(label.id);
        let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Load").clicked() || enter) && !path_field.trim().is_empty() {
            action = Some(TopBarAction::Open(PathBuf::from(path_field.trim())));
        }
        ui.separator();
        let has_ws = view.has_file && view.can_write;
        if ui
            .add_enabled(has_ws, egui::Button::new("Save"))
            .on_hover_text("Write the current labels into the CSV you opened (asks first)")
            .clicked()
        {
            action = Some(TopBarAction::Save);
        }
        if ui
            .add_enabled(has_ws, egui::Button::new("Save as…"))
            .on_hover_text("Write the corrected dataset to another file")
            .clicked()
        {
            action = Some(TopBarAction::Export(ExportKind::Dataset));
        }
        if ui
            .add_enabled(has_ws, egui::Button::new("Export…"))
            .on_hover_text("Kaggle submission, full predictions, corrected dataset, edit history")
            .clicked()
        {
            let kind = if view.predictions.iter().any(Option::is_some) {
                ExportKind::Kaggle
            } else {
                ExportKind::Dataset
            };
            action = Some(TopBarAction::Export(kind));
        }
        if ui
            .add_enabled(view.has_file, egui::Button::new("Review…"))
            .on_hover_text("Suspect labels and conflicting duplicates, one key per decision")
            .clicked()
        {
            action = Some(TopBarAction::ToggleReview);
        }
        ui.separator();
        if view.training {
            if ui.button("Cancel training").clicked() {
                action = Some(TopBarAction::CancelTraining);
            }
        } else if ui
            .add_enabled(view.has_file, egui::Button::new("Train"))
            .on_hover_text("Fine-tune with the settings in the Train panel")
            .clicked()
        {
            action = Some(TopBarAction::Train);
        }
        ui.separator();
        ui.label(format!("device: {}", device_name(view.device)));
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("?").on_hover_text("Keyboard shortcuts").clicked() {
                action = Some(TopBarAction::ToggleHelp);
            }
        });
    });
    action
}

/// What training would run on with the chosen device setting, without opening a device.
fn device_name(choice: DeviceChoice) -> &'static str {
    use crate::engine::device::CUDA_COMPILED;
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
