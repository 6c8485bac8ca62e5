//! Team mode: the Connect dialog, the link to the project (the annotator's queue, the outbox
//! every label is written to first, the team's live progress) and the team review window
//! (disagreements side by side, one key to settle, agreement figures). The worker that talks to
//! the server is `workbench::team`; this panel draws from what it reported and returns what the
//! analyst asked for as a [`TeamAction`].

use std::collections::BTreeSet;

use crossbeam_channel::Sender;

use crate::data::team::outbox::{Outbox, Refused};
use crate::workbench::team::{Joined, TeamCommand, TeamEvent, TeamStatus};

/// What the analyst asked of team mode.
#[derive(Debug, Clone, PartialEq)]
pub enum TeamAction {
    Connect { url: String, password: String },
    Leave,
    Settle { row: i64, label: u8 },
    CloseReview,
}

#[derive(Default)]
pub struct ConnectDialog {
    pub open: bool,
    pub url: String,
    /// Typed here, handed to the connection, never stored.
    pub password: String,
}

/// A joined project.
pub struct TeamLink {
    pub joined: Joined,
    commands: Sender<TeamCommand>,
    /// The window's own handle on the outbox: a label is committed here before it shows.
    outbox: Outbox,
    /// Each row's label as last put in the outbox (what the server has or will have).
    mirror: Vec<Option<u8>>,
    /// Rows claimed now.
    pub queue: Vec<i64>,
    /// Rows the table shows: the queue and every row this annotator labelled.
    pub shown: BTreeSet<usize>,
    pub offline: Option<String>,
    pub waiting: usize,
    pub refused: Vec<Refused>,
    pub status: Option<TeamStatus>,
    /// The snapshot's workspace is open in the table.
    pub opened: bool,
    /// Rows sent to be settled, not yet seen settled.
    settling: BTreeSet<i64>,
}

impl TeamLink {
    pub fn new(joined: Joined, commands: Sender<TeamCommand>) -> Result<Self, String> {
        let outbox = Outbox::open(&joined.outbox).map_err(|e| e.to_string())?;
        let mirror = joined.mine.clone();
        let shown = mirror
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.map(|_| i))
            .collect();
        Ok(Self {
            joined,
            commands,
            outbox,
            mirror,
            queue: Vec::new(),
            shown,
            offline: None,
            waiting: 0,
            refused: Vec::new(),
            status: None,
            opened: false,
            settling: BTreeSet::new(),
        })
    }

    /// Puts every label of `labels` (the workspace's, by row) that differs from what was sent
    /// into the outbox, then asks the worker to send; true when the shown rows changed.
    pub fn mirror(&mut self, labels: impl Iterator<Item = Option<u8>>) -> Result<bool, String> {
        let changed: Vec<(i64, Option<u8>)> = labels
            .zip(&self.mirror)
            .enumerate()
            .filter(|(_, (label, sent))| label != *sent)
            .map(|(row, (label, _))| (row as i64, label))
            .collect();
        if changed.is_empty() {
            return Ok(false);
        }
        self.outbox
            .push_all(&changed)
            .map_err(|e| format!("{} label(s) were not kept for the team: {e}", changed.len()))?;
        let mut shown_changed = false;
        for &(row, label) in &changed {
            self.mirror[row as usize] = label;
            shown_changed |= self.shown.insert(row as usize);
        }
        self.waiting = self.outbox.waiting().unwrap_or(self.waiting);
        let _ = self.commands.send(TeamCommand::Flush);
        Ok(shown_changed)
    }

    /// Takes the worker's report; true when the rows shown changed.
    pub fn on_event(&mut self, event: TeamEvent) -> (bool, Option<String>) {
        match event {
            TeamEvent::Link {
                offline,
                waiting,
                refused,
            } => {
                self.offline = offline;
                self.waiting = waiting;
                let message = (!refused.is_empty()).then(|| {
                    let r = &refused[0];
                    format!(
                        "The team server refused {} label(s); row {}: {}",
                        refused.len(),
                        r.row,
                        r.reason
                    )
                });
                self.refused.extend(refused);
                (false, message)
            }
            TeamEvent::Queue(rows) => {
                let before = self.shown.len();
                self.shown.extend(rows.iter().map(|&r| r as usize));
                self.queue = rows;
                (self.shown.len() != before, None)
            }
            TeamEvent::Status(status) => {
                self.settling
                    .retain(|r| status.disagreements.iter().any(|d| d.row == *r));
                self.status = Some(*status);
                (false, None)
            }
            TeamEvent::Failed(message) => (false, Some(message)),
            TeamEvent::Joined(_) | TeamEvent::JoinFailed(_) | TeamEvent::Ended(_) => (false, None),
        }
    }

    pub fn settle(&mut self, row: i64, label: u8) {
        self.settling.insert(row);
        let _ = self.commands.send(TeamCommand::Settle { row, label });
    }

    pub fn leave(&self) {
        let _ = self.commands.send(TeamCommand::Leave);
    }

    /// The first disagreement not being settled now.
    pub fn current_disagreement(&self) -> Option<&crate::data::team::TeamRow> {
        self.status
            .as_ref()?
            .disagreements
            .iter()
            .find(|d| !self.settling.contains(&d.row))
    }

    /// One line for the status bar.
    pub fn summary(&self) -> String {
        let who = format!("{} as {}", self.joined.project.name, self.joined.me);
        let progress = match &self.status {
            Some(s) => format!(
                "{} of {} labels, {} of {} rows final",
                s.labels_given, s.labels_wanted, s.settled, s.rows
            ),
            None => "reading progress…".into(),
        };
        let link = match (&self.offline, self.waiting) {
            (Some(_), n) => format!("OFFLINE, {n} label(s) waiting to be sent"),
            (None, 0) => "online, every label sent".into(),
            (None, n) => format!("online, sending {n} label(s)"),
        };
        format!(
            "Team {who}: {progress} · {} in your queue · {link}",
            self.queue.len()
        )
    }
}

impl Drop for TeamLink {
    fn drop(&mut self) {
        self.leave();
    }
}

/// The Connect dialog; returns Connect when the analyst asked to.
pub fn show_connect(ctx: &egui::Context, dialog: &mut ConnectDialog) -> Option<TeamAction> {
    if !dialog.open {
        return None;
    }
    let mut action = None;
    let mut open = dialog.open;
    egui::Window::new("Connect to team project")
        .open(&mut open)
        .collapsible(false)
        .show(ctx, |ui| {
            ui.label("The connection line your project's owner handed you (`tweetlab team add-annotator` prints it), or a postgresql:// URL.");
            egui::Grid::new("team_connect").num_columns(2).show(ui, |ui| {
                let label = ui.label("Connection:");
                ui.add(egui::TextEdit::singleline(&mut dialog.url).desired_width(420.0))
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Password:");
                ui.add(
                    egui::TextEdit::singleline(&mut dialog.password)
                        .password(true)
                        .desired_width(420.0),
                )
                .labelled_by(label.id);
                ui.end_row();
            });
            ui.weak("The password is not stored; empty uses PGPASSWORD. The connection line is remembered without it.");
            if ui
                .add_enabled(!dialog.url.trim().is_empty(), egui::Button::new("Connect"))
                .clicked()
            {
                action = Some(TeamAction::Connect {
                    url: dialog.url.trim().to_string(),
                    password: std::mem::take(&mut dialog.password),
                });
            }
        });
    dialog.open = open && action.is_none();
    action
}

/// The team review window: agreement figures, and for reviewers the rows annotators disagree
/// on with each one's label side by side; a class key (or button) settles the current one.
pub fn show_review(ctx: &egui::Context, link: &TeamLink) -> Option<TeamAction> {
    let labels = &link.joined.project.labels;
    let mut action = None;
    let mut open = true;
    egui::Window::new("Team review")
        .open(&mut open)
        .default_width(520.0)
        .show(ctx, |ui| {
            let Some(status) = &link.status else {
                ui.label("Reading the team's labels…");
                return;
            };
            ui.heading("Agreement");
            let a = &status.agreement;
            if a.pairs.is_empty() {
                ui.weak("No two annotators have labelled the same row yet.");
            }
            egui::Grid::new("team_pairs").striped(true).show(ui, |ui| {
                for h in ["pair", "rows", "agree", "Cohen's κ"] {
                    ui.strong(h);
                }
                ui.end_row();
                for p in &a.pairs {
                    ui.label(format!("{} ~ {}", p.a, p.b));
                    ui.label(p.rows.to_string());
                    ui.label(format!("{:.1}%", p.percent));
                    ui.label(p.cohen_kappa.map_or("—".into(), |k| format!("{k:.3}")));
                    ui.end_row();
                }
            });
            let k = link.joined.project.overlap;
            if k >= 3 {
                ui.label(match a.fleiss {
                    Some(f) => format!(
                        "Fleiss' κ {f:.3} over {} rows with {k} labels",
                        a.fleiss_rows
                    ),
                    None => format!("Fleiss' κ: no rows with {k} labels yet"),
                });
            }
            if !a.confusion.is_empty() {
                ui.label("Each annotator against the final labels (rows: final, columns: theirs):");
                for (who, m) in &a.confusion {
                    let total: u32 = m.iter().flatten().sum();
                    let same: u32 = (0..m.len()).map(|c| m[c][c]).sum();
                    ui.label(format!("{who}: {same} of {total} agree  {m:?}"));
                }
            }
            ui.separator();
            if !link.joined.may_settle {
                ui.weak("Only reviewers settle disagreements.");
                return;
            }
            ui.heading(format!("Disagreements ({})", status.disagreements.len()));
            let Some(row) = link.current_disagreement() else {
                ui.label("None: every row the annotators disagree on is settled.");
                return;
            };
            ui.label(egui::RichText::new(&row.text).size(16.0));
            egui::Grid::new("team_votes").striped(true).show(ui, |ui| {
                for (who, l) in &row.labels {
                    ui.label(who);
                    ui.strong(labels.name(*l));
                    ui.end_row();
                }
            });
            ui.horizontal_wrapped(|ui| {
                for class in 0..labels.len() as u8 {
                    let key = labels
                        .key_for_class(class)
                        .map_or(String::new(), |d| format!(" ({d})"));
                    if ui
                        .button(format!("Settle as {}{key}", labels.name(class)))
                        .clicked()
                    {
                        action = Some(TeamAction::Settle {
                            row: row.row,
                            label: class,
                        });
                    }
                }
            });
        });
    if !open {
        action = Some(TeamAction::CloseReview);
    }
    action
}
