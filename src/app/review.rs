//! Review window: three queues over the labels. Suspects (labels the out-of-sample fast model
//! doubts, most suspect first): `a` accepts the suggested label, `s` keeps the given one, both
//! recorded in the edit history, `n` passes without a decision. Conflicts (the same text with
//! both labels): `1` / `0` set the whole group in one step. Label next (unlabelled rows the
//! fast model is least sure of, near-copies pushed back): `1` / `0` label the row; every
//! `RERANK_EVERY` labels the fast model is refitted in the background and the queue re-ranked.
//! The table cursor follows the queue, so the detail panel shows the tweet and its words.

use super::job_registry::{JobKind, Jobs};
use super::protocol::{Progress, Request, ReviewEvent, SuspectRow};
use crate::data::duplicates::Duplicates;
use crate::data::LabelSet;
use crate::data::Tweet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    #[default]
    Suspects,
    Conflicts,
    Next,
}

/// Labels given from the next-to-label queue between two re-rankings.
pub const RERANK_EVERY: usize = 20;

#[derive(Default)]
pub struct ReviewPanel {
    pub open: bool,
    pub tab: Tab,
    /// Suspects of the open workspace, once found.
    pub suspects: Option<Vec<SuspectRow>>,
    /// Position in `suspects`.
    pub position: usize,
    /// Position among the conflicting groups.
    pub group_position: usize,
    /// Fine-tune per fold (the Train panel's settings) instead of the fast mode.
    pub full_mode: bool,
    pub summary: Option<String>,
    /// Decisions taken in this window (accepted, kept).
    pub decided: (usize, usize),
    /// Unlabelled rows to label next with the fast model's probabilities, once ranked.
    pub next: Option<Vec<(usize, Vec<f32>)>>,
    pub next_position: usize,
    /// Labels given from the queue since it was ranked.
    pub since_rank: usize,
    /// Labelled rows the current ranking was fitted on.
    pub ranked_on: usize,
    /// A simulated labelling session: held-out F1 against labels used, (queue, random order).
    pub curve: Option<(Vec<egui_plot::PlotPoint>, Vec<egui_plot::PlotPoint>)>,
    /// Estimated label errors per class, from the last search.
    pub estimated_errors: Vec<usize>,
}

/// What the review window draws from, borrowed from the app each frame.
pub struct ReviewData<'a> {
    pub rows: &'a [Tweet],
    pub labels: &'a LabelSet,
    /// The app's cached count of labelled rows.
    pub labelled: usize,
    pub duplicates: &'a Duplicates,
    pub conflicting: &'a [bool],
    pub jobs: &'a Jobs,
}

/// What the user decided in the review window.
#[derive(Debug, Clone, PartialEq)]
pub enum ReviewAction {
    /// Start looking for suspects (`full`: fine-tune per fold instead of the fast mode).
    Find { full: bool },
    /// Set `row` to `label` (an accepted suggestion).
    Accept { row: usize, label: u8 },
    /// Keep `row`'s label, and record that it was reviewed.
    Keep { row: usize },
    /// Rank (or re-rank) the unlabelled rows.
    Rank,
    /// Label a row from the next-to-label queue.
    LabelNext { row: usize, label: u8 },
    /// Simulate a labelling session on the labelled rows.
    Simulate,
    /// Set every row of a conflicting group.
    SetGroup { rows: Vec<usize>, label: u8 },
}

impl ReviewPanel {
    /// Takes an event of one of the window's jobs; a failure stops that job alone. A new
    /// queue asks the app to move the table cursor to its first tweet.
    pub fn on_event(&mut self, jobs: &mut Jobs, event: ReviewEvent) -> Option<Request> {
        let done = match event {
            ReviewEvent::Suspects(e) => match jobs.on_event(JobKind::Suspects, e)? {
                Ok(found) => {
                    let e = &found.estimated_errors;
                    self.summary = Some(if e.len() == 2 {
                        format!(
                            "{} suspects: an estimated {} wrong among the 0s and {} among the 1s (out-of-sample accuracy {:.3}).",
                            found.suspects.len(),
                            e[0],
                            e[1],
                            found.accuracy
                        )
                    } else {
                        format!(
                            "{} suspects: an estimated {} wrong (out-of-sample accuracy {:.3}).",
                            found.suspects.len(),
                            e.iter().sum::<usize>(),
                            found.accuracy
                        )
                    });
                    self.estimated_errors = found.estimated_errors;
                    self.suspects = Some(found.suspects);
                    self.position = 0;
                    Ok(Some(Request::FocusReviewRow))
                }
                Err(m) => Err(m),
            },
            ReviewEvent::Ranking(e) => match jobs.on_event(JobKind::Rank, e)? {
                Ok(queue) => {
                    self.next = Some(queue.rows);
                    self.next_position = 0;
                    self.since_rank = 0;
                    self.ranked_on = queue.fitted_on;
                    Ok(Some(Request::FocusReviewRow))
                }
                Err(m) => Err(m),
            },
            ReviewEvent::Simulation(e) => {
                let curve = jobs.on_event(JobKind::Simulate, e)?;
                curve.map(|c| {
                    let points = |v: Vec<(f64, f64)>| {
                        v.into_iter()
                            .map(|(x, y)| egui_plot::PlotPoint::new(x, y))
                            .collect()
                    };
                    self.curve = Some((points(c.queue), points(c.random)));
                    None
                })
            }
        };
        done.unwrap_or_else(|m| Some(Request::Error(format!("Label review: {m}"))))
    }

    /// A new file: forget the old queues.
    pub fn reset(&mut self) {
        let open = self.open;
        *self = Self::default();
        self.open = open;
    }

    /// The suspect under review, if any.
    pub fn current(&self) -> Option<SuspectRow> {
        self.suspects.as_ref()?.get(self.position).copied()
    }

    /// Indices (into `duplicates.groups`) of the groups that carry both labels now.
    pub fn conflict_groups(conflicting: &[bool]) -> Vec<usize> {
        (0..conflicting.len()).filter(|&g| conflicting[g]).collect()
    }

    /// The row the table cursor should show.
    pub fn focus_row(&self, duplicates: &Duplicates, conflicting: &[bool]) -> Option<usize> {
        match self.tab {
            Tab::Suspects => self.current().map(|s| s.row),
            Tab::Conflicts => Self::conflict_groups(conflicting)
                .get(self.group_position)
                .map(|&g| duplicates.groups[g].rows[0]),
            Tab::Next => self.current_next().map(|(row, _)| row),
        }
    }

    /// The unlabelled row at the head of the queue.
    pub fn current_next(&self) -> Option<(usize, Vec<f32>)> {
        self.next.as_ref()?.get(self.next_position).cloned()
    }

    /// A key decision for the current item: `accept` (a), `keep` (s), `next` (n), or a group
    /// label (1 / 0 on the conflicts tab).
    pub fn decide(
        &mut self,
        key: ReviewKey,
        duplicates: &Duplicates,
        conflicting: &[bool],
    ) -> Option<ReviewAction> {
        match (self.tab, key) {
            (Tab::Suspects, ReviewKey::Accept) => {
                let s = self.current()?;
                self.position += 1;
                self.decided.0 += 1;
                Some(ReviewAction::Accept {
                    row: s.row,
                    label: s.suggested,
                })
            }
            (Tab::Suspects, ReviewKey::Keep) => {
                let s = self.current()?;
                self.position += 1;
                self.decided.1 += 1;
                Some(ReviewAction::Keep { row: s.row })
            }
            (Tab::Suspects, ReviewKey::Next) => {
                self.current()?;
                self.position += 1;
                None
            }
            (Tab::Conflicts, ReviewKey::Label(label)) => {
                let groups = Self::conflict_groups(conflicting);
                let g = *groups.get(self.group_position)?;
                // The group stops conflicting, so the same position shows the next one.
                Some(ReviewAction::SetGroup {
                    rows: duplicates.groups[g].rows.clone(),
                    label,
                })
            }
            (Tab::Conflicts, ReviewKey::Next) => {
                let groups = Self::conflict_groups(conflicting);
                if self.group_position + 1 < groups.len() {
                    self.group_position += 1;
                }
                None
            }
            (Tab::Next, ReviewKey::Label(label)) => {
                let (row, _) = self.current_next()?;
                self.next_position += 1;
                self.since_rank += 1;
                Some(ReviewAction::LabelNext { row, label })
            }
            (Tab::Next, ReviewKey::Next) => {
                self.current_next()?;
                self.next_position += 1;
                None
            }
            _ => None,
        }
    }

    /// Draws the window.
    pub fn show(&mut self, ctx: &egui::Context, data: &ReviewData) -> Option<ReviewAction> {
        if !self.open {
            return None;
        }
        let ReviewData {
            rows,
            labels,
            labelled,
            duplicates,
            conflicting,
            jobs,
        } = *data;
        let mut action = None;
        let mut open = true;
        egui::Window::new("Review labels")
            .open(&mut open)
            .default_width(460.0)
            .anchor(egui::Align2::RIGHT_TOP, egui::vec2(-400.0, 60.0))
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut self.tab, Tab::Suspects, "Suspect labels");
                    let n = Self::conflict_groups(conflicting).len();
                    ui.selectable_value(&mut self.tab, Tab::Conflicts, format!("Conflicts ({n})"));
                    ui.selectable_value(&mut self.tab, Tab::Next, "Label next");
                });
                ui.separator();
                match self.tab {
                    Tab::Suspects => {
                        action = self.suspects_tab(ui, rows, labels, duplicates, conflicting, jobs)
                    }
                    Tab::Conflicts => {
                        action = self.conflicts_tab(ui, rows, labels, duplicates, conflicting)
                    }
                    Tab::Next => {
                        action = self.next_tab(ui, rows, labels, rows.len() - labelled, jobs)
                    }
                }
            });
        if !open {
            self.open = false;
        }
        action
    }

    fn suspects_tab(
        &mut self,
        ui: &mut egui::Ui,
        rows: &[Tweet],
        labels: &LabelSet,
        duplicates: &Duplicates,
        conflicting: &[bool],
        jobs: &Jobs,
    ) -> Option<ReviewAction> {
        let mut action = None;
        if jobs.is_running(JobKind::Suspects) {
            show_progress(ui, jobs.get(JobKind::Suspects).progress(), "starting");
            return None;
        }
        let Some(suspects) = &self.suspects else {
            ui.label("Score every labelled tweet with a model that never saw it (5 folds) and list the labels it doubts. Fast mode: frozen MiniLM embeddings and a logistic regression, about a minute for 6000 tweets the first time, seconds after.");
            ui.checkbox(
                &mut self.full_mode,
                "Full mode: fine-tune the Train panel's model once per fold (5 training runs)",
            );
            if ui.button("Find suspect labels").clicked() {
                action = Some(ReviewAction::Find {
                    full: self.full_mode,
                });
            }
            return action;
        };
        if let Some(summary) = &self.summary {
            ui.label(summary);
        }
        if !labels.is_default_binary() {
            let per_class: Vec<String> = self
                .estimated_errors
                .iter()
                .enumerate()
                .map(|(c, n)| format!("{} {n}", labels.name(c as u8)))
                .collect();
            if !per_class.is_empty() {
                ui.label(format!(
                    "estimated wrong per class: {}",
                    per_class.join(", ")
                ));
            }
        }
        ui.label(format!(
            "{} accepted, {} kept in this window",
            self.decided.0, self.decided.1
        ));
        match suspects.get(self.position).copied() {
            Some(s) => {
                let t = &rows[s.row];
                ui.separator();
                ui.strong(format!(
                    "{} of {} · id {} · line {}",
                    self.position + 1,
                    suspects.len(),
                    t.id,
                    t.line
                ));
                ui.add(egui::Label::new(&t.text).wrap());
                let (given, suggested) = (labels.short(s.given), labels.short(s.suggested));
                ui.label(format!(
                    "given {given} · suggested {suggested} · score {:.3}",
                    s.score
                ));
                let key = key_buttons(
                    ui,
                    &[
                        (format!("Accept {suggested} (a)"), ReviewKey::Accept),
                        (format!("Keep {given} (s)"), ReviewKey::Keep),
                        ("Next (n)".to_string(), ReviewKey::Next),
                    ],
                );
                if let Some(key) = key {
                    action = self.decide(key, duplicates, conflicting);
                }
            }
            None => {
                ui.label("All suspects reviewed.");
            }
        }
        if ui.small_button("Find again").clicked() {
            action = Some(ReviewAction::Find {
                full: self.full_mode,
            });
        }
        action
    }

    fn conflicts_tab(
        &mut self,
        ui: &mut egui::Ui,
        rows: &[Tweet],
        labels: &LabelSet,
        duplicates: &Duplicates,
        conflicting: &[bool],
    ) -> Option<ReviewAction> {
        let groups = Self::conflict_groups(conflicting);
        if groups.is_empty() {
            ui.label("No text carries two different labels.");
            return None;
        }
        self.group_position = self.group_position.min(groups.len() - 1);
        let group = &duplicates.groups[groups[self.group_position]];
        ui.strong(format!(
            "group {} of {} · {} rows",
            self.group_position + 1,
            groups.len(),
            group.rows.len()
        ));
        egui::Grid::new("conflict_rows")
            .striped(true)
            .show(ui, |ui| {
                for &r in group.rows.iter().take(12) {
                    let t = &rows[r];
                    ui.label(&t.id);
                    ui.label(t.label.map_or("·".into(), |l| labels.short(l)));
                    ui.add(egui::Label::new(&t.text).truncate());
                    ui.end_row();
                }
            });
        let buttons = class_buttons(labels, "Whole group ");
        let key = key_buttons(ui, &buttons);
        key.and_then(|key| self.decide(key, duplicates, conflicting))
    }
}

impl ReviewPanel {
    fn next_tab(
        &mut self,
        ui: &mut egui::Ui,
        rows: &[Tweet],
        labels: &LabelSet,
        unlabelled: usize,
        jobs: &Jobs,
    ) -> Option<ReviewAction> {
        let mut action = self.curve_section(ui, jobs);
        if unlabelled == 0 {
            ui.label("Every row has a label: nothing to label next.");
            return action;
        }
        if jobs.is_running(JobKind::Rank) {
            show_progress(
                ui,
                jobs.get(JobKind::Rank).progress(),
                "ranking the unlabelled rows",
            );
        }
        let Some(queue) = &self.next else {
            ui.label(format!(
                "{unlabelled} rows have no label. The fast model (fitted on the labelled rows) ranks them least certain first, pushing back near-copies of rows already queued; it is refitted every {RERANK_EVERY} labels."
            ));
            if !jobs.is_running(JobKind::Rank) && ui.button("Rank unlabelled rows").clicked() {
                action = Some(ReviewAction::Rank);
            }
            return action;
        };
        ui.label(format!(
            "ranked on {} labelled rows · {} labelled here since · {unlabelled} unlabelled left",
            self.ranked_on, self.since_rank
        ));
        match queue.get(self.next_position) {
            Some((row, p)) => {
                let t = &rows[*row];
                ui.separator();
                let guess = crate::data::export::top_class(p);
                ui.strong(format!(
                    "{} of {} · id {} · fast model: {} p = {:.2}",
                    self.next_position + 1,
                    queue.len(),
                    t.id,
                    labels.short(guess),
                    p[guess as usize]
                ));
                ui.add(egui::Label::new(&t.text).wrap());
                let buttons = class_buttons(labels, "");
                let key = key_buttons(ui, &buttons);
                if let Some(key) = key {
                    action = self.decide(key, &Duplicates::default(), &[]);
                }
            }
            None => {
                ui.label("End of this ranking.");
            }
        }
        if !jobs.is_running(JobKind::Rank) && ui.small_button("Rank again").clicked() {
            action = Some(ReviewAction::Rank);
        }
        action
    }
}

impl ReviewPanel {
    /// Does the queue beat random order here? A button to simulate it on the labelled rows, and
    /// the two curves.
    fn curve_section(&mut self, ui: &mut egui::Ui, jobs: &Jobs) -> Option<ReviewAction> {
        let mut action = None;
        ui.collapsing("Queue against random order (simulated on the labelled rows)", |ui| {
            match (&self.curve, jobs.is_running(JobKind::Simulate)) {
                (_, true) => {
                    show_progress(ui, jobs.get(JobKind::Simulate).progress(), "simulating");
                }
                (None, false) => {
                    ui.label("Hides the labels of 80% of the labelled rows, then labels them 20 at a time in the queue's order and in random order, refitting the fast model each time, and scores it on the other 20% (3 orders averaged).");
                    if ui.button("Simulate a learning curve").clicked() {
                        action = Some(ReviewAction::Simulate);
                    }
                }
                (Some((queue, random)), false) => {
                    egui_plot::Plot::new("learning_curve")
                        .height(180.0)
                        .legend(egui_plot::Legend::default())
                        .x_axis_label("labels used")
                        .y_axis_label("held-out F1")
                        .show(ui, |plot| {
                            plot.line(egui_plot::Line::new(
                                "label-next queue",
                                egui_plot::PlotPoints::Borrowed(queue),
                            ));
                            plot.line(egui_plot::Line::new(
                                "random order",
                                egui_plot::PlotPoints::Borrowed(random),
                            ));
                        });
                }
            }
        });
        action
    }
}

/// What a worker reports: a bar when it can count, else its words. No spinner: an animation
/// repaints every frame, and on a software-rendered desktop that takes CPU from the work itself
/// (the worker's events repaint the bar).
fn show_progress(ui: &mut egui::Ui, progress: Option<&Progress>, idle: &str) {
    match progress {
        Some(Progress { what, done, total }) if *total > 0 => {
            ui.add(
                egui::ProgressBar::new(*done as f32 / *total as f32)
                    .text(format!("{what}: {done} / {total}")),
            );
        }
        Some(Progress { what, .. }) => {
            ui.label(format!("{what}…"));
        }
        None => {
            ui.label(format!("{idle}…"));
        }
    }
}

/// A row of buttons, each standing for a key; returns the key of the one clicked.
/// One button per class (with its digit key), then Next: the keys the conflicts and label-next
/// tabs take. 0/1 files keep their order: 1 (disaster) first.
fn class_buttons(labels: &LabelSet, prefix: &str) -> Vec<(String, ReviewKey)> {
    let mut buttons: Vec<(String, ReviewKey)> = (0..labels.len() as u8)
        .map(|c| {
            let name = if labels.is_default_binary() {
                ["Not", "Disaster"][c as usize].to_string()
            } else {
                labels.name(c)
            };
            let key = labels
                .key_for_class(c)
                .map_or(String::new(), |k| format!(" ({k})"));
            (format!("{prefix}{name}{key}"), ReviewKey::Label(c))
        })
        .collect();
    if labels.is_default_binary() {
        buttons.reverse();
    }
    buttons.push(("Next (n)".into(), ReviewKey::Next));
    buttons
}

fn key_buttons<S: AsRef<str>>(ui: &mut egui::Ui, buttons: &[(S, ReviewKey)]) -> Option<ReviewKey> {
    ui.horizontal(|ui| {
        let mut clicked = None;
        for (text, key) in buttons {
            if ui.button(text.as_ref()).clicked() {
                clicked = Some(*key);
            }
        }
        clicked
    })
    .inner
}

/// Keys the review window takes while it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewKey {
    Accept,
    Keep,
    Next,
    Label(u8),
}
