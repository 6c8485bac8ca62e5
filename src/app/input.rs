//! Keyboard first: keys and dropped files become [`InputAction`]s, which the app applies.
//! j/k or arrows move, digits label (0/1 for 0/1 files, 1…9 for the classes of a named set in
//! order), x clears, ctrl+z / ctrl+shift+z undo and redo, / searches,
//! enter opens the detail, ? shows the keys, F12 the frame times, escape clears the selection,
//! the menu's ctrl+O / ctrl+shift+O / ctrl+S / ctrl+shift+S / ctrl+F / ctrl+Q work anywhere;
//! while the review window is open its keys come first. Ignored while a text field has focus.

use std::path::PathBuf;

use egui::{Key, Modifiers};

use super::menu_bar;
use super::review::{ReviewKey, Tab};
use super::top_bar::TopBarAction;
use super::TweetlabApp;
use crate::data::LabelSet;

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
    /// A menu shortcut (ctrl+O, ctrl+S, ...).
    Menu(TopBarAction),
}

/// The actions this frame's input asks for, in the order they apply. `review_tab` is the open
/// review window's tab, if it is open; `labels` says which class a digit key stands for.
pub fn read(ctx: &egui::Context, review_tab: Option<Tab>, labels: &LabelSet) -> Vec<InputAction> {
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
    // The menu's shortcuts work everywhere too (more specific ones first).
    for (shortcut, action) in menu_bar::global_shortcuts() {
        if ctx.input_mut(|i| i.consume_shortcut(&shortcut)) {
            actions.push(InputAction::Menu(action));
        }
    }
    if ctx.egui_wants_keyboard_input() {
        return actions;
    }
    if let Some(tab) = review_tab {
        if let Some(key) = ctx.input_mut(|i| review_key(i, tab, labels)) {
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
        for (digit, key) in DIGITS.into_iter().enumerate() {
            if let Some(class) = labels.class_for_key(digit as u8) {
                if i.consume_key(Modifiers::NONE, key) {
                    label = Some(Some(class));
                }
            }
        }
        if i.consume_key(Modifiers::NONE, Key::X) {
            label = Some(None);
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

const DIGITS: [Key; 10] = [
    Key::Num0,
    Key::Num1,
    Key::Num2,
    Key::Num3,
    Key::Num4,
    Key::Num5,
    Key::Num6,
    Key::Num7,
    Key::Num8,
    Key::Num9,
];

/// The review window's keys on `tab`: a / s / n for suspects, the class digits and n elsewhere.
fn review_key(i: &mut egui::InputState, tab: Tab, labels: &LabelSet) -> Option<ReviewKey> {
    let mut keys: Vec<(Key, ReviewKey)> = match tab {
        Tab::Suspects => vec![(Key::A, ReviewKey::Accept), (Key::S, ReviewKey::Keep)],
        Tab::Conflicts | Tab::Next => DIGITS
            .into_iter()
            .enumerate()
            .filter_map(|(d, key)| {
                labels
                    .class_for_key(d as u8)
                    .map(|c| (key, ReviewKey::Label(c)))
            })
            .collect(),
    };
    keys.push((Key::N, ReviewKey::Next));
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
            InputAction::Menu(action) => self.apply_top_bar(action),
        }
    }
}
