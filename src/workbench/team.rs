//! A team project as the window uses it: a worker thread that owns the annotator's session
//! (connection and outbox sender), keeps their claims alive, sends what waits in the outbox,
//! settles rows for reviewers, and reports the team's progress, live through LISTEN/NOTIFY.
//!
//! The rows come to the window as an ordinary workspace: the worker writes a snapshot of the
//! project (tweetlab's own CSV under its data folder, never the analyst's file) with the
//! annotator's labels, which opens like any CSV, so the table, keys, undo and detail panel work
//! as in solo mode. The workspace row at index i is the project's row i.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};

use super::jobs::guarded;
use crate::data::atomic::write_atomic;
use crate::data::team::agreement::Summary;
use crate::data::team::listen::{Listener, Notice};
use crate::data::team::outbox::{Outbox, Refused};
use crate::data::team::session::TeamSession;
use crate::data::team::{Progress, Project, Target, TeamRow};
use crate::data::ImportOptions;

/// Rows an annotator holds at a time.
pub const QUEUE: usize = 10;
/// The team's state is read at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How often the state is read while the listener is disconnected.
const POLL_OFFLINE: Duration = Duration::from_secs(5);

/// What the window learns on joining a project.
#[derive(Debug, Clone)]
pub struct Joined {
    pub target: Target,
    pub project: Project,
    /// The role labelling (the user in the connection).
    pub me: String,
    /// A reviewer (or the owner): may settle rows.
    pub may_settle: bool,
    /// The project's snapshot to open, and how to read it.
    pub csv: PathBuf,
    pub options: ImportOptions,
    /// The annotator's outbox, which the window writes each label to.
    pub outbox: PathBuf,
    /// The annotator's labels per row as the server has them (after sending what waited).
    pub mine: Vec<Option<u8>>,
}

/// The team's state as the status bar and the team review window show it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamStatus {
    pub progress: Progress,
    /// Labels given, and rows × K.
    pub labels_given: i64,
    pub labels_wanted: i64,
    pub rows: i64,
    pub settled: i64,
    pub agreement: Summary,
    /// Rows whose visible labels differ and that have no final label, oldest first.
    pub disagreements: Vec<TeamRow>,
}

#[derive(Debug, Clone)]
pub enum TeamEvent {
    Joined(Box<Joined>),
    /// Joining failed (the worker has ended).
    JoinFailed(String),
    /// The connection and the outbox: why the server is unreachable, if it is; labels waiting;
    /// labels the server refused since the last report.
    Link {
        offline: Option<String>,
        waiting: usize,
        refused: Vec<Refused>,
    },
    /// The project rows the annotator holds now.
    Queue(Vec<i64>),
    Status(Box<TeamStatus>),
    /// An action failed (a settle refused, say); the link goes on.
    Failed(String),
    /// The worker ended: left on request, or stopped with the message.
    Ended(Option<String>),
}

/// What the window asks of the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum TeamCommand {
    /// New labels are in the outbox.
    Flush,
    Settle {
        row: i64,
        label: u8,
    },
    /// Give back the claims and end.
    Leave,
}

/// Where tweetlab keeps a project's snapshot for `target`'s role.
fn snapshot_path(target: &Target) -> PathBuf {
    Outbox::path_for(target).with_extension("csv")
}

/// Joins the project at `target` on a worker thread; `send` gets every event and returns
/// false once nobody listens (the worker then gives back its claims and ends).
pub fn join(
    target: Target,
    send: impl Fn(TeamEvent) -> bool + Send + Sync + Clone + 'static,
) -> Sender<TeamCommand> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let report = send.clone();
    std::thread::Builder::new()
        .name("tweetlab-team".into())
        .spawn(move || {
            let outcome = guarded("team", || run(target, &rx, &send));
            let end = match outcome {
                Ok(Ok(())) => TeamEvent::Ended(None),
                Ok(Err(e)) => e,
                Err(panic) => TeamEvent::Ended(Some(panic)),
            };
            report(end);
        })
        .expect("can spawn a thread");
    tx
}

/// The worker: join, then serve commands, notices and the heartbeat until told to leave.
fn run(
    target: Target,
    commands: &Receiver<TeamCommand>,
    send: &(impl Fn(TeamEvent) -> bool + Send + Sync + Clone + 'static),
) -> Result<(), TeamEvent> {
    let failed = |e: &dyn std::fmt::Display| TeamEvent::JoinFailed(e.to_string());
    let outbox = Outbox::path_for(&target);
    let mut session = TeamSession::open(&target, &outbox).map_err(|e| failed(&e))?;
    if let Some(why) = session.offline() {
        return Err(failed(&why.to_string()));
    }
    let flushed = session.flush().map_err(|e| failed(&e))?;
    let (project, me, may_settle, rows) = session
        .call(|db| Ok((db.project()?, db.me()?, db.may_settle()?, db.rows()?)))
        .map_err(|e| failed(&e))?;
    let mine: Vec<Option<u8>> = rows
        .iter()
        .map(|r| r.labels.iter().find(|(a, _)| *a == me).map(|(_, l)| *l))
        .collect();
    let csv = snapshot_path(&target);
    write_snapshot(&csv, &project, &rows, &mine).map_err(|e| failed(&e))?;
    let options = ImportOptions {
        text_column: Some("text".into()),
        label_column: Some("label".into()),
        id_column: Some("row".into()),
        labels: Some(project.labels.clone()),
        delimiter: Some(b','),
        ..ImportOptions::default()
    };
    let heartbeat =
        (project.claim_ttl / 3).clamp(Duration::from_millis(200), Duration::from_secs(30));
    let joined = Joined {
        target: target.clone(),
        project,
        me,
        may_settle,
        csv,
        options,
        outbox,
        mine,
    };
    if !send(TeamEvent::Joined(Box::new(joined.clone()))) {
        return Ok(());
    }
    let mut link = Link {
        session,
        joined,
        send: send.clone(),
        status_due: true,
        last_status: None,
        notices: None,
        gone: false,
    };
    link.report_link(flushed.refused);
    link.claim();
    let (notice_tx, notices) = crossbeam_channel::unbounded();
    let _listener = Listener::spawn(&target, move |n| notice_tx.send(n).is_ok());
    let mut next_beat = Instant::now() + heartbeat;
    loop {
        select! {
            recv(commands) -> c => match c {
                Ok(TeamCommand::Flush) => link.flush(),
                Ok(TeamCommand::Settle { row, label }) => {
                    if let Err(e) = link.session.call(|db| db.settle(row, label)) {
                        link.alive(TeamEvent::Failed(format!("settling row {row}: {e}")));
                    }
                    link.status_due = true;
                }
                Ok(TeamCommand::Leave) | Err(_) => break,
            },
            recv(notices) -> n => {
                match n {
                    Ok(Notice::Connected) => {
                        // Notifications sent while away are lost: read everything again.
                        link.notices = Some(true);
                        link.status_due = true;
                        link.flush();
                    }
                    Ok(Notice::Lost(_)) => link.notices = Some(false),
                    Ok(Notice::Changed { .. }) => link.status_due = true,
                    Err(_) => {}
                }
            },
            default(Duration::from_millis(250)) => {},
        }
        if Instant::now() >= next_beat {
            next_beat = Instant::now() + heartbeat;
            if link.session.waiting().unwrap_or(0) > 0 || link.session.offline().is_some() {
                link.flush();
            } else {
                link.claim();
            }
        }
        // While the listener is away nothing says what changed: read the state now and then.
        let since_status = link.last_status.map(|t: Instant| t.elapsed());
        if link.notices == Some(false) && since_status.is_some_and(|t| t > POLL_OFFLINE) {
            link.status_due = true;
        }
        // Every notice asks for the whole state; a busy team sends many, read at most so often.
        let status_ready = since_status.is_none_or(|t| t > STATUS_EVERY);
        if link.status_due && status_ready {
            link.status();
        }
        if link.gone {
            break;
        }
    }
    let _ = link.session.call(|db| db.release());
    Ok(())
}

struct Link<S> {
    session: TeamSession,
    joined: Joined,
    send: S,
    status_due: bool,
    last_status: Option<Instant>,
    /// Whether the listener is connected (None: not heard from yet).
    notices: Option<bool>,
    /// The window stopped listening: give back the claims and end.
    gone: bool,
}

impl<S: Fn(TeamEvent) -> bool> Link<S> {
    /// Sends `e` to the window; notes when the window is gone.
    fn alive(&mut self, e: TeamEvent) {
        if !(self.send)(e) {
            self.gone = true;
        }
    }

    fn report_link(&mut self, refused: Vec<Refused>) {
        let waiting = self.session.waiting().unwrap_or(0);
        let offline = self.session.offline().map(str::to_string);
        self.alive(TeamEvent::Link {
            offline,
            waiting,
            refused,
        });
    }

    fn flush(&mut self) {
        match self.session.flush() {
            Ok(f) => {
                let sent = f.sent + f.refused.len();
                self.report_link(f.refused);
                if sent > 0 || f.offline.is_none() {
                    self.claim();
                }
            }
            Err(e) => {
                self.alive(TeamEvent::Failed(format!("sending labels: {e}")));
                self.report_link(Vec::new());
            }
        }
    }

    /// Renews the claims held and tops the queue up to [`QUEUE`] rows.
    fn claim(&mut self) {
        match self.session.call(|db| db.claim(QUEUE)) {
            Ok(rows) => {
                self.alive(TeamEvent::Queue(rows.iter().map(|c| c.row).collect()));
            }
            Err(e) if e.is_offline() => self.report_link(Vec::new()),
            Err(e) => {
                self.alive(TeamEvent::Failed(format!("asking for rows: {e}")));
            }
        }
    }

    fn status(&mut self) {
        self.last_status = Some(Instant::now());
        let classes = self.joined.project.labels.len();
        let k = self.joined.project.overlap as usize;
        match self.session.call(|db| Ok((db.progress()?, db.rows()?))) {
            Ok((progress, rows)) => {
                self.status_due = false;
                let status = team_status(progress, &rows, classes, k);
                self.alive(TeamEvent::Status(Box::new(status)));
            }
            Err(e) if e.is_offline() => self.report_link(Vec::new()),
            Err(e) => {
                self.status_due = false;
                self.alive(TeamEvent::Failed(format!(
                    "reading the team's progress: {e}"
                )));
            }
        }
    }
}

fn team_status(progress: Progress, rows: &[TeamRow], classes: usize, k: usize) -> TeamStatus {
    let labels_given = progress.annotators.iter().map(|(_, l, _)| l).sum();
    let settled = progress.rows_by_labels.iter().map(|(_, _, s)| s).sum();
    let disagreements = rows
        .iter()
        .filter(|r| r.fin.is_none() && r.labels.windows(2).any(|w| w[0].1 != w[1].1))
        .cloned()
        .collect();
    TeamStatus {
        labels_given,
        labels_wanted: rows.len() as i64 * k as i64,
        rows: rows.len() as i64,
        settled,
        agreement: Summary::of(rows, classes, k),
        disagreements,
        progress,
    }
}

/// The project as a CSV: the project's row number (the workspace's id), the source's id,
/// keyword, location, text and the annotator's label.
fn write_snapshot(
    csv: &std::path::Path,
    project: &Project,
    rows: &[TeamRow],
    mine: &[Option<u8>],
) -> std::io::Result<()> {
    if let Some(dir) = csv.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_atomic(csv, |w| {
        let mut out = csv::Writer::from_writer(w);
        out.write_record(["row", "source_id", "keyword", "location", "text", "label"])?;
        let by_row: BTreeMap<i64, Option<u8>> =
            rows.iter().zip(mine).map(|(r, m)| (r.row, *m)).collect();
        for r in rows {
            let label = by_row[&r.row].map_or("", |l| project.labels.cell(l));
            out.write_record([
                r.row.to_string().as_str(),
                &r.source_id,
                &r.keyword,
                &r.location,
                &r.text,
                label,
            ])?;
        }
        out.flush()
    })
}
