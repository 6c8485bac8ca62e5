//! The desktop workbench (eframe/egui). The UI thread only reads state and draws; loading,
//! training, prediction, explanation, export and the label-quality jobs run on background
//! threads and report through `protocol::Event` on a crossbeam channel, drained at the start of
//! every frame.
//!
//! Rooms: this file holds the app's state and the frame's layout; `protocol` the events, by
//! owner; `update` routes them and applies what panels ask for; `input` turns keys and dropped
//! files into actions; `jobs` starts every background job (`workers` holds their bodies);
//! `open_file` owns the open CSV's workspace and what is derived from it; `inspect` offers
//! read-only views for tests, `script` the controls they set; one module per panel or dialog
//! draws it; `keymap` holds every shortcut.

mod detail;
mod export_dialog;
mod frame_stats;
pub mod import_dialog;
mod input;
mod inspect;
mod job_registry;
mod jobs;
mod keymap;
mod menu_bar;
mod open_file;
pub mod protocol;
mod review;
mod script;
#[cfg(feature = "serve")]
mod serve_panel;
pub mod settings;
mod status_bar;
mod table;
mod team;
mod team_panel;
mod top_bar;
mod train_panel;
mod update;
mod workers;

use std::path::PathBuf;

use crossbeam_channel::Receiver;

use detail::{DetailView, Explanations};
use export_dialog::{ExportDialog, SaveConfirm};
use frame_stats::FrameStats;
use import_dialog::ImportDialog;
use job_registry::{JobKind, Jobs};
use open_file::OpenFile;
use protocol::Event;
use review::ReviewPanel;
use settings::Settings;
use table::{TableData, TableView};
use train_panel::TrainPanel;
use workers::Reporter;

pub use inspect::{CurveView, NextToLabelView, ReviewView, TeamView};
pub use table::{DuplicateFilter, Filters, LabelFilter, PredictionFilter, SortColumn};
pub use train_panel::TrainSettings;

pub struct TweetlabApp {
    reporter: Reporter,
    rx: Receiver<Event>,
    settings: Settings,
    file: Option<OpenFile>,
    /// The CSV being loaded, and how far along.
    loading: Option<(PathBuf, f32)>,
    /// The path field: always works, even without a file dialog.
    path_field: String,
    table: TableView,
    train: TrainPanel,
    explanations: Explanations,
    export: ExportDialog,
    save: SaveConfirm,
    import: ImportDialog,
    review: ReviewPanel,
    /// Every background job but training and explanations.
    jobs: Jobs,
    status: String,
    error: Option<String>,
    show_help: bool,
    frame_stats: FrameStats,
    /// A table has been drawn since the last file was loaded (for the frame log's timing mark).
    table_drawn: bool,
    /// The next file chosen in the file dialog goes to the import dialog.
    import_next_pick: bool,
    /// A file that could not be opened: the error window offers the import dialog for it.
    failed_open: Option<PathBuf>,
    /// Quit was chosen: the window closes at the end of the frame.
    quit: bool,
    /// The theme last handed to egui.
    applied_theme: Option<settings::Theme>,
    team_connect: team_panel::ConnectDialog,
    /// The team project joined, in team mode.
    team: Option<team_panel::TeamLink>,
    /// The worker joining a project, until it reports.
    team_joining: Option<crossbeam_channel::Sender<crate::workbench::team::TeamCommand>>,
    team_review_open: bool,
    /// Numbers each join; events carry it.
    team_join: u64,
    #[cfg(feature = "serve")]
    serve: serve_panel::ServePanel,
}

impl TweetlabApp {
    /// A window with default settings that starts loading `csv` if given.
    pub fn new(ctx: &egui::Context, csv: Option<PathBuf>) -> Self {
        Self::with_settings(ctx, Settings::default(), csv)
    }

    /// A window with remembered `settings`; opens `csv` if given.
    pub fn with_settings(ctx: &egui::Context, settings: Settings, csv: Option<PathBuf>) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let reporter = Reporter::new(tx, ctx.clone());
        let train = TrainPanel::new(TrainSettings {
            model: settings.model.clone(),
            config: settings.train.clone(),
            measured_speed: settings.measured_speed.clone(),
            ..TrainSettings::default()
        });
        let mut app = Self {
            explanations: Explanations::spawn(&reporter),
            reporter,
            rx,
            settings,
            file: None,
            loading: None,
            path_field: String::new(),
            table: TableView::default(),
            train,
            export: ExportDialog::default(),
            save: SaveConfirm::default(),
            import: ImportDialog::default(),
            import_next_pick: false,
            failed_open: None,
            quit: false,
            applied_theme: None,
            team_connect: team_panel::ConnectDialog::default(),
            team: None,
            team_joining: None,
            team_review_open: false,
            team_join: 0,
            #[cfg(feature = "serve")]
            serve: serve_panel::ServePanel::default(),
            review: ReviewPanel::default(),
            jobs: Jobs::default(),
            status: "Open a CSV to start.".into(),
            error: None,
            show_help: false,
            frame_stats: FrameStats::default(),
            table_drawn: false,
        };
        if let Some(csv) = csv {
            app.open(csv);
        }
        app
    }

    /// What the engine is busy with, the most visible job first.
    fn busy(&self) -> Option<&'static str> {
        if self.train.is_running() {
            return Some("training");
        }
        self.jobs
            .busy()
            .or_else(|| self.explanations.is_pending().then_some("explaining"))
    }

    /// One frame: drain events, apply input, draw.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let frame_start = self.frame_stats.begin_frame();
        let ctx = ui.ctx().clone();
        // Workers wake this context; keep the one actually drawing.
        self.reporter.set_context(&ctx);
        self.handle_events();
        if let Some(file) = self.file.as_mut() {
            match file.follow_database() {
                Ok(true) => self.table.mark_dirty(),
                Ok(false) => {}
                Err(e) => self.error = Some(e),
            }
        }
        let review_tab = self.review.open.then_some(self.review.tab);
        let labels = self
            .file
            .as_ref()
            .map(|f| f.workspace.layout().labels.clone())
            .unwrap_or_default();
        let team_settle = self.team_review_open
            && self
                .team
                .as_ref()
                .is_some_and(|t| t.joined.may_settle && t.current_disagreement().is_some());
        for action in input::read(&ctx, review_tab, team_settle, &labels) {
            self.apply_input(action);
        }
        self.request_explanation();

        if self.applied_theme != Some(self.settings.theme) {
            ctx.set_theme(self.settings.theme.preference());
            self.applied_theme = Some(self.settings.theme);
        }
        let menu = egui::Panel::top("menu_bar").show(ui, |ui| {
            let view = menu_bar::MenuView {
                recent: &self.settings.recent,
                has_file: self.file.is_some(),
                can_write: !self.jobs.is_running(JobKind::Export)
                    && !self.jobs.is_running(JobKind::Save),
                show_detail: self.settings.show_detail,
                review_open: self.review.open,
                theme: self.settings.theme,
                advance_after_labelling: self.settings.advance_after_labelling,
                team: self.team.as_ref().map(|t| t.joined.may_settle),
                team_review_open: self.team_review_open,
            };
            menu_bar::show(ui, &view)
        });
        if let Some(action) = menu.inner {
            self.apply_top_bar(action);
        }
        let top = egui::Panel::top("top_bar").show(ui, |ui| {
            let view = top_bar::TopBarView {
                recent: &self.settings.recent,
                has_file: self.file.is_some(),
                predictions: self.file.as_ref().map_or(&[][..], |f| &f.predictions),
                can_write: !self.jobs.is_running(JobKind::Export)
                    && !self.jobs.is_running(JobKind::Save),
                training: self.train.is_running(),
                device: self.train.settings.config.device,
            };
            top_bar::show(ui, &view, &mut self.path_field)
        });
        if let Some(action) = top.inner {
            self.apply_top_bar(action);
        }
        let busy = self.busy();
        egui::Panel::bottom("status_bar").show(ui, |ui| {
            let file = self.file.as_mut().map(|f| {
                let counts = f.counts();
                (f.workspace.rows().len(), counts, f.last_autosave.as_deref())
            });
            let view = status_bar::StatusView {
                file,
                busy,
                status: &self.status,
                error: self.error.as_deref(),
                team: self
                    .team
                    .as_ref()
                    .map(|t| (t.summary(), t.offline.is_some())),
            };
            status_bar::show(ui, &view);
        });
        let train = egui::Panel::right("train_panel")
            .default_size(380.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("train_scroll")
                    .show(ui, |ui| {
                        let labelled = self.file.as_mut().map_or(0, |f| f.counts().labelled);
                        // Serving first: its address stays in view however long the
                        // Train panel grows.
                        #[cfg(feature = "serve")]
                        self.serve
                            .show(ui, self.file.as_ref().and_then(|f| f.model_dir.as_deref()));
                        self.train.show(ui, labelled, &self.jobs)
                    })
                    .inner
            });
        if let Some(action) = train.inner {
            self.apply_train(action);
        }
        if self.settings.show_detail && self.file.is_some() {
            let detail = egui::Panel::bottom("detail")
                .resizable(true)
                .default_size(240.0)
                .min_size(140.0)
                .show(ui, |ui| {
                    // Fill the panel, so it keeps its size when a short tweet is shown.
                    ui.set_min_height(ui.available_height());
                    self.show_detail(ui)
                });
            match detail.inner {
                Some(detail::DetailAction::Label(label)) => self.label_selected(label),
                Some(detail::DetailAction::Explain(class)) => self.explanations.set_class(class),
                None => {}
            }
        }
        let table = egui::CentralPanel::default().show(ui, |ui| match &self.file {
            Some(file) => {
                let data = TableData {
                    rows: file.workspace.rows(),
                    labels: &file.workspace.layout().labels,
                    predictions: &file.predictions,
                    duplicates: &file.duplicates,
                    conflicting: &file.conflicting,
                    only: self
                        .team
                        .as_ref()
                        .filter(|t| t.opened && file.workspace.source() == t.joined.csv)
                        .map(|t| &t.shown),
                };
                Some(self.table.show(ui, &data))
            }
            None => {
                ui.centered_and_justified(|ui| {
                    ui.label(match &self.loading {
                        Some((p, f)) => format!("Loading {} ... {:.0}%", p.display(), f * 100.0),
                        None => "Open a CSV: the Open button, a path above, drag and drop, or `tweetlab FILE.csv`.".into(),
                    });
                });
                None
            }
        });
        if let Some(action) = table.inner {
            if let Some((rows, label)) = action.relabel {
                self.label(&rows, label, "");
            }
            if action.open_detail {
                self.settings.show_detail = true;
            }
        }
        self.dialogs(&ctx);
        if let (Some(file), false) = (&self.file, self.table_drawn) {
            self.table_drawn = true;
            let rows = file.workspace.rows().len();
            self.frame_stats.mark(&format!("table-drawn rows={rows}"));
        }
        // Labels made this frame (keys, the table, the detail panel, undo) go to the team's
        // outbox before the frame ends.
        self.mirror_team_labels();
        if std::mem::take(&mut self.quit) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        self.frame_stats.end_frame(&ctx, frame_start);
    }

    fn show_detail(&mut self, ui: &mut egui::Ui) -> Option<detail::DetailAction> {
        let file = self.file.as_ref()?;
        let view = self.table.selected_row().map(|row| DetailView {
            row,
            tweet: &file.workspace.rows()[row],
            labels: &file.workspace.layout().labels,
            columns: {
                let layout = file.workspace.layout();
                let tweet = &file.workspace.rows()[row];
                layout
                    .extra_columns
                    .iter()
                    .zip(&tweet.extra)
                    .filter(|(c, _)| !layout.hidden_columns.contains(c))
                    .map(|(&c, cell)| (layout.header[c].as_str(), cell.as_str()))
                    .collect()
            },
            prediction: file.predictions.get(row).and_then(|p| p.as_deref()),
            explanation: self.explanations.state(row, file.model_dir.as_ref()),
            explain_class: self.explanations.class,
        });
        detail::show(ui, view)
    }

    fn dialogs(&mut self, ctx: &egui::Context) {
        if let Some(action) = team_panel::show_connect(ctx, &mut self.team_connect) {
            self.apply_team(action);
        }
        let review = self.team.as_ref().filter(|_| self.team_review_open);
        if let Some(action) = review.and_then(|link| team_panel::show_review(ctx, link)) {
            self.apply_team(action);
        }
        if let Some(action) = self.import.show(ctx) {
            self.apply_import(action);
        }
        if let Some(file) = self.file.as_mut() {
            let labelled = file.counts().labelled;
            let data = review::ReviewData {
                rows: file.workspace.rows(),
                labels: &file.workspace.layout().labels,
                labelled,
                duplicates: &file.duplicates,
                conflicting: &file.conflicting,
                jobs: &self.jobs,
            };
            let action = self.review.show(ctx, &data);
            if let Some(action) = action {
                self.apply_review(action);
            }
        }
        // Only while a dialog is open: the prediction scan is a pass over every row.
        let dialog_open = self.export.open || self.save.open;
        if let Some(file) = self.file.as_mut().filter(|_| dialog_open) {
            let source = file.workspace.source().to_path_buf();
            let (request, browse) = self.export.show(ctx, &source, file.has_predictions());
            let edited = file.counts().edited;
            let save = self.save.show(ctx, &source, edited);
            if browse {
                self.pick_save();
            }
            if let Some(request) = request {
                self.start_export(request);
            }
            if save {
                self.save_to_source();
            }
        }
        if self.show_help {
            egui::Window::new("Keys")
                .collapsible(false)
                .show(ctx, |ui| {
                    egui::Grid::new("keys").show(ui, |ui| {
                        let commands = keymap::BINDINGS
                            .iter()
                            .map(|b| (ctx.format_shortcut(&b.keys), b.what));
                        let others = keymap::OTHER_KEYS
                            .into_iter()
                            .map(|(k, what)| (k.to_owned(), what));
                        for (k, what) in others.chain(commands) {
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
                    ui.horizontal(|ui| {
                        if let Some(csv) = self.failed_open.clone() {
                            if ui.button("Choose how to read it…").clicked() {
                                self.error = None;
                                self.failed_open = None;
                                self.choose_import(csv);
                            }
                        }
                        if ui.button("Dismiss").clicked() {
                            self.error = None;
                            self.failed_open = None;
                        }
                    });
                });
        }
    }

    /// The settings as they should be remembered now.
    fn current_settings(&self) -> Settings {
        Settings {
            model: self.train.settings.model.clone(),
            train: self.train.settings.config.clone(),
            measured_speed: self.train.settings.measured_speed.clone(),
            ..self.settings.clone()
        }
    }
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
