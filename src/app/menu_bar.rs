//! The menu bar (File, Edit, View, Help) with the usual shortcuts shown beside each item. It
//! returns what was chosen as a [`TopBarAction`], applied like the top bar's buttons; the
//! shortcuts shown are the `keymap`'s, which `input` reads.

use std::path::PathBuf;

use egui::KeyboardShortcut;

use super::keymap::shortcut_for;
use super::protocol::ExportKind;
use super::settings::Theme;
use super::top_bar::TopBarAction;

/// What the menus show as on, off or enabled.
pub struct MenuView<'a> {
    pub recent: &'a [PathBuf],
    pub has_file: bool,
    pub can_write: bool,
    pub show_detail: bool,
    pub review_open: bool,
    pub theme: Theme,
    pub advance_after_labelling: bool,
    /// Joined to a team project, and whether this role settles rows.
    pub team: Option<bool>,
    pub team_review_open: bool,
}

fn item(ui: &mut egui::Ui, text: &str, shortcut: Option<KeyboardShortcut>, enabled: bool) -> bool {
    let mut button = egui::Button::new(text);
    if let Some(s) = shortcut {
        button = button.shortcut_text(ui.ctx().format_shortcut(&s));
    }
    ui.add_enabled(enabled, button).clicked()
}

/// A menu item for `action`, with the keymap's shortcut for it.
fn command(
    ui: &mut egui::Ui,
    text: &str,
    action: TopBarAction,
    enabled: bool,
    chosen: &mut Option<TopBarAction>,
) {
    if item(ui, text, shortcut_for(&action), enabled) {
        *chosen = Some(action);
    }
}

pub fn show(ui: &mut egui::Ui, view: &MenuView) -> Option<TopBarAction> {
    let mut action = None;
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            command(ui, "Open…", TopBarAction::PickFile, true, &mut action);
            command(
                ui,
                "Import with options…",
                TopBarAction::ImportWithOptions,
                true,
                &mut action,
            );
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
            command(ui, "Save", TopBarAction::Save, writable, &mut action);
            command(
                ui,
                "Save as…",
                TopBarAction::Export(ExportKind::Dataset),
                writable,
                &mut action,
            );
            command(
                ui,
                "Export…",
                TopBarAction::Export(ExportKind::Kaggle),
                writable,
                &mut action,
            );
            ui.separator();
            match view.team {
                None => command(
                    ui,
                    "Connect to team project…",
                    TopBarAction::ConnectTeam,
                    true,
                    &mut action,
                ),
                Some(_) => command(
                    ui,
                    "Leave team project",
                    TopBarAction::LeaveTeam,
                    true,
                    &mut action,
                ),
            }
            ui.separator();
            command(ui, "Quit", TopBarAction::Quit, true, &mut action);
        });
        ui.menu_button("Edit", |ui| {
            command(ui, "Undo", TopBarAction::Undo, view.has_file, &mut action);
            command(ui, "Redo", TopBarAction::Redo, view.has_file, &mut action);
            command(ui, "Find", TopBarAction::Find, view.has_file, &mut action);
        });
        ui.menu_button("View", |ui| {
            if ui
                .add(
                    egui::Button::selectable(view.show_detail, "Detail panel").shortcut_text(
                        shortcut_for(&TopBarAction::ToggleDetail)
                            .map(|s| ui.ctx().format_shortcut(&s))
                            .unwrap_or_default(),
                    ),
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
                .add_enabled(
                    view.team.is_some(),
                    egui::Button::selectable(view.team_review_open, "Team review"),
                )
                .clicked()
            {
                action = Some(TopBarAction::ToggleTeamReview);
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
            command(
                ui,
                "Frame times",
                TopBarAction::ToggleFrameStats,
                true,
                &mut action,
            );
        });
        ui.menu_button("Help", |ui| {
            command(ui, "Keys", TopBarAction::ToggleHelp, true, &mut action);
            ui.label(format!("tweetlab {}", env!("CARGO_PKG_VERSION")));
        });
    });
    if action.is_some() {
        ui.close();
    }
    action
}
