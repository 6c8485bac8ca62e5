//! One annotator's link to a team project that survives the network: labels go to the local
//! outbox first and are sent from there; a lost connection is noticed, retried after a pause,
//! and the outbox drains (each label once) when the server answers again.

use std::path::Path;
use std::time::{Duration, Instant};

use super::outbox::{Outbox, Pending, Refused};
use super::{Result, Target, TeamDb, TeamError};

/// What one flush of the outbox did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flushed {
    /// Labels the server took.
    pub sent: usize,
    /// Labels the server already had (a resend after a lost reply): not applied again.
    pub already_there: usize,
    /// Labels the server refused, with why (kept in the outbox's refused list).
    pub refused: Vec<Refused>,
    /// Labels still waiting.
    pub waiting: usize,
    /// Why the server could not be reached, when it could not.
    pub offline: Option<String>,
}

pub struct TeamSession {
    target: Target,
    db: Option<TeamDb>,
    outbox: Outbox,
    /// No new connection is tried before this (after a failed one).
    retry_at: Option<Instant>,
    retry_pause: Duration,
    offline: Option<String>,
}

impl TeamSession {
    /// The session of `target`'s role with its outbox at `outbox`. Connects now; when the
    /// server cannot be reached the session starts offline (labels still save).
    pub fn open(target: &Target, outbox: &Path) -> Result<Self> {
        let mut s = Self {
            target: target.clone(),
            db: None,
            outbox: Outbox::open(outbox)?,
            retry_at: None,
            retry_pause: Duration::from_millis(500),
            offline: None,
        };
        match s.db() {
            Ok(_) => {}
            Err(e) if e.is_offline() => {}
            Err(e) => return Err(e),
        }
        Ok(s)
    }

    /// How long to wait after a failed connection before the next try.
    pub fn set_retry_pause(&mut self, pause: Duration) {
        self.retry_pause = pause;
    }

    /// Why the server is unreachable, while it is.
    pub fn offline(&self) -> Option<&str> {
        self.offline.as_deref()
    }

    /// The connection, made anew when there is none (not before the retry pause has passed).
    pub fn db(&mut self) -> Result<&mut TeamDb> {
        if self.db.is_none() {
            if let Some(at) = self.retry_at {
                if Instant::now() < at {
                    return Err(TeamError::Offline(
                        self.offline
                            .clone()
                            .unwrap_or_else(|| "retrying soon".into()),
                    ));
                }
            }
            match TeamDb::connect(&self.target) {
                Ok(db) => {
                    self.db = Some(db);
                    self.retry_at = None;
                    self.offline = None;
                }
                Err(e) => {
                    if e.is_offline() {
                        self.went_offline(&e);
                    }
                    return Err(e);
                }
            }
        }
        Ok(self.db.as_mut().expect("connected above"))
    }

    /// Runs `work` on the connection; a lost connection is dropped (and retried later).
    pub fn call<T>(&mut self, work: impl FnOnce(&mut TeamDb) -> Result<T>) -> Result<T> {
        let result = work(self.db()?);
        if let Err(e) = &result {
            if e.is_offline() {
                self.went_offline(e);
            }
        }
        result
    }

    fn went_offline(&mut self, e: &TeamError) {
        self.db = None;
        self.offline = Some(e.to_string());
        self.retry_at = Some(Instant::now() + self.retry_pause);
    }

    /// Saves a label (None: takes it back) in the outbox: once this returns, it is kept.
    pub fn save(&mut self, row: i64, label: Option<u8>) -> Result<String> {
        self.outbox.push(row, label)
    }

    /// Labels waiting in the outbox.
    pub fn waiting(&self) -> Result<usize> {
        self.outbox.waiting()
    }

    /// Labels the server refused, kept with why.
    pub fn refused(&self) -> Result<Vec<Refused>> {
        self.outbox.refused()
    }

    /// Sends what waits in the outbox, oldest first, until it is empty or the server is gone.
    pub fn flush(&mut self) -> Result<Flushed> {
        let mut done = Flushed::default();
        let mut changed = Vec::new();
        'send: loop {
            let batch = self.outbox.pending(64)?;
            if batch.is_empty() {
                break;
            }
            for p in &batch {
                match self.send(p) {
                    Ok(true) => {
                        done.sent += 1;
                        changed.push(p.row);
                    }
                    Ok(false) => done.already_there += 1,
                    Err(e) if e.is_offline() => {
                        done.offline = Some(e.to_string());
                        break 'send;
                    }
                    Err(
                        e @ (TeamError::Refused(_) | TeamError::Denied(_) | TeamError::BadInput(_)),
                    ) => {
                        let reason = e.to_string();
                        self.outbox.refuse(p, &reason)?;
                        done.refused.push(Refused {
                            row: p.row,
                            label: p.label,
                            reason,
                        });
                        continue;
                    }
                    // Anything else (the server busy, a conflict) is tried again next flush.
                    Err(e) => return Err(e),
                }
                self.outbox.sent(p)?;
            }
        }
        if !changed.is_empty() {
            // Only live views wait on this: a failure here costs no label.
            let _ = self.call(|db| db.changed(&changed));
        }
        done.waiting = self.outbox.waiting()?;
        Ok(done)
    }

    fn send(&mut self, p: &Pending) -> Result<bool> {
        let (row, label, op) = (p.row, p.label, p.op.clone());
        self.call(|db| db.apply(row, label, &op))
    }
}
