//! Read-only views of the window's state, for tests and callers that script the window
//! (`script` holds what they may change). Nothing here is drawn.

use super::job_registry::JobKind;
use super::TweetlabApp;
use crate::data::store::Workspace;
use crate::engine::explain::Explanation;
use crate::engine::metrics::Metrics;

/// The suspects queue of the review window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewView {
    /// How many suspects were found, once found.
    pub found: Option<usize>,
    /// Position in the queue.
    pub position: usize,
    /// Looking for suspects now.
    pub searching: bool,
}

/// The label-next queue of the review window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextToLabelView {
    /// How many rows the queue holds, once ranked.
    pub ranked: Option<usize>,
    pub position: usize,
    /// Ranking now.
    pub ranking: bool,
}

/// Points of the simulated learning curves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurveView {
    pub queue: usize,
    pub random: usize,
}

/// Team mode as the status bar and the team review window show it.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamView {
    pub project: String,
    pub me: String,
    pub may_settle: bool,
    /// The project's rows are open in the table.
    pub opened: bool,
    pub queue: usize,
    pub waiting: usize,
    pub offline: bool,
    /// (labels given, rows × K, rows settled), once read.
    pub progress: Option<(i64, i64, i64)>,
    /// Rows to settle, and the one the team review window shows.
    pub disagreements: usize,
    pub current_disagreement: Option<i64>,
    pub review_open: bool,
    /// The status bar's line.
    pub line: String,
}

impl TweetlabApp {
    /// Team mode's state, when a project is joined.
    pub fn team_view(&self) -> Option<TeamView> {
        let t = self.team.as_ref()?;
        Some(TeamView {
            project: t.joined.project.name.clone(),
            me: t.joined.me.clone(),
            may_settle: t.joined.may_settle,
            opened: t.opened,
            queue: t.queue.len(),
            waiting: t.waiting,
            offline: t.offline.is_some(),
            progress: t
                .status
                .as_ref()
                .map(|s| (s.labels_given, s.labels_wanted, s.settled)),
            disagreements: t.status.as_ref().map_or(0, |s| s.disagreements.len()),
            current_disagreement: t.current_disagreement().map(|d| d.row),
            review_open: self.team_review_open,
            line: t.summary(),
        })
    }

    pub fn workspace(&self) -> Option<&Workspace> {
        self.file.as_ref().map(|f| &f.workspace)
    }

    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    /// Every class's probability per row from the latest model (empty with no file open).
    pub fn predictions(&self) -> &[Option<Vec<f32>>] {
        self.file
            .as_ref()
            .map_or(&[][..], |f| f.predictions.as_slice())
    }

    /// The model directory the predictions came from.
    pub fn predicted_by(&self) -> Option<&std::path::Path> {
        self.file.as_ref().and_then(|f| f.model_dir.as_deref())
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
        &self.train.loss.raw
    }

    /// (epoch, F1) validation points of the current or last run.
    pub fn validation_f1(&self) -> &[egui_plot::PlotPoint] {
        &self.train.val.f1
    }

    /// How many earlier runs of this workspace the Train panel can overlay.
    pub fn past_runs(&self) -> usize {
        self.train.past.len()
    }

    pub fn is_training(&self) -> bool {
        self.train.is_running()
    }

    /// Writing an export or a save.
    pub fn is_exporting(&self) -> bool {
        self.jobs.is_running(JobKind::Export) || self.jobs.is_running(JobKind::Save)
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
        self.explanations.get(row)
    }

    pub fn settings(&self) -> &super::settings::Settings {
        &self.settings
    }

    /// The fast baseline's validation metrics, once computed.
    pub fn baseline(&self) -> Option<Metrics> {
        self.train.baseline_result.clone()
    }

    pub fn review_state(&self) -> ReviewView {
        ReviewView {
            found: self.review.suspects.as_ref().map(Vec::len),
            position: self.review.position,
            searching: self.jobs.is_running(JobKind::Suspects),
        }
    }

    pub fn next_to_label_state(&self) -> NextToLabelView {
        NextToLabelView {
            ranked: self.review.next.as_ref().map(Vec::len),
            position: self.review.next_position,
            ranking: self.jobs.is_running(JobKind::Rank),
        }
    }

    /// The simulated learning curves' sizes, once computed.
    pub fn learning_curve(&self) -> Option<CurveView> {
        self.review.curve.as_ref().map(|(q, r)| CurveView {
            queue: q.len(),
            random: r.len(),
        })
    }

    pub fn advance_after_labelling(&self) -> bool {
        self.settings.advance_after_labelling
    }

    /// The theme chosen in the View menu.
    pub fn theme(&self) -> super::settings::Theme {
        self.settings.theme
    }

    /// The latest epoch's validation metrics (the Train panel's matrix).
    pub fn last_validation(&self) -> Option<Metrics> {
        self.train.last_val.clone()
    }

    pub fn import_dialog_open(&self) -> bool {
        self.import.is_open()
    }

    /// The address the window serves its model at, if it does.
    #[cfg(feature = "serve")]
    pub fn serving_url(&self) -> Option<String> {
        self.serve.serving().map(|(url, _)| url)
    }
}
