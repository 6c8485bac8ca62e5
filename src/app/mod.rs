//! The desktop workbench (eframe/egui). The UI thread only reads state and draws; loading,
//! training, prediction, explanation and export run on background threads (`workers`) and
//! report through `protocol::Event` on a crossbeam channel, drained at the start of every frame.
//! One module per panel or dialog.

mod detail;
mod export_dialog;
mod frame_stats;
mod review;
pub mod settings;
mod status_bar;
mod table;
mod top_bar;
mod train_panel;
mod workers;

use std::collections::HashMap;
use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use crate::data::duplicates::Duplicates;
use crate::data::store::Workspace;
use crate::data::Problem;
use crate::engine::explain::Explanation;
use crate::protocol::{Event, ExportKind};

use detail::{DetailView, ExplainState};
use export_dialog::{ExportDialog, ExportRequest, SaveConfirm};
use frame_stats::FrameStats;
use review::{ReviewAction, ReviewKey, ReviewPanel};
use settings::Settings;
use table::{TableData, TableView};
use train_panel::TrainPanel;
use workers::{ExplainRequest, Explainer, ExportJob};

pub use table::{DuplicateFilter, Filters, LabelFilter, PredictionFilter, SortColumn};

/// Who the edit history names for edits made in this window.
const EDITOR: &str = "gui";

/// Word contributions per row, for one model.
#[derive(Default)]
struct ExplanationCache {
    model_dir: Option<PathBuf>,
    done: HashMap<usize, Result<Explanation, String>>,
    pending: Option<usize>,
}

pub struct TweetlabApp {
    tx: Sender<Event>,
    rx: Receiver<Event>,
    ctx: egui::Context,
    settings: Settings,
    workspace: Option<Workspace>,
    problems: Vec<Problem>,
    duplicates: Duplicates,
    /// Per duplicate group: does it carry both labels with the current labels.
    conflicting: Vec<bool>,
    /// The CSV being loaded, and how far along.
    loading: Option<(PathBuf, f32)>,
    /// The path field: always works, even without a file dialog.
    path_field: String,
    table: TableView,
    /// p(disaster) per row from the latest model, when there is one.
    predictions: Vec<Option<f32>>,
    /// The fine-tuned model the predictions came from (explanations use it too).
    model_dir: Option<PathBuf>,
    train: TrainPanel,
    explainer: Explainer,
    explanations: ExplanationCache,
    export: ExportDialog,
    save: SaveConfirm,
    review: ReviewPanel,
    /// Set while an export or save is being written.
    exporting: bool,
    /// Set while every row is being predicted after a run.
    predicting: bool,
    /// Last time the workspace committed an edit, for the status bar.
    last_autosave: Option<String>,
    status: String,
    error: Option<String>,
    show_help: bool,
    frame_stats: FrameStats,
    /// (labelled, edited) rows; None after a change, recounted once on the next frame rather
    /// than scanning every row every frame.
    counts: Option<(usize, usize)>,
    /// A table has been drawn since the last file was loaded (for the frame log's timing mark).
    table_drawn: bool,
}

impl TweetlabApp {
    /// A window with default settings that starts loading `csv` if given.
    pub fn new(ctx: &egui::Context, csv: Option<PathBuf>) -> Self {
        Self::with_settings(ctx, Settings::default(), csv)
    }

    /// A window with remembered `settings`; opens `csv` if given.
    pub fn with_settings(ctx: &egui::Context, settings: Settings, csv: Option<PathBuf>) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut train = TrainPanel::default();
        train.model = settings.model.clone();
        train.config = settings.train.clone();
        let frame_stats = FrameStats::default();
        let mut app = Self {
            explainer: Explainer::spawn(tx.clone(), ctx.clone()),
            tx,
            rx,
            ctx: ctx.clone(),
            settings,
            workspace: None,
            problems: Vec::new(),
            duplicates: Duplicates::default(),
            conflicting: Vec::new(),
            loading: None,
            path_field: String::new(),
            table: TableView::default(),
            predictions: Vec::new(),
            model_dir: None,
            train,
            explanations: ExplanationCache::default(),
            export: ExportDialog::default(),
            save: SaveConfirm::default(),
            review: ReviewPanel::default(),
            exporting: false,
            predicting: false,
            last_autosave: None,
            status: "Open a CSV to start.".into(),
            error: None,
            show_help: false,
            frame_stats,
            counts: None,
            table_drawn: false,
        };
        if let Some(csv) = csv {
            app.open(csv);
        }
        app
    }

    /// Starts loading `csv` on a background thread.
    pub fn open(&mut self, csv: PathBuf) {
        self.path_field = csv.display().to_string();
        self.loading = Some((csv.clone(), 0.0));
        self.status = format!("loading {}", csv.display());
        workers::load(csv, self.tx.clone(), self.ctx.clone());
    }

    pub fn workspace(&self) -> Option<&Workspace> {
        self.workspace.as_ref()
    }

    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    pub fn predictions(&self) -> &[Option<f32>] {
        &self.predictions
    }

    /// Row index of the tweet under the cursor, if any.
    pub fn selected_row(&self) -> Option<usize> {
        self.table.selected_row()
    }

    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub fn status(&self) -> &str {
        &self.status
    }

    /// (step, loss) points plotted for the current or last run.
    pub fn training_losses(&self) -> &[egui_plot::PlotPoint] {
        &self.train.losses
    }

    /// (epoch, F1) validation points of the current or last run.
    pub fn validation_f1(&self) -> &[egui_plot::PlotPoint] {
        &self.train.val_f1
    }

    /// How many earlier runs of this workspace the Train panel can overlay.
    pub fn past_runs(&self) -> usize {
        self.train.past.len()
    }

    pub fn is_training(&self) -> bool {
        self.train.is_running()
    }

    pub fn is_exporting(&self) -> bool {
        self.exporting
    }

    /// How many rows the table shows after filtering and search.
    pub fn shown_rows(&self) -> usize {
        self.table.shown_count()
    }

    /// Row indices the table shows, in display order (after filters, search and sort).
    pub fn shown(&self) -> &[usize] {
        self.table.shown()
    }

    /// The word contributions computed for `row` by the current model, if ready.
    pub fn explanation(&self, row: usize) -> Option<&Result<Explanation, String>> {
        self.explanations.done.get(&row)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Training settings, for callers that start the window with other defaults.
    pub fn train_settings(&mut self) -> (&mut String, &mut crate::engine::train::TrainConfig) {
        (&mut self.train.model, &mut self.train.config)
    }

    /// The table's filters and sort, for tests and callers that script the window.
    pub fn table_mut(&mut self) -> (&mut Filters, &mut Option<(SortColumn, bool)>) {
        self.table.mark_dirty();
        (&mut self.table.filters, &mut self.table.sort)
    }

    /// Opens the export dialog on `kind`, as the Export button does.
    pub fn open_export(&mut self, kind: ExportKind) {
        if let Some(ws) = &self.workspace {
            self.export.open_for(kind, ws.source());
        }
    }

    /// Labels changed: the table, the counts and the conflict flags need recomputing.
    fn labels_changed(&mut self) {
        self.table.mark_dirty();
        self.counts = None;
        self.last_autosave = Some(crate::data::store::now_rfc3339());
        self.recompute_conflicts();
    }

    fn recompute_conflicts(&mut self) {
        let Some(ws) = &self.workspace else { return };
        let rows = ws.rows();
        self.conflicting = self
            .duplicates
            .groups
            .iter()
            .map(|g| {
                let mut seen = [false; 2];
                for &i in &g.rows {
                    if let Some(l) = rows[i].label {
                        seen[usize::from(l.min(1))] = true;
                    }
                }
                seen[0] && seen[1]
            })
            .collect();
    }

    /// (labelled, edited) rows of the open workspace.
    fn counts(&mut self) -> (usize, usize) {
        let ws = self.workspace.as_ref();
        *self.counts.get_or_insert_with(|| {
            ws.map_or((0, 0), |w| {
                (
                    w.rows().iter().filter(|t| t.label.is_some()).count(),
                    w.edited_rows(),
                )
            })
        })
    }

    fn handle_events(&mut self) {
        while let Ok(event) = self.rx.try_recv() {
            match event {
                Event::Loaded(opened) => {
                    let opened = *opened;
                    self.status = format!(
                        "{}: {} rows{}",
                        opened.csv.display(),
                        opened.workspace.rows().len(),
                        if opened.problems.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ", {} problem rows (first: line {}: {})",
                                opened.problems.len(),
                                opened.problems[0].line,
                                opened.problems[0].reason
                            )
                        }
                    );
                    self.settings.remember(&opened.csv);
                    self.table.reset();
                    self.counts = None;
                    self.problems = opened.problems;
                    self.duplicates = opened.duplicates;
                    self.train.set_past_runs(&opened.past_runs);
                    self.review.reset();
                    self.explanations = ExplanationCache::default();
                    match opened.predictions {
                        Some((_, dir, p)) => {
                            self.status
                                .push_str(&format!("; predictions from {}", dir.display()));
                            self.predictions = p;
                            self.model_dir = Some(dir);
                        }
                        None => {
                            self.predictions = vec![None; opened.workspace.rows().len()];
                            self.model_dir = None;
                        }
                    }
                    self.workspace = Some(opened.workspace);
                    self.recompute_conflicts();
                    self.last_autosave = None;
                    self.table_drawn = false;
                    self.loading = None;
                    self.error = None;
                }
                Event::LoadProgress { done, total } => {
                    if let Some((_, f)) = &mut self.loading {
                        *f = done as f32 / total.max(1) as f32;
                    }
                }
                Event::LoadFailed { csv, message } => {
                    self.loading = None;
                    self.error = Some(format!(
                        "Could not open {}: {message}\nCheck that it is a CSV or TSV with a text column; the message names the line at fault.",
                        csv.display()
                    ));
                }
                Event::Picked(Some(path)) => self.open(path),
                Event::Picked(None) => {
                    self.status = "No file chosen. If no dialog appeared, this desktop has no file portal: type the path in the field and press Enter, or drop the file on the window.".into();
                }
                Event::SavePicked(Some(path)) => self.export.picked(path),
                Event::SavePicked(None) => {
                    self.export.browsing = false;
                    self.status = "No file chosen. If no dialog appeared, type the path in the Export window's field.".into();
                }
                Event::RunRecorded { workspace, run } => {
                    if self.workspace.as_ref().map(|w| w.path()) == Some(workspace.as_path()) {
                        self.train.run_id = Some(run);
                    }
                }
                Event::Train(e) => {
                    if let Some(model_dir) =
                        self.train.on_event(e, &mut self.status, &mut self.error)
                    {
                        if let Some(ws) = &self.workspace {
                            let texts = ws.rows().iter().map(|t| t.text.clone()).collect();
                            self.status = "training finished; predicting every row".into();
                            self.predicting = true;
                            workers::predict(
                                ws.path().to_path_buf(),
                                model_dir,
                                texts,
                                self.train.run_id,
                                self.tx.clone(),
                                self.ctx.clone(),
                            );
                        }
                    }
                }
                Event::Predicted {
                    workspace,
                    model_dir,
                    p_disaster,
                } => {
                    self.predicting = false;
                    // Another file may have been opened since the run started.
                    if self.workspace.as_ref().map(|w| w.path()) != Some(workspace.as_path()) {
                        continue;
                    }
                    self.predictions = p_disaster.into_iter().map(Some).collect();
                    self.table.mark_dirty();
                    self.status = format!("predictions from {}", model_dir.display());
                    self.model_dir = Some(model_dir);
                    self.explanations = ExplanationCache::default();
                }
                Event::PredictFailed { message } => {
                    self.predicting = false;
                    self.error = Some(format!("Prediction failed: {message}"))
                }
                Event::Explained {
                    model_dir,
                    row,
                    result,
                } => {
                    if self.explanations.pending == Some(row) {
                        self.explanations.pending = None;
                    }
                    if self.model_dir.as_ref() == Some(&model_dir) {
                        self.explanations.model_dir = Some(model_dir);
                        self.explanations.done.insert(row, result);
                    }
                }
                Event::Exported { path, kind, rows } => {
                    self.exporting = false;
                    self.status =
                        format!("wrote {} ({rows} rows) to {}", kind.title(), path.display());
                }
                Event::ExportFailed { path, message } => {
                    self.exporting = false;
                    self.error = Some(format!(
                        "Could not write {}: {message}\nNothing was changed there; choose another folder or free some space.",
                        path.display()
                    ));
                }
                Event::Suspects {
                    workspace,
                    suspects,
                    estimated_errors,
                    accuracy,
                } => {
                    if self.workspace.as_ref().map(|w| w.path()) != Some(workspace.as_path()) {
                        continue;
                    }
                    self.review.running = false;
                    self.review.progress = None;
                    self.review.summary = Some(format!(
                        "{} suspects: an estimated {} wrong among the 0s and {} among the 1s (out-of-sample accuracy {accuracy:.3}).",
                        suspects.len(),
                        estimated_errors[0],
                        estimated_errors[1]
                    ));
                    self.review.suspects = Some(suspects);
                    self.review.position = 0;
                    self.focus_review_row();
                }
                Event::SuspectsFailed { message } => {
                    self.review.running = false;
                    self.review.ranking = false;
                    self.review.simulating = false;
                    self.review.progress = None;
                    self.error = Some(format!("Label review: {message}"));
                }
                Event::LearningCurve {
                    workspace,
                    queue,
                    random,
                } => {
                    self.review.simulating = false;
                    self.review.progress = None;
                    if self.workspace.as_ref().map(|w| w.path()) == Some(workspace.as_path()) {
                        let points = |v: Vec<(f64, f64)>| {
                            v.into_iter()
                                .map(|(x, y)| egui_plot::PlotPoint::new(x, y))
                                .collect()
                        };
                        self.review.curve = Some((points(queue), points(random)));
                    }
                }
                Event::NextToLabel {
                    workspace,
                    queue,
                    labelled,
                } => {
                    if self.workspace.as_ref().map(|w| w.path()) != Some(workspace.as_path()) {
                        continue;
                    }
                    self.review.ranking = false;
                    self.review.progress = None;
                    self.review.next = Some(queue);
                    self.review.next_position = 0;
                    self.review.since_rank = 0;
                    self.review.ranked_on = labelled;
                    self.focus_review_row();
                }
                Event::Baseline {
                    workspace,
                    f1,
                    accuracy,
                } => {
                    self.train.baseline_running = false;
                    if self.workspace.as_ref().map(|w| w.path()) == Some(workspace.as_path()) {
                        self.train.baseline = Some((f1, accuracy));
                        self.status = format!("fast baseline: validation F1 {f1:.3}");
                    }
                }
                Event::Progress { what, done, total } => {
                    self.review.progress = Some((what, done, total));
                }
                Event::BaselineFailed { message } => {
                    self.train.baseline_running = false;
                    self.error = Some(format!("The fast baseline failed: {message}"));
                }
                Event::Warning(message) => self.status = format!("warning: {message}"),
            }
        }
    }

    /// Sets (or clears) the label of the selected rows (the multi-selection, else the cursor
    /// row); one undo step.
    fn set_selected_label(&mut self, label: Option<u8>) {
        let rows = self.table.target_rows();
        if !rows.is_empty() {
            self.label_rows(&rows, label);
        }
    }

    /// Sets (or clears) the label of `rows` as one undo step, committed before returning.
    fn label_rows(&mut self, rows: &[usize], label: Option<u8>) {
        self.label_rows_because(rows, label, "");
    }

    /// `label_rows`, with `why` ("review: ", ...) leading the history's description.
    fn label_rows_because(&mut self, rows: &[usize], label: Option<u8>, why: &str) {
        let Some(ws) = self.workspace.as_mut() else {
            return;
        };
        let what = label.map_or("cleared".to_string(), |l| l.to_string());
        let description = match rows {
            [row] => format!("{why}row {} -> {what}", ws.rows()[*row].id),
            _ => format!("{why}{} rows -> {what}", rows.len()),
        };
        let changes: Vec<(usize, Option<u8>)> = rows.iter().map(|&r| (r, label)).collect();
        match ws.set_labels(&changes, EDITOR, &description) {
            Ok(_) => self.labels_changed(),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn undo_redo(&mut self, redo: bool) {
        let Some(ws) = self.workspace.as_mut() else {
            return;
        };
        let result = if redo {
            ws.redo(EDITOR)
        } else {
            ws.undo(EDITOR)
        };
        match result {
            Ok(Some(step)) => {
                self.status = format!(
                    "{}: {}",
                    if redo { "redone" } else { "undone" },
                    step.description
                );
                self.labels_changed();
            }
            Ok(None) => self.status = format!("nothing to {}", if redo { "redo" } else { "undo" }),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Keyboard first: j/k or arrows move, 0/1 label, x clears, ctrl+z / ctrl+shift+z undo
    /// and redo, / searches, enter opens the detail, ? shows the keys, F12 the frame times,
    /// escape clears the selection. Ignored while a text field has focus.
    fn handle_keys(&mut self, ctx: &egui::Context) {
        use egui::{Key, Modifiers};
        // F12 works everywhere, even in a text field.
        if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::F12)) {
            self.frame_stats.visible = !self.frame_stats.visible;
        }
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        if self.review.open {
            let tab = self.review.tab;
            let key = ctx.input_mut(|i| match tab {
                review::Tab::Suspects => {
                    if i.consume_key(Modifiers::NONE, Key::A) {
                        Some(ReviewKey::Accept)
                    } else if i.consume_key(Modifiers::NONE, Key::S) {
                        Some(ReviewKey::Keep)
                    } else if i.consume_key(Modifiers::NONE, Key::N) {
                        Some(ReviewKey::Next)
                    } else {
                        None
                    }
                }
                review::Tab::Conflicts | review::Tab::Next => {
                    if i.consume_key(Modifiers::NONE, Key::Num1) {
                        Some(ReviewKey::Label(1))
                    } else if i.consume_key(Modifiers::NONE, Key::Num0) {
                        Some(ReviewKey::Label(0))
                    } else if i.consume_key(Modifiers::NONE, Key::N) {
                        Some(ReviewKey::Next)
                    } else {
                        None
                    }
                }
            });
            if let Some(key) = key {
                let action = self.review.decide(key, &self.duplicates, &self.conflicting);
                self.apply_review(action);
            }
        }
        let mut keys = Keys::default();
        ctx.input_mut(|i| {
            for (key, step) in [
                (Key::J, 1),
                (Key::ArrowDown, 1),
                (Key::K, -1),
                (Key::ArrowUp, -1),
                (Key::PageDown, 20),
                (Key::PageUp, -20),
            ] {
                while i.consume_key(Modifiers::NONE, key) {
                    keys.moves += step;
                }
            }
            if i.consume_key(Modifiers::NONE, Key::Num0) {
                keys.label = Some(Some(0));
            }
            if i.consume_key(Modifiers::NONE, Key::Num1) {
                keys.label = Some(Some(1));
            }
            if i.consume_key(Modifiers::NONE, Key::X) {
                keys.label = Some(None);
            }
            keys.redo = i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
            keys.undo = i.consume_key(Modifiers::COMMAND, Key::Z);
            keys.search = i.consume_key(Modifiers::NONE, Key::Slash);
            keys.detail = i.consume_key(Modifiers::NONE, Key::Enter);
            keys.escape = i.consume_key(Modifiers::NONE, Key::Escape);
            keys.help = i.consume_key(Modifiers::SHIFT, Key::Questionmark)
                || i.consume_key(Modifiers::NONE, Key::Questionmark);
        });
        if keys.moves != 0 {
            self.table.move_selection(keys.moves);
        }
        if let Some(l) = keys.label {
            self.set_selected_label(l);
        }
        if keys.redo {
            self.undo_redo(true);
        } else if keys.undo {
            self.undo_redo(false);
        }
        if keys.search {
            self.table.focus_search = true;
        }
        if keys.detail {
            self.settings.show_detail = !self.settings.show_detail;
        }
        if keys.escape {
            self.table.clear_selection();
            self.show_help = false;
        }
        if keys.help {
            self.show_help = !self.show_help;
        }
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if let Some(path) = dropped.into_iter().next() {
            self.open(path);
        }
    }

    /// Asks the explainer for the cursor row when the detail panel shows it and no
    /// explanation is cached or on its way.
    fn request_explanation(&mut self) {
        let (Some(row), Some(model_dir), Some(ws)) =
            (self.selected_row(), &self.model_dir, &self.workspace)
        else {
            return;
        };
        if !self.settings.show_detail
            || self.explanations.done.contains_key(&row)
            || self.explanations.pending == Some(row)
        {
            return;
        }
        self.explanations.pending = Some(row);
        self.explainer.request(ExplainRequest {
            model_dir: model_dir.clone(),
            row,
            text: ws.rows()[row].text.clone(),
        });
    }

    /// One frame: drain events, apply input, draw.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let frame_start = self.frame_stats.begin_frame();
        let ctx = ui.ctx().clone();
        // Workers wake this context; keep the one actually drawing.
        self.ctx = ctx.clone();
        self.handle_events();
        self.handle_dropped_files(&ctx);
        self.handle_keys(&ctx);
        self.request_explanation();

        egui::Panel::top("top_bar").show(ui, |ui| top_bar::show(self, ui));
        egui::Panel::bottom("status_bar").show(ui, |ui| status_bar::show(self, ui));
        egui::Panel::right("train_panel")
            .default_size(380.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("train_scroll")
                    .show(ui, |ui| {
                        let (labelled, _) = self.counts();
                        let (start, baseline) = self.train.show(ui, labelled);
                        if start {
                            self.start_training();
                        }
                        if baseline {
                            self.start_baseline();
                        }
                    });
            });
        if self.settings.show_detail && self.workspace.is_some() {
            let mut set = None;
            egui::Panel::bottom("detail")
                .resizable(true)
                .default_size(240.0)
                .min_size(140.0)
                .show(ui, |ui| {
                    // Fill the panel, so it keeps its size when a short tweet is shown.
                    ui.set_min_height(ui.available_height());
                    set = self.show_detail(ui);
                });
            if let Some(label) = set {
                self.set_selected_label(label);
            }
        }
        let mut action = None;
        egui::CentralPanel::default().show(ui, |ui| match &self.workspace {
            Some(ws) => {
                let data = TableData {
                    rows: ws.rows(),
                    predictions: &self.predictions,
                    duplicates: &self.duplicates,
                    conflicting: &self.conflicting,
                };
                action = Some(self.table.show(ui, &data));
            }
            None => {
                ui.centered_and_justified(|ui| {
                    ui.label(match &self.loading {
                        Some((p, f)) => format!("Loading {} ... {:.0}%", p.display(), f * 100.0),
                        None => "Open a CSV: the Open button, a path above, drag and drop, or `tweetlab FILE.csv`.".into(),
                    });
                });
            }
        });
        if let Some(action) = action {
            if let Some((rows, label)) = action.relabel {
                self.label_rows(&rows, label);
            }
            if action.open_detail {
                self.settings.show_detail = true;
            }
        }
        self.dialogs(&ctx);
        if self.workspace.is_some() && !self.table_drawn {
            self.table_drawn = true;
            let rows = self.workspace.as_ref().map_or(0, |w| w.rows().len());
            self.frame_stats.mark(&format!("table-drawn rows={rows}"));
        }
        self.frame_stats.end_frame(&ctx, frame_start);
    }

    fn show_detail(&mut self, ui: &mut egui::Ui) -> Option<Option<u8>> {
        let ws = self.workspace.as_ref()?;
        let view = self.selected_row().map(|row| DetailView {
            row,
            tweet: &ws.rows()[row],
            prediction: self.predictions.get(row).copied().flatten(),
            explanation: match (&self.model_dir, self.explanations.done.get(&row)) {
                (None, _) => ExplainState::NoModel,
                (Some(_), Some(Ok(e))) => ExplainState::Ready(e),
                (Some(_), Some(Err(m))) => ExplainState::Failed(m),
                (Some(_), None) => ExplainState::Pending,
            },
        });
        detail::show(ui, view)
    }

    fn dialogs(&mut self, ctx: &egui::Context) {
        let (labelled, _) = self.counts();
        if let Some(ws) = &self.workspace {
            let action = self.review.show(
                ctx,
                ws.rows(),
                labelled,
                &self.duplicates,
                &self.conflicting,
            );
            if action.is_some() {
                self.apply_review(action);
            }
        }
        // Only while a dialog is open: the prediction scan is a pass over every row.
        let dialog_open = self.export.open || self.save.open;
        if let Some(source) = self
            .workspace
            .as_ref()
            .filter(|_| dialog_open)
            .map(|w| w.source().to_path_buf())
        {
            let has_predictions = self.predictions.iter().any(Option::is_some);
            let (request, browse) = self.export.show(ctx, &source, has_predictions);
            if browse {
                let suggested = PathBuf::from(self.export.path.trim());
                workers::pick_save(suggested, self.tx.clone(), self.ctx.clone());
            }
            if let Some(request) = request {
                self.start_export(request);
            }
            let (_, edited) = self.counts();
            if self.save.show(ctx, &source, edited) {
                self.start_export(ExportRequest {
                    kind: ExportKind::Dataset,
                    path: source,
                });
            }
        }
        if self.show_help {
            egui::Window::new("Keys")
                .collapsible(false)
                .show(ctx, |ui| {
                    egui::Grid::new("keys").show(ui, |ui| {
                        for (k, what) in [
                            ("j / ↓, k / ↑", "next / previous tweet"),
                            ("page down / up", "20 tweets down / up"),
                            ("1 / 0", "label disaster / not disaster"),
                            ("x", "clear the label"),
                            (
                                "ctrl+click, shift+click",
                                "select rows; 1 / 0 / x label them all",
                            ),
                            ("esc", "clear the selection, close this"),
                            ("ctrl+z / ctrl+shift+z", "undo / redo"),
                            ("/", "search"),
                            ("enter", "show / hide the tweet detail"),
                            (
                                "click a column title",
                                "sort (again: reverse, again: file order)",
                            ),
                            (
                                "a / s / n",
                                "review window: accept the suggestion / keep the label / next",
                            ),
                            (
                                "1 / 0 (conflicts tab)",
                                "review window: label the whole group",
                            ),
                            ("F12", "frame-time overlay"),
                            ("?", "this help"),
                        ] {
                            ui.monospace(k);
                            ui.label(what);
                            ui.end_row();
                        }
                    });
                });
        }
        if let Some(error) = self.error.clone() {
            egui::Window::new("Something went wrong")
                .collapsible(false)
                .anchor(egui::Align2::CENTER_TOP, egui::vec2(0.0, 60.0))
                .show(ctx, |ui| {
                    ui.label(error);
                    if ui.button("Dismiss").clicked() {
                        self.error = None;
                    }
                });
        }
    }

    /// Carries out a review decision, then moves the table cursor to the next item.
    fn apply_review(&mut self, action: Option<ReviewAction>) {
        match action {
            Some(ReviewAction::Find { full }) => {
                if let Some(ws) = &self.workspace {
                    self.review.running = true;
                    self.review.progress = None;
                    let (path, rows) = (ws.path().to_path_buf(), ws.rows().to_vec());
                    let (tx, ctx) = (self.tx.clone(), self.ctx.clone());
                    if full {
                        let model = self.train.model.clone();
                        let config = self.train.config.clone();
                        workers::find_suspects_fine_tuned(path, rows, model, config, tx, ctx);
                    } else {
                        let model = crate::engine::source::DEFAULT_MODEL.to_string();
                        workers::find_suspects(path, rows, model, tx, ctx);
                    }
                }
            }
            Some(ReviewAction::Accept { row, label }) => {
                self.label_rows_because(&[row], Some(label), "review, suggestion accepted: ")
            }
            Some(ReviewAction::Keep { row }) => {
                if let Some(ws) = self.workspace.as_mut() {
                    let description = format!("review, label kept: row {}", ws.rows()[row].id);
                    if let Err(e) = ws.record_review(&[row], EDITOR, &description) {
                        self.error = Some(e.to_string());
                    }
                    self.last_autosave = Some(crate::data::store::now_rfc3339());
                }
            }
            Some(ReviewAction::SetGroup { rows, label }) => {
                self.label_rows_because(&rows, Some(label), "conflict resolved: ")
            }
            Some(ReviewAction::Rank) => self.rank_unlabelled(),
            Some(ReviewAction::Simulate) => {
                if let Some(ws) = &self.workspace {
                    self.review.simulating = true;
                    let labelled = ws
                        .rows()
                        .iter()
                        .filter(|t| t.label.is_some())
                        .cloned()
                        .collect();
                    workers::simulate_curve(
                        ws.path().to_path_buf(),
                        labelled,
                        crate::engine::source::DEFAULT_MODEL.to_string(),
                        self.tx.clone(),
                        self.ctx.clone(),
                    );
                }
            }
            Some(ReviewAction::LabelNext { row, label }) => {
                self.label_rows_because(&[row], Some(label), "labelled next: ");
                if self.review.since_rank >= review::RERANK_EVERY && !self.review.ranking {
                    self.rank_unlabelled();
                }
            }
            None => {}
        }
        self.focus_review_row();
    }

    fn rank_unlabelled(&mut self) {
        if let Some(ws) = &self.workspace {
            self.review.ranking = true;
            self.review.progress = None;
            workers::rank_unlabelled(
                ws.path().to_path_buf(),
                ws.rows().to_vec(),
                crate::engine::source::DEFAULT_MODEL.to_string(),
                self.tx.clone(),
                self.ctx.clone(),
            );
        }
    }

    /// Puts the table cursor on the review queue's current tweet, so the detail panel shows it.
    fn focus_review_row(&mut self) {
        if let Some(row) = self.review.focus_row(&self.duplicates, &self.conflicting) {
            self.table.select_row(row);
        }
    }

    /// Opens or closes the review window, as its top-bar button does.
    pub fn toggle_review(&mut self) {
        self.review.open = !self.review.open;
        if self.review.open {
            self.focus_review_row();
        }
    }

    /// Points of the simulated learning curve (queue, random order), once computed.
    pub fn learning_curve(&self) -> Option<(usize, usize)> {
        self.review.curve.as_ref().map(|(q, r)| (q.len(), r.len()))
    }

    /// The next-to-label queue: (rows ranked, position, ranking now).
    pub fn next_to_label_state(&self) -> (Option<usize>, usize, bool) {
        (
            self.review.next.as_ref().map(Vec::len),
            self.review.next_position,
            self.review.ranking,
        )
    }

    /// The review queue's state: (suspects found, position, searching).
    pub fn review_state(&self) -> (Option<usize>, usize, bool) {
        (
            self.review.suspects.as_ref().map(Vec::len),
            self.review.position,
            self.review.running,
        )
    }

    /// Copies what `request` needs out of the workspace and writes it on a worker.
    fn start_export(&mut self, request: ExportRequest) {
        let Some(ws) = &self.workspace else { return };
        let history = if request.kind == ExportKind::History {
            match ws.history() {
                Ok(h) => h,
                Err(e) => {
                    self.error = Some(e.to_string());
                    return;
                }
            }
        } else {
            Vec::new()
        };
        let p_disaster = if request.kind.needs_predictions() {
            match self
                .predictions
                .iter()
                .copied()
                .collect::<Option<Vec<f32>>>()
            {
                Some(p) => p,
                None => {
                    self.error =
                        Some("Some rows have no prediction yet: train a model first.".into());
                    return;
                }
            }
        } else {
            Vec::new()
        };
        self.exporting = true;
        self.status = format!("writing {}", request.path.display());
        workers::export(
            ExportJob {
                kind: request.kind,
                path: request.path,
                layout: ws.layout().clone(),
                rows: ws.rows().to_vec(),
                p_disaster,
                history,
            },
            self.tx.clone(),
            self.ctx.clone(),
        );
    }

    /// Computes the fast baseline on the split the training settings give.
    fn start_baseline(&mut self) {
        let Some(ws) = &self.workspace else { return };
        let labelled: Vec<_> = ws
            .rows()
            .iter()
            .filter(|t| t.label.is_some())
            .cloned()
            .collect();
        self.train.baseline_running = true;
        workers::baseline(
            ws.path().to_path_buf(),
            labelled,
            self.train.model.clone(),
            self.train.config.val_split,
            self.train.config.seed,
            self.tx.clone(),
            self.ctx.clone(),
        );
    }

    /// The fast baseline's validation (F1, accuracy), once computed.
    pub fn baseline(&self) -> Option<(f64, f64)> {
        self.train.baseline
    }

    fn start_training(&mut self) {
        let Some(ws) = &self.workspace else { return };
        let (texts, labels): (Vec<String>, Vec<u8>) = ws
            .rows()
            .iter()
            .filter_map(|t| t.label.map(|l| (t.text.clone(), l)))
            .unzip();
        let out_dir = workers::runs_dir(ws.path()).join(format!(
            "run-{}",
            crate::data::store::now_rfc3339().replace(':', "-")
        ));
        let settings = serde_json::json!({
            "model": self.train.model,
            "out_dir": out_dir,
            "config": self.train.config,
            "labelled_rows": texts.len(),
        });
        let workspace = ws.path().to_path_buf();
        match self.train.start(texts, labels, out_dir) {
            Ok(handle) => workers::forward_training(
                handle,
                workspace,
                settings,
                self.tx.clone(),
                self.ctx.clone(),
            ),
            Err(message) => self.error = Some(message),
        }
    }

    /// The settings as they should be remembered now.
    fn current_settings(&self) -> Settings {
        Settings {
            model: self.train.model.clone(),
            train: self.train.config.clone(),
            ..self.settings.clone()
        }
    }
}

#[derive(Default)]
struct Keys {
    moves: i64,
    label: Option<Option<u8>>,
    undo: bool,
    redo: bool,
    search: bool,
    detail: bool,
    escape: bool,
    help: bool,
}

impl eframe::App for TweetlabApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, settings::STORAGE_KEY, &self.current_settings());
    }
}

/// Opens the window (blocks until it is closed). Without `csv`, the most recent file that still
/// exists reopens, else `fallback` (the sample data in a checkout).
pub fn run(csv: Option<PathBuf>, fallback: Option<PathBuf>) -> anyhow::Result<()> {
    // OpenGL (glow) by default: on a software-rendered desktop (VMs, remote sessions, Mesa
    // llvmpipe) a frame of this window took 13 ms with glow and 58 ms with wgpu (README).
    // TWEETLAB_RENDERER=wgpu picks wgpu, e.g. when an OpenGL driver misbehaves.
    let renderer = match std::env::var("TWEETLAB_RENDERER") {
        Ok(name) => name.parse().map_err(|e: String| anyhow::anyhow!(e))?,
        Err(_) => eframe::Renderer::Glow,
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 800.0])
            .with_drag_and_drop(true),
        renderer,
        // Dithering only smooths gradients, which this window hardly has; off saves about 7%
        // of a software-rendered frame.
        dithering: false,
        ..Default::default()
    };
    eframe::run_native(
        "tweetlab",
        options,
        Box::new(move |cc| {
            let settings: Settings = cc
                .storage
                .and_then(|s| eframe::get_value(s, settings::STORAGE_KEY))
                .unwrap_or_default();
            let csv = csv.or_else(|| settings.last_file()).or(fallback);
            Ok(Box::new(TweetlabApp::with_settings(
                &cc.egui_ctx,
                settings,
                csv,
            )))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open a window: {e}"))
}
