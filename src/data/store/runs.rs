//! Training runs inside a workspace file: each run's settings, its per-step and per-epoch
//! records, its outcome and its predictions. The records are typed by the caller (the engine's
//! `train::record`); the store keeps them as JSON so that it needs no engine types.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{now_rfc3339, StoreError, Workspace};

/// How a run ended, or that it has not yet. Stored as the lowercase word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Finished,
    Cancelled,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    /// Unknown words read as `Failed`: a run that did not finish cleanly.
    fn parse(s: &str) -> Self {
        match s {
            "running" => Self::Running,
            "finished" => Self::Finished,
            "cancelled" => Self::Cancelled,
            _ => Self::Failed,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which series a metric record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// One record per training step, keyed by the step.
    Step,
    /// One record per epoch, keyed by the epoch.
    Epoch,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Step => "step",
            Self::Epoch => "epoch",
        }
    }
}

/// A training run as the store keeps it, with its settings read as `S`.
#[derive(Debug, Clone)]
pub struct RunRow<S> {
    pub id: i64,
    pub started: String,
    pub model: String,
    pub status: RunStatus,
    /// None when the stored settings do not read as `S`.
    pub settings: Option<S>,
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

    /// Records a training run of `model` with its `settings`; returns its id.
    pub fn start_run(&mut self, model: &str, settings: &impl Serialize) -> Result<i64, StoreError> {
        let settings = serde_json::to_string(settings).expect("run settings serialise");
        self.conn
            .execute(
                "INSERT INTO runs (started, model, config, status) VALUES (?1, ?2, ?3, ?4)",
                params![now_rfc3339(), model, settings, RunStatus::Running.as_str()],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Appends `record` to the run's `kind` series at `step` (the step or the epoch).
    pub fn record(
        &mut self,
        run: i64,
        kind: MetricKind,
        step: usize,
        record: &impl Serialize,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_string(record).expect("run records serialise");
        self.conn
            .execute(
                "INSERT INTO run_metrics (run_id, kind, step, value) VALUES (?1, ?2, ?3, ?4)",
                params![run, kind.as_str(), step as i64, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn finish_run(&mut self, run: i64, status: RunStatus) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET status = ?2 WHERE id = ?1",
                params![run, status.as_str()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn runs<S: DeserializeOwned>(&self) -> Result<Vec<RunRow<S>>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT id, started, model, config, status FROM runs ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([], |r| {
                Ok(RunRow {
                    id: r.get(0)?,
                    started: r.get(1)?,
                    model: r.get(2)?,
                    settings: serde_json::from_str(&r.get::<_, String>(3)?).ok(),
                    status: RunStatus::parse(&r.get::<_, String>(4)?),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The run's `kind` series in the order recorded: (step or epoch, record). Records that do
    /// not read as `T` are left out.
    pub fn series<T: DeserializeOwned>(
        &self,
        run: i64,
        kind: MetricKind,
    ) -> Result<Vec<(usize, T)>, StoreError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT step, value FROM run_metrics WHERE run_id = ?1 AND kind = ?2 ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map(params![run, kind.as_str()], |r| {
                Ok((r.get::<_, i64>(0)? as usize, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (step, value) = row.map_err(|e| self.err(e))?;
            if let Ok(record) = serde_json::from_str(&value) {
                out.push((step, record));
            }
        }
        Ok(out)
    }

    /// Stores every class's probability per row for `run` (replacing earlier ones).
    pub fn save_predictions(
        &mut self,
        run: i64,
        probabilities: &[(usize, Vec<f32>)],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        {
            // p_disaster keeps class 1's probability, as workspaces before named classes held.
            let mut q = tx
                .prepare("INSERT OR REPLACE INTO predictions (run_id, row_idx, p_disaster, probabilities) VALUES (?1, ?2, ?3, ?4)")
                .map_err(|e| StoreError::Sqlite { path: self.path.clone(), source: e })?;
            for (row, p) in probabilities {
                let json = serde_json::to_string(p).expect("floats serialise");
                let p1 = f64::from(p.get(1).copied().unwrap_or(0.0));
                q.execute(params![run, *row as i64, p1, json])
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

    /// Every class's probabilities from `run`, one slot for each of the workspace's `rows` rows.
    pub fn predictions(&self, run: i64, rows: usize) -> Result<Vec<Option<Vec<f32>>>, StoreError> {
        let mut out = vec![None; rows];
        let mut q = self
            .conn
            .prepare("SELECT row_idx, p_disaster, probabilities FROM predictions WHERE run_id = ?1")
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([run], |r| {
                Ok((
                    r.get::<_, i64>(0)? as usize,
                    r.get::<_, f64>(1)? as f32,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (i, p1, json) = row.map_err(|e| self.err(e))?;
            let p = json
                .and_then(|j| serde_json::from_str::<Vec<f32>>(&j).ok())
                .unwrap_or_else(|| vec![1.0 - p1, p1]);
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(p);
            }
        }
        Ok(out)
    }
}
