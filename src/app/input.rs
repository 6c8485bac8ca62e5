//! Keyboard first: keys and dropped files become [`InputAction`]s, which the app applies.
//! j/k or arrows move, 0/1 label, x clears, ctrl+z / ctrl+shift+z undo and redo, / searches,
//! enter opens the detail, ? shows the keys, F12 the frame times, escape clears the selection;
//! while the review window is open its keys come first. Ignored while a text field has focus.

use std::path::PathBuf;

use egui::{Key, Modifiers};

use super::review::{ReviewKey, Tab};
use super::TweetlabApp;

#[derive(Debug, Clone, PartialEq)]
pub enum InputAction {
    ToggleFrameStats,
    Review(ReviewKey),
    /// Move the cursor this many rows (negative: up).
    Move(i64),
    /// Set (or clear) the label of the selection, else the cursor row.
    Label(Option<u8>),
    Undo,
    Redo,
    Search,
    ToggleDetail,
    Escape,
    ToggleHelp,
    /// A file dropped on the window.
    Open(PathBuf),
}

/// The actions this frame's input asks for, in the order they apply. `review_tab` is the open
/// review window's tab, if it is open.
pub fn read(ctx: &egui::Context, review_tab: Option<Tab>) -> Vec<InputAction> {
    let mut actions = Vec::new();
    if let Some(path) = ctx.input(|i| {
        i.raw
            .dropped_files
            .iter()
            .map(|f| f.path().to_path_buf())
            .find(|p| !p.as_os_str().is_empty())
    }) {
        actions.push(InputAction::Open(path));
    }
    // F12 works everywhere, even in a text field.
    if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::F12)) {
        actions.push(InputAction::ToggleFrameStats);
    }
    if ctx.egui_wants_keyboard_input() {
        return actions;
    }
    if let Some(tab) = review_tab {
        if let Some(key) = ctx.input_mut(|i| review_key(i, tab)) {
            actions.push(InputAction::Review(key));
        }
    }
    ctx.input_mut(|i| {
        let mut moves = 0;
        for (key, step) in [
            (Key::J, 1),
            (Key::ArrowDown, 1),
            (Key::K, -1),
            (Key::ArrowUp, -1),
            (Key::PageDown, 20),
            (Key::PageUp, -20),
        ] {
            while i.consume_key(Modifiers::NONE, key) {
                moves += step;
            }
        }
        if moves != 0 {
            actions.push(InputAction::Move(moves));
        }
        let mut label = None;
        for (key, value) in [(Key::Num0, Some(0)), (Key::Num1, Some(1)), (Key::X, None)] {
            if i.consume_key(Modifiers::NONE, key) {
                label = Some(value);
            }
        }
        actions.extend(label.map(InputAction::Label));
        // Redo first: ctrl+shift+z also matches ctrl+z.
        if i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z) {
            actions.push(InputAction::Redo);
        } else if i.consume_key(Modifiers::COMMAND, Key::Z) {
            actions.push(InputAction::Undo);
        }
        for (modifiers, key, action) in [
            (Modifiers::NONE, Key::Slash, InputAction::Search),
            (Modifiers::NONE, Key::Enter, InputAction::ToggleDetail),
            (Modifiers::NONE, Key::Escape, InputAction::Escape),
        ] {
            if i.consume_key(modifiers, key) {
                actions.push(action);
            }
        }
        if i.consume_key(Modifiers::SHIFT, Key::Questionmark)
            || i.consume_key(Modifiers::NONE, Key::Questionmark)
        {
            actions.push(InputAction::ToggleHelp);
        }
    });
    actions
}

/// The review window's keys on `tab`: a / s / n for suspects, 1 / 0 / n elsewhere.
fn review_key(i: &mut egui::InputState, tab: Tab) -> Option<ReviewKey> {
    let keys: [(Key, ReviewKey); 3] = match tab {
        Tab::Suspects => [
            (Key::A, ReviewKey::Accept),
            (Key::S, ReviewKey::Keep),
            (Key::N, ReviewKey::Next),
        ],
        Tab::Conflicts | Tab::Next => [
            (Key::Num1, ReviewKey::Label(1)),
            (Key::Num0, ReviewKey::Label(0)),
            (Key::N, ReviewKey::Next),
        ],
    };
    keys.into_iter()
        .find(|&(key, _)| i.consume_key(Modifiers::NONE, key))
        .map(|(_, k)| k)
}

impl TweetlabApp {
    pub(super) fn apply_input(&mut self, action: InputAction) {
        match action {
            InputAction::ToggleFrameStats => {
                self.frame_stats.visible = !self.frame_stats.visible;
            }
            InputAction::Review(key) => {
                let action = self
                    .file
                    .as_ref()
                    .and_then(|f| self.review.decide(key, &f.duplicates, &f.conflicting));
                match action {
                    Some(action) => self.apply_review(action),
                    None => self.focus_review_row(),
                }
            }
            InputAction::Move(by) => self.table.move_selection(by),
            InputAction::Label(label) => self.label_selected(label),
            InputAction::Undo => self.undo_redo(false),
            InputAction::Redo => self.undo_redo(true),
            InputAction::Search => self.table.focus_search = true,
            InputAction::ToggleDetail => self.settings.show_detail = !self.settings.show_detail,
            InputAction::Escape => {
                self.table.clear_selection();
                self.show_help = false;
            }
            InputAction::ToggleHelp => self.show_help = !self.show_help,
            InputAction::Open(path) => self.open(path),
        }
    }
}
