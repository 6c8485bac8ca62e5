//! Routing: each background event goes to its owner's `on_event`, and what owners, panels and
//! bars ask of the app ([`Request`], the panels' actions) is applied here, in one place.

use std::path::PathBuf;

use super::import_dialog::{ImportAction, ImportDraft};
use super::job_registry::JobKind;
use super::open_file::OpenFile;
use super::protocol::{
    DialogEvent, Event, ExportKind, JobEvent, LoadEvent, Predicted, Request, Scoped,
};
use super::review::ReviewAction;
use super::top_bar::TopBarAction;
use super::train_panel::TrainAction;
use super::TweetlabApp;
use crate::data::save::Saved;
use crate::data::store::Arrival;

/// What the analyst must hear about how a file opened, if anything.
fn arrival_notice(arrival: &Arrival) -> Option<String> {
    match arrival {
        Arrival::Imported | Arrival::Reopened => None,
        Arrival::SourceMissing(why) => Some(format!(
            "The CSV could not be read ({why}); its workspace opened as it was. Save is refused until the file is back; Save as… writes elsewhere."
        )),
        Arrival::Rebuilt { broken } => Some(format!(
            "The workspace of this file was left half made (an import was interrupted); it was imported again. The unfinished file is kept at {}.",
            broken.display()
        )),
        Arrival::Reimported(c) => {
            let unmatched = if c.unmatched.is_empty() {
                String::new()
            } else {
                format!(
                    " {} edits no longer match a row with the same id and text (ids: {}).",
                    c.unmatched.len(),
                    c.unmatched.join(", ")
                )
            };
            Some(format!(
                "This file changed since it was imported, so it was imported again: {} of your label edits were carried over.{unmatched} The workspace as it was (history, runs, predictions) is kept at {}.",
                c.carried,
                c.backup.display()
            ))
        }
    }
}

impl TweetlabApp {
    /// Drains the events that arrived since the last frame.
    pub(super) fn handle_events(&mut self) {
        while let Ok(event) = self.rx.try_recv() {
            self.route(event);
        }
    }

    /// Hands `event` to its owner and applies what the owner asks for.
    pub(super) fn route(&mut self, event: Event) {
        let request = match event {
            Event::Load(e) => self.on_load(e),
            Event::Dialog(e) => self.on_dialog(e),
            Event::Train(e) => self.train.on_event(e),
            Event::Baseline(e) => self
                .for_open_file(e)
                .and_then(|e| self.train.on_baseline(&mut self.jobs, e)),
            Event::Predict(e) => self.for_open_file(e).and_then(|e| self.on_predicted(e)),
            Event::Explain(e) => {
                let model_dir = self.file.as_ref().and_then(|f| f.model_dir.as_deref());
                self.explanations.on_event(e, model_dir);
                None
            }
            Event::Export(e) => self.jobs.on_event(JobKind::Export, e).map(|end| match end {
                Ok(done) => Request::Status(format!(
                    "wrote {} ({} rows) to {}",
                    done.kind.title(),
                    done.rows,
                    done.path.display()
                )),
                Err(message) => Request::Error(message),
            }),
            Event::Save(e) => self.for_open_file(e).and_then(|e| self.on_saved(e)),
            Event::Review(e) => self
                .for_open_file(e)
                .and_then(|e| self.review.on_event(&mut self.jobs, e)),
            Event::Team(join, e) if join == self.team_join => self.on_team(e),
            Event::Team(..) => None,
        };
        if let Some(request) = request {
            self.apply(request);
        }
    }

    /// The event of a job started for the open file; None for one of a file no longer open
    /// (its jobs' states were reset when the other file opened).
    fn for_open_file<T>(&self, scoped: Scoped<T>) -> Option<T> {
        let open = self.file.as_ref()?;
        open.is(&scoped.workspace).then_some(scoped.event)
    }

    pub(super) fn apply(&mut self, request: Request) {
        match request {
            Request::Status(s) => self.status = s,
            Request::Error(e) => self.error = Some(e),
            Request::Predict {
                workspace,
                model_dir,
                run,
            } => self.start_prediction(workspace, model_dir, run),
            Request::FocusReviewRow => self.focus_review_row(),
        }
    }

    fn on_load(&mut self, event: LoadEvent) -> Option<Request> {
        match event {
            LoadEvent::Progress { done, total } => {
                if let Some((_, f)) = &mut self.loading {
                    *f = done as f32 / total.max(1) as f32;
                }
                None
            }
            LoadEvent::Failed { csv, .. } if !self.is_loading_now(&csv) => None,
            LoadEvent::NeedsChoice(needed) if !self.is_loading_now(&needed.csv) => None,
            LoadEvent::NeedsChoice(needed) => {
                self.loading = None;
                let csv = needed.csv.clone();
                match ImportDraft::new(
                    needed.csv,
                    needed.sample,
                    needed.whole_file,
                    needed.known.as_ref(),
                    needed.reason,
                ) {
                    Ok(draft) => {
                        self.import.draft = Some(draft);
                        Some(Request::Status(format!(
                            "{}: choose how to read it",
                            csv.display()
                        )))
                    }
                    Err(message) => Some(Request::Error(format!(
                        "Could not open {}: {message}",
                        csv.display()
                    ))),
                }
            }
            LoadEvent::Loaded(opened) if !self.is_loading_now(&opened.csv) => None,
            LoadEvent::Failed { csv, message } => {
                self.loading = None;
                let text = format!(
                    "Could not open {}: {message}\nCheck that it is a CSV or TSV with a text column; the message names the line at fault. \"Choose how to read it\" sets the delimiter, the columns and the labels.",
                    csv.display()
                );
                self.failed_open = csv.is_file().then_some(csv);
                Some(Request::Error(text))
            }
            LoadEvent::Loaded(opened) => {
                let opened = *opened;
                let arrival = opened.arrival.clone();
                let mut status = format!(
                    "{}: {} rows{}",
                    opened.csv.display(),
                    opened.workspace.rows().len(),
                    match opened.problems.first() {
                        None => String::new(),
                        Some(p) => format!(
                            ", {} problem rows (first: line {}: {})",
                            opened.problems.len(),
                            p.line,
                            p.reason
                        ),
                    }
                );
                let team_snapshot = self.team.as_mut().filter(|t| t.joined.csv == opened.csv);
                let is_team = team_snapshot.is_some();
                match team_snapshot {
                    // tweetlab's own file: not one of the analyst's recent files.
                    Some(link) => link.opened = true,
                    None => self.settings.remember(&opened.csv),
                }
                self.table.reset();
                self.train.set_past_runs(&opened.past_runs);
                self.review.reset();
                self.explanations.forget();
                self.jobs.forget_open_file();
                let file = OpenFile::new(opened);
                if let Some(dir) = &file.model_dir {
                    status.push_str(&format!("; predictions from {}", dir.display()));
                }
                // A team snapshot changes whenever the team labels: no news to the analyst.
                let notice = if is_team {
                    None
                } else {
                    arrival_notice(&arrival)
                };
                self.file = Some(file);
                self.table_drawn = false;
                self.loading = None;
                self.error = notice;
                Some(Request::Status(status))
            }
        }
    }

    fn on_saved(&mut self, event: JobEvent<Saved>) -> Option<Request> {
        let saved = match self.jobs.on_event(JobKind::Save, event)? {
            Ok(saved) => saved,
            Err(message) => return Some(Request::Error(format!("Save: {message}"))),
        };
        let file = self.file.as_mut()?;
        file.workspace.note_saved(saved.fingerprint);
        Some(Request::Status(format!(
            "saved: {} labels changed in {}; every other line is as it was",
            saved.changed,
            saved.path.display()
        )))
    }

    fn on_dialog(&mut self, event: DialogEvent) -> Option<Request> {
        match event {
            DialogEvent::Picked(Some(path)) => {
                if std::mem::take(&mut self.import_next_pick) {
                    self.choose_import(path);
                } else {
                    self.open(path);
                }
                None
            }
            DialogEvent::Picked(None) => {
                self.import_next_pick = false;
                Some(Request::Status("No file chosen. If no dialog appeared, this desktop has no file portal: type the path in the field and press Enter, or drop the file on the window.".into()))
            }
            DialogEvent::SavePicked(Some(path)) => {
                self.export.picked(path);
                None
            }
            DialogEvent::SavePicked(None) => {
                self.export.browsing = false;
                Some(Request::Status("No file chosen. If no dialog appeared, type the path in the Export window's field.".into()))
            }
        }
    }

    fn on_predicted(&mut self, event: JobEvent<Predicted>) -> Option<Request> {
        let predicted = match self.jobs.on_event(JobKind::Predict, event)? {
            Ok(p) => p,
            Err(message) => return Some(Request::Error(format!("Prediction failed: {message}"))),
        };
        let file = self.file.as_mut()?;
        let mut status = format!("predictions from {}", predicted.model_dir.display());
        if let Some(why) = &predicted.not_stored {
            status.push_str(&format!(
                " (warning: not stored in the workspace, so they will not come back: {why})"
            ));
        }
        file.set_predictions(predicted.probabilities, predicted.model_dir);
        self.table.mark_dirty();
        self.explanations.forget();
        Some(Request::Status(status))
    }

    /// Whether `csv` is the file the user asked for last (an earlier, slower load is dropped).
    fn is_loading_now(&self, csv: &std::path::Path) -> bool {
        self.loading.as_ref().is_some_and(|(p, _)| p == csv)
    }

    /// Sets (or clears) the label of `rows` as one undo step; `why` leads the history's
    /// description.
    pub(super) fn label(&mut self, rows: &[usize], label: Option<u8>, why: &str) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.label(rows, label, why) {
            Ok(()) => self.table.mark_dirty(),
            Err(e) => self.error = Some(e),
        }
    }

    /// The selection, else the cursor row.
    /// Labels the selection, else the tweet under the cursor, then moves on to the next tweet
    /// when "advance after labelling" is on and one tweet was labelled.
    pub(super) fn label_selected(&mut self, label: Option<u8>) {
        let rows = self.table.target_rows();
        self.label(&rows, label, "");
        if let [row] = rows[..] {
            if self.settings.advance_after_labelling && !self.table.has_selection() {
                self.table.advance_past(row);
            }
        }
    }

    pub(super) fn undo_redo(&mut self, redo: bool) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let (done, nothing) = if redo {
            ("redone", "nothing to redo")
        } else {
            ("undone", "nothing to undo")
        };
        match file.undo_redo(redo) {
            Ok(Some(step)) => {
                self.status = format!("{done}: {}", step.description);
                self.table.mark_dirty();
            }
            Ok(None) => self.status = nothing.into(),
            Err(e) => self.error = Some(e),
        }
    }

    /// Carries out a review decision, then moves the table cursor to the queue's next tweet.
    pub(super) fn apply_review(&mut self, action: ReviewAction) {
        match action {
            ReviewAction::Find { full } => self.find_suspects(full),
            ReviewAction::Accept { row, label } => {
                self.label(&[row], Some(label), "review, suggestion accepted: ")
            }
            ReviewAction::Keep { row } => {
                if let Some(Err(e)) = self.file.as_mut().map(|f| f.keep_label(row)) {
                    self.error = Some(e);
                }
            }
            ReviewAction::SetGroup { rows, label } => {
                self.label(&rows, Some(label), "conflict resolved: ")
            }
            ReviewAction::Rank => self.rank_unlabelled(),
            ReviewAction::Simulate => self.simulate_curve(),
            ReviewAction::LabelNext { row, label } => {
                self.label(&[row], Some(label), "labelled next: ");
                if self.review.since_rank >= super::review::RERANK_EVERY
                    && !self.jobs.is_running(JobKind::Rank)
                {
                    self.rank_unlabelled();
                }
            }
        }
        self.focus_review_row();
    }

    /// Puts the table cursor on the review queue's current tweet, so the detail panel shows it.
    pub(super) fn focus_review_row(&mut self) {
        let Some(file) = &self.file else { return };
        if let Some(row) = self.review.focus_row(&file.duplicates, &file.conflicting) {
            self.table.select_row(row);
        }
    }

    pub(super) fn apply_import(&mut self, action: ImportAction) {
        match action {
            ImportAction::Import { csv, options } => {
                self.open_as(csv, super::workers::Opening::Chosen(options))
            }
            ImportAction::Cancel => self.status = "import cancelled".into(),
        }
    }

    pub(super) fn apply_top_bar(&mut self, action: TopBarAction) {
        match action {
            TopBarAction::PickFile => self.pick_file(),
            TopBarAction::ConnectTeam => {
                if self.team_connect.url.is_empty() {
                    self.team_connect.url =
                        self.settings.team_connection.clone().unwrap_or_default();
                }
                self.team_connect.open = true;
            }
            TopBarAction::LeaveTeam => self.apply_team(super::team_panel::TeamAction::Leave),
            TopBarAction::ToggleTeamReview => self.team_review_open = !self.team_review_open,
            TopBarAction::Open(path) => self.open(path),
            TopBarAction::Save => self.save.open = true,
            TopBarAction::Export(kind) => self.open_export(kind),
            TopBarAction::ToggleReview => self.toggle_review(),
            TopBarAction::Train => self.start_training(),
            TopBarAction::CancelTraining => self.cancel_training(),
            TopBarAction::ToggleHelp => self.show_help = !self.show_help,
            TopBarAction::ImportWithOptions => {
                let current = self
                    .file
                    .as_ref()
                    .map(|f| f.workspace.source().to_path_buf());
                let typed = Some(PathBuf::from(self.path_field.trim()))
                    .filter(|p| !p.as_os_str().is_empty() && p.is_file());
                match current.or(typed) {
                    Some(csv) => self.choose_import(csv),
                    None => {
                        self.import_next_pick = true;
                        self.pick_file();
                    }
                }
            }
            TopBarAction::Quit => self.quit = true,
            TopBarAction::Undo => self.undo_redo(false),
            TopBarAction::Redo => self.undo_redo(true),
            TopBarAction::Find => self.table.focus_search = true,
            TopBarAction::ToggleDetail => self.settings.show_detail = !self.settings.show_detail,
            TopBarAction::ToggleAdvance => {
                self.settings.advance_after_labelling = !self.settings.advance_after_labelling
            }
            TopBarAction::SetTheme(theme) => self.settings.theme = theme,
            TopBarAction::ToggleFrameStats => self.frame_stats.visible = !self.frame_stats.visible,
        }
    }

    pub(super) fn apply_train(&mut self, action: TrainAction) {
        match action {
            TrainAction::Start => self.start_training(),
            TrainAction::Cancel => self.cancel_training(),
            TrainAction::Baseline => self.start_baseline(),
            TrainAction::Distil { teacher } => self.start_distillation(teacher),
        }
    }

    /// Opens the export dialog on `kind`, as the Export button does.
    pub fn open_export(&mut self, kind: ExportKind) {
        if let Some(file) = &self.file {
            self.export.open_for(kind, file.workspace.source());
        }
    }

    /// Opens or closes the review window, as its top-bar button does.
    pub fn toggle_review(&mut self) {
        self.review.open = !self.review.open;
        if self.review.open {
            self.focus_review_row();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use egui_kittest::kittest::Queryable;

    use super::*;
    use crate::app::protocol::{Opened, Progress, ReviewEvent};
    use crate::data::dataset::{parse, ImportOptions};
    use crate::data::duplicates::find_duplicates;
    use crate::data::store::Workspace;

    /// A window with a small file open, as the load job leaves it.
    fn app_with_file(dir: &Path) -> TweetlabApp {
        let csv = b"id,text,target\n1,fire downtown,1\n2,nice day,0\n3,flood warning,\n";
        let data = parse(csv, false, &ImportOptions::default(), &mut |_, _| {}).unwrap();
        let source = dir.join("tweets.csv");
        let workspace = Workspace::create(&dir.join("ws.sqlite"), &source, &data).unwrap();
        let mut app = TweetlabApp::new(&egui::Context::default(), None);
        app.loading = Some((source.clone(), 0.0));
        app.route(Event::Load(LoadEvent::Loaded(Box::new(Opened {
            csv: source,
            duplicates: find_duplicates(workspace.rows()),
            arrival: crate::data::store::Arrival::Imported,
            workspace,
            problems: Vec::new(),
            past_runs: Vec::new(),
            predictions: None,
        }))));
        assert!(app.file.is_some());
        app
    }

    fn open_workspace(app: &TweetlabApp) -> PathBuf {
        app.file.as_ref().unwrap().workspace.path().to_path_buf()
    }

    /// Work in progress that cannot count (shown as a label, not a bar).
    fn doing(what: &str) -> Progress {
        Progress {
            what: what.into(),
            done: 0,
            total: 0,
        }
    }

    #[test]
    fn a_failing_suspects_job_leaves_the_other_jobs_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = app_with_file(dir.path());
        let workspace = open_workspace(&app);
        app.jobs.start(JobKind::Baseline);
        app.jobs.start(JobKind::Suspects);
        app.jobs.start(JobKind::Rank);
        app.jobs.start(JobKind::Simulate);
        app.route(Event::Baseline(Scoped {
            workspace: workspace.clone(),
            event: JobEvent::Progress(doing("embedding tweets")),
        }));
        app.route(Event::Review(Scoped {
            workspace,
            event: ReviewEvent::Suspects(JobEvent::Failed("no model here".into())),
        }));
        assert!(!app.jobs.is_running(JobKind::Suspects));
        assert!(app.error.as_deref().unwrap().contains("no model here"));
        assert!(app.jobs.is_running(JobKind::Baseline));
        assert_eq!(
            app.jobs.get(JobKind::Baseline).progress(),
            Some(&doing("embedding tweets"))
        );
        assert!(app.jobs.is_running(JobKind::Rank));
        assert!(app.jobs.is_running(JobKind::Simulate));
        assert_eq!(app.busy(), Some("ranking what to label next"));
    }

    #[test]
    fn events_of_a_file_no_longer_open_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = app_with_file(dir.path());
        app.jobs.start(JobKind::Rank);
        app.route(Event::Review(Scoped {
            workspace: dir.path().join("another.sqlite"),
            event: ReviewEvent::Ranking(JobEvent::Failed("stale".into())),
        }));
        assert!(app.jobs.is_running(JobKind::Rank));
        assert_eq!(app.error, None);
    }

    #[test]
    fn the_baselines_progress_never_shows_in_the_review_window() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = app_with_file(dir.path());
        let workspace = open_workspace(&app);
        app.review.open = true;
        app.jobs.start(JobKind::Suspects);
        app.jobs.start(JobKind::Baseline);
        app.route(Event::Baseline(Scoped {
            workspace: workspace.clone(),
            event: JobEvent::Progress(doing("baseline marker")),
        }));
        let mut h = egui_kittest::Harness::builder()
            .with_size(egui::vec2(1280.0, 800.0))
            .build_ui_state(|ui, app: &mut TweetlabApp| app.show(ui), app);
        h.run();
        assert!(h.query_by_label("Review labels").is_some());
        assert!(h.query_by_label_contains("baseline marker").is_none());
        // The suspects job's own progress is what the window shows.
        h.state_mut().route(Event::Review(Scoped {
            workspace,
            event: ReviewEvent::Suspects(JobEvent::Progress(doing("suspects marker"))),
        }));
        h.run();
        assert!(h.query_by_label_contains("suspects marker").is_some());
        assert!(h.query_by_label_contains("baseline marker").is_none());
    }

    /// A run that ends after another file was opened must not predict that file's rows (nor
    /// store them under its run id).
    #[test]
    fn a_run_ending_after_another_file_opened_predicts_nothing_there() {
        use crate::app::protocol::TrainJobEvent;
        use crate::engine::train::TrainEvent;
        let dir = tempfile::tempdir().unwrap();
        let mut app = app_with_file(dir.path());
        app.route(Event::Train(TrainJobEvent::Run(TrainEvent::Finished {
            saved_epoch: 1,
            val: None,
            dir: dir.path().join("model"),
            seconds: 1.0,
        })));
        // No run of this window was going: nothing to predict with.
        assert!(!app.jobs.is_running(JobKind::Predict));
        app.apply(Request::Predict {
            workspace: dir.path().join("another.sqlite"),
            model_dir: dir.path().join("model"),
            run: Some(7),
        });
        assert!(!app.jobs.is_running(JobKind::Predict));
        assert!(
            app.status.contains("another file is open"),
            "{}",
            app.status
        );
    }

    /// Two quick Opens: the file asked for last is the one that opens, whichever load ends
    /// first.
    #[test]
    fn the_last_file_asked_for_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = app_with_file(dir.path());
        let first = dir.path().join("first.csv");
        let second = dir.path().join("second.csv");
        app.loading = Some((first.clone(), 0.0));
        app.loading = Some((second.clone(), 0.0));
        let opened = |csv: PathBuf| {
            let data = parse(
                b"id,text\n1,x\n",
                false,
                &ImportOptions::default(),
                &mut |_, _| {},
            )
            .unwrap();
            let db = csv.with_extension("sqlite");
            let workspace = Workspace::create(&db, &csv, &data).unwrap();
            Event::Load(LoadEvent::Loaded(Box::new(Opened {
                csv,
                duplicates: find_duplicates(workspace.rows()),
                workspace,
                arrival: crate::data::store::Arrival::Imported,
                problems: Vec::new(),
                past_runs: Vec::new(),
                predictions: None,
            })))
        };
        app.route(opened(second.clone()));
        app.route(opened(first));
        assert!(app
            .file
            .as_ref()
            .unwrap()
            .is(&second.with_extension("sqlite")));
        assert!(!app.is_loading());
    }

    /// Keeping a label in the review window says "saved" only when the review was recorded.
    #[test]
    fn a_review_that_was_not_recorded_is_not_shown_as_saved() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = app_with_file(dir.path());
        app.apply_review(ReviewAction::Keep { row: 99 });
        assert!(app.error.is_some());
        assert_eq!(app.file.as_ref().unwrap().last_autosave, None);
        app.apply_review(ReviewAction::Keep { row: 0 });
        assert!(app.file.as_ref().unwrap().last_autosave.is_some());
    }
}
