//! Detail panel: the selected tweet in full, its label and prediction, and the words that drove
//! the prediction, drawn as the tweet's own text coloured from "not disaster" (blue) to
//! "disaster" (red). Explanations are computed by the explainer thread and cached per model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crossbeam_channel::Sender;
use egui::text::{LayoutJob, TextFormat};
use egui::{Color32, RichText};

use super::protocol::Explained;
use super::workers::{self, Explain, ExplainRequest, Reporter};
use crate::data::export::top_class;
use crate::data::{LabelSet, Tweet};
use crate::engine::explain::Explanation;

/// Word contributions per row for the current model, and the long-lived explainer thread that
/// computes them one tweet at a time.
pub struct Explanations {
    requests: Sender<ExplainRequest>,
    reporter: Reporter,
    new_explainer: fn() -> Explain,
    done: HashMap<usize, Result<Explanation, String>>,
    pending: Option<usize>,
    /// The class the words are scored for (None: each tweet's predicted class).
    pub class: Option<u8>,
}

impl Explanations {
    pub fn spawn(reporter: &Reporter) -> Self {
        Self::spawn_with(reporter, workers::model_explainer)
    }

    /// With explainers made by `new_explainer` (a test's, say).
    pub fn spawn_with(reporter: &Reporter, new_explainer: fn() -> Explain) -> Self {
        Self {
            requests: Self::start_thread(reporter, new_explainer),
            reporter: reporter.clone(),
            new_explainer,
            done: HashMap::new(),
            pending: None,
            class: None,
        }
    }

    fn start_thread(reporter: &Reporter, new_explainer: fn() -> Explain) -> Sender<ExplainRequest> {
        let (requests, rx) = crossbeam_channel::unbounded();
        let reporter = reporter.clone();
        std::thread::Builder::new()
            .name("tweetlab-explainer".into())
            .spawn(move || workers::explain_loop(rx, &reporter, &new_explainer))
            .expect("can spawn a thread");
        requests
    }

    /// Scores words for `class` from now on (None: the predicted class).
    pub fn set_class(&mut self, class: Option<u8>) {
        if class != self.class {
            self.class = class;
            self.forget();
        }
    }

    /// Neither computed nor on its way.
    pub fn wants(&self, row: usize) -> bool {
        !self.done.contains_key(&row) && self.pending != Some(row)
    }

    pub fn request(&mut self, request: ExplainRequest) {
        self.pending = Some(request.row);
        if let Err(unsent) = self.requests.send(request) {
            // The explainer thread is gone (its loop answers panics, so only by a failure of the
            // thread itself): a new one takes the request.
            self.requests = Self::start_thread(&self.reporter, self.new_explainer);
            let _ = self.requests.send(unsent.0);
        }
    }

    /// Keeps a result if it is by `model_dir`, the model whose predictions are shown.
    pub fn on_event(&mut self, event: Explained, model_dir: Option<&Path>) {
        if self.pending == Some(event.row) {
            self.pending = None;
        }
        if model_dir == Some(event.model_dir.as_path()) && event.class == self.class {
            self.done.insert(event.row, event.result);
        }
    }

    /// Another model or file: the cached words no longer apply.
    pub fn forget(&mut self) {
        // `class` stays: the analyst's choice outlives a model.
        self.done.clear();
        self.pending = None;
    }

    pub fn get(&self, row: usize) -> Option<&Result<Explanation, String>> {
        self.done.get(&row)
    }

    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Where the words for `row` stand, by the model in `model_dir` if there is one.
    pub fn state(&self, row: usize, model_dir: Option<&PathBuf>) -> ExplainState<'_> {
        match (model_dir, self.done.get(&row)) {
            (None, _) => ExplainState::NoModel,
            (Some(_), Some(Ok(e))) => ExplainState::Ready(e),
            (Some(_), Some(Err(m))) => ExplainState::Failed(m),
            (Some(_), None) => ExplainState::Pending,
        }
    }
}

/// Where the word contributions for the shown tweet stand.
pub enum ExplainState<'a> {
    /// No fine-tuned model yet: train one, or reopen a workspace that has one.
    NoModel,
    Pending,
    Ready(&'a Explanation),
    Failed(&'a str),
}

pub struct DetailView<'a> {
    pub row: usize,
    pub tweet: &'a Tweet,
    pub labels: &'a LabelSet,
    /// The file's other columns the import kept in view: (header, cell).
    pub columns: Vec<(&'a str, &'a str)>,
    /// Every class's probability, when a model predicted this row.
    pub prediction: Option<&'a [f32]>,
    /// The class the words are scored for (None: the predicted one).
    pub explain_class: Option<u8>,
    pub explanation: ExplainState<'a>,
}

const DISASTER: Color32 = Color32::from_rgb(214, 39, 40);
const NOT_DISASTER: Color32 = Color32::from_rgb(31, 119, 180);

/// Background for a word whose score is `score`, on a scale where `max` is full colour.
pub fn word_colour(score: f32, max: f32) -> Color32 {
    let strength = (score.abs() / max.max(1e-6)).clamp(0.0, 1.0);
    let base = if score >= 0.0 { DISASTER } else { NOT_DISASTER };
    Color32::from_rgba_unmultiplied(base.r(), base.g(), base.b(), (strength * 200.0) as u8)
}

/// The tweet's text with each explained word on its colour; text between words stays plain.
pub fn coloured_text(ui: &egui::Ui, explanation: &Explanation) -> LayoutJob {
    let font = egui::TextStyle::Body.resolve(ui.style());
    let plain = TextFormat {
        font_id: font.clone(),
        color: ui.visuals().text_color(),
        ..Default::default()
    };
    let max = scale(explanation);
    let text = &explanation.text;
    let mut job = LayoutJob::default();
    job.wrap.max_width = ui.available_width();
    let mut at = 0;
    for w in &explanation.words {
        if w.start < at || w.end > text.len() || !text.is_char_boundary(w.start) {
            continue;
        }
        job.append(&text[at..w.start], 0.0, plain.clone());
        job.append(
            &text[w.start..w.end],
            0.0,
            TextFormat {
                background: word_colour(w.score, max),
                // On a strong red or blue, white reads in both themes; on a faint one, the
                // theme's own text colour does.
                color: if w.score.abs() / max.max(1e-6) > 0.5 {
                    Color32::WHITE
                } else {
                    plain.color
                },
                ..plain.clone()
            },
        );
        at = w.end;
    }
    job.append(&text[at..], 0.0, plain);
    job
}

/// Full colour at the largest contribution, but never below 1 logit, so a tweet where nothing
/// matters does not light up.
fn scale(explanation: &Explanation) -> f32 {
    explanation
        .words
        .iter()
        .map(|w| w.score.abs())
        .fold(1.0, f32::max)
}

/// What the analyst did in the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailAction {
    /// Set (Some) or clear (None) the label.
    Label(Option<u8>),
    /// Score the words for this class (None: the predicted one).
    Explain(Option<u8>),
}

/// Draws the panel; returns what the user did with its buttons.
pub fn show(ui: &mut egui::Ui, view: Option<DetailView>) -> Option<DetailAction> {
    let Some(view) = view else {
        ui.label("Select a tweet (click, or j / k) to see it here.");
        return None;
    };
    let mut set = None;
    let t = view.tweet;
    ui.horizontal_wrapped(|ui| {
        ui.strong(format!("id {}", t.id));
        ui.label(format!("line {}", t.line));
        if !t.keyword.is_empty() {
            ui.label(format!("keyword: {}", t.keyword.replace("%20", " ")));
        }
        if !t.location.is_empty() {
            ui.label(format!("location: {}", t.location));
        }
        for (name, cell) in &view.columns {
            if !cell.trim().is_empty() {
                ui.label(format!("{name}: {cell}"));
            }
        }
        ui.separator();
        let labels = view.labels;
        ui.label(format!(
            "label: {}",
            t.label.map_or("none".to_string(), |l| labels.short(l))
        ));
        let mut buttons: Vec<(String, Option<u8>)> = if labels.is_default_binary() {
            vec![("1 disaster".into(), Some(1)), ("0 not".into(), Some(0))]
        } else {
            (0..labels.len() as u8)
                .map(|c| {
                    let key = labels
                        .key_for_class(c)
                        .map_or(String::new(), |k| format!("{k} "));
                    (format!("{key}{}", labels.name(c)), Some(c))
                })
                .collect()
        };
        buttons.push(("clear".into(), None));
        for (text, label) in buttons {
            if ui
                .selectable_label(t.label == label, text)
                .on_hover_text("Set the label (its digit key; x clears)")
                .clicked()
            {
                set = Some(DetailAction::Label(label));
            }
        }
        ui.separator();
        match view.prediction {
            Some(p) if p.len() == 2 => ui.label(format!(
                "prediction: {} (p = {:.3})",
                labels.short(top_class(p)),
                p[1]
            )),
            Some(p) => {
                let c = top_class(p);
                ui.label(format!(
                    "prediction: {} (p = {:.3})",
                    labels.short(c),
                    p[c as usize]
                ))
                .on_hover_text(
                    (0..p.len())
                        .map(|k| format!("{}: {:.3}", labels.name(k as u8), p[k]))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            }
            None => ui.label("no prediction yet"),
        };
    });
    ui.separator();
    egui::ScrollArea::vertical()
        .id_salt(("detail", view.row))
        .show(ui, |ui| match view.explanation {
            ExplainState::Ready(e) => {
                // The coloured tweet and its legend on the left, the strongest words beside it.
                let words_width = 190.0;
                ui.horizontal_top(|ui| {
                    ui.vertical(|ui| {
                        ui.set_width((ui.available_width() - words_width).max(200.0));
                        ui.label(coloured_text(ui, e));
                        ui.add_space(4.0);
                        legend(ui, scale(e), view.labels, e.class);
                        if let Some(class) = explain_for(ui, view.labels, view.explain_class) {
                            set = Some(DetailAction::Explain(class));
                        }
                    });
                    ui.vertical(|ui| top_words(ui, e));
                });
            }
            other => {
                ui.add(egui::Label::new(&t.text).wrap());
                ui.add_space(4.0);
                match other {
                    ExplainState::NoModel => ui.weak(
                        "Word contributions appear here once a model is trained (Train panel).",
                    ),
                    ExplainState::Pending => ui.weak("Computing word contributions…"),
                    ExplainState::Failed(message) => ui.colored_label(
                        ui.visuals().error_fg_color,
                        format!("Could not explain this tweet: {message}"),
                    ),
                    ExplainState::Ready(_) => unreachable!(),
                };
            }
        });
    set
}

/// A colour strip from "not disaster" to "disaster" (for named classes: away from and towards
/// the explained class), with the scale in logits.
fn legend(ui: &mut egui::Ui, max: f32, labels: &LabelSet, class: u8) {
    let (away, towards, odds) = if labels.is_default_binary() {
        (
            "not disaster".to_string(),
            "disaster".to_string(),
            "the disaster log-odds".to_string(),
        )
    } else {
        let name = labels.name(class);
        (
            format!("away from {name}"),
            format!("towards {name}"),
            format!("the log-odds of {name} (the predicted class)"),
        )
    };
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(away).color(NOT_DISASTER));
        let steps = 11;
        for k in 0..steps {
            let score = max * (2.0 * k as f32 / (steps - 1) as f32 - 1.0);
            let (rect, _) = ui.allocate_exact_size(egui::vec2(14.0, 14.0), egui::Sense::hover());
            ui.painter().rect_filled(rect, 0.0, word_colour(score, max));
        }
        ui.label(RichText::new(towards).color(DISASTER));
        ui.weak(format!(
            "full colour: {odds} fall by {max:.2} (red) or rise by {max:.2} (blue) when the word is hidden"
        ));
    });
}

/// "Words for: predicted class / a class" (the class whose log-odds the colours show).
fn explain_for(ui: &mut egui::Ui, labels: &LabelSet, current: Option<u8>) -> Option<Option<u8>> {
    let mut chosen = current;
    ui.horizontal(|ui| {
        let l = ui.label("Words for:");
        egui::ComboBox::from_id_salt("explain_class")
            .selected_text(current.map_or("the predicted class".to_string(), |c| labels.name(c)))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut chosen, None, "the predicted class");
                for c in 0..labels.len() as u8 {
                    ui.selectable_value(&mut chosen, Some(c), labels.name(c));
                }
            })
            .response
            .labelled_by(l.id);
    });
    (chosen != current).then_some(chosen)
}

/// The strongest words both ways, with their scores.
fn top_words(ui: &mut egui::Ui, e: &Explanation) {
    let mut words: Vec<_> = e.words.iter().collect();
    words.sort_by(|a, b| b.score.abs().total_cmp(&a.score.abs()));
    egui::Grid::new("top_words").striped(true).show(ui, |ui| {
        ui.strong("word");
        ui.strong("contribution");
        ui.end_row();
        for w in words.iter().take(8) {
            ui.label(&w.word);
            ui.colored_label(
                if w.score >= 0.0 {
                    DISASTER
                } else {
                    NOT_DISASTER
                },
                format!("{:+.2}", w.score),
            );
            ui.end_row();
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::app::protocol::Event;

    /// Panics on row 0, explains any other row with no words.
    fn panics_on_row_zero() -> Explain {
        Box::new(|request| {
            assert!(request.row != 0, "index out of bounds: the row is 0");
            Ok(Explanation {
                text: request.text.clone(),
                probabilities: vec![0.5, 0.5],
                class: 0,
                words: Vec::new(),
            })
        })
    }

    fn request(row: usize) -> ExplainRequest {
        ExplainRequest {
            model_dir: PathBuf::from("model"),
            row,
            text: "smoke over the ridge".into(),
            class: None,
        }
    }

    fn next_explained(events: &crossbeam_channel::Receiver<Event>) -> Explained {
        match events.recv_timeout(Duration::from_secs(10)) {
            Ok(Event::Explain(e)) => e,
            Ok(_) => panic!("another event than an explanation"),
            Err(_) => panic!("the explainer never answered"),
        }
    }

    #[test]
    fn a_panicking_explainer_answers_with_the_failure_and_goes_on() {
        let (tx, events) = crossbeam_channel::unbounded();
        let reporter = Reporter::new(tx, egui::Context::default());
        let mut explanations = Explanations::spawn_with(&reporter, panics_on_row_zero);
        let model = PathBuf::from("model");

        explanations.request(request(0));
        assert!(explanations.is_pending());
        let failed = next_explained(&events);
        explanations.on_event(failed, Some(&model));
        assert!(
            !explanations.is_pending(),
            "the window is not left explaining"
        );
        match explanations.get(0) {
            Some(Err(m)) => assert!(
                m.contains("the explainer job stopped") && m.contains("the row is 0"),
                "{m}"
            ),
            other => panic!("expected the panic as the failure, got {other:?}"),
        }

        explanations.request(request(1));
        let next = next_explained(&events);
        explanations.on_event(next, Some(&model));
        assert!(
            matches!(explanations.get(1), Some(Ok(_))),
            "the next request is answered"
        );
    }
}
