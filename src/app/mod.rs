//! The desktop workbench (eframe/egui). The UI thread only reads state and draws; loading,
//! training and prediction run on background threads (`workers`) and report through
//! `protocol::Event` on a crossbeam channel, drained at the start of every frame.

mod status_bar;
mod table;
mod top_bar;
mod train_panel;
mod workers;

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use crate::data::store::Workspace;
use crate::data::Problem;
use crate::protocol::Event;

use table::TableView;
use train_panel::TrainPanel;

/// Who the edit history names for edits made in this window.
const EDITOR: &str = "gui";

pub struct TweetlabApp {
    tx: Sender<Event>,
    rx: Receiver<Event>,
    ctx: egui::Context,
    workspace: Option<Workspace>,
    problems: Vec<Problem>,
    /// The CSV being loaded, and how far along.
    loading: Option<(PathBuf, f32)>,
    /// The path field: always works, even without a file dialog.
    path_field: String,
    table: TableView,
    /// p(disaster) per row from the latest model, when there is one.
    predictions: Vec<Option<f32>>,
    train: TrainPanel,
    status: String,
    error: Option<String>,
    show_help: bool,
    /// (labelled, edited) rows; None after a change, recounted once on the next frame rather
    /// than scanning every row every frame.
    counts: Option<(usize, usize)>,
}

impl TweetlabApp {
    /// A window that starts loading `csv` if given.
    pub fn new(ctx: &egui::Context, csv: Option<PathBuf>) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut app = Self {
            tx,
            rx,
            ctx: ctx.clone(),
            workspace: None,
            problems: Vec::new(),
            loading: None,
            path_field: String::new(),
            table: TableView::default(),
            predictions: Vec::new(),
            train: TrainPanel::default(),
            status: "Open a CSV to start.".into(),
            error: None,
            show_help: false,
            counts: None,
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

    /// Row index of the selected tweet, if any.
    pub fn selected_row(&self) -> Option<usize> {
        self.table.selected_row()
    }

    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// (step, loss) points plotted for the current or last run.
    pub fn training_losses(&self) -> &[egui_plot::PlotPoint] {
        &self.train.losses
    }

    pub fn is_training(&self) -> bool {
        self.train.is_running()
    }

    /// How many rows the table shows after filtering and search.
    pub fn shown_rows(&self) -> usize {
        self.table.shown_count()
    }

    /// Training settings, for callers that start the window with other defaults.
    pub fn train_settings(&mut self) -> (&mut String, &mut crate::engine::train::TrainConfig) {
        (&mut self.train.model, &mut self.train.config)
    }

    /// Labels changed: the table and the counts need recomputing.
    fn labels_changed(&mut self) {
        self.table.mark_dirty();
        self.counts = None;
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
                Event::Loaded {
                    csv,
                    workspace,
                    problems,
                } => {
                    self.status = format!(
                        "{}: {} rows, {} problem rows",
                        csv.display(),
                        workspace.rows().len(),
                        problems.len()
                    );
                    self.predictions = vec![None; workspace.rows().len()];
                    self.table.reset();
                    self.counts = None;
                    self.problems = problems;
                    self.workspace = Some(*workspace);
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
                    self.error = Some(format!("Could not open {}: {message}", csv.display()));
                }
                Event::Picked(Some(path)) => self.open(path),
                Event::Picked(None) => {
                    self.status = "No file chosen. If no dialog appeared, this desktop has no file portal: type the path in the field and press Enter, or drop the file on the window.".into();
                }
                Event::Train(e) => {
                    if let Some(model_dir) =
                        self.train.on_event(e, &mut self.status, &mut self.error)
                    {
                        if let Some(ws) = &self.workspace {
                            let texts = ws.rows().iter().map(|t| t.text.clone()).collect();
                            self.status = "training finished; predicting every row".into();
                            workers::predict(
                                ws.path().to_path_buf(),
                                model_dir,
                                texts,
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
                    // Another file may have been opened since the run started.
                    if self.workspace.as_ref().map(|w| w.path()) != Some(workspace.as_path()) {
                        continue;
                    }
                    self.predictions = p_disaster.into_iter().map(Some).collect();
                    self.table.mark_dirty();
                    self.status = format!("predictions from {}", model_dir.display());
                }
                Event::PredictFailed { message } => {
                    self.error = Some(format!("Prediction failed: {message}"))
                }
            }
        }
    }

    /// Sets (or clears) the label of the selected row; one undo step.
    fn set_selected_label(&mut self, label: Option<u8>) {
        if let Some(row) = self.table.selected_row() {
            self.label_rows(&[row], label);
        }
    }

    /// Sets (or clears) the label of `rows` as one undo step, committed before returning.
    fn label_rows(&mut self, rows: &[usize], label: Option<u8>) {
        let Some(ws) = self.workspace.as_mut() else {
            return;
        };
        let what = label.map_or("cleared".to_string(), |l| l.to_string());
        let description = match rows {
            [row] => format!("row {} -> {what}", ws.rows()[*row].id),
            _ => format!("{} shown rows -> {what}", rows.len()),
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
                self.status = step.description;
                self.labels_changed();
            }
            Ok(None) => self.status = format!("nothing to {}", if redo { "redo" } else { "undo" }),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Keyboard first: j/k or arrows move, 0/1 label, x clears, ctrl+z / ctrl+shift+z undo
    /// and redo, / searches, ? shows the keys. Ignored while a text field has focus.
    fn handle_keys(&mut self, ctx: &egui::Context) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        use egui::{Key, Modifiers};
        let (mut moves, mut label, mut undo, mut redo, mut search, mut help) =
            (0i64, None, false, false, false, false);
        ctx.input_mut(|i| {
            for (key, step) in [
                (Key::J, 1),
                (Key::ArrowDown, 1),
                (Key::K, -1),
                (Key::ArrowUp, -1),
            ] {
                while i.consume_key(Modifiers::NONE, key) {
                    moves += step;
                }
            }
            if i.consume_key(Modifiers::NONE, Key::Num0) {
                label = Some(Some(0));
            }
            if i.consume_key(Modifiers::NONE, Key::Num1) {
                label = Some(Some(1));
            }
            if i.consume_key(Modifiers::NONE, Key::X) {
                label = Some(None);
            }
            redo = i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
            undo = i.consume_key(Modifiers::COMMAND, Key::Z);
            search = i.consume_key(Modifiers::NONE, Key::Slash);
            help = i.consume_key(Modifiers::SHIFT, Key::Questionmark)
                || i.consume_key(Modifiers::NONE, Key::Questionmark);
        });
        if moves != 0 {
            self.table.move_selection(moves);
        }
        if let Some(l) = label {
            self.set_selected_label(l);
        }
        if redo {
            self.undo_redo(true);
        } else if undo {
            self.undo_redo(false);
        }
        if search {
            self.table.focus_search = true;
        }
        if help {
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

    /// One frame: drain events, apply input, draw.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        // Workers wake this context; keep the one actually drawing.
        self.ctx = ctx.clone();
        self.handle_events();
        self.handle_dropped_files(&ctx);
        self.handle_keys(&ctx);

        egui::Panel::top("top_bar").show(ui, |ui| top_bar::show(self, ui));
        egui::Panel::bottom("status_bar").show(ui, |ui| status_bar::show(self, ui));
        egui::Panel::right("train_panel")
            .default_size(360.0)
            .show(ui, |ui| {
                let (labelled, _) = self.counts();
                let rows = self
                    .workspace
                    .as_ref()
                    .map(|w| w.rows())
                    .unwrap_or_default();
                let start =
                    self.train
                        .show(ui, rows, labelled, self.selected_row(), &self.predictions);
                if start {
                    self.start_training();
                }
            });
        let mut bulk = None;
        egui::CentralPanel::default().show(ui, |ui| match &mut self.workspace {
            Some(ws) => bulk = self.table.show(ui, ws.rows(), &self.predictions),
            None => {
                ui.centered_and_justified(|ui| {
                    ui.label(match &self.loading {
                        Some((p, f)) => format!("Loading {} ... {:.0}%", p.display(), f * 100.0),
                        None => "Open a CSV: the Open button, a path above, drag and drop, or `tweetlab FILE.csv`.".into(),
                    });
                });
            }
        });
        if let Some((rows, label)) = bulk {
            self.label_rows(&rows, label);
        }
        if self.show_help {
            egui::Window::new("Keys")
                .collapsible(false)
                .show(&ctx, |ui| {
                    egui::Grid::new("keys").show(ui, |ui| {
                        for (k, what) in [
                            ("j / ↓, k / ↑", "next / previous tweet"),
                            ("1 / 0", "label disaster / not disaster"),
                            ("x", "clear the label"),
                            ("ctrl+z / ctrl+shift+z", "undo / redo"),
                            ("/", "search"),
                            ("?", "this help"),
                        ] {
                            ui.monospace(k);
                            ui.label(what);
                            ui.end_row();
                        }
                    });
                });
        }
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
        match self.train.start(texts, labels, out_dir) {
            Ok(handle) => workers::forward_training(handle, self.tx.clone(), self.ctx.clone()),
            Err(message) => self.error = Some(message),
        }
    }
}

impl eframe::App for TweetlabApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

/// Opens the window (blocks until it is closed).
pub fn run(csv: Option<PathBuf>) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 800.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "tweetlab",
        options,
        Box::new(move |cc| Ok(Box::new(TweetlabApp::new(&cc.egui_ctx, csv)))),
    )
    .map_err(|e| anyhow::anyhow!("cannot open a window: {e}"))
}
