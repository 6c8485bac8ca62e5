//! The tweet table: filters, search, sorting, and a virtualised table (only visible rows are
//! laid out, so a million rows scroll as smoothly as a hundred). Keyboard cursor plus a
//! multi-row selection (ctrl+click, shift+click) for bulk relabelling.

use std::collections::BTreeSet;

use egui_extras::{Column, TableBuilder};

use crate::data::duplicates::Duplicates;
use crate::data::export::top_class;
use crate::data::flags::{Predicted, RowFlags};
use crate::data::{LabelSet, Tweet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelFilter {
    #[default]
    Any,
    Unlabelled,
    Is(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PredictionFilter {
    #[default]
    Any,
    Is(u8),
    /// Rows with a prediction that differs from their label.
    DisagreesWithLabel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicateFilter {
    #[default]
    Any,
    /// Rows whose normalised text appears more than once.
    Duplicates,
    /// Duplicate groups that carry both labels.
    Conflicts,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filters {
    pub label: LabelFilter,
    pub prediction: PredictionFilter,
    /// Shown p(disaster) range; rows without a prediction pass only when it is the full range.
    pub p_min: f32,
    pub p_max: f32,
    /// Exact keyword (as in the file), or any.
    pub keyword: Option<String>,
    pub duplicates: DuplicateFilter,
}

impl Default for Filters {
    fn default() -> Self {
        Self {
            label: LabelFilter::Any,
            prediction: PredictionFilter::Any,
            p_min: 0.0,
            p_max: 1.0,
            keyword: None,
            duplicates: DuplicateFilter::Any,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Id,
    Keyword,
    Text,
    Label,
    Probability,
    Flags,
}

/// The probability a row's prediction is shown with: p(class 1) for two classes (p(disaster)),
/// the predicted class's for more.
pub fn shown_probability(p: &[f32]) -> f32 {
    if p.len() == 2 {
        p[1]
    } else {
        p[top_class(p) as usize]
    }
}

/// What the table needs to draw and filter, borrowed from the app each frame.
pub struct TableData<'a> {
    pub rows: &'a [Tweet],
    pub labels: &'a LabelSet,
    /// Every class's probability per row, when a model predicted it.
    pub predictions: &'a [Option<Vec<f32>>],
    pub duplicates: &'a Duplicates,
    /// Per duplicate group: does it carry both labels now.
    pub conflicting: &'a [bool],
    /// Only these rows (a team annotator's queue and labelled rows); None: every row.
    pub only: Option<&'a std::collections::BTreeSet<usize>>,
}

impl TableData<'_> {
    fn prediction(&self, i: usize) -> Option<&[f32]> {
        self.predictions.get(i).and_then(|p| p.as_deref())
    }

    fn predicted(&self, i: usize) -> Option<u8> {
        self.prediction(i).map(top_class)
    }

    /// The probability shown and filtered on: p(disaster) for two classes, the predicted
    /// class's for more.
    fn shown_p(&self, i: usize) -> Option<f32> {
        self.prediction(i).map(shown_probability)
    }

    /// The row's flags by the rule the export writes them with (the predictions' classes are
    /// the workspace's own, so the top class is a dataset class).
    pub fn row_flags(&self, i: usize) -> RowFlags {
        let predicted = self
            .predicted(i)
            .map_or(Predicted::Nothing, Predicted::Label);
        let group_conflicts = self
            .duplicates
            .group_of
            .get(i)
            .copied()
            .flatten()
            .map(|g| self.conflicting.get(g).copied().unwrap_or(false));
        RowFlags::of(self.rows[i].label, predicted, group_conflicts)
    }

    fn disagrees(&self, i: usize) -> bool {
        self.row_flags(i).disagrees
    }

    /// Flags as shown in the table: ≠ (prediction disagrees), dup, conflict.
    pub fn flags_text(&self, i: usize) -> String {
        let flags = self.row_flags(i);
        let mut text = Vec::new();
        if flags.disagrees {
            text.push("≠");
        }
        if flags.conflict {
            text.push("conflict");
        }
        if flags.duplicate {
            text.push("dup");
        }
        text.join(" ")
    }
}

/// What the user asked the app to do from the table.
#[derive(Debug, Default)]
pub struct TableAction {
    /// Relabel these rows (one undo step).
    pub relabel: Option<(Vec<usize>, Option<u8>)>,
    /// Open the detail view of the cursor row.
    pub open_detail: bool,
}

#[derive(Default)]
pub struct TableView {
    pub search: String,
    pub filters: Filters,
    pub sort: Option<(SortColumn, bool)>,
    /// Row indices shown, in order; rebuilt when `dirty`.
    shown: Vec<usize>,
    dirty: bool,
    /// Position in `shown`.
    cursor: Option<usize>,
    /// Rows picked with ctrl/shift+click, by row index.
    selection: BTreeSet<usize>,
    scroll_to_cursor: bool,
    pub focus_search: bool,
    initialised: bool,
    /// Lower-cased texts, built on the first search (a million rows are not lower-cased per
    /// keystroke).
    lower: Vec<String>,
    /// Distinct keywords, for the keyword filter.
    keywords: Vec<String>,
    /// The search and filters `shown` was built with: compared each frame, copied only when
    /// they change (no allocation per frame).
    applied: (String, Filters),
}

impl TableView {
    pub fn reset(&mut self) {
        // Keep what the user chose to see; forget what belonged to the old file.
        let (search, filters, sort) = (
            std::mem::take(&mut self.search),
            self.filters.clone(),
            self.sort,
        );
        *self = Self::default();
        self.search = search;
        self.filters = Filters {
            keyword: None,
            ..filters
        };
        self.sort = sort;
    }

    /// Labels or predictions changed: recompute what the filter shows.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Row indices shown, in display order.
    pub fn shown(&self) -> &[usize] {
        &self.shown
    }

    pub fn shown_count(&self) -> usize {
        self.shown.len()
    }

    pub fn selected_row(&self) -> Option<usize> {
        self.cursor.and_then(|c| self.shown.get(c).copied())
    }

    /// Rows a label key applies to: the multi-selection when there is one, else the cursor.
    pub fn target_rows(&self) -> Vec<usize> {
        if self.selection.is_empty() {
            self.selected_row().into_iter().collect()
        } else {
            self.selection.iter().copied().collect()
        }
    }

    pub fn clear_selection(&mut self) {
        self.selection.clear();
    }

    /// Puts the cursor on `row` when the table shows it.
    pub fn select_row(&mut self, row: usize) {
        if let Some(k) = self.shown.iter().position(|&r| r == row) {
            self.cursor = Some(k);
            self.scroll_to_cursor = true;
        }
    }

    /// Moves the cursor from `row` to the tweet shown after it; the cursor stays on that tweet
    /// when the table is filtered again (even if `row` is no longer shown).
    pub fn advance_past(&mut self, row: usize) {
        if let Some(k) = self.shown.iter().position(|&r| r == row) {
            if k + 1 < self.shown.len() {
                self.cursor = Some(k + 1);
                self.scroll_to_cursor = true;
            }
        }
    }

    /// Whether labels apply to a multi-selection (which does not advance).
    pub fn has_selection(&self) -> bool {
        !self.selection.is_empty()
    }

    pub fn move_selection(&mut self, by: i64) {
        if self.shown.is_empty() {
            return;
        }
        let last = self.shown.len() as i64 - 1;
        let next = self.cursor.map_or(0, |c| (c as i64 + by).clamp(0, last));
        self.cursor = Some(next as usize);
        self.scroll_to_cursor = true;
    }

    fn rebuild(&mut self, data: &TableData) {
        let keep = self.selected_row();
        let needle = self.search.to_lowercase();
        if !needle.is_empty() && self.lower.len() != data.rows.len() {
            self.lower = data.rows.iter().map(|t| t.text.to_lowercase()).collect();
        }
        let f = &self.filters;
        let full_range = f.p_min <= 0.0 && f.p_max >= 1.0;
        self.shown = (0..data.rows.len())
            .filter(|&i| data.only.is_none_or(|only| only.contains(&i)))
            .filter(|&i| {
                let t = &data.rows[i];
                let p = data.shown_p(i);
                let label_ok = match f.label {
                    LabelFilter::Any => true,
                    LabelFilter::Unlabelled => t.label.is_none(),
                    LabelFilter::Is(l) => t.label == Some(l),
                };
                let prediction_ok = match f.prediction {
                    PredictionFilter::Any => true,
                    PredictionFilter::Is(l) => data.predicted(i) == Some(l),
                    PredictionFilter::DisagreesWithLabel => data.disagrees(i),
                };
                let range_ok = full_range || p.is_some_and(|p| p >= f.p_min && p <= f.p_max);
                let keyword_ok = f.keyword.as_ref().is_none_or(|k| &t.keyword == k);
                let dup_ok = match f.duplicates {
                    DuplicateFilter::Any => true,
                    DuplicateFilter::Duplicates => {
                        let f = data.row_flags(i);
                        f.duplicate || f.conflict
                    }
                    DuplicateFilter::Conflicts => data.row_flags(i).conflict,
                };
                label_ok
                    && prediction_ok
                    && range_ok
                    && keyword_ok
                    && dup_ok
                    && (needle.is_empty()
                        || self.lower[i].contains(&needle)
                        || t.keyword.to_lowercase().contains(&needle))
            })
            .collect();
        if let Some((column, ascending)) = self.sort {
            sort_rows(&mut self.shown, column, data);
            if !ascending {
                self.shown.reverse();
            }
        }
        // Stay on the same tweet when it is still shown, else on the same position, and bring
        // it into view.
        self.scroll_to_cursor = true;
        self.cursor = match keep.and_then(|r| self.shown.iter().position(|&s| s == r)) {
            Some(c) => Some(c),
            None if self.shown.is_empty() => None,
            None => Some(self.cursor.unwrap_or(0).min(self.shown.len() - 1)),
        };
        self.dirty = false;
    }

    fn filter_bar(&mut self, ui: &mut egui::Ui, data: &TableData, action: &mut TableAction) {
        let labels = data.labels;
        if self.keywords.is_empty() && !data.rows.is_empty() {
            let set: BTreeSet<&str> = data
                .rows
                .iter()
                .map(|t| t.keyword.as_str())
                .filter(|k| !k.is_empty())
                .collect();
            self.keywords = set.into_iter().map(String::from).collect();
        }
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Search:");
            let search = ui
                .add(
                    egui::TextEdit::singleline(&mut self.search)
                        .hint_text("text or keyword  ( / )")
                        .desired_width(200.0),
                )
                .labelled_by(label.id);
            if self.focus_search {
                search.request_focus();
                self.focus_search = false;
            }
            let f = &mut self.filters;
            let classes = labels.len() as u8;
            let l = ui.label("Label:");
            egui::ComboBox::from_id_salt("filter_label")
                .selected_text(match f.label {
                    LabelFilter::Any => "any".to_string(),
                    LabelFilter::Unlabelled => "none".to_string(),
                    LabelFilter::Is(c) => labels.short(c),
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut f.label, LabelFilter::Any, "any");
                    ui.selectable_value(&mut f.label, LabelFilter::Unlabelled, "none");
                    for c in 0..classes {
                        ui.selectable_value(&mut f.label, LabelFilter::Is(c), labels.short(c));
                    }
                })
                .response
                .labelled_by(l.id);
            let l = ui.label("Prediction:");
            egui::ComboBox::from_id_salt("filter_prediction")
                .selected_text(match f.prediction {
                    PredictionFilter::Any => "any".to_string(),
                    PredictionFilter::Is(c) => labels.short(c),
                    PredictionFilter::DisagreesWithLabel => "≠ label".to_string(),
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut f.prediction, PredictionFilter::Any, "any");
                    for c in 0..classes {
                        ui.selectable_value(
                            &mut f.prediction,
                            PredictionFilter::Is(c),
                            labels.short(c),
                        );
                    }
                    ui.selectable_value(
                        &mut f.prediction,
                        PredictionFilter::DisagreesWithLabel,
                        "≠ label",
                    );
                })
                .response
                .labelled_by(l.id);
            let l = ui.label("p from");
            ui.add(
                egui::DragValue::new(&mut f.p_min)
                    .range(0.0..=1.0)
                    .speed(0.01)
                    .max_decimals(2),
            )
            .labelled_by(l.id);
            let l = ui.label("to");
            ui.add(
                egui::DragValue::new(&mut f.p_max)
                    .range(0.0..=1.0)
                    .speed(0.01)
                    .max_decimals(2),
            )
            .labelled_by(l.id);
            let l = ui.label("Keyword:");
            egui::ComboBox::from_id_salt("filter_keyword")
                .selected_text(f.keyword.as_deref().unwrap_or("any"))
                .height(400.0)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut f.keyword, None, "any");
                    for k in &self.keywords {
                        ui.selectable_value(&mut f.keyword, Some(k.clone()), k.replace("%20", " "));
                    }
                })
                .response
                .labelled_by(l.id);
            let l = ui.label("Duplicates:");
            egui::ComboBox::from_id_salt("filter_duplicates")
                .selected_text(match f.duplicates {
                    DuplicateFilter::Any => "any",
                    DuplicateFilter::Duplicates => "duplicated",
                    DuplicateFilter::Conflicts => "conflicting",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut f.duplicates, DuplicateFilter::Any, "any");
                    ui.selectable_value(
                        &mut f.duplicates,
                        DuplicateFilter::Duplicates,
                        "duplicated",
                    );
                    ui.selectable_value(
                        &mut f.duplicates,
                        DuplicateFilter::Conflicts,
                        "conflicting",
                    );
                })
                .response
                .labelled_by(l.id);
            if ui.button("Clear filters").clicked() {
                self.search.clear();
                self.filters = Filters::default();
            }
        });
        if self.search != self.applied.0 || self.filters != self.applied.1 {
            self.applied = (self.search.clone(), self.filters.clone());
            self.dirty = true;
        }
        if self.dirty {
            self.rebuild(data);
        }
        ui.horizontal(|ui| {
            ui.label(format!(
                "{} of {} shown{}",
                self.shown.len(),
                data.rows.len(),
                if self.selection.is_empty() {
                    String::new()
                } else {
                    format!(" · {} selected", self.selection.len())
                }
            ));
            let what = if self.selection.is_empty() {
                "Label all shown"
            } else {
                "Label selected"
            };
            ui.menu_button(what, |ui| {
                let mut choices: Vec<(String, Option<u8>)> = if labels.is_default_binary() {
                    vec![
                        ("as 1 (disaster)".into(), Some(1)),
                        ("as 0 (not disaster)".into(), Some(0)),
                    ]
                } else {
                    (0..labels.len() as u8)
                        .map(|c| {
                            let key = labels
                                .key_for_class(c)
                                .map_or(String::new(), |k| format!(" ({k})"));
                            (format!("as {}{key}", labels.name(c)), Some(c))
                        })
                        .collect()
                };
                choices.push(("clear".to_string(), None));
                for (text, label) in choices {
                    if ui.button(text).clicked() {
                        let target = if self.selection.is_empty() {
                            self.shown.clone()
                        } else {
                            self.selection.iter().copied().collect()
                        };
                        action.relabel = Some((target, label));
                        ui.close();
                    }
                }
            });
            if !self.selection.is_empty() && ui.button("Clear selection").clicked() {
                self.selection.clear();
            }
        });
    }

    /// Draws the filters and the table.
    pub fn show(&mut self, ui: &mut egui::Ui, data: &TableData) -> TableAction {
        if !self.initialised {
            self.initialised = true;
            self.dirty = true;
        }
        let mut action = TableAction::default();
        self.filter_bar(ui, data, &mut action);
        ui.separator();

        // Cells are plain labels: selectable text would take the click meant for the row.
        ui.style_mut().interaction.selectable_labels = false;
        let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
        let mut builder = TableBuilder::new(ui)
            .striped(true)
            .resizable(true)
            .sense(egui::Sense::click())
            .column(Column::initial(60.0).at_least(40.0).clip(true))
            .column(Column::initial(110.0).at_least(60.0).clip(true))
            .column(Column::remainder().clip(true))
            .column(Column::exact(52.0))
            .column(Column::exact(52.0))
            .column(Column::exact(60.0))
            .column(Column::exact(90.0));
        if self.scroll_to_cursor {
            if let Some(c) = self.cursor {
                builder = builder.scroll_to_row(c, None);
            }
            self.scroll_to_cursor = false;
        }
        let mut clicked: Option<(usize, egui::Modifiers)> = None;
        let mut double_clicked = false;
        let mut sort_clicked = None;
        builder
            .header(row_height, |mut header| {
                for (title, column) in [
                    ("id", Some(SortColumn::Id)),
                    ("keyword", Some(SortColumn::Keyword)),
                    ("text", Some(SortColumn::Text)),
                    ("label", Some(SortColumn::Label)),
                    ("pred", None),
                    ("p", Some(SortColumn::Probability)),
                    ("flags", Some(SortColumn::Flags)),
                ] {
                    header.col(|ui| {
                        let arrow = match (self.sort, column) {
                            (Some((c, asc)), Some(col)) if c == col => {
                                if asc {
                                    " ⏶"
                                } else {
                                    " ⏷"
                                }
                            }
                            _ => "",
                        };
                        let response = ui.add(
                            egui::Button::new(
                                egui::RichText::new(format!("{title}{arrow}")).strong(),
                            )
                            .frame(false),
                        );
                        if let Some(column) = column {
                            if response.on_hover_text("Sort by this column").clicked() {
                                sort_clicked = Some(column);
                            }
                        }
                    });
                }
            })
            .body(|body| {
                body.rows(row_height, self.shown.len(), |mut row| {
                    let k = row.index();
                    let i = self.shown[k];
                    let t = &data.rows[i];
                    row.set_selected(self.cursor == Some(k) || self.selection.contains(&i));
                    row.col(|ui| {
                        ui.add(egui::Label::new(&t.id).truncate());
                    });
                    row.col(|ui| {
                        ui.add(egui::Label::new(t.keyword.replace("%20", " ")).truncate());
                    });
                    row.col(|ui| {
                        ui.add(egui::Label::new(t.text.replace(['\n', '\r'], " ")).truncate());
                    });
                    row.col(|ui| {
                        ui.add(
                            egui::Label::new(
                                t.label.map_or("·".to_string(), |l| data.labels.short(l)),
                            )
                            .truncate(),
                        );
                    });
                    let p = data.shown_p(i);
                    row.col(|ui| {
                        if let Some(c) = data.predicted(i) {
                            ui.add(egui::Label::new(data.labels.short(c)).truncate());
                        }
                    });
                    row.col(|ui| {
                        if let Some(p) = p {
                            ui.label(format!("{p:.3}"));
                        }
                    });
                    row.col(|ui| {
                        ui.label(data.flags_text(i));
                    });
                    let response = row.response();
                    if response.clicked() {
                        clicked = Some((k, ui_modifiers(&response)));
                    }
                    if response.double_clicked() {
                        double_clicked = true;
                    }
                });
            });
        if let Some((k, modifiers)) = clicked {
            self.click(k, modifiers);
        }
        action.open_detail = double_clicked;
        if let Some(column) = sort_clicked {
            // Ascending, then descending, then file order.
            self.sort = match self.sort {
                Some((c, true)) if c == column => Some((column, false)),
                Some((c, false)) if c == column => None,
                _ => Some((column, true)),
            };
            self.dirty = true;
        }
        action
    }

    fn click(&mut self, k: usize, modifiers: egui::Modifiers) {
        let row = self.shown[k];
        if modifiers.command {
            // Toggle one row; the cursor row joins the selection when a selection starts.
            if self.selection.is_empty() {
                if let Some(current) = self.selected_row() {
                    self.selection.insert(current);
                }
            }
            if !self.selection.remove(&row) {
                self.selection.insert(row);
            }
        } else if modifiers.shift {
            let from = self.cursor.unwrap_or(k);
            let (a, b) = (from.min(k), from.max(k));
            self.selection.extend(self.shown[a..=b].iter().copied());
        } else {
            self.selection.clear();
        }
        self.cursor = Some(k);
    }
}

fn ui_modifiers(response: &egui::Response) -> egui::Modifiers {
    response.ctx.input(|i| i.modifiers)
}

/// Sorts row indices ascending by `column`; stable, so ties keep file order.
fn sort_rows(shown: &mut [usize], column: SortColumn, data: &TableData) {
    let rows = data.rows;
    match column {
        SortColumn::Id => shown.sort_by(|&a, &b| {
            let (x, y) = (&rows[a].id, &rows[b].id);
            match (x.parse::<i64>(), y.parse::<i64>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                _ => x.cmp(y),
            }
        }),
        SortColumn::Keyword => shown.sort_by(|&a, &b| rows[a].keyword.cmp(&rows[b].keyword)),
        SortColumn::Text => shown.sort_by(|&a, &b| rows[a].text.cmp(&rows[b].text)),
        SortColumn::Label => shown.sort_by_key(|&i| rows[i].label),
        // Rows without a prediction sort first (None < Some).
        SortColumn::Probability => shown.sort_by(|&a, &b| {
            data.shown_p(a)
                .partial_cmp(&data.shown_p(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        }),
        SortColumn::Flags => shown.sort_by_key(|&i| data.row_flags(i).rank()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::duplicates::find_duplicates;
    use crate::data::export::{write_predictions, PredictionFormat, Predictions};

    fn tweet(id: &str, text: &str, label: Option<u8>) -> Tweet {
        Tweet {
            id: id.into(),
            text: text.into(),
            label,
            ..Tweet::default()
        }
    }

    /// Every combination of label, prediction and duplicate group, through the table's
    /// flags and the export's `flags` column.
    #[test]
    fn the_table_flags_what_the_export_flags() {
        let rows = vec![
            tweet("1", "fire downtown", Some(1)),
            tweet("2", "fire downtown", Some(0)),
            tweet("3", "lovely day", Some(0)),
            tweet("4", "lovely day", Some(0)),
            tweet("5", "flood warning", Some(0)),
            tweet("6", "flood warning!", None),
            tweet("7", "quiet night", None),
            tweet("8", "storm", Some(1)),
        ];
        let probabilities: Vec<Vec<f32>> = [0.9, 0.2, 0.8, 0.1, 0.7, 0.6, 0.3, 0.4]
            .into_iter()
            .map(|p| vec![1.0 - p, p])
            .collect();
        let labels = LabelSet::default();
        let duplicates = find_duplicates(&rows);
        let conflicting: Vec<bool> = duplicates
            .groups
            .iter()
            .map(|g| g.is_conflicting())
            .collect();
        let shown: Vec<Option<Vec<f32>>> = probabilities.iter().cloned().map(Some).collect();
        let table = TableData {
            rows: &rows,
            labels: &labels,
            predictions: &shown,
            duplicates: &duplicates,
            conflicting: &conflicting,
            only: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("predictions.csv");
        let predictions = Predictions {
            classes: labels.names(),
            probabilities,
        };
        write_predictions(&path, &rows, &labels, &predictions, PredictionFormat::Full).unwrap();
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let flags_column = reader.headers().unwrap().iter().position(|h| h == "flags");
        let exported: Vec<String> = reader
            .records()
            .map(|r| r.unwrap()[flags_column.unwrap()].to_string())
            .collect();
        let in_table: Vec<String> = (0..rows.len())
            .map(|i| table.row_flags(i).names().join("|"))
            .collect();
        assert_eq!(in_table, exported);
        // Each kind of flag shows up at least once, so the comparison covers all three.
        let all = exported.join("|");
        for flag in ["disagrees", "duplicate", "conflict"] {
            assert!(all.contains(flag), "no {flag} in {exported:?}");
        }
    }
}
