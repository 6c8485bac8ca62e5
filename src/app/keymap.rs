//! The one keymap: every command the keyboard reaches, with its keys and what it does. The
//! menus show these shortcuts, `input` reads them and the Keys window lists them, so a shortcut
//! shown is a shortcut that works.

use egui::{Key, KeyboardShortcut, Modifiers};

use super::protocol::ExportKind;
use super::top_bar::TopBarAction;

/// A command's keys and what it does.
pub struct Binding {
    pub keys: KeyboardShortcut,
    pub action: TopBarAction,
    /// For the Keys window.
    pub what: &'static str,
    /// Taken even while a text field has focus (the menu's shortcuts, F12).
    pub anywhere: bool,
}

const fn keys(modifiers: Modifiers, key: Key) -> KeyboardShortcut {
    KeyboardShortcut::new(modifiers, key)
}

const CTRL: Modifiers = Modifiers::COMMAND;
const CTRL_SHIFT: Modifiers = Modifiers::COMMAND.plus(Modifiers::SHIFT);

/// Every binding, most specific first: egui matches ctrl+Z on ctrl+shift+Z too, so the
/// shifted one must be tried before. A static table: the key handler reads it every frame.
pub static BINDINGS: [Binding; 13] = [
    b(
        keys(CTRL_SHIFT, Key::O),
        TopBarAction::ImportWithOptions,
        "import with options",
        true,
    ),
    b(
        keys(CTRL, Key::O),
        TopBarAction::PickFile,
        "open a CSV",
        true,
    ),
    b(
        keys(CTRL_SHIFT, Key::S),
        TopBarAction::Export(ExportKind::Dataset),
        "save as",
        true,
    ),
    b(keys(CTRL, Key::S), TopBarAction::Save, "save", true),
    b(
        keys(CTRL, Key::E),
        TopBarAction::Export(ExportKind::Kaggle),
        "export predictions, the dataset or the history",
        true,
    ),
    b(keys(CTRL, Key::F), TopBarAction::Find, "find", true),
    b(keys(CTRL, Key::Q), TopBarAction::Quit, "quit", true),
    b(
        keys(Modifiers::NONE, Key::F12),
        TopBarAction::ToggleFrameStats,
        "frame-time overlay",
        true,
    ),
    b(keys(CTRL_SHIFT, Key::Z), TopBarAction::Redo, "redo", false),
    b(keys(CTRL, Key::Z), TopBarAction::Undo, "undo", false),
    b(
        keys(Modifiers::NONE, Key::Slash),
        TopBarAction::Find,
        "search",
        false,
    ),
    b(
        keys(Modifiers::NONE, Key::Enter),
        TopBarAction::ToggleDetail,
        "show / hide the tweet detail",
        false,
    ),
    b(
        keys(Modifiers::NONE, Key::Questionmark),
        TopBarAction::ToggleHelp,
        "this help",
        false,
    ),
];

const fn b(
    keys: KeyboardShortcut,
    action: TopBarAction,
    what: &'static str,
    anywhere: bool,
) -> Binding {
    Binding {
        keys,
        action,
        what,
        anywhere,
    }
}

/// The first keys bound to `action`, as the menu shows them.
pub fn shortcut_for(action: &TopBarAction) -> Option<KeyboardShortcut> {
    BINDINGS
        .iter()
        .find(|b| &b.action == action)
        .map(|b| b.keys)
}

/// Keys the table and the review window read themselves (counted moves, class digits), for the
/// Keys window.
pub const OTHER_KEYS: [(&str, &str); 10] = [
    ("j / ↓, k / ↑", "next / previous tweet"),
    ("page down / up", "20 tweets down / up"),
    ("1 / 0", "label disaster / not disaster (0/1 files)"),
    (
        "1 … 9",
        "label with the first … ninth class (named classes)",
    ),
    ("x", "clear the label"),
    (
        "ctrl+click, shift+click",
        "select rows; 1 / 0 / x label them all",
    ),
    ("esc", "clear the selection, close this"),
    (
        "click a column title",
        "sort (again: reverse, again: file order)",
    ),
    (
        "a / s / n",
        "review window: accept the suggestion / keep the label / next",
    ),
    (
        "1 / 0 (conflicts tab)",
        "review window: label the whole group",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::input::{self, InputAction};
    use crate::data::LabelSet;

    /// What the key handler makes of one press of `keys`.
    fn pressed(keys: KeyboardShortcut) -> Vec<InputAction> {
        let ctx = egui::Context::default();
        let mut raw = egui::RawInput::default();
        raw.events.push(egui::Event::Key {
            key: keys.logical_key,
            physical_key: None,
            pressed: true,
            repeat: false,
            modifiers: keys.modifiers,
        });
        let mut actions = Vec::new();
        let mut output = ctx.run_pass(raw, |ctx| {
            actions = input::read(ctx, None, false, &LabelSet::default());
        });
        output.textures_delta.clear();
        actions
    }

    #[test]
    fn every_shortcut_does_what_it_says() {
        for binding in &BINDINGS {
            let first = shortcut_for(&binding.action).unwrap();
            assert_eq!(
                pressed(binding.keys),
                vec![InputAction::Menu(binding.action.clone())],
                "{} ({:?})",
                binding.what,
                first
            );
        }
    }

    #[test]
    fn ctrl_e_exports() {
        assert_eq!(
            pressed(keys(CTRL, Key::E)),
            vec![InputAction::Menu(TopBarAction::Export(ExportKind::Kaggle))]
        );
    }
}
