//! The window's background jobs by kind, and each one's state: the one registry that `busy()`,
//! the status bar and "a new file is open" walk. Panels read it; nothing here knows the window.

use super::protocol::{JobEvent, Progress};

/// A background job as its owner sees it: idle, or running with the progress it last reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobState {
    running: bool,
    progress: Option<Progress>,
}

impl JobState {
    pub fn start(&mut self) {
        self.running = true;
        self.progress = None;
    }

    pub fn is_running(&self) -> bool {
        self.running
    }

    pub fn progress(&self) -> Option<&Progress> {
        self.progress.as_ref()
    }

    /// Takes one of this job's events: progress is kept; the end (result or failure) stops the
    /// job and is returned.
    pub fn on_event<T>(&mut self, event: JobEvent<T>) -> Option<Result<T, String>> {
        match event {
            JobEvent::Progress(p) => {
                if self.running {
                    self.progress = Some(p);
                }
                None
            }
            JobEvent::Done(result) => {
                *self = Self::default();
                Some(Ok(result))
            }
            JobEvent::Failed(message) => {
                *self = Self::default();
                Some(Err(message))
            }
        }
    }
}

/// The window's background jobs other than training (which owns a cancellable run) and
/// explanations (a queue of one request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Predict,
    Export,
    Save,
    Suspects,
    Rank,
    Simulate,
    Baseline,
}

impl JobKind {
    /// In the order the status bar names a running one (the most visible first).
    pub const ALL: [JobKind; 7] = [
        JobKind::Predict,
        JobKind::Export,
        JobKind::Save,
        JobKind::Suspects,
        JobKind::Rank,
        JobKind::Simulate,
        JobKind::Baseline,
    ];

    /// What the status bar says while it runs.
    pub fn doing(self) -> &'static str {
        match self {
            JobKind::Predict => "predicting",
            JobKind::Export => "exporting",
            JobKind::Save => "saving",
            JobKind::Suspects => "finding suspect labels",
            JobKind::Rank => "ranking what to label next",
            JobKind::Simulate => "simulating a learning curve",
            JobKind::Baseline => "computing the fast baseline",
        }
    }

    /// Whether its result belongs to the open file (and is dropped when another opens). An
    /// export writes a file of its own and finishes whatever is open.
    pub fn of_open_file(self) -> bool {
        self != JobKind::Export
    }
}

/// Every job's state, by kind: the one list `busy()` and "a new file is open" walk.
#[derive(Debug, Clone, Default)]
pub struct Jobs([JobState; JobKind::ALL.len()]);

impl Jobs {
    pub fn get(&self, kind: JobKind) -> &JobState {
        &self.0[kind as usize]
    }

    pub fn is_running(&self, kind: JobKind) -> bool {
        self.get(kind).is_running()
    }

    pub fn start(&mut self, kind: JobKind) {
        self.0[kind as usize].start();
    }

    /// Takes an event of the `kind` job: see [`JobState::on_event`].
    pub fn on_event<T>(&mut self, kind: JobKind, event: JobEvent<T>) -> Option<Result<T, String>> {
        self.0[kind as usize].on_event(event)
    }

    /// What the first running job is doing.
    pub fn busy(&self) -> Option<&'static str> {
        JobKind::ALL
            .into_iter()
            .find(|&k| self.is_running(k))
            .map(JobKind::doing)
    }

    /// A new file is open: no job of the old one may report into it.
    pub fn forget_open_file(&mut self) {
        for kind in JobKind::ALL.into_iter().filter(|k| k.of_open_file()) {
            self.0[kind as usize] = JobState::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_stops_its_jobs_and_lets_an_export_finish() {
        let mut jobs = Jobs::default();
        assert_eq!(jobs.busy(), None);
        for kind in JobKind::ALL {
            jobs.start(kind);
        }
        assert_eq!(jobs.busy(), Some("predicting"));
        jobs.forget_open_file();
        assert_eq!(jobs.busy(), Some("exporting"));
        for kind in JobKind::ALL {
            assert_eq!(jobs.is_running(kind), kind == JobKind::Export, "{kind:?}");
        }
        let end = jobs.on_event(JobKind::Export, JobEvent::Done(()));
        assert_eq!(end, Some(Ok(())));
        assert_eq!(jobs.busy(), None);
    }
}
