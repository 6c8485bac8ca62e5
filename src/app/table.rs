//! The tweet table: filter, search, a virtualised table (only visible rows are laid out, so a
//! million rows scroll as smoothly as a hundred), keyboard selection, bulk relabel.

use egui_extras::{Column, TableBuilder};

use crate::data::Tweet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filter {
    #[default]
    All,
    Unlabelled,
    Label(u8),
    /// Rows whose prediction disagrees with their label.
    Disagree,
}

#[derive(Default)]
pub struct TableView {
    pub search: String,
    pub filter: Filter,
    /// Row indices shown, in order; rebuilt when `dirty`.
    shown: Vec<usize>,
    dirty: bool,
    /// Position in `shown`.
    cursor: Option<usize>,
    scroll_to_cursor: bool,
    pub focus_search: bool,
    initialised: bool,
}

impl TableView {
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Labels or predictions changed: recompute what the filter shows.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    pub fn shown_count(&self) -> usize {
        self.shown.len()
    }

    pub fn selected_row(&self) -> Option<usize> {
        self.cursor.and_then(|c| self.shown.get(c).copied())
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

    fn rebuild(&mut self, rows: &[Tweet], predictions: &[Option<f32>]) {
        let keep = self.selected_row();
        let needle = self.search.to_lowercase();
        self.shown = (0..rows.len())
            .filter(|&i| {
                let t = &rows[i];
                let p = predictions.get(i).copied().flatten();
                let by_filter = match self.filter {
                    Filter::All => true,
                    Filter::Unlabelled => t.label.is_none(),
                    Filter::Label(l) => t.label == Some(l),
                    Filter::Disagree => {
                        matches!((t.label, p), (Some(l), Some(p)) if l != u8::from(p >= 0.5))
                    }
                };
                by_filter
                    && (needle.is_empty()
                        || t.text.to_lowercase().contains(&needle)
                        || t.keyword.to_lowercase().contains(&needle))
            })
            .collect();
        // Stay on the same tweet when it is still shown, else on the same position.
        self.cursor = match keep.and_then(|r| self.shown.iter().position(|&s| s == r)) {
            Some(c) => Some(c),
            None if self.shown.is_empty() => None,
            None => Some(self.cursor.unwrap_or(0).min(self.shown.len() - 1)),
        };
        self.dirty = false;
    }

    /// Draws the filters and the table. Returns a bulk relabel request (rows, label) when the
    /// user asked to label every shown row.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        rows: &[Tweet],
        predictions: &[Option<f32>],
    ) -> Option<(Vec<usize>, Option<u8>)> {
        if !self.initialised {
            self.initialised = true;
            self.dirty = true;
        }
        let mut bulk = None;
        ui.horizontal(|ui| {
            let label = ui.label("Search:");
            let search = ui
                .add(
                    egui::TextEdit::singleline(&mut self.search)
                        .hint_text("text or keyword  ( / )")
                        .desired_width(220.0),
                )
                .labelled_by(label.id);
            if self.focus_search {
                search.request_focus();
                self.focus_search = false;
            }
            if search.changed() {
                self.dirty = true;
            }
            let before = self.filter;
            egui::ComboBox::from_label("Show")
                .selected_text(match self.filter {
                    Filter::All => "all rows",
                    Filter::Unlabelled => "unlabelled",
                    Filter::Label(0) => "labelled 0",
                    Filter::Label(_) => "labelled 1",
                    Filter::Disagree => "label ≠ prediction",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.filter, Filter::All, "all rows");
                    ui.selectable_value(&mut self.filter, Filter::Unlabelled, "unlabelled");
                    ui.selectable_value(&mut self.filter, Filter::Label(0), "labelled 0");
                    ui.selectable_value(&mut self.filter, Filter::Label(1), "labelled 1");
                    ui.selectable_value(&mut self.filter, Filter::Disagree, "label ≠ prediction");
                });
            if self.filter != before {
                self.dirty = true;
            }
            if self.dirty {
                self.rebuild(rows, predictions);
            }
            ui.label(format!("{} of {} shown", self.shown.len(), rows.len()));
            ui.menu_button("Label all shown", |ui| {
                for (text, label) in [
                    ("as 1 (disaster)", Some(1)),
                    ("as 0 (not disaster)", Some(0)),
                    ("clear", None),
                ] {
                    if ui.button(text).clicked() {
                        bulk = Some((self.shown.clone(), label));
                        ui.close();
                    }
                }
            });
        });
        ui.separator();

        let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
        let mut builder = TableBuilder::new(ui)
            .striped(true)
            .sense(egui::Sense::click())
            .column(Column::auto().at_least(60.0))
            .column(Column::auto().at_least(90.0))
            .column(Column::remainder().clip(true))
            .column(Column::exact(48.0))
            .column(Column::exact(70.0));
        if self.scroll_to_cursor {
            if let Some(c) = self.cursor {
                builder = builder.scroll_to_row(c, None);
            }
            self.scroll_to_cursor = false;
        }
        builder
            .header(row_height, |mut header| {
                for title in ["id", "keyword", "text", "label", "p(disaster)"] {
                    header.col(|ui| {
                        ui.strong(title);
                    });
                }
            })
            .body(|body| {
                body.rows(row_height, self.shown.len(), |mut row| {
                    let k = row.index();
                    let i = self.shown[k];
                    let t = &rows[i];
                    row.set_selected(self.cursor == Some(k));
                    row.col(|ui| {
                        ui.label(&t.id);
                    });
                    row.col(|ui| {
                        ui.label(t.keyword.replace("%20", " "));
                    });
                    row.col(|ui| {
                        ui.add(egui::Label::new(t.text.replace(['\n', '\r'], " ")).truncate());
                    });
                    row.col(|ui| {
                        ui.label(t.label.map_or("·".to_string(), |l| l.to_string()));
                    });
                    row.col(|ui| {
                        if let Some(p) = predictions.get(i).copied().flatten() {
                            ui.label(format!("{p:.3}"));
                        }
                    });
                    if row.response().clicked() {
                        self.cursor = Some(k);
                    }
                });
            });
        bulk
    }
}
