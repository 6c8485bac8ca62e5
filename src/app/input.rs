//! Keyboard first: keys and dropped files become [`InputAction`]s, which the app applies.
//! j/k or arrows move, digits label (0/1 for 0/1 files, 1…9 for the classes of a named set in
//! order), x clears, escape clears the selection; the commands (the menu's shortcuts, undo,
//! enter, /, ?) come from the `keymap`; while the review window is open its keys come first. Ignored while a text
//! field has focus, except the keymap's commands marked `anywhere`.

use std::path::PathBuf;

use egui::{Key, Modifiers};

use super::keymap;
use super::review::{ReviewKey, Tab};
use super::team_panel;
use super::top_bar::TopBarAction;
use super::TweetlabApp;
use crate::data::LabelSet;

#[derive(Debug, Clone, PartialEq)]
pub enum InputAction {
    Review(ReviewKey),
    /// Move the cursor this many rows (negative: up).
    Move(i64),
    /// Set (or clear) the label of the selection, else the cursor row.
    Label(Option<u8>),
    Escape,
    /// A file dropped on the window.
    Open(PathBuf),
    /// A command of the keymap (ctrl+O, ctrl+S, enter, ...).
    Menu(TopBarAction),
    /// A class key in the team review window: settle its current row.
    TeamSettle(u8),
}

/// The actions this frame's input asks for, in the order they apply. `review_tab` is the open
/// review window's tab, if it is open; `team_settle`: the team review window has a row to
/// settle (its class keys come first); `labels` says which class a digit key stands for.
pub fn read(
    ctx: &egui::Context,
    review_tab: Option<Tab>,
    team_settle: bool,
    labels: &LabelSet,
) -> Vec<InputAction> {
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
    // The menu's shortcuts and F12 work everywhere, even in a text field.
    for b in keymap::BINDINGS.iter().filter(|b| b.anywhere) {
        if ctx.input_mut(|i| i.consume_shortcut(&b.keys)) {
            actions.push(InputAction::Menu(b.action.clone()));
        }
    }
    if ctx.egui_wants_keyboard_input() {
        return actions;
    }
    if team_settle {
        let class = ctx.input_mut(|i| {
            DIGITS.into_iter().enumerate().find_map(|(d, key)| {
                let class = labels.class_for_key(d as u8)?;
                i.consume_key(Modifiers::NONE, key).then_some(class)
            })
        });
        actions.extend(class.map(InputAction::TeamSettle));
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
        if i.consume_key(Modifiers::NONE, Key::Escape) {
            actions.push(InputAction::Escape);
        }
        // One press, one command: ctrl+shift+Z is not also ctrl+Z.
        let mut elsewhere = keymap::BINDINGS.iter().filter(|b| !b.anywhere);
        if let Some(b) = elsewhere.find(|b| i.consume_shortcut(&b.keys)) {
            actions.push(InputAction::Menu(b.action.clone()));
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
            InputAction::Escape => {
                self.table.clear_selection();
                self.show_help = false;
            }
            InputAction::Open(path) => self.open(path),
            InputAction::Menu(action) => self.apply_top_bar(action),
            InputAction::TeamSettle(label) => {
                let row = self
                    .team
                    .as_ref()
                    .and_then(|t| t.current_disagreement())
                    .map(|d| d.row);
                if let Some(row) = row {
                    self.apply_team(team_panel::TeamAction::Settle { row, label });
                }
            }
        }
    }
}
