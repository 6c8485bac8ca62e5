//! Background work: one progress type, one report per job, and threads whose panics become
//! the job's failure, so that nobody waits for a job that died.

use std::panic::{catch_unwind, AssertUnwindSafe};

pub use crate::engine::train::panic_message;

/// How far a job is: `what` it is doing, and (done, total) when it can count (total 0: it can't).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub what: String,
    pub done: usize,
    pub total: usize,
}

/// One job's report: how far it is, its result, or why it failed.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent<T> {
    Progress(Progress),
    Done(T),
    Failed(String),
}

impl<T> JobEvent<T> {
    /// The end of a job that returned `result`.
    pub fn finished(result: anyhow::Result<T>) -> Self {
        match result {
            Ok(v) => Self::Done(v),
            Err(e) => Self::Failed(format!("{e:#}")),
        }
    }
}

/// Runs `work` here, turning a panic into `Err("the NAME job stopped: …")`.
pub fn guarded<T>(name: &str, work: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(work))
        .map_err(|panic| format!("the {name} job stopped: {}", panic_message(&*panic)))
}

/// Runs `work` on a thread named `tweetlab-NAME` and hands its outcome to `report`, a panic as
/// `Err` (see [`guarded`]): every job started this way reports exactly once.
pub fn spawn<T: 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
    report: impl FnOnce(Result<T, String>) + Send + 'static,
) {
    let name = name.to_string();
    std::thread::Builder::new()
        .name(format!("tweetlab-{name}"))
        .spawn(move || report(guarded(&name, work)))
        .expect("can spawn a thread");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_job_reports_its_message_once() {
        let (tx, rx) = crossbeam_channel::unbounded();
        spawn(
            "sums",
            || -> u32 { panic!("index out of range") },
            move |r| tx.send(r).unwrap(),
        );
        let got = rx.recv().unwrap();
        assert_eq!(
            got,
            Err("the sums job stopped: index out of range".to_string())
        );
        assert!(rx.recv().is_err(), "one report, then the sender is gone");
    }

    #[test]
    fn a_job_that_returns_reports_its_value() {
        let (tx, rx) = crossbeam_channel::unbounded();
        spawn("sums", || 2 + 2, move |r| tx.send(r).unwrap());
        assert_eq!(rx.recv().unwrap(), Ok(4));
    }
}
