//! The menu bar (File, Edit, View, Help) with the usual shortcuts shown beside each item. It
//! returns what was chosen as a [`TopBarAction`], applied like the top bar's buttons; the
//! shortcuts themselves are read in `input`.

use std::path::PathBuf;

use egui::{Key, KeyboardShortcut, Modifiers};

use super::protocol::ExportKind;
use super::settings::Theme;
use super::top_bar::TopBarAction;

pub const OPEN: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);
pub const IMPORT: KeyboardShortcut =
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::O);
pub const SAVE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::S);
pub const SAVE_AS: KeyboardShortcut =
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::S);
pub const EXPORT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::E);
pub const QUIT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::Q);
pub const UNDO: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::Z);
pub const REDO: KeyboardShortcut =
    KeyboardShortcut::new(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::Z);
pub const FIND: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::F);

/// The shortcuts the window takes even while a text field has focus, most specific first
/// (shift+ctrl+S before ctrl+S), with what each does.
pub fn global_shortcuts() -> [(KeyboardShortcut, TopBarAction); 6] {
    [
        (IMPORT, TopBarAction::ImportWithOptions),
        (OPEN, TopBarAction::PickFile),
        (SAVE_AS, TopBarAction::Export(ExportKind::Dataset)),
        (SAVE, TopBarAction::Save),
        (FIND, TopBarAction::Find),
        (QUIT, TopBarAction::Quit),
    ]
}

/// What the menus show as on, off or enabled.
pub struct MenuView<'a> {
    pub recent: &'a [PathBuf],
    pub has_file: bool,
    pub can_write: bool,
    pub show_detail: bool,
    pub review_open: bool,
    pub theme: Theme,
    pub advance_after_labelling: bool,
}

fn item(ui: &mut egui::Ui, text: &str, shortcut: Option<&KeyboardShortcut>, enabled: bool) -> bool {
    let mut button = egui::Button::new(text);
    if let Some(s) = shortcut {
        button = button.shortcut_text(ui.ctx().format_shortcut(s));
    }
    ui.add_enabled(enabled, button).clicked()
}

pub fn show(ui: &mut egui::Ui, view: &MenuView) -> Option<TopBarAction> {
    let mut action = None;
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if item(ui, "Open…", Some(&OPEN), true) {
                action = Some(TopBarAction::PickFile);
            }
            if item(ui, "Import with options…", Some(&IMPORT), true) {
                action = Some(TopBarAction::ImportWithOptions);
            }
            ui.menu_button("Recent", |ui| {
                if view.recent.is_empty() {
                    ui.weak("nothing yet");
                }
                for path in view.recent {
                    if item(ui, &path.display().to_string(), None, path.is_file()) {
                        action = Some(TopBarAction::Open(path.clone()));
                    }
                }
            });
            ui.separator();
            let writable = view.has_file && view.can_write;
            if item(ui, "Save", Some(&SAVE), writable) {
                action = Some(TopBarAction::Save);
            }
            if item(ui, "Save as…", Some(&SAVE_AS), writable) {
                action = Some(TopBarAction::Export(ExportKind::Dataset));
            }
            if item(ui, "Export…", Some(&EXPORT), writable) {
                action = Some(TopBarAction::Export(ExportKind::Kaggle));
            }
            ui.separator();
            if item(ui, "Quit", Some(&QUIT), true) {
                action = Some(TopBarAction::Quit);
            }
        });
        ui.menu_button("Edit", |ui| {
            if item(ui, "Undo", Some(&UNDO), view.has_file) {
                action = Some(TopBarAction::Undo);
            }
            if item(ui, "Redo", Some(&REDO), view.has_file) {
                action = Some(TopBarAction::Redo);
            }
            if item(ui, "Find", Some(&FIND), view.has_file) {
                action = Some(TopBarAction::Find);
            }
        });
        ui.menu_button("View", |ui| {
            if ui
                .add(
                    egui::Button::selectable(view.show_detail, "Detail panel")
                        .shortcut_text("Enter"),
                )
                .clicked()
            {
                action = Some(TopBarAction::ToggleDetail);
            }
            if ui
                .add_enabled(
                    view.has_file,
                    egui::Button::selectable(view.review_open, "Review window"),
                )
                .clicked()
            {
                action = Some(TopBarAction::ToggleReview);
            }
            if ui
                .add(egui::Button::selectable(
                    view.advance_after_labelling,
                    "Advance after labelling",
                ))
                .on_hover_text("A label key moves on to the next tweet")
                .clicked()
            {
                action = Some(TopBarAction::ToggleAdvance);
            }
            ui.separator();
            for (theme, name) in [
                (Theme::System, "Theme: follow the system"),
                (Theme::Light, "Theme: light"),
                (Theme::Dark, "Theme: dark"),
            ] {
                if ui
                    .add(egui::Button::selectable(view.theme == theme, name))
                    .clicked()
                {
                    action = Some(TopBarAction::SetTheme(theme));
                }
            }
            ui.separator();
            if ui
                .add(egui::Button::new("Frame times").shortcut_text("F12"))
                .clicked()
            {
                action = Some(TopBarAction::ToggleFrameStats);
            }
        });
        ui.menu_button("Help", |ui| {
            if ui
                .add(egui::Button::new("Keys").shortcut_text("?"))
                .clicked()
            {
                action = Some(TopBarAction::ToggleHelp);
            }
            ui.label(format!("tweetlab {}", env!("CARGO_PKG_VERSION")));
        });
    });
    if action.is_some() {
        ui.close();
    }
    action
}
