//! The edit history inside a workspace file: every label change in groups (one undo step
//! each), undo and redo derived from it, and reviews (a label looked at and kept).

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use super::{label_from_sql, label_to_sql, now_rfc3339, StoreError, Workspace};

/// What a group of edits did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    Edit,
    Undo,
    Redo,
    /// A row was reviewed and its label kept (old = new): recorded, never undone.
    Review,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Edit => "edit",
            Action::Undo => "undo",
            Action::Redo => "redo",
            Action::Review => "review",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "undo" => Action::Undo,
            "redo" => Action::Redo,
            "review" => Action::Review,
            _ => Action::Edit,
        }
    }
}

/// One label change, as the history records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EditRecord {
    pub seq: i64,
    /// The undo step this change belongs to.
    pub group: i64,
    pub action: Action,
    pub row: usize,
    pub row_id: String,
    pub line: u64,
    pub old: Option<u8>,
    pub new: Option<u8>,
    pub who: String,
    /// UTC, RFC 3339.
    pub at: String,
    pub description: String,
}

/// What an undo or redo changed, for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSummary {
    pub group: i64,
    pub description: String,
    pub rows: Vec<usize>,
}

impl Workspace {
    /// Applies `changes` (row index, new label) as one undo step. Changes that set a row to its
    /// current label are dropped; returns the step's id, or None when nothing changed.
    pub fn set_labels(
        &mut self,
        changes: &[(usize, Option<u8>)],
        who: &str,
        description: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.refresh()?;
        if let Some(&(bad, _)) = changes.iter().find(|(i, _)| *i >= self.rows.len()) {
            return Err(StoreError::Invalid {
                path: self.path.clone(),
                message: format!("row {bad} does not exist"),
            });
        }
        // A row named twice takes its last label: one history line per row and step.
        let last_mention: std::collections::HashMap<usize, usize> = changes
            .iter()
            .enumerate()
            .map(|(k, &(row, _))| (row, k))
            .collect();
        let mut effective: Vec<(usize, Option<u8>, Option<u8>)> = Vec::new();
        let classes = self.layout.labels.len().max(2) as u8;
        if let Some(&(row, Some(bad))) = changes
            .iter()
            .find(|(_, l)| l.is_some_and(|l| l >= classes))
        {
            return Err(StoreError::Invalid {
                path: self.path.clone(),
                message: format!("row {row}: label {bad} is not one of the {classes} classes"),
            });
        }
        for (k, &(row, new)) in changes.iter().enumerate() {
            let old = self.rows[row].label;
            if last_mention[&row] == k && old != new {
                effective.push((row, old, new));
            }
        }
        if effective.is_empty() {
            return Ok(None);
        }
        let group = self.record(Action::Edit, None, description, who, &effective)?;
        Ok(Some(group))
    }

    /// Writes one group of edits and its label changes in one transaction, then mirrors them
    /// in memory.
    fn record(
        &mut self,
        action: Action,
        reverts: Option<i64>,
        description: &str,
        who: &str,
        edits: &[(usize, Option<u8>, Option<u8>)],
    ) -> Result<i64, StoreError> {
        let at = now_rfc3339();
        let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        let group = write_group(&tx, action, reverts, description, who, &at, edits)
            .and_then(|g| tx.commit().map(|_| g))
            .map_err(|e| StoreError::Sqlite {
                path: self.path.clone(),
                source: e,
            })?;
        for &(row, _, new) in edits {
            self.rows[row].label = new;
        }
        Ok(group)
    }

    /// Records that `rows` were reviewed and keep their current labels, as one history entry
    /// (old = new). Reviews are not undo steps: undo and redo pass over them.
    pub fn record_review(
        &mut self,
        rows: &[usize],
        who: &str,
        description: &str,
    ) -> Result<i64, StoreError> {
        self.refresh()?;
        if let Some(&bad) = rows.iter().find(|&&i| i >= self.rows.len()) {
            return Err(StoreError::Invalid {
                path: self.path.clone(),
                message: format!("no row {bad}"),
            });
        }
        let edits: Vec<(usize, Option<u8>, Option<u8>)> = rows
            .iter()
            .map(|&r| (r, self.rows[r].label, self.rows[r].label))
            .collect();
        self.record(Action::Review, None, description, who, &edits)
    }

    /// The latest edit or redo that no undo has reverted.
    fn undo_target(&self) -> Result<Option<(i64, String)>, StoreError> {
        self.conn
            .query_row(
                "SELECT g.id, g.description FROM edit_groups g WHERE g.action IN ('edit','redo')
                 AND NOT EXISTS (SELECT 1 FROM edit_groups u WHERE u.action = 'undo' AND u.reverts = g.id)
                 ORDER BY g.id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The latest undo that no redo has reverted and no new edit has followed.
    fn redo_target(&self) -> Result<Option<(i64, String)>, StoreError> {
        self.conn
            .query_row(
                "SELECT u.id, u.description FROM edit_groups u WHERE u.action = 'undo'
                 AND NOT EXISTS (SELECT 1 FROM edit_groups r WHERE r.action = 'redo' AND r.reverts = u.id)
                 AND NOT EXISTS (SELECT 1 FROM edit_groups e WHERE e.action = 'edit' AND e.id > u.id)
                 ORDER BY u.id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn can_undo(&self) -> bool {
        self.undo_target().ok().flatten().is_some()
    }

    pub fn can_redo(&self) -> bool {
        self.redo_target().ok().flatten().is_some()
    }

    /// Puts back the labels a group changed, as a new group of `action` (the history only grows).
    fn revert(
        &mut self,
        target: i64,
        action: Action,
        description: String,
        who: &str,
    ) -> Result<StepSummary, StoreError> {
        let mut changes: Vec<(usize, Option<u8>)> = {
            let mut q = self
                .conn
                .prepare("SELECT row_idx, old FROM edits WHERE group_id = ?1 ORDER BY seq DESC")
                .map_err(|e| self.err(e))?;
            let rows = q
                .query_map([target], |r| {
                    Ok((r.get::<_, i64>(0)? as usize, label_from_sql(r.get(1)?)))
                })
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        changes.dedup_by_key(|c| c.0);
        let edits: Vec<(usize, Option<u8>, Option<u8>)> = changes
            .iter()
            .map(|&(row, old)| (row, self.rows[row].label, old))
            .collect();
        let group = self.record(action, Some(target), &description, who, &edits)?;
        Ok(StepSummary {
            group,
            description,
            rows: changes.into_iter().map(|c| c.0).collect(),
        })
    }

    /// Undoes the latest step not yet undone; None when there is nothing to undo.
    pub fn undo(&mut self, who: &str) -> Result<Option<StepSummary>, StoreError> {
        self.refresh()?;
        match self.undo_target()? {
            Some((target, description)) => self
                .revert(target, Action::Undo, format!("undo: {description}"), who)
                .map(Some),
            None => Ok(None),
        }
    }

    /// Redoes the latest undo; None when there is nothing to redo.
    pub fn redo(&mut self, who: &str) -> Result<Option<StepSummary>, StoreError> {
        self.refresh()?;
        match self.redo_target()? {
            Some((target, description)) => {
                let description = description
                    .strip_prefix("undo: ")
                    .unwrap_or(&description)
                    .to_string();
                self.revert(target, Action::Redo, format!("redo: {description}"), who)
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    /// The whole edit history, oldest first.
    pub fn history(&self) -> Result<Vec<EditRecord>, StoreError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT e.seq, e.group_id, g.action, e.row_idx, e.old, e.new, g.who, g.at, g.description
                 FROM edits e JOIN edit_groups g ON g.id = e.group_id ORDER BY e.seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([], |r| {
                let row = r.get::<_, i64>(3)? as usize;
                Ok(EditRecord {
                    seq: r.get(0)?,
                    group: r.get(1)?,
                    action: Action::parse(&r.get::<_, String>(2)?),
                    row,
                    row_id: self.rows.get(row).map(|t| t.id.clone()).unwrap_or_default(),
                    line: self.rows.get(row).map_or(0, |t| t.line),
                    old: label_from_sql(r.get(4)?),
                    new: label_from_sql(r.get(5)?),
                    who: r.get(6)?,
                    at: r.get(7)?,
                    description: r.get(8)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

fn write_group(
    tx: &Transaction,
    action: Action,
    reverts: Option<i64>,
    description: &str,
    who: &str,
    at: &str,
    edits: &[(usize, Option<u8>, Option<u8>)],
) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO edit_groups (action, reverts, description, who, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![action.as_str(), reverts, description, who, at],
    )?;
    let group = tx.last_insert_rowid();
    let mut insert = tx.prepare_cached(
        "INSERT INTO edits (group_id, row_idx, old, new) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut update = tx.prepare_cached("UPDATE rows SET label = ?2 WHERE idx = ?1")?;
    for &(row, old, new) in edits {
        insert.execute(params![
            group,
            row as i64,
            label_to_sql(old),
            label_to_sql(new)
        ])?;
        update.execute(params![row as i64, label_to_sql(new)])?;
    }
    Ok(group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::store::tests::{labels, workspace};

    #[test]
    fn edits_undo_redo_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = workspace(dir.path());
        assert!(!ws.can_undo());
        ws.set_labels(&[(0, Some(1))], "ana", "row 1 -> 1")
            .unwrap()
            .unwrap();
        ws.set_labels(&[(1, Some(0)), (2, Some(1)), (3, Some(0))], "ana", "bulk")
            .unwrap();
        assert_eq!(labels(&ws), vec![Some(1), Some(0), Some(1), Some(0)]);
        assert_eq!(ws.edited_rows(), 3);
        let undone = ws.undo("ana").unwrap().unwrap();
        assert_eq!(undone.description, "undo: bulk");
        assert_eq!(labels(&ws), vec![Some(1), Some(1), None, Some(0)]);
        drop(ws);

        let mut ws = Workspace::open(&dir.path().join("ws.sqlite")).unwrap();
        assert_eq!(labels(&ws), vec![Some(1), Some(1), None, Some(0)]);
        assert!(ws.can_redo());
        ws.redo("ana").unwrap().unwrap();
        assert_eq!(labels(&ws), vec![Some(1), Some(0), Some(1), Some(0)]);
        ws.undo("ana").unwrap();
        ws.undo("ana").unwrap();
        assert_eq!(labels(&ws), vec![Some(0), Some(1), None, Some(0)]);
        assert!(ws.undo("ana").unwrap().is_none());
        ws.redo("ana").unwrap();
        assert_eq!(labels(&ws), vec![Some(1), Some(1), None, Some(0)]);
        // A new edit clears what could be redone.
        ws.set_labels(&[(3, None)], "ana", "clear row 4").unwrap();
        assert!(!ws.can_redo());
        let history = ws.history().unwrap();
        assert_eq!(history.first().unwrap().old, Some(0));
        assert_eq!(history.last().unwrap().new, None);
        assert!(history.windows(2).all(|w| w[0].seq < w[1].seq));
        // Undo steps reverted 2 rows (bulk: row 4 was already 0), 2 again, then 1.
        assert_eq!(
            history.iter().filter(|e| e.action == Action::Undo).count(),
            2 + 2 + 1
        );
    }

    #[test]
    fn no_op_edits_record_nothing_and_bad_rows_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = workspace(dir.path());
        assert_eq!(ws.set_labels(&[(0, Some(0))], "x", "same").unwrap(), None);
        assert!(ws.history().unwrap().is_empty());
        // The same row twice in one step: the last label wins, recorded once.
        ws.set_labels(&[(1, Some(0)), (1, None)], "x", "twice")
            .unwrap();
        let history = ws.history().unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!((history[0].old, history[0].new), (Some(1), None));
        ws.undo("x").unwrap();
        assert_eq!(ws.rows()[1].label, Some(1));
        assert!(ws.set_labels(&[(99, Some(1))], "x", "bad").is_err());
    }

    #[test]
    fn reviews_are_recorded_and_skipped_by_undo() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = workspace(dir.path());
        let before = ws.rows()[2].label;
        ws.set_labels(&[(0, None)], "ana", "clear row 1").unwrap();
        ws.record_review(&[2], "ana", "kept the label").unwrap();
        let history = ws.history().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].action, Action::Review);
        assert_eq!((history[1].old, history[1].new), (before, before));
        // Undo reverts the edit, not the review; redo still works after it.
        let undone = ws.undo("ana").unwrap().unwrap();
        assert_eq!(undone.rows, vec![0]);
        ws.record_review(&[2], "ana", "kept again").unwrap();
        assert!(ws.redo("ana").unwrap().is_some());
        assert_eq!(ws.rows()[0].label, None);
        assert_eq!(ws.rows()[2].label, before);
        assert!(ws.record_review(&[99], "ana", "bad").is_err());
    }
}
