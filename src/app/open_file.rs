//! The open CSV: its workspace, and what the window derives from it (duplicate groups and which
//! of them conflict, the latest predictions, label counts). Every label change goes through
//! here, so the derived state is refreshed in one place.

use std::path::{Path, PathBuf};

use super::protocol::Opened;
use crate::data::duplicates::Duplicates;
use crate::data::store::{StepSummary, Workspace};

/// Who the edit history names for edits made in this window.
pub const EDITOR: &str = "gui";

/// Rows with a label, and rows whose label differs from the imported one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub labelled: usize,
    pub edited: usize,
}

pub struct OpenFile {
    pub workspace: Workspace,
    pub duplicates: Duplicates,
    /// Per duplicate group: does it carry both labels with the current labels.
    pub conflicting: Vec<bool>,
    /// Every class's probability per row from the latest model, when there is one (classes in
    /// the workspace's label set order: the model was trained on them).
    pub predictions: Vec<Option<Vec<f32>>>,
    /// The fine-tuned model the predictions came from (explanations use it too).
    pub model_dir: Option<PathBuf>,
    /// Last time the workspace committed an edit, for the status bar.
    pub last_autosave: Option<String>,
    /// Recounted on the first frame after a change rather than every frame.
    counts: Option<Counts>,
}

impl OpenFile {
    pub fn new(opened: Opened) -> Self {
        let rows = opened.workspace.rows().len();
        let classes = opened.workspace.layout().labels.len();
        let (predictions, model_dir) = match opened.predictions {
            // Probabilities over other classes than the file has now are not shown.
            Some((_, dir, p)) if p.iter().flatten().all(|p| p.len() == classes) => (p, Some(dir)),
            _ => (vec![None; rows], None),
        };
        let mut file = Self {
            workspace: opened.workspace,
            duplicates: opened.duplicates,
            conflicting: Vec::new(),
            predictions,
            model_dir,
            last_autosave: None,
            counts: None,
        };
        file.recompute_conflicts();
        file
    }

    /// Whether this is the file whose workspace lives at `workspace`.
    pub fn is(&self, workspace: &Path) -> bool {
        self.workspace.path() == workspace
    }

    pub fn counts(&mut self) -> Counts {
        let ws = &self.workspace;
        *self.counts.get_or_insert_with(|| Counts {
            labelled: ws.rows().iter().filter(|t| t.label.is_some()).count(),
            edited: ws.edited_rows(),
        })
    }

    /// Sets (or clears) the label of `rows` as one undo step, committed before returning;
    /// `why` ("review: ", ...) leads the history's description.
    pub fn label(&mut self, rows: &[usize], label: Option<u8>, why: &str) -> Result<(), String> {
        if rows.is_empty() {
            return Ok(());
        }
        let what = label.map_or("cleared".to_string(), |l| l.to_string());
        let description = match rows {
            [row] => format!("{why}row {} -> {what}", self.workspace.rows()[*row].id),
            _ => format!("{why}{} rows -> {what}", rows.len()),
        };
        let changes: Vec<(usize, Option<u8>)> = rows.iter().map(|&r| (r, label)).collect();
        self.workspace
            .set_labels(&changes, EDITOR, &description)
            .map_err(|e| e.to_string())?;
        self.labels_changed();
        Ok(())
    }

    /// Undoes (or redoes) the latest step; None when there is nothing to undo (redo).
    pub fn undo_redo(&mut self, redo: bool) -> Result<Option<StepSummary>, String> {
        let step = if redo {
            self.workspace.redo(EDITOR)
        } else {
            self.workspace.undo(EDITOR)
        }
        .map_err(|e| e.to_string())?;
        if step.is_some() {
            self.labels_changed();
        }
        Ok(step)
    }

    /// Records that `row`'s label was looked at and kept.
    pub fn keep_label(&mut self, row: usize) -> Result<(), String> {
        let id = self
            .workspace
            .rows()
            .get(row)
            .map(|t| t.id.clone())
            .ok_or_else(|| format!("no row {row} in this file"))?;
        let description = format!("review, label kept: row {id}");
        self.workspace
            .record_review(&[row], EDITOR, &description)
            .map_err(|e| e.to_string())?;
        self.last_autosave = Some(crate::data::store::now_rfc3339());
        Ok(())
    }

    /// Takes up edits another window or a CLI command committed to the same workspace; true
    /// when labels changed. Cheap when nothing did (one pragma).
    pub fn follow_database(&mut self) -> Result<bool, String> {
        let changed = self.workspace.refresh().map_err(|e| e.to_string())?;
        if changed {
            self.labels_changed();
        }
        Ok(changed)
    }

    /// A run's predictions for every row.
    pub fn set_predictions(&mut self, probabilities: Vec<Vec<f32>>, model_dir: PathBuf) {
        self.predictions = probabilities.into_iter().map(Some).collect();
        self.model_dir = Some(model_dir);
    }

    pub fn has_predictions(&self) -> bool {
        self.predictions.iter().any(Option::is_some)
    }

    fn labels_changed(&mut self) {
        self.counts = None;
        self.last_autosave = Some(crate::data::store::now_rfc3339());
        self.recompute_conflicts();
    }

    fn recompute_conflicts(&mut self) {
        let rows = self.workspace.rows();
        self.conflicting = self
            .duplicates
            .groups
            .iter()
            .map(|g| {
                let mut labels = g.rows.iter().filter_map(|&i| rows[i].label);
                let first = labels.next();
                labels.any(|l| Some(l) != first)
            })
            .collect();
    }
}
