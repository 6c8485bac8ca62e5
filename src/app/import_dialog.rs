//! The import dialog: how to read a file whose columns tweetlab did not all recognise (and any
//! file, on demand). A preview of the first rows, the delimiter, which column is the text, the
//! id and the label (or none), which other columns the detail panel shows, and the label
//! column's values each mapped to a class name or to "unlabelled" (values given the same name
//! make one class). Import hands the app an `ImportOptions`; the worker imports with it and
//! remembers it, in the workspace and for files with the same header.

use std::path::PathBuf;

use crate::data::import::{preview, Preview};
use crate::data::labels::{LabelClass, LabelSet, MAX_CLASSES};
use crate::data::ImportOptions;

/// One value of the label column and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueTarget {
    pub value: String,
    /// Rows of the sample holding it.
    pub count: usize,
    /// The class it means; values with the same name form one class.
    pub class: String,
    pub unlabelled: bool,
}

/// The choice being made for one file.
pub struct ImportDraft {
    pub csv: PathBuf,
    sample: Vec<u8>,
    whole_file: bool,
    pub preview: Preview,
    /// None: sniffed.
    pub delimiter: Option<u8>,
    pub text: usize,
    pub id: Option<usize>,
    pub label: Option<usize>,
    /// Per column: shown in the detail panel (columns other than text, id, label).
    pub shown: Vec<bool>,
    pub targets: Vec<ValueTarget>,
    /// Classes with no value in the file yet, comma-separated.
    pub extra_classes: String,
    /// Why the dialog opened (a file the importer could not read alone), if it says.
    pub reason: Option<String>,
    pub error: Option<String>,
}

/// What the dialog asks of the app.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportAction {
    Import {
        csv: PathBuf,
        options: ImportOptions,
    },
    Cancel,
}

const DELIMITERS: [(u8, &str); 4] = [
    (b',', "comma ,"),
    (b';', "semicolon ;"),
    (b'\t', "tab"),
    (b'|', "pipe |"),
];

impl ImportDraft {
    /// A draft from a file's sample; `known` (a choice made before for this file or header)
    /// fills it in when given, else the importer's own detection does.
    pub fn new(
        csv: PathBuf,
        sample: Vec<u8>,
        whole_file: bool,
        known: Option<&ImportOptions>,
        reason: Option<String>,
    ) -> Result<Self, String> {
        let delimiter = known.and_then(|k| k.delimiter);
        let preview = preview(&sample, whole_file, delimiter)?;
        let mut draft = Self {
            csv,
            sample,
            whole_file,
            text: 0,
            id: None,
            label: None,
            shown: Vec::new(),
            targets: Vec::new(),
            extra_classes: String::new(),
            reason,
            error: None,
            delimiter,
            preview,
        };
        draft.detect(known);
        Ok(draft)
    }

    fn column(&self, name: &Option<String>) -> Option<usize> {
        let name = name.as_ref()?;
        self.preview
            .header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name.trim()))
    }

    /// Column roles and the value mapping from `known`, else from detection.
    fn detect(&mut self, known: Option<&ImportOptions>) {
        let p = &self.preview;
        self.text = known
            .and_then(|k| self.column(&k.text_column))
            .or(p.text)
            .unwrap_or(0);
        self.id = known.and_then(|k| self.column(&k.id_column)).or(p.id);
        self.label = match known {
            Some(k) if k.no_label_column => None,
            Some(k) => self.column(&k.label_column).or(p.label),
            None => p.label,
        };
        self.shown = (0..self.preview.header.len())
            .map(|c| {
                let name = &self.preview.header[c];
                !known.is_some_and(|k| {
                    k.hidden_columns
                        .iter()
                        .any(|h| h.trim().eq_ignore_ascii_case(name))
                })
            })
            .collect();
        self.targets_for_label(known.and_then(|k| k.labels.as_ref()));
    }

    /// The mapping for the current label column: each value to the class `set` gives it, or
    /// its own class (0/1 columns: tweetlab's binary classes).
    fn targets_for_label(&mut self, set: Option<&LabelSet>) {
        self.targets.clear();
        self.extra_classes.clear();
        let Some(values) = self
            .label
            .and_then(|c| self.preview.values.get(c).cloned().flatten())
        else {
            return;
        };
        let binary = LabelSet::default();
        let all_binary = values.iter().all(|(v, _)| binary.knows(v));
        let set = set.cloned().or_else(|| all_binary.then_some(binary));
        for (value, count) in values {
            let (class, unlabelled) = match &set {
                Some(s) => match s.parse(&value) {
                    Ok(Some(c)) => (s.name(c), false),
                    Ok(None) => (value.clone(), true),
                    Err(_) => (value.clone(), false),
                },
                None => (value.clone(), false),
            };
            self.targets.push(ValueTarget {
                value,
                count,
                class,
                unlabelled,
            });
        }
        if let Some(s) = &set {
            let used: Vec<&str> = self.targets.iter().map(|t| t.class.as_str()).collect();
            let extra: Vec<String> = s
                .names()
                .into_iter()
                .filter(|n| !used.iter().any(|u| u.eq_ignore_ascii_case(n)))
                .collect();
            self.extra_classes = extra.join(", ");
        }
    }

    /// Sets the delimiter (None: sniff) and previews the sample again.
    pub fn set_delimiter(&mut self, delimiter: Option<u8>) {
        match preview(&self.sample, self.whole_file, delimiter) {
            Ok(p) => {
                self.delimiter = delimiter;
                self.preview = p;
                self.detect(None);
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Sets the label column (None: the file has none) and maps its values afresh.
    pub fn set_label(&mut self, label: Option<usize>) {
        self.label = label;
        self.targets_for_label(None);
    }

    /// The classes the mapping makes, in order: as tweetlab's 0/1 set when it is one, else by
    /// first appearance, then the extra classes.
    pub fn label_set(&self) -> Result<Option<LabelSet>, String> {
        let Some(column) = self.label else {
            return Ok(None);
        };
        if self.preview.values[column].is_none() {
            return Err(format!(
                "`{}` has more than {MAX_CLASSES} different values: it is not a label column tweetlab can train on; choose another, or none",
                self.preview.header[column]
            ));
        }
        let mut classes: Vec<LabelClass> = Vec::new();
        let mut unlabelled = Vec::new();
        for t in &self.targets {
            if t.unlabelled {
                unlabelled.push(t.value.clone());
                continue;
            }
            let name = t.class.trim();
            if name.is_empty() {
                return Err(format!(
                    "the value `{}` has no class name: name one, or tick unlabelled",
                    t.value
                ));
            }
            match classes
                .iter_mut()
                .find(|c| c.name.eq_ignore_ascii_case(name))
            {
                Some(c) => c.values.push(t.value.clone()),
                None => classes.push(LabelClass {
                    name: name.to_string(),
                    values: vec![t.value.clone()],
                }),
            }
        }
        for name in self.extra_classes.split(',').map(str::trim) {
            if !name.is_empty() && !classes.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
                classes.push(LabelClass {
                    name: name.to_string(),
                    values: Vec::new(),
                });
            }
        }
        let mut set = LabelSet {
            classes,
            unlabelled,
        };
        // The usual 0/1 column, untouched: tweetlab's binary set, 0.0/false/1.0/true included.
        let binary = LabelSet::default();
        if set.unlabelled.is_empty()
            && set.names() == binary.names()
            && set
                .classes
                .iter()
                .zip(&binary.classes)
                .all(|(a, b)| a.values.iter().all(|v| b.values.contains(v)))
        {
            set = binary;
        }
        set.check().map_err(|e| format!("label classes: {e}"))?;
        Ok(Some(set))
    }

    /// The choice as the importer takes it.
    pub fn options(&self) -> Result<ImportOptions, String> {
        let header = &self.preview.header;
        if Some(self.text) == self.label || Some(self.text) == self.id {
            return Err("the text column cannot also be the id or the label column".into());
        }
        if self.label.is_some() && self.label == self.id {
            return Err("the label column cannot also be the id column".into());
        }
        let roles = [Some(self.text), self.id, self.label];
        Ok(ImportOptions {
            text_column: Some(header[self.text].clone()),
            label_column: self.label.map(|c| header[c].clone()),
            id_column: self.id.map(|c| header[c].clone()),
            labels: self.label_set()?,
            delimiter: Some(self.preview.delimiter),
            hidden_columns: (0..header.len())
                .filter(|&c| !roles.contains(&Some(c)) && !self.shown[c])
                .map(|c| header[c].clone())
                .collect(),
            no_label_column: self.label.is_none(),
        })
    }
}

fn delimiter_name(d: Option<u8>) -> String {
    match d {
        None => "sniffed".into(),
        Some(d) => DELIMITERS
            .iter()
            .find(|(b, _)| *b == d)
            .map_or(format!("{:?}", d as char), |(_, n)| n.to_string()),
    }
}

#[derive(Default)]
pub struct ImportDialog {
    pub draft: Option<ImportDraft>,
}

impl ImportDialog {
    pub fn is_open(&self) -> bool {
        self.draft.is_some()
    }

    pub fn show(&mut self, ctx: &egui::Context) -> Option<ImportAction> {
        let draft = self.draft.as_mut()?;
        let mut action = None;
        let mut open = true;
        egui::Window::new("Import")
            .open(&mut open)
            .collapsible(false)
            .default_width(720.0)
            .anchor(egui::Align2::CENTER_CENTER, egui::vec2(0.0, 0.0))
            .show(ctx, |ui| {
                action = draft_ui(ui, draft);
            });
        if !open {
            action = Some(ImportAction::Cancel);
        }
        if action.is_some() {
            self.draft = None;
        }
        action
    }
}

fn column_combo(
    ui: &mut egui::Ui,
    label: &str,
    header: &[String],
    selected: &mut Option<usize>,
    none: Option<&str>,
) -> bool {
    let l = ui.label(label);
    let text = selected.map_or(none.unwrap_or("none").to_string(), |c| header[c].clone());
    let before = *selected;
    egui::ComboBox::from_id_salt(label)
        .selected_text(text)
        .show_ui(ui, |ui| {
            if let Some(none) = none {
                ui.selectable_value(selected, None, none);
            }
            for (c, h) in header.iter().enumerate() {
                ui.selectable_value(selected, Some(c), h);
            }
        })
        .response
        .labelled_by(l.id);
    before != *selected
}

fn draft_ui(ui: &mut egui::Ui, d: &mut ImportDraft) -> Option<ImportAction> {
    ui.label(format!("{}", d.csv.display()));
    if let Some(reason) = &d.reason {
        ui.colored_label(ui.visuals().warn_fg_color, reason);
    }
    ui.horizontal(|ui| {
        let l = ui.label("Delimiter:");
        let mut chosen = d.delimiter;
        egui::ComboBox::from_id_salt("import_delimiter")
            .selected_text(format!(
                "{} ({})",
                delimiter_name(chosen),
                delimiter_name(Some(d.preview.delimiter))
            ))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut chosen, None, "sniffed");
                for (b, name) in DELIMITERS {
                    ui.selectable_value(&mut chosen, Some(b), name);
                }
            })
            .response
            .labelled_by(l.id);
        if chosen != d.delimiter {
            d.set_delimiter(chosen);
        }
    });
    let header = d.preview.header.clone();
    ui.horizontal(|ui| {
        let mut text = Some(d.text);
        if column_combo(ui, "Text column:", &header, &mut text, None) {
            d.text = text.unwrap_or(0);
        }
        column_combo(
            ui,
            "Id column:",
            &header,
            &mut d.id,
            Some("none (row numbers)"),
        );
        let mut label = d.label;
        if column_combo(ui, "Label column:", &header, &mut label, Some("none")) {
            d.set_label(label);
        }
    });
    ui.label(format!(
        "First rows ({} read from {}):",
        d.preview.sampled_rows,
        if d.whole_file {
            "the whole file"
        } else {
            "the start of the file"
        }
    ));
    egui::ScrollArea::horizontal()
        .id_salt("import_preview")
        .max_height(180.0)
        .show(ui, |ui| {
            egui::Grid::new("import_rows").striped(true).show(ui, |ui| {
                for (c, h) in header.iter().enumerate() {
                    let role = if c == d.text {
                        " (text)"
                    } else if Some(c) == d.id {
                        " (id)"
                    } else if Some(c) == d.label {
                        " (label)"
                    } else {
                        ""
                    };
                    ui.strong(format!("{h}{role}"));
                }
                ui.end_row();
                for row in &d.preview.rows {
                    for c in 0..header.len() {
                        let cell = row.get(c).map_or("", String::as_str);
                        let short: String = cell.chars().take(40).collect();
                        ui.label(short);
                    }
                    ui.end_row();
                }
            });
        });
    let roles = [Some(d.text), d.id, d.label];
    let others: Vec<usize> = (0..header.len())
        .filter(|c| !roles.contains(&Some(*c)))
        .collect();
    if !others.is_empty() {
        ui.horizontal_wrapped(|ui| {
            ui.label("Show in the detail panel:");
            for c in others {
                ui.checkbox(&mut d.shown[c], &header[c]);
            }
        });
    }
    ui.separator();
    match d.label {
        None => {
            ui.label("No label column: every row starts unlabelled, with the classes 0 and 1.");
        }
        Some(c) if d.preview.values[c].is_none() => {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "`{}` has more than {MAX_CLASSES} different values: not a label column.",
                    header[c]
                ),
            );
        }
        Some(_) => {
            ui.label("Each value of the label column means a class (values given the same name make one class) or no label yet:");
            egui::Grid::new("import_values")
                .striped(true)
                .show(ui, |ui| {
                    ui.strong("value");
                    ui.strong("rows");
                    ui.strong("class");
                    ui.end_row();
                    for (k, t) in d.targets.iter_mut().enumerate() {
                        let value = ui.label(&t.value);
                        ui.label(t.count.to_string());
                        // Sized explicitly: a grid cell would shrink the field to its text.
                        ui.add_enabled_ui(!t.unlabelled, |ui| {
                            ui.add_sized(
                                [220.0, 20.0],
                                egui::TextEdit::singleline(&mut t.class)
                                    .id_salt(("class_of_value", k)),
                            )
                            .labelled_by(value.id);
                        });
                        ui.checkbox(&mut t.unlabelled, "unlabelled");
                        ui.end_row();
                    }
                });
            ui.horizontal(|ui| {
                let l = ui.label("More classes (comma-separated):");
                ui.text_edit_singleline(&mut d.extra_classes)
                    .labelled_by(l.id);
            });
            match d.label_set() {
                Ok(Some(set)) => {
                    let keys: Vec<String> = (0..set.len() as u8)
                        .map(|c| match set.key_for_class(c) {
                            Some(k) => format!("{k} {}", set.name(c)),
                            None => set.name(c),
                        })
                        .collect();
                    ui.label(format!("{} classes, keys: {}", set.len(), keys.join(" · ")));
                }
                Ok(None) => {}
                Err(e) => {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
            }
        }
    }
    if let Some(e) = &d.error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    let mut action = None;
    ui.horizontal(|ui| {
        let options = d.options();
        let import = ui.add_enabled(options.is_ok(), egui::Button::new("Import"));
        if let Err(e) = &options {
            import.clone().on_disabled_hover_text(e);
        }
        if import.clicked() {
            if let Ok(options) = options {
                action = Some(ImportAction::Import {
                    csv: d.csv.clone(),
                    options,
                });
            }
        }
        if ui.button("Cancel").clicked() {
            action = Some(ImportAction::Cancel);
        }
    });
    action
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRISIS: &[u8] = b"Tweet ID; Tweet Text ;Informativeness\n\
        1;Bridge down;Related and informative\n\
        2;prayers;Related - but not informative\n\
        3;lol;Not related\n\
        4;see link;Not applicable\n";

    fn draft(bytes: &[u8]) -> ImportDraft {
        ImportDraft::new("f.csv".into(), bytes.to_vec(), true, None, None).unwrap()
    }

    #[test]
    fn values_map_to_named_classes_and_unlabelled() {
        let mut d = draft(CRISIS);
        assert_eq!((d.text, d.id, d.label), (1, Some(0), None));
        d.set_label(Some(2));
        assert_eq!(d.targets.len(), 4);
        for t in &mut d.targets {
            match t.value.as_str() {
                "Related and informative" => t.class = "informative".into(),
                "Not applicable" => t.unlabelled = true,
                _ => t.class = "not informative".into(),
            }
        }
        d.extra_classes = "urgent".into();
        let options = d.options().unwrap();
        let set = options.labels.clone().unwrap();
        assert_eq!(
            set.names(),
            vec!["not informative", "informative", "urgent"]
        );
        assert_eq!(set.parse("Not related").unwrap(), Some(0));
        assert_eq!(set.parse("not applicable").unwrap(), None);
        assert_eq!(options.delimiter, Some(b';'));
        assert_eq!(options.label_column.as_deref(), Some("Informativeness"));
        // The draft made again from the options gives the same options.
        let again =
            ImportDraft::new("f.csv".into(), CRISIS.to_vec(), true, Some(&options), None).unwrap();
        assert_eq!(again.options().unwrap(), options);
    }

    #[test]
    fn a_0_1_column_stays_tweetlabs_binary_set_and_bad_choices_are_refused() {
        let mut d = draft(b"id,text,target\n1,a,1\n2,b,0\n");
        assert_eq!(
            d.options().unwrap().labels,
            Some(LabelSet::default()),
            "{:?}",
            d.targets
        );
        d.id = Some(1);
        d.text = 1;
        assert!(d.options().unwrap_err().contains("text column"));
        d.text = 1;
        d.id = Some(0);
        d.targets[0].class = String::new();
        assert!(d.options().unwrap_err().contains("no class name"));
        d.set_label(None);
        let o = d.options().unwrap();
        assert!(o.no_label_column && o.labels.is_none());
    }

    #[test]
    fn another_delimiter_previews_again() {
        let mut d = draft(b"text,x|target\na,b|1\n");
        assert_eq!(d.preview.header.len(), 2);
        d.set_delimiter(Some(b'|'));
        assert_eq!(d.preview.header, vec!["text,x", "target"]);
        assert_eq!(d.options().unwrap().delimiter, Some(b'|'));
    }
}
