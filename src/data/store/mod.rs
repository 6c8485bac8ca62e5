//! The workspace: one SQLite file per imported CSV holding the rows, their current labels, the
//! append-only history of every label edit, training runs with their metrics, and predictions.
//!
//! Every edit is committed before the call returns (WAL, synchronous=FULL): once the UI shows an
//! edit as done, killing the process loses nothing. Undo and redo are derived from the history
//! itself, so they survive a restart. The workspace never writes the source CSV (Save does, in
//! `data::save`).
//!
//! `history` holds the edit history and undo, `runs` the training runs, `embeddings` the
//! embedding cache; this file the rows, their labels and opening or creating the file.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};

use super::dataset::{Dataset, ImportOptions, Layout, Problem, Tweet};

mod arrival;
mod embeddings;
mod history;
mod runs;

pub use arrival::{Arrival, Carried, OpenError};
pub use embeddings::{text_key, EmbeddingCache};
pub use history::{Action, EditRecord, StepSummary};
pub use runs::{MetricKind, RunLog, RunRow, RunStatus};

/// 2: edit groups may be reviews (a label looked at and kept). 3: predictions hold every
/// class's probability. Older ones are migrated on open.
const SCHEMA_VERSION: i64 = 3;

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

pub struct Workspace {
    conn: Connection,
    path: PathBuf,
    source: PathBuf,
    layout: Layout,
    rows: Vec<Tweet>,
    original: Vec<Option<u8>>,
    /// The rows the import skipped or changed, with their lines (kept for reopening).
    problems: Vec<Problem>,
    /// The source file as it was imported (or last saved); None for older workspaces.
    fingerprint: Option<Fingerprint>,
    /// SQLite's `data_version` when `rows` last matched the file.
    data_version: i64,
}

/// What a source file looked like: size, modification time and content hash. A file whose size
/// and time still match is taken as unchanged; otherwise its hash decides (a `touch` is not a
/// change, a same-size edit is).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub modified_ns: u128,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

impl Fingerprint {
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        Ok(Self::of_bytes(&bytes, &std::fs::metadata(path)?))
    }

    pub fn of_bytes(bytes: &[u8], meta: &std::fs::Metadata) -> Self {
        use sha2::Digest;
        Self {
            size: bytes.len() as u64,
            modified_ns: modified_ns(meta),
            sha256: format!("{:x}", sha2::Sha256::digest(bytes)),
        }
    }

    /// Whether the file at `path` still holds what this fingerprint describes.
    pub fn matches(&self, path: &Path) -> std::io::Result<bool> {
        let meta = std::fs::metadata(path)?;
        if meta.len() != self.size {
            return Ok(false);
        }
        if modified_ns(&meta) == self.modified_ns {
            return Ok(true);
        }
        Ok(Self::of(path)?.sha256 == self.sha256)
    }
}

fn modified_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// `path` made absolute, symbolic links resolved where it exists: a workspace names its source
/// the same way whatever folder tweetlab was started from.
pub fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Where tweetlab keeps its files for this user: `$TWEETLAB_DATA_DIR`, else the user's data
/// folder (`~/.local/share/tweetlab`).
pub fn data_root() -> PathBuf {
    std::env::var_os("TWEETLAB_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::data::user_dirs::tweetlab_dir(dirs::data_dir()))
}

/// Changes whenever another connection commits to the database.
fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
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
    v.map(|x| x.clamp(0, crate::data::labels::MAX_CLASSES as i64 - 1) as u8)
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
        data_root()
            .join("workspaces")
            .join(format!("{stem}-{hash:016x}.sqlite"))
    }

    /// Creates a new workspace at `path` holding `data` (imported from `source`). It is built
    /// under a temporary name next to `path` and renamed into place once complete, so a crash or
    /// a full disk during the import never leaves a half-made workspace at `path`.
    pub fn create(path: &Path, source: &Path, data: &Dataset) -> Result<Self, StoreError> {
        let invalid = |message: String| StoreError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if path.exists() {
            return Err(invalid("already exists; open it instead".into()));
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| invalid(e.to_string()))?;
        let source = absolute(source);
        let fingerprint = Fingerprint::of(&source).ok();
        let part = tempfile::Builder::new()
            .prefix(".tweetlab-import-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(|e| invalid(format!("cannot create a file here: {e}")))?;
        {
            let mut conn = Connection::open(part.path()).map_err(|source| StoreError::Sqlite {
                path: path.to_path_buf(),
                source,
            })?;
            Self::fill(&mut conn, path, &source, fingerprint.as_ref(), data)?;
        }
        part.as_file()
            .sync_all()
            .map_err(|e| invalid(e.to_string()))?;
        part.persist_noclobber(path).map_err(|e| {
            invalid(format!(
                "cannot move the new workspace into place: {}",
                e.error
            ))
        })?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        let conn = Self::connect(path)?;
        let data_version = data_version(&conn).map_err(|source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            source,
            layout: data.layout.clone(),
            original: data.rows.iter().map(|r| r.label).collect(),
            rows: data.rows.clone(),
            problems: data.problems.clone(),
            fingerprint,
            data_version,
        })
    }

    /// Writes the schema and `data` into a new database, in one transaction.
    fn fill(
        conn: &mut Connection,
        path: &Path,
        source: &Path,
        fingerprint: Option<&Fingerprint>,
        data: &Dataset,
    ) -> Result<(), StoreError> {
        let wrap = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(wrap)?;
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
                 p_disaster REAL NOT NULL, probabilities TEXT, PRIMARY KEY (run_id, row_idx));"
        ))
        .map_err(wrap)?;
        let layout = serde_json::to_string(&data.layout).expect("layout serialises");
        let problems = serde_json::to_string(&data.problems).expect("problems serialise");
        let fingerprint = serde_json::to_string(&fingerprint).expect("fingerprint serialises");
        for (k, v) in [
            ("schema_version", SCHEMA_VERSION.to_string()),
            ("source", source.display().to_string()),
            ("layout", layout),
            ("created", now_rfc3339()),
            ("problems", problems),
            ("fingerprint", fingerprint),
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
        tx.commit().map_err(wrap)
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
        let data_version = data_version(&conn).map_err(wrap)?;
        let meta = |key: &str| -> Result<String, StoreError> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .map_err(wrap)
        };
        let mut version: i64 = meta("schema_version")?.parse().unwrap_or(0);
        if version == 1 {
            migrate_1_to_2(&conn).map_err(wrap)?;
            version = 2;
        }
        if version == 2 {
            migrate_2_to_3(&conn).map_err(wrap)?;
            version = 3;
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
        // Workspaces made before these were recorded have neither.
        let optional = |key: &str| -> Option<String> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .ok()
        };
        let problems = optional("problems")
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default();
        let fingerprint = optional("fingerprint").and_then(|f| serde_json::from_str(&f).ok());
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
            problems,
            fingerprint,
            data_version,
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

    /// Problem rows the import reported (also after reopening).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The source as imported or last saved; None for a workspace made before this was kept.
    /// The import choice the analyst made for this file (None: detected columns).
    pub fn import_options(&self) -> Option<ImportOptions> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'import'", [], |r| {
                r.get::<_, String>(0)
            })
            .ok()
            .and_then(|v| serde_json::from_str(&v).ok())
    }

    /// Keeps the import choice, so that a re-import of the changed file reads it the same way.
    pub fn set_import_options(&mut self, options: &ImportOptions) -> Result<(), StoreError> {
        self.set_meta(
            "import",
            &serde_json::to_string(options).expect("options serialise"),
        )
    }

    /// The import choice kept in the workspace file at `db`, read without opening it for
    /// writing (None when there is none, or no such workspace).
    pub fn stored_import_options(db: &Path) -> Option<ImportOptions> {
        let conn =
            Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
        conn.query_row("SELECT value FROM meta WHERE key = 'import'", [], |r| {
            r.get::<_, String>(0)
        })
        .ok()
        .and_then(|v| serde_json::from_str(&v).ok())
    }

    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.fingerprint.as_ref()
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records that the source now holds what `fingerprint` describes (after a Save).
    pub fn set_fingerprint(&mut self, fingerprint: Fingerprint) -> Result<(), StoreError> {
        self.set_meta(
            "fingerprint",
            &serde_json::to_string(&fingerprint).expect("fingerprint serialises"),
        )?;
        self.fingerprint = Some(fingerprint);
        Ok(())
    }

    /// Records in the workspace file `db` that its source now holds what `fingerprint`
    /// describes: called by Save's own thread right after writing, so the record holds even if
    /// the window closes before it hears of the Save.
    pub fn store_fingerprint(db: &Path, fingerprint: &Fingerprint) -> Result<(), StoreError> {
        let conn = Self::connect(db)?;
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('fingerprint', ?1)",
            params![serde_json::to_string(fingerprint).expect("fingerprint serialises")],
        )
        .map(|_| ())
        .map_err(|source| StoreError::Sqlite {
            path: db.to_path_buf(),
            source,
        })
    }

    /// Takes up a fingerprint Save's own thread already stored (`store_fingerprint`).
    pub fn note_saved(&mut self, fingerprint: Fingerprint) {
        self.fingerprint = Some(fingerprint);
    }

    /// Names the source by its absolute path (older workspaces kept it as typed).
    pub fn set_source(&mut self, source: &Path) -> Result<(), StoreError> {
        let source = absolute(source);
        if source != self.source {
            self.set_meta("source", &source.display().to_string())?;
            self.source = source;
        }
        Ok(())
    }

    /// Follows what other connections (another window, a CLI command) committed since this one
    /// last looked: when SQLite's `data_version` moved, the labels are read again. Every edit
    /// calls this first, so none is dropped as a no-op or recorded with a stale `old`; the
    /// window calls it each frame. Returns whether any label changed.
    pub fn refresh(&mut self) -> Result<bool, StoreError> {
        let version = data_version(&self.conn).map_err(|e| self.err(e))?;
        if version == self.data_version {
            return Ok(false);
        }
        let mut changed = false;
        {
            let mut q = self
                .conn
                .prepare_cached("SELECT idx, label FROM rows")
                .map_err(|e| self.err(e))?;
            let labels = q
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))
                .map_err(|e| self.err(e))?;
            for row in labels {
                let (idx, label) = row.map_err(|e| self.err(e))?;
                if let Some(t) = usize::try_from(idx).ok().and_then(|i| self.rows.get_mut(i)) {
                    let label = label_from_sql(label);
                    changed |= t.label != label;
                    t.label = label;
                }
            }
        }
        self.data_version = version;
        Ok(changed)
    }

    /// A second connection to this workspace for training runs, so a background thread can
    /// record a run while the UI keeps editing labels (SQLite's WAL lets both write in turn).
    pub fn run_log(&self) -> Result<RunLog, StoreError> {
        RunLog::open(&self.path)
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

/// Schema 2 to 3: predictions gain every class's probability (class 1's stays in p_disaster,
/// which is what a schema 2 row is read as).
fn migrate_2_to_3(conn: &Connection) -> rusqlite::Result<()> {
    let result = conn.execute_batch(
        "BEGIN IMMEDIATE;
         ALTER TABLE predictions ADD COLUMN probabilities TEXT;
         UPDATE meta SET value = '3' WHERE key = 'schema_version';
         COMMIT;",
    );
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK;");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::{parse, ImportOptions};

    pub(super) fn workspace(dir: &Path) -> Workspace {
        let csv = b"id,text,target\n1,a,0\n2,b,1\n3,c,\n4,d,0\n";
        let data = parse(csv, false, &ImportOptions::default(), &mut |_, _| {}).unwrap();
        Workspace::create(&dir.join("ws.sqlite"), Path::new("data.csv"), &data).unwrap()
    }

    pub(super) fn labels(ws: &Workspace) -> Vec<Option<u8>> {
        ws.rows().iter().map(|r| r.label).collect()
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
             ALTER TABLE predictions DROP COLUMN probabilities;
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
    fn schema_2_predictions_read_as_two_classes_and_new_ones_keep_every_class() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        let path = ws.path().to_path_buf();
        let mut log = ws.run_log().unwrap();
        let run = log.start_run("tiny", &serde_json::json!({})).unwrap();
        drop((ws, log));
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE predictions DROP COLUMN probabilities;
             UPDATE meta SET value = '2' WHERE key = 'schema_version';",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO predictions (run_id, row_idx, p_disaster) VALUES (?1, 0, 0.25)",
            [run],
        )
        .unwrap();
        drop(conn);
        let ws = Workspace::open(&path).unwrap();
        let mut log = ws.run_log().unwrap();
        let p = log.predictions(run, 2).unwrap();
        assert_eq!(p, vec![Some(vec![0.75, 0.25]), None]);
        log.save_predictions(run, &[(1, vec![0.1, 0.2, 0.7])])
            .unwrap();
        assert_eq!(
            log.predictions(run, 2).unwrap()[1],
            Some(vec![0.1, 0.2, 0.7])
        );
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
