//! Opening the workspace of a CSV: import it the first time, rebuild a workspace that a crash
//! left half made, and re-import a CSV that changed since it was imported, carrying the
//! analyst's label edits over by id and text (the old workspace is kept as a backup).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{absolute, now_rfc3339, Fingerprint, StoreError, Workspace};
use crate::data::dataset::{DataError, Dataset};

/// How the workspace came to be open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// The CSV was imported now.
    Imported,
    /// The existing workspace, the CSV unchanged.
    Reopened,
    /// The CSV could not be read now; the workspace opened as it was.
    SourceMissing(String),
    /// A half-made workspace (left by a crash during an import) was moved to `broken` and the
    /// CSV imported again.
    Rebuilt { broken: PathBuf },
    /// The CSV changed since it was imported: imported again with the edits carried over.
    Reimported(Carried),
}

/// What a re-import carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    /// Label edits applied to the new rows.
    pub carried: usize,
    /// Ids of edited rows whose id and text no longer appear together in the file.
    pub unmatched: Vec<String>,
    /// The workspace as it was before, kept whole (history, runs, predictions).
    pub backup: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Import(#[from] DataError),
}

impl Workspace {
    /// Opens the workspace of `csv` at `db`, importing `csv` with `import` when there is none
    /// (or only a half-made one), and again when `csv` changed since it was imported.
    pub fn open_or_import(
        db: &Path,
        csv: &Path,
        import: impl Fn() -> Result<Dataset, DataError>,
    ) -> Result<(Self, Arrival), OpenError> {
        if !db.exists() {
            return Ok((Self::create(db, csv, &import()?)?, Arrival::Imported));
        }
        if is_half_made(db) {
            let broken = aside(db, "broken")?;
            let ws = Self::create(db, csv, &import()?)?;
            return Ok((ws, Arrival::Rebuilt { broken }));
        }
        let mut ws = Self::open(db)?;
        ws.set_source(csv)?;
        let unchanged = match ws.fingerprint() {
            Some(fp) => match fp.matches(csv) {
                Ok(same) => same,
                Err(e) => return Ok((ws, Arrival::SourceMissing(e.to_string()))),
            },
            // A workspace from before fingerprints: the rows decide, and the file's fingerprint
            // is kept from now on.
            None => {
                let data = import()?;
                let same = data.rows.len() == ws.rows().len()
                    && data
                        .rows
                        .iter()
                        .zip(ws.rows())
                        .all(|(a, b)| a.id == b.id && a.text == b.text);
                if same {
                    if let Ok(fp) = Fingerprint::of(csv) {
                        ws.set_fingerprint(fp)?;
                    }
                }
                same
            }
        };
        if unchanged {
            return Ok((ws, Arrival::Reopened));
        }
        let data = import()?;
        let (ws, carried) = reimport(ws, db, csv, &data)?;
        Ok((ws, Arrival::Reimported(carried)))
    }
}

impl Workspace {
    /// Imports `csv` again with a new import choice (`data`, read with it): a new workspace at
    /// `db`, or, when there is one, a fresh one with the old one's label edits carried over and
    /// the old one kept as a backup (as for a changed file).
    pub fn import_again(
        db: &Path,
        csv: &Path,
        data: &Dataset,
    ) -> Result<(Self, Arrival), StoreError> {
        if !db.exists() || is_half_made(db) {
            if db.exists() {
                aside(db, "broken")?;
            }
            return Ok((Self::create(db, csv, data)?, Arrival::Imported));
        }
        let ws = Self::open(db)?;
        let (ws, carried) = reimport(ws, db, csv, data)?;
        Ok((ws, Arrival::Reimported(carried)))
    }
}

/// Imports `data` into a new workspace at `db`, the old one `ws` moved aside, and applies the
/// old workspace's label edits to rows with the same id and text, as one undo step.
fn reimport(
    ws: Workspace,
    db: &Path,
    csv: &Path,
    data: &Dataset,
) -> Result<(Workspace, Carried), StoreError> {
    let edits: Vec<(String, String, Option<u8>)> = ws
        .rows()
        .iter()
        .zip(&ws.original)
        .filter(|(row, original)| row.label != **original)
        .map(|(row, _)| (row.id.clone(), row.text.clone(), row.label))
        .collect();
    drop(ws);
    let backup = aside(db, "before-reimport")?;
    let mut new = match Workspace::create(db, &absolute(csv), data) {
        Ok(ws) => ws,
        Err(e) => {
            // The old workspace goes back where it was: a failed re-import changes nothing.
            let _ = std::fs::rename(&backup, db);
            return Err(e);
        }
    };
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, row) in new.rows().iter().enumerate() {
        by_id.entry(row.id.as_str()).or_default().push(i);
    }
    let mut changes = Vec::new();
    let mut unmatched = Vec::new();
    for (id, text, label) in &edits {
        let found = by_id
            .get(id.as_str())
            .and_then(|rows| rows.iter().find(|&&i| new.rows()[i].text == *text));
        match found {
            Some(&i) => changes.push((i, *label)),
            None => unmatched.push(id.clone()),
        }
    }
    // Edits the new file already holds (a Save the workspace did not hear of) are no edits.
    changes.retain(|&(i, label)| new.rows()[i].label != label);
    let carried = changes.len();
    if !changes.is_empty() {
        new.set_labels(
            &changes,
            "gui",
            &format!("{carried} edits carried over: the file changed since it was imported"),
        )?;
    }
    Ok((
        new,
        Carried {
            carried,
            unmatched,
            backup,
        },
    ))
}

/// A workspace file a crash left before its first commit: empty, or without tweetlab's tables.
fn is_half_made(db: &Path) -> bool {
    if std::fs::metadata(db).is_ok_and(|m| m.len() == 0) {
        return true;
    }
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return false;
    };
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n == 0)
}

/// Moves `db` (and its WAL files) to `NAME.WHY-TIME.sqlite` beside it; returns the new path.
fn aside(db: &Path, why: &str) -> Result<PathBuf, StoreError> {
    let stem = db
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let at = now_rfc3339().replace(':', "-");
    let to = db.with_file_name(format!("{stem}.{why}-{at}.sqlite"));
    std::fs::rename(db, &to).map_err(|e| StoreError::Invalid {
        path: db.to_path_buf(),
        message: format!("cannot move it aside to {}: {e}", to.display()),
    })?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", db.display()));
        if side.exists() {
            let _ = std::fs::rename(&side, format!("{}{suffix}", to.display()));
        }
    }
    Ok(to)
}
