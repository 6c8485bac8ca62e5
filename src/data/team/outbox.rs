//! The local outbox: every label an annotator makes is committed here first (SQLite, on this
//! machine) and leaves only once the server has it. A label shown as saved is in this file, so
//! neither a dropped network nor a killed app loses it; each carries the op id the server
//! dedupes by, so a resend after a lost reply is not counted twice.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

use super::{new_op_id, Result, Target, TeamError};

/// A label waiting for the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub seq: i64,
    pub op: String,
    pub row: i64,
    /// None: the label is taken back.
    pub label: Option<u8>,
}

/// A label the server would not take (the row was settled or full meanwhile), kept to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub row: i64,
    pub label: Option<u8>,
    pub reason: String,
}

pub struct Outbox {
    conn: Connection,
}

impl From<rusqlite::Error> for TeamError {
    fn from(e: rusqlite::Error) -> Self {
        TeamError::Outbox(e.to_string())
    }
}

impl Outbox {
    /// The outbox of one annotator on one project, under tweetlab's data folder: named by a
    /// hash of the server, database and role (never the password).
    pub fn path_for(target: &Target) -> PathBuf {
        let digest = Sha256::digest(target.to_string().as_bytes());
        let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        crate::data::store::data_root()
            .join("team")
            .join(format!("outbox-{name}.sqlite"))
    }

    /// Opens (or makes) the outbox at `path`; the window and its sender each open their own.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| TeamError::Outbox(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS outbox (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 op_id TEXT NOT NULL UNIQUE,
                 row_id INTEGER NOT NULL,
                 label INTEGER,
                 made_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS refused (
                 op_id TEXT PRIMARY KEY,
                 row_id INTEGER NOT NULL,
                 label INTEGER,
                 reason TEXT NOT NULL,
                 at TEXT NOT NULL);",
        )?;
        Ok(Self { conn })
    }

    /// Commits a label (None: taken back) and returns its op id.
    pub fn push(&mut self, row: i64, label: Option<u8>) -> Result<String> {
        Ok(self.push_all(&[(row, label)])?.remove(0))
    }

    /// Commits several labels in one transaction (a bulk relabel is one commit, not one per
    /// row) and returns their op ids, in order.
    pub fn push_all(&mut self, labels: &[(i64, Option<u8>)]) -> Result<Vec<String>> {
        let made_at = crate::data::store::now_rfc3339();
        let tx = self.conn.transaction()?;
        let mut ops = Vec::with_capacity(labels.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO outbox (op_id, row_id, label, made_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (row, label) in labels {
                let op = new_op_id();
                insert.execute(params![op, row, label, made_at])?;
                ops.push(op);
            }
        }
        tx.commit()?;
        Ok(ops)
    }

    /// The oldest `limit` waiting labels, in the order they were made.
    pub fn pending(&self, limit: usize) -> Result<Vec<Pending>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, op_id, row_id, label FROM outbox ORDER BY seq LIMIT ?1")?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(Pending {
                seq: r.get(0)?,
                op: r.get(1)?,
                row: r.get(2)?,
                label: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The server has `p`: it leaves the outbox.
    pub fn sent(&mut self, p: &Pending) -> Result<()> {
        self.conn
            .execute("DELETE FROM outbox WHERE seq = ?1", [p.seq])?;
        Ok(())
    }

    /// The server refused `p`: it moves to the refused list, with why.
    pub fn refuse(&mut self, p: &Pending, reason: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO refused (op_id, row_id, label, reason, at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                p.op,
                p.row,
                p.label,
                reason,
                crate::data::store::now_rfc3339()
            ],
        )?;
        tx.execute("DELETE FROM outbox WHERE seq = ?1", [p.seq])?;
        tx.commit()?;
        Ok(())
    }

    /// Labels waiting for the server.
    pub fn waiting(&self) -> Result<usize> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        Ok(n as usize)
    }

    pub fn refused(&self) -> Result<Vec<Refused>> {
        let mut stmt = self
            .conn
            .prepare("SELECT row_id, label, reason FROM refused ORDER BY at, row_id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Refused {
                row: r.get(0)?,
                label: r.get(1)?,
                reason: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
