//! Team mode on the app: joining (a worker per project), applying what the team panel asks,
//! routing the worker's events, and putting every label the analyst makes into the outbox.

use super::protocol::{Event, Request};
use super::team_panel::{TeamAction, TeamLink};
use super::workers::Opening;
use super::TweetlabApp;
use crate::data::team::Target;
use crate::workbench::team::{self, TeamEvent};

impl TweetlabApp {
    pub(super) fn apply_team(&mut self, action: TeamAction) {
        match action {
            TeamAction::Connect { url, password } => self.join_team(&url, &password),
            TeamAction::Leave => {
                if let Some(link) = self.team.take() {
                    self.status = format!(
                        "left team project {}; {} label(s) still waiting are sent when you join again",
                        link.joined.project.name, link.waiting
                    );
                }
                self.team_review_open = false;
            }
            TeamAction::Settle { row, label } => {
                if let Some(link) = self.team.as_mut() {
                    link.settle(row, label);
                }
            }
            TeamAction::CloseReview => self.team_review_open = false,
        }
    }

    /// Joins the project at `url` (with `password`, or PGPASSWORD when empty) on a worker.
    pub fn join_team(&mut self, url: &str, password: &str) {
        let mut target = match Target::parse(url) {
            Ok(t) => t,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        if !password.is_empty() {
            target = target.with_password(password);
        }
        self.team = None;
        self.status = format!("joining the team project at {target}");
        let reporter = self.reporter.clone();
        // Events of an earlier join (left, or replaced by this one) are dropped by this number.
        self.team_join += 1;
        let join = self.team_join;
        let commands = team::join(target, move |e| reporter.deliver(Event::Team(join, e)));
        self.team_joining = Some(commands);
    }

    pub(super) fn on_team(&mut self, event: TeamEvent) -> Option<Request> {
        match event {
            TeamEvent::Joined(joined) => {
                let commands = self.team_joining.take()?;
                self.settings.team_connection = Some(joined.target.to_string());
                let csv = joined.csv.clone();
                let opening = Opening::Chosen(joined.options.clone());
                let name = joined.project.name.clone();
                match TeamLink::new(*joined, commands) {
                    Ok(link) => self.team = Some(link),
                    Err(e) => return Some(Request::Error(format!("team project {name}: {e}"))),
                }
                self.open_as(csv, opening);
                Some(Request::Status(format!("joined team project {name}")))
            }
            TeamEvent::JoinFailed(message) => {
                self.team_joining = None;
                Some(Request::Error(format!(
                    "Could not join the team project: {message}"
                )))
            }
            TeamEvent::Ended(why) => {
                self.team_joining = None;
                let link = self.team.take()?;
                why.map(|m| {
                    Request::Error(format!(
                        "The link to team project {} stopped: {m}",
                        link.joined.project.name
                    ))
                })
            }
            other => {
                let link = self.team.as_mut()?;
                let (shown_changed, message) = link.on_event(other);
                if shown_changed {
                    self.table.mark_dirty();
                }
                message.map(Request::Error)
            }
        }
    }

    /// Puts each label that changed in the team's workspace (a key, undo, a bulk relabel) into
    /// the outbox, so the team gets every label the analyst sees.
    pub(super) fn mirror_team_labels(&mut self) {
        let (Some(link), Some(file)) = (self.team.as_mut(), self.file.as_ref()) else {
            return;
        };
        if !link.opened || file.workspace.source() != link.joined.csv {
            return;
        }
        if file.workspace.rows().len() != link.joined.mine.len() {
            self.error = Some(format!(
                "the team project's snapshot has {} rows, the project {}: leave and join again",
                file.workspace.rows().len(),
                link.joined.mine.len()
            ));
            self.team = None;
            return;
        }
        match link.mirror(file.workspace.rows().iter().map(|t| t.label)) {
            Ok(true) => self.table.mark_dirty(),
            Ok(false) => {}
            Err(e) => self.error = Some(e),
        }
    }
}
