//! The workspace: one SQLite file per imported CSV holding the rows, their current labels, the
//! append-only history of every label edit, training runs with their metrics, and predictions.
//!
//! Every edit is committed before the call returns (WAL, synchronous=FULL): once the UI shows an
//! edit as done, killing the process loses nothing. Undo and redo are derived from the history
//! itself, so they survive a restart. The source CSV is never written.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

use super::dataset::{Dataset, Layout, Tweet};

/// 2: edit groups may be reviews (a label looked at and kept). 1 is migrated on open.
const SCHEMA_VERSION: i64 = 2;

/// The edit_groups table as of schema 2.
const EDIT_GROUPS_DDL: &str = "CREATE TABLE edit_groups (id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL CHECK (action IN ('edit','undo','redo','review')),
                 reverts INTEGER REFERENCES edit_groups(id), description TEXT NOT NULL, who TEXT NOT NULL, at TEXT NOT NULL);";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("workspace {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("workspace {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

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

/// A training run as the store keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub started: String,
    pub model: String,
    pub config: serde_json::Value,
    pub status: String,
}

pub struct Workspace {
    conn: Connection,
    path: PathBuf,
    source: PathBuf,
    layout: Layout,
    rows: Vec<Tweet>,
    original: Vec<Option<u8>>,
}

/// UTC now as RFC 3339 (seconds), without a date-time crate.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn label_to_sql(l: Option<u8>) -> Option<i64> {
    l.map(i64::from)
}

fn label_from_sql(v: Option<i64>) -> Option<u8> {
    v.map(|x| x.clamp(0, 1) as u8)
}

impl Workspace {
    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn connect(path: &Path) -> Result<Connection, StoreError> {
        let wrap = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(wrap)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;")
            .map_err(wrap)?;
        Ok(conn)
    }

    /// Where the workspace for `csv` lives by default: the user's data directory, keyed by the
    /// CSV's absolute path (never next to the user's file).
    pub fn default_path(csv: &Path) -> PathBuf {
        let abs = std::fs::canonicalize(csv).unwrap_or_else(|_| csv.to_path_buf());
        // FNV-1a: stable across runs and platforms, unlike std's hasher.
        let hash = abs
            .to_string_lossy()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        let stem = csv
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "data".into());
        let root = std::env::var_os("TWEETLAB_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                dirs::data_dir()
                    .unwrap_or_else(std::env::temp_dir)
                    .join("tweetlab")
            });
        root.join("workspaces")
            .join(format!("{stem}-{hash:016x}.sqlite"))
    }

    /// Creates a new workspace at `path` holding `data` (imported from `source`).
    pub fn create(path: &Path, source: &Path, data: &Dataset) -> Result<Self, StoreError> {
        if path.exists() {
            return Err(StoreError::Invalid {
                path: path.to_path_buf(),
                message: "already exists; open it instead".into(),
            });
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Invalid {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        let mut conn = Self::connect(path)?;
        let wrap = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let tx = conn.transaction().map_err(wrap)?;
        tx.execute_batch(&format!(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE rows (idx INTEGER PRIMARY KEY, id TEXT NOT NULL, keyword TEXT NOT NULL, location TEXT NOT NULL,
                 text TEXT NOT NULL, label INTEGER, original_label INTEGER, unparsed_label TEXT, extra TEXT, line INTEGER NOT NULL);
             {EDIT_GROUPS_DDL}
             CREATE TABLE edits (seq INTEGER PRIMARY KEY AUTOINCREMENT, group_id INTEGER NOT NULL REFERENCES edit_groups(id),
                 row_idx INTEGER NOT NULL REFERENCES rows(idx), old INTEGER, new INTEGER);
             CREATE INDEX edits_by_group ON edits(group_id);
             CREATE INDEX groups_by_reverts ON edit_groups(reverts);
             CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT NOT NULL, model TEXT NOT NULL,
                 config TEXT NOT NULL, status TEXT NOT NULL);
             CREATE TABLE run_metrics (run_id INTEGER NOT NULL REFERENCES runs(id), kind TEXT NOT NULL, step INTEGER NOT NULL,
                 value TEXT NOT NULL);
             CREATE TABLE predictions (run_id INTEGER NOT NULL REFERENCES runs(id), row_idx INTEGER NOT NULL REFERENCES rows(idx),
                 p_disaster REAL NOT NULL, PRIMARY KEY (run_id, row_idx));"
        ))
        .map_err(wrap)?;
        let layout = serde_json::to_string(&data.layout).expect("layout serialises");
        for (k, v) in [
            ("schema_version", SCHEMA_VERSION.to_string()),
            ("source", source.display().to_string()),
            ("layout", layout),
            ("created", now_rfc3339()),
        ] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![k, v],
            )
            .map_err(wrap)?;
        }
        {
            let mut insert = tx
                .prepare("INSERT INTO rows (idx, id, keyword, location, text, label, original_label, unparsed_label, extra, line) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9)")
                .map_err(wrap)?;
            for (i, r) in data.rows.iter().enumerate() {
                let extra = (!r.extra.is_empty())
                    .then(|| serde_json::to_string(&r.extra).expect("strings serialise"));
                insert
                    .execute(params![
                        i as i64,
                        r.id,
                        r.keyword,
                        r.location,
                        r.text,
                        label_to_sql(r.label),
                        r.unparsed_label,
                        extra,
                        r.line as i64
                    ])
                    .map_err(wrap)?;
            }
        }
        tx.commit().map_err(wrap)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            source: source.to_path_buf(),
            layout: data.layout.clone(),
            original: data.rows.iter().map(|r| r.label).collect(),
            rows: data.rows.clone(),
        })
    }

    /// Opens an existing workspace.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Invalid {
                path: path.to_path_buf(),
                message: "no such workspace file".into(),
            });
        }
        let conn = Self::connect(path)?;
        let wrap = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let meta = |key: &str| -> Result<String, StoreError> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .map_err(wrap)
        };
        let mut version: i64 = meta("schema_version")?.parse().unwrap_or(0);
        if version == 1 {
            migrate_1_to_2(&conn).map_err(wrap)?;
            version = 2;
        }
        if version != SCHEMA_VERSION {
            return Err(StoreError::Invalid {
                path: path.to_path_buf(),
                message: format!("schema version {version}, this tweetlab reads {SCHEMA_VERSION}"),
            });
        }
        let layout: Layout =
            serde_json::from_str(&meta("layout")?).map_err(|e| StoreError::Invalid {
                path: path.to_path_buf(),
                message: format!("bad layout: {e}"),
            })?;
        let source = PathBuf::from(meta("source")?);
        let mut rows = Vec::new();
        let mut original = Vec::new();
        {
            let mut q = conn
                .prepare("SELECT id, keyword, location, text, label, original_label, unparsed_label, extra, line FROM rows ORDER BY idx")
                .map_err(wrap)?;
            let mut it = q.query([]).map_err(wrap)?;
            while let Some(r) = it.next().map_err(wrap)? {
                let extra: Option<String> = r.get(7).map_err(wrap)?;
                rows.push(Tweet {
                    id: r.get(0).map_err(wrap)?,
                    keyword: r.get(1).map_err(wrap)?,
                    location: r.get(2).map_err(wrap)?,
                    text: r.get(3).map_err(wrap)?,
                    label: label_from_sql(r.get(4).map_err(wrap)?),
                    unparsed_label: r.get(6).map_err(wrap)?,
                    extra: extra
                        .and_then(|e| serde_json::from_str(&e).ok())
                        .unwrap_or_default(),
                    line: r.get::<_, i64>(8).map_err(wrap)? as u64,
                });
                original.push(label_from_sql(r.get(5).map_err(wrap)?));
            }
        }
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            source,
            layout,
            rows,
            original,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The CSV the rows were imported from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn rows(&self) -> &[Tweet] {
        &self.rows
    }

    /// Rows whose label differs from the imported one.
    pub fn edited_rows(&self) -> usize {
        self.rows
            .iter()
            .zip(&self.original)
            .filter(|(r, o)| r.label != **o)
            .count()
    }

    /// Applies `changes` (row index, new label) as one undo step. Changes that set a row to its
    /// current label are dropped; returns the step's id, or None when nothing changed.
    pub fn set_labels(
        &mut self,
        changes: &[(usize, Option<u8>)],
        who: &str,
        description: &str,
    ) -> Result<Option<i64>, StoreError> {
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
        for (k, &(row, new)) in changes.iter().enumerate() {
            let new = new.map(|l| l.min(1));
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
        match self.undo_target()? {
            Some((target, description)) => self
                .revert(target, Action::Undo, format!("undo: {description}"), who)
                .map(Some),
            None => Ok(None),
        }
    }

    /// Redoes the latest undo; None when there is nothing to redo.
    pub fn redo(&mut self, who: &str) -> Result<Option<StepSummary>, StoreError> {
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

    /// A second connection to this workspace for training runs, so a background thread can
    /// record a run while the UI keeps editing labels (SQLite's WAL lets both write in turn).
    pub fn run_log(&self) -> Result<RunLog, StoreError> {
        RunLog::open(&self.path)
    }
}

/// Training runs, their metrics and predictions: what the training thread writes.
pub struct RunLog {
    conn: Connection,
    path: PathBuf,
}

impl RunLog {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            conn: Workspace::connect(path)?,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Records a training run; returns its id.
    pub fn start_run(
        &mut self,
        model: &str,
        config: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO runs (started, model, config, status) VALUES (?1, ?2, ?3, 'running')",
                params![now_rfc3339(), model, config.to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Appends a per-step or per-epoch metric record (`kind` is "step" or "epoch").
    pub fn record_metric(
        &mut self,
        run: i64,
        kind: &str,
        step: usize,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO run_metrics (run_id, kind, step, value) VALUES (?1, ?2, ?3, ?4)",
                params![run, kind, step as i64, value.to_string()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn finish_run(&mut self, run: i64, status: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET status = ?2 WHERE id = ?1",
                params![run, status],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT id, started, model, config, status FROM runs ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([], |r| {
                Ok(RunRecord {
                    id: r.get(0)?,
                    started: r.get(1)?,
                    model: r.get(2)?,
                    config: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                    status: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Metric records of a run, in insertion order: (kind, step, value).
    pub fn run_metrics(
        &self,
        run: i64,
    ) -> Result<Vec<(String, usize, serde_json::Value)>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT kind, step, value FROM run_metrics WHERE run_id = ?1 ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([run], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, i64>(1)? as usize,
                    serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Stores a probability of class 1 per row for `run` (replacing earlier ones).
    pub fn save_predictions(
        &mut self,
        run: i64,
        p_disaster: &[(usize, f32)],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        {
            let mut q = tx
                .prepare("INSERT OR REPLACE INTO predictions (run_id, row_idx, p_disaster) VALUES (?1, ?2, ?3)")
                .map_err(|e| StoreError::Sqlite { path: self.path.clone(), source: e })?;
            for &(row, p) in p_disaster {
                q.execute(params![run, row as i64, f64::from(p)])
                    .map_err(|e| StoreError::Sqlite {
                        path: self.path.clone(),
                        source: e,
                    })?;
            }
        }
        tx.commit().map_err(|e| StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        })
    }

    /// Probabilities of `run`, one slot for each of the workspace's `rows` rows.
    pub fn predictions(&self, run: i64, rows: usize) -> Result<Vec<Option<f32>>, StoreError> {
        let mut out = vec![None; rows];
        let mut q = self
            .conn
            .prepare("SELECT row_idx, p_disaster FROM predictions WHERE run_id = ?1")
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([run], |r| {
                Ok((r.get::<_, i64>(0)? as usize, r.get::<_, f64>(1)? as f32))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (i, p) = row.map_err(|e| self.err(e))?;
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(p);
            }
        }
        Ok(out)
    }
}

/// Sentence embeddings by (model, text), so the label-quality tools embed each text once.
/// Keyed by a hash of the text rather than by row, so a cache stays right when the CSV changes.
pub struct EmbeddingCache {
    conn: Connection,
    path: PathBuf,
}

/// FNV-1a of `text`: stable across runs and platforms.
pub fn text_key(text: &str) -> i64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) as i64
}

impl EmbeddingCache {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Workspace::connect(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, text_key INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, text_key))",
        )
        .map_err(|source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The cached vector for each text, None where there is none yet.
    pub fn get(&self, model: &str, texts: &[&str]) -> Result<Vec<Option<Vec<f32>>>, StoreError> {
        let mut q = self
            .conn
            .prepare_cached("SELECT vector FROM embeddings WHERE model = ?1 AND text_key = ?2")
            .map_err(|e| self.err(e))?;
        texts
            .iter()
            .map(|t| {
                q.query_row(params![model, text_key(t)], |r| r.get::<_, Vec<u8>>(0))
                    .optional()
                    .map(|blob| {
                        blob.map(|b| {
                            b.chunks_exact(4)
                                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                                .collect()
                        })
                    })
                    .map_err(|e| self.err(e))
            })
            .collect()
    }

    /// Stores vectors for texts, in one transaction.
    pub fn put(&mut self, model: &str, items: &[(&str, &[f32])]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let wrap = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        {
            let mut q = tx
                .prepare_cached("INSERT OR REPLACE INTO embeddings (model, text_key, vector) VALUES (?1, ?2, ?3)")
                .map_err(wrap)?;
            for (text, vector) in items {
                let blob: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                q.execute(params![model, text_key(text), blob])
                    .map_err(wrap)?;
            }
        }
        tx.commit().map_err(wrap)
    }
}

/// Schema 1 to 2: edit_groups' CHECK gains 'review'. SQLite cannot alter a CHECK, so the table
/// is rebuilt (foreign keys off while its rows move), all in one transaction.
fn migrate_1_to_2(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("PRAGMA foreign_keys=OFF;")?;
    let result = conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         {ddl}
         INSERT INTO edit_groups_new SELECT id, action, reverts, description, who, at FROM edit_groups;
         DROP TABLE edit_groups;
         ALTER TABLE edit_groups_new RENAME TO edit_groups;
         CREATE INDEX groups_by_reverts ON edit_groups(reverts);
         UPDATE meta SET value = '2' WHERE key = 'schema_version';
         COMMIT;",
        ddl = EDIT_GROUPS_DDL.replacen("CREATE TABLE edit_groups", "CREATE TABLE edit_groups_new", 1)
    ));
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK;");
    }
    conn.execute_batch("PRAGMA foreign_keys=ON;")?;
    result
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
    use crate::data::dataset::{parse, ImportOptions};

    fn workspace(dir: &Path) -> Workspace {
        let csv = b"id,text,target\n1,a,0\n2,b,1\n3,c,\n4,d,0\n";
        let data = parse(csv, false, &ImportOptions::default(), &mut |_, _| {}).unwrap();
        Workspace::create(&dir.join("ws.sqlite"), Path::new("data.csv"), &data).unwrap()
    }

    fn labels(ws: &Workspace) -> Vec<Option<u8>> {
        ws.rows().iter().map(|r| r.label).collect()
    }

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
    fn a_schema_1_workspace_is_migrated_and_keeps_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = workspace(dir.path());
        ws.set_labels(&[(1, None)], "ana", "before the upgrade")
            .unwrap();
        let path = ws.path().to_path_buf();
        drop(ws);
        // Turn it back into schema 1: the old CHECK, version 1.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys=OFF;
             CREATE TABLE g1 (id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL CHECK (action IN ('edit','undo','redo')),
                 reverts INTEGER REFERENCES edit_groups(id), description TEXT NOT NULL, who TEXT NOT NULL, at TEXT NOT NULL);
             INSERT INTO g1 SELECT * FROM edit_groups;
             DROP TABLE edit_groups;
             ALTER TABLE g1 RENAME TO edit_groups;
             UPDATE meta SET value = '1' WHERE key = 'schema_version';",
        )
        .unwrap();
        drop(conn);
        let mut ws = Workspace::open(&path).unwrap();
        assert_eq!(ws.history().unwrap().len(), 1);
        ws.record_review(&[2], "ana", "kept").unwrap();
        assert_eq!(ws.undo("ana").unwrap().unwrap().rows, vec![1]);
        let fk: i64 = ws
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        drop(ws);
        assert_eq!(Workspace::open(&path).unwrap().history().unwrap().len(), 3);
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

    #[test]
    fn embedding_cache_round_trips_by_text() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        let mut cache = EmbeddingCache::open(ws.path()).unwrap();
        cache
            .put(
                "m",
                &[("flood here", &[0.5, -1.25][..]), ("calm", &[1.0, 2.0][..])],
            )
            .unwrap();
        let got = cache.get("m", &["calm", "unknown", "flood here"]).unwrap();
        assert_eq!(
            got,
            vec![Some(vec![1.0, 2.0]), None, Some(vec![0.5, -1.25])]
        );
        assert_eq!(cache.get("other model", &["calm"]).unwrap(), vec![None]);
        // The workspace still opens with the extra table in it.
        drop(cache);
        assert!(Workspace::open(ws.path()).is_ok());
    }

    #[test]
    fn runs_metrics_and_predictions() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = workspace(dir.path());
        let mut log = ws.run_log().unwrap();
        let run = log
            .start_run("tiny", &serde_json::json!({"epochs": 1}))
            .unwrap();
        log.record_metric(run, "step", 1, &serde_json::json!({"loss": 0.7}))
            .unwrap();
        // The UI edits through its own connection while the run is being logged.
        ws.set_labels(&[(0, None)], "ana", "during the run")
            .unwrap();
        log.record_metric(run, "epoch", 1, &serde_json::json!({"f1": 0.5}))
            .unwrap();
        log.save_predictions(run, &[(0, 0.25), (3, 0.75)]).unwrap();
        log.finish_run(run, "finished").unwrap();
        drop(log);
        let log = ws.run_log().unwrap();
        assert_eq!(log.runs().unwrap()[0].status, "finished");
        assert_eq!(log.run_metrics(run).unwrap().len(), 2);
        assert_eq!(ws.history().unwrap().len(), 1);
        assert_eq!(
            log.predictions(run, 4).unwrap(),
            vec![Some(0.25), None, None, Some(0.75)]
        );
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
