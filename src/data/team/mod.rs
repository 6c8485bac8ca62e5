//! Team projects on PostgreSQL: one dataset labelled by several annotators, each label kept per
//! (row, annotator), rows handed out through claims so that none gets more than K labels, and
//! final labels by agreement, majority or a reviewer. Who may read and write what is enforced by
//! the server (roles, grants, row level security: `v1.sql`); this client only asks.
//!
//! SQLite stays the one-analyst workspace (`store`); nothing here is needed in solo mode.

pub mod agreement;
pub mod listen;
pub mod outbox;
pub mod session;
pub mod tls;

use std::fmt;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};

use crate::data::{Dataset, LabelSet};

/// Schema migrations, applied in order on connect; the list only grows.
const MIGRATIONS: &[&str] = &[include_str!("v1.sql"), include_str!("v2.sql")];

/// Why a team operation failed, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },
    /// The role lacks the right (not an annotator, not a reviewer, not the owner).
    #[error("not allowed: {0}")]
    Denied(String),
    /// The row is settled or already has its K labels and claims, or the label is no class.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    BadInput(String),
    #[error("this database holds no tweetlab team project yet: run `tweetlab team init` first")]
    NoProject,
    #[error("{0}")]
    Database(String),
    /// The connection is gone (server down, network cut): try again later.
    #[error("the team server is unreachable: {0}")]
    Offline(String),
    /// The local outbox (SQLite) failed.
    #[error("the local outbox: {0}")]
    Outbox(String),
}

impl TeamError {
    /// Whether trying again once the server is back may succeed.
    pub fn is_offline(&self) -> bool {
        matches!(self, TeamError::Offline(_) | TeamError::Connect { .. })
    }
}

impl From<postgres::Error> for TeamError {
    fn from(e: postgres::Error) -> Self {
        let message = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        };
        if lost_connection(&e) {
            return TeamError::Offline(postgres_message(&e));
        }
        match e.code() {
            Some(c)
                if *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CRASH_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW =>
            {
                TeamError::Offline(message)
            }
            Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => TeamError::Denied(message),
            Some(c) if *c == SqlState::CHECK_VIOLATION => TeamError::Refused(message),
            Some(c) if *c == SqlState::UNDEFINED_TABLE => TeamError::NoProject,
            _ => TeamError::Database(message),
        }
    }
}

pub type Result<T> = std::result::Result<T, TeamError>;

/// Where to connect: a `postgresql://` URL or `key=value` pairs, as libpq takes them. A
/// password may also come from `PGPASSWORD`, which keeps it off the command line.
#[derive(Clone)]
pub struct Target {
    config: Config,
    tls: tls::TlsOptions,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self> {
        let (line, tls) = tls::split_options(url);
        let mut config: Config = line
            .parse()
            .map_err(|e| TeamError::BadInput(format!("not a PostgreSQL connection string: {e}")))?;
        if config.get_password().is_none() {
            if let Ok(p) = std::env::var("PGPASSWORD") {
                config.password(p);
            }
        }
        if config.get_user().is_none() {
            if let Ok(u) = std::env::var("PGUSER") {
                config.user(&u);
            }
        }
        config.connect_timeout(Duration::from_secs(10));
        config.application_name("tweetlab");
        Ok(Self { config, tls })
    }

    /// A new connection, encrypted as `sslmode` says.
    fn client(&self) -> Result<Client> {
        let connected = if self.config.get_ssl_mode() == postgres::config::SslMode::Disable {
            self.config.connect(NoTls)
        } else {
            self.config.connect(tls::connector(&self.tls)?)
        };
        connected.map_err(|e| {
            if e.as_db_error().is_some() {
                TeamError::Connect {
                    target: self.to_string(),
                    message: postgres_message(&e),
                }
            } else {
                TeamError::Offline(format!("{self}: {}", postgres_message(&e)))
            }
        })
    }

    /// The same server and database as another role, with its password.
    pub fn as_role(&self, user: &str, password: &str) -> Self {
        let mut config = self.config.clone();
        config.user(user).password(password);
        Self {
            config,
            tls: self.tls.clone(),
        }
    }

    /// The same target with `password`.
    pub fn with_password(&self, password: &str) -> Self {
        let mut config = self.config.clone();
        config.password(password);
        Self {
            config,
            tls: self.tls.clone(),
        }
    }

    /// A connection line for `user` (libpq's `key=value` form, which every client takes),
    /// without any password: hand the password over separately.
    pub fn connection_line(&self, user: &str) -> String {
        let mut parts = Vec::new();
        for host in self.config.get_hosts() {
            match host {
                postgres::config::Host::Tcp(h) => parts.push(format!("host={h}")),
                #[cfg(unix)]
                postgres::config::Host::Unix(p) => parts.push(format!("host={}", p.display())),
            }
        }
        if let Some(port) = self.config.get_ports().first() {
            parts.push(format!("port={port}"));
        }
        if let Some(db) = self.config.get_dbname() {
            parts.push(format!("dbname={db}"));
        }
        parts.push(format!("user={user}"));
        let ssl = match self.config.get_ssl_mode() {
            postgres::config::SslMode::Disable => "disable",
            postgres::config::SslMode::Require if self.tls.verify => "verify-full",
            postgres::config::SslMode::Require => "require",
            _ => "prefer",
        };
        parts.push(format!("sslmode={ssl}"));
        if let Some(root) = &self.tls.root_cert {
            parts.push(format!("sslrootcert={}", root.display()));
        }
        parts.join(" ")
    }
}

/// Shows where a target points, never its password.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self.config.get_user().unwrap_or("(default user)");
        f.write_str(&self.connection_line(user))
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

/// How a project is set up.
#[derive(Debug, Clone)]
pub struct ProjectSettings {
    pub name: String,
    /// Labels each row gets from the queue (K).
    pub overlap: u8,
    /// Annotators see only their own labels until a row is final.
    pub blind: bool,
    /// How long a claimed row stays reserved without a heartbeat.
    pub claim_ttl: Duration,
}

/// A project as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub name: String,
    pub labels: LabelSet,
    pub overlap: u8,
    pub blind: bool,
    pub claim_ttl: Duration,
    pub source: String,
    pub owner: String,
}

/// A row handed to an annotator, until `expires` (seconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub row: i64,
    pub source_id: String,
    pub text: String,
    pub expires: f64,
}

/// How a final label was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    Agreement,
    Majority,
    Reviewer,
}

impl Decided {
    fn parse(s: &str) -> Self {
        match s {
            "agreement" => Self::Agreement,
            "majority" => Self::Majority,
            _ => Self::Reviewer,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agreement => "agreement",
            Self::Majority => "majority",
            Self::Reviewer => "reviewer",
        }
    }
}

/// One annotator's label on one row, as the caller may see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamLabel {
    pub row: i64,
    pub annotator: String,
    pub label: u8,
}

/// A row with every label the caller may see and its final label.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamRow {
    pub row: i64,
    pub source_id: String,
    pub keyword: String,
    pub location: String,
    pub text: String,
    pub labels: Vec<(String, u8)>,
    pub fin: Option<(u8, Decided)>,
}

/// The team's progress.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    /// (annotator, labels given, live claims).
    pub annotators: Vec<(String, i64, i64)>,
    /// (labels on a row, rows with that many, of those settled).
    pub rows_by_labels: Vec<(i64, i64, i64)>,
}

/// What a training run on a team project does with a row that has no final label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unsettled {
    /// Leave it out: only settled rows are ground truth (the default).
    Skip,
    /// The label most annotators gave it, where one label leads (ties are left out).
    Majority,
    /// The label the imported file gave it, where it had one.
    Imported,
}

impl std::str::FromStr for Unsettled {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "skip" => Ok(Self::Skip),
            "majority" => Ok(Self::Majority),
            "imported" => Ok(Self::Imported),
            _ => Err(format!("`{s}`: choose skip, majority or imported")),
        }
    }
}

/// The labelled texts a team project offers for training, and where their labels came from.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSet {
    pub texts: Vec<String>,
    pub labels: Vec<u8>,
    pub classes: Vec<String>,
    pub settled: usize,
    pub from_majority: usize,
    pub from_imported: usize,
    pub left_out: usize,
}

/// A connection to a team project as one role.
pub struct TeamDb {
    client: Client,
    target: Target,
    /// The queue's two statements, prepared once per connection: a query by text is parsed
    /// and described anew each time, one more round trip each.
    claim_statement: Option<postgres::Statement>,
    apply_statement: Option<postgres::Statement>,
}

impl TeamDb {
    /// Connects and, where the schema is older than this tweetlab's (and the role may change
    /// it), migrates it.
    pub fn connect(target: &Target) -> Result<Self> {
        let client = target.client()?;
        let mut db = Self {
            client,
            target: target.clone(),
            claim_statement: None,
            apply_statement: None,
        };
        db.migrate()?;
        Ok(db)
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Applies the migrations this database lacks, in one transaction under an advisory lock
    /// (two clients connecting at once migrate once).
    fn migrate(&mut self) -> Result<()> {
        let version = self.schema_version()?;
        if version >= MIGRATIONS.len() {
            return Ok(());
        }
        let mut tx = self.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock(7465714)", &[])?;
        let may_change: bool = tx
            .query_one(
                "SELECT has_database_privilege(current_database(), 'CREATE')
                    AND has_schema_privilege('public', 'CREATE')",
                &[],
            )?
            .get(0);
        if !may_change {
            return Err(if version == 0 {
                TeamError::NoProject
            } else {
                TeamError::Denied(format!(
                    "the project's schema is version {version}, this tweetlab's is {}: \
                     the project's owner must connect once to upgrade it",
                    MIGRATIONS.len()
                ))
            });
        }
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS tweetlab_schema (
                 version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .map_err(|e| match TeamError::from(e) {
            TeamError::Denied(_) => TeamError::NoProject,
            other => other,
        })?;
        let done: i32 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM tweetlab_schema", &[])?
            .get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO tweetlab_schema (version) VALUES ($1)",
                &[&(i as i32 + 1)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn schema_version(&mut self) -> Result<usize> {
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('tweetlab_schema') IS NOT NULL", &[])?
            .get(0);
        if !exists {
            return Ok(0);
        }
        let v: i32 = self
            .client
            .query_one("SELECT coalesce(max(version), 0) FROM tweetlab_schema", &[])?
            .get(0);
        Ok(v as usize)
    }

    /// Creates the project from `data` (its rows and label set), the group roles and their
    /// grants. One project per database.
    pub fn init(&mut self, settings: &ProjectSettings, data: &Dataset, source: &str) -> Result<()> {
        if !(1..=20).contains(&settings.overlap) {
            return Err(TeamError::BadInput(format!(
                "--overlap {}: each row can get 1 to 20 labels",
                settings.overlap
            )));
        }
        if data.rows.is_empty() {
            return Err(TeamError::BadInput(format!("{source} has no rows")));
        }
        let labels = &data.layout.labels;
        let db: String = self
            .client
            .query_one("SELECT current_database()::text", &[])?
            .get(0);
        let (annotators, reviewers) = group_roles(&db);
        let mut tx = self.client.transaction()?;
        let existing: i64 = tx.query_one("SELECT count(*) FROM project", &[])?.get(0);
        if existing > 0 {
            return Err(TeamError::Refused(format!(
                "database {db} already holds a team project: use another database"
            )));
        }
        let label_json = serde_json::to_value(labels)
            .map_err(|e| TeamError::BadInput(format!("label set: {e}")))?;
        tx.execute(
            "INSERT INTO project (name, label_set, class_count, overlap, blind, claim_ttl, source,
                                  annotator_role, reviewer_role)
             VALUES ($1, $2::text::jsonb, $3, $4, $5, make_interval(secs => $6), $7, $8, $9)",
            &[
                &settings.name,
                &label_json.to_string(),
                &(labels.len() as i16),
                &(settings.overlap as i16),
                &settings.blind,
                &settings.claim_ttl.as_secs_f64(),
                &source,
                &annotators,
                &reviewers,
            ],
        )?;
        let sink = tx.copy_in(
            "COPY rows (id, source_id, keyword, location, text, line, imported_label)
             FROM STDIN (FORMAT csv, FORCE_NOT_NULL (source_id, keyword, location, text))",
        )?;
        let mut w = csv::Writer::from_writer(sink);
        for (i, t) in data.rows.iter().enumerate() {
            w.write_record([
                &i.to_string(),
                &t.id,
                &t.keyword,
                &t.location,
                &t.text,
                &t.line.to_string(),
                &t.label.map(|l| l.to_string()).unwrap_or_default(),
            ])
            .map_err(|e| TeamError::Database(format!("sending rows: {e}")))?;
        }
        let sink = w
            .into_inner()
            .map_err(|e| TeamError::Database(format!("sending rows: {e}")))?;
        sink.finish()?;
        tx.execute("SELECT tweetlab_grant($1, $2)", &[&annotators, &reviewers])?;
        tx.commit()?;
        Ok(())
    }

    pub fn project(&mut self) -> Result<Project> {
        let row = self
            .client
            .query_opt(
                "SELECT name, label_set::text, overlap, blind, extract(epoch FROM claim_ttl)::float8,
                        source, owner::text FROM project",
                &[],
            )?
            .ok_or(TeamError::NoProject)?;
        let labels: LabelSet = serde_json::from_str(row.get(1))
            .map_err(|e| TeamError::Database(format!("the stored label set: {e}")))?;
        Ok(Project {
            name: row.get(0),
            labels,
            overlap: row.get::<_, i16>(2) as u8,
            blind: row.get(3),
            claim_ttl: Duration::from_secs_f64(row.get(4)),
            source: row.get(5),
            owner: row.get(6),
        })
    }

    /// Makes `name` an annotator (a login role with a new random password, and a reviewer
    /// with `reviewer`) and returns the password. Only the owner can.
    pub fn add_annotator(&mut self, name: &str, reviewer: bool) -> Result<String> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(TeamError::BadInput(format!(
                "annotator name `{name}`: use lower-case letters, digits and _, starting with a letter (63 at most)"
            )));
        }
        let password = new_password();
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        self.client.execute(
            "SELECT tweetlab_add_annotator($1::text::name, $2, $3)",
            &[&name, &verifier, &reviewer],
        )?;
        Ok(password)
    }

    /// Up to `wanted` rows for this role to label: the claims it holds (renewed), then new ones.
    pub fn claim(&mut self, wanted: usize) -> Result<Vec<Claimed>> {
        let statement = match &self.claim_statement {
            Some(s) => s.clone(),
            None => self
                .claim_statement
                .insert(self.client.prepare(
                    "SELECT c.claimed_row, r.source_id, r.text,
                        extract(epoch FROM c.claim_expires)::float8
                 FROM tweetlab_claim($1) c JOIN rows r ON r.id = c.claimed_row
                 ORDER BY c.claimed_row",
                )?)
                .clone(),
        };
        let rows = self.client.query(&statement, &[&(wanted as i32)])?;
        Ok(rows
            .iter()
            .map(|r| Claimed {
                row: r.get(0),
                source_id: r.get(1),
                text: r.get(2),
                expires: r.get(3),
            })
            .collect())
    }

    /// Gives back every claim this role holds; returns how many.
    pub fn release(&mut self) -> Result<i64> {
        Ok(self
            .client
            .query_one("SELECT tweetlab_release()", &[])?
            .get(0))
    }

    /// Stores this role's label for `row` (a new one, or a change of its own).
    pub fn label(&mut self, row: i64, label: u8) -> Result<()> {
        self.apply(row, Some(label), &new_op_id())?;
        self.changed(&[row])
    }

    /// Tells live views that `rows` changed (after the change committed; see v2.sql).
    pub fn changed(&mut self, rows: &[i64]) -> Result<()> {
        self.client
            .execute("SELECT tweetlab_changed($1)", &[&rows])?;
        Ok(())
    }

    /// Stores (None: takes back) this role's label for `row` as the op `op`, which the server
    /// applies once: false when it had applied it before (a resend after a lost reply).
    pub fn apply(&mut self, row: i64, label: Option<u8>, op: &str) -> Result<bool> {
        let statement = match &self.apply_statement {
            Some(s) => s.clone(),
            None => self
                .apply_statement
                .insert(self.client.prepare("SELECT tweetlab_label($1, $2, $3)")?)
                .clone(),
        };
        Ok(self
            .client
            .query_one(&statement, &[&row, &label.map(|l| l as i16), &op])?
            .get(0))
    }

    /// A reviewer's final label for `row` (the server refuses a label that is no class).
    pub fn settle(&mut self, row: i64, label: u8) -> Result<()> {
        self.client.execute(
            "INSERT INTO final_labels (row_id, label, how, decided_by)
             VALUES ($1, $2, 'reviewer', current_user)
             ON CONFLICT (row_id) DO UPDATE
                 SET label = EXCLUDED.label, how = 'reviewer', decided_by = current_user,
                     decided_at = now()",
            &[&row, &(label as i16)],
        )?;
        self.changed(&[row])
    }

    /// Every label this role may see.
    pub fn labels(&mut self) -> Result<Vec<TeamLabel>> {
        let rows = self.client.query(
            "SELECT row_id, annotator::text, label FROM labels ORDER BY row_id, annotator",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| TeamLabel {
                row: r.get(0),
                annotator: r.get(1),
                label: r.get::<_, i16>(2) as u8,
            })
            .collect())
    }

    /// Every row with the labels this role may see and its final label, in file order.
    pub fn rows(&mut self) -> Result<Vec<TeamRow>> {
        let mut out: Vec<TeamRow> = self
            .client
            .query(
                "SELECT r.id, r.source_id, r.keyword, r.location, r.text, f.label, f.how
                 FROM rows r LEFT JOIN final_labels f ON f.row_id = r.id ORDER BY r.id",
                &[],
            )?
            .iter()
            .map(|r| TeamRow {
                row: r.get(0),
                source_id: r.get(1),
                keyword: r.get(2),
                location: r.get(3),
                text: r.get(4),
                labels: Vec::new(),
                fin: r
                    .get::<_, Option<i16>>(5)
                    .map(|l| (l as u8, Decided::parse(r.get(6)))),
            })
            .collect();
        for l in self.labels()? {
            if let Ok(i) = out.binary_search_by_key(&l.row, |r| r.row) {
                out[i].labels.push((l.annotator, l.label));
            }
        }
        Ok(out)
    }

    /// The rows to train on: each final label, and for rows without one what `unsettled` says.
    pub fn training_set(&mut self, unsettled: Unsettled) -> Result<TrainingSet> {
        let classes = self.project()?.labels.names();
        let imported: Vec<Option<i16>> = self
            .client
            .query("SELECT imported_label FROM rows ORDER BY id", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut set = TrainingSet {
            texts: Vec::new(),
            labels: Vec::new(),
            classes,
            settled: 0,
            from_majority: 0,
            from_imported: 0,
            left_out: 0,
        };
        for (r, imported) in self.rows()?.into_iter().zip(imported) {
            let label = match (r.fin, unsettled) {
                (Some((l, _)), _) => {
                    set.settled += 1;
                    Some(l)
                }
                (None, Unsettled::Majority) => {
                    let leader = plurality(r.labels.iter().map(|(_, l)| *l));
                    set.from_majority += leader.is_some() as usize;
                    leader
                }
                (None, Unsettled::Imported) => {
                    let l = imported.map(|l| l as u8);
                    set.from_imported += l.is_some() as usize;
                    l
                }
                (None, Unsettled::Skip) => None,
            };
            match label {
                Some(l) => {
                    set.texts.push(r.text);
                    set.labels.push(l);
                }
                None => set.left_out += 1,
            }
        }
        Ok(set)
    }

    /// Records a training run on the project (the owner's right; others get `Denied`).
    pub fn record_run(
        &mut self,
        model: &str,
        settings: &serde_json::Value,
        metrics: &serde_json::Value,
    ) -> Result<i64> {
        Ok(self
            .client
            .query_one(
                "INSERT INTO runs (model, settings, metrics)
                 VALUES ($1, $2::text::jsonb, $3::text::jsonb) RETURNING id",
                &[&model, &settings.to_string(), &metrics.to_string()],
            )?
            .get(0))
    }

    pub fn progress(&mut self) -> Result<Progress> {
        let annotators = self
            .client
            .query(
                "SELECT annotator::text, labelled, claimed FROM tweetlab_progress()",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let rows_by_labels = self
            .client
            .query(
                "SELECT label_count, row_count, settled FROM tweetlab_rows_by_labels()",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        Ok(Progress {
            annotators,
            rows_by_labels,
        })
    }

    /// The role this connection labels as.
    pub fn me(&mut self) -> Result<String> {
        Ok(self
            .client
            .query_one("SELECT session_user::text", &[])?
            .get(0))
    }

    /// Whether this role may settle rows (a reviewer, or the owner).
    pub fn may_settle(&mut self) -> Result<bool> {
        Ok(self
            .client
            .query_one(
                "SELECT pg_has_role(session_user, reviewer_role, 'MEMBER')
                     OR pg_has_role(session_user, owner, 'MEMBER') FROM project",
                &[],
            )?
            .get(0))
    }

    /// Runs SQL as this role (for checks and tests).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// The label given most, when one is given more often than every other.
fn plurality(labels: impl Iterator<Item = u8>) -> Option<u8> {
    let mut counts = [0usize; 256];
    for l in labels {
        counts[l as usize] += 1;
    }
    let top = *counts.iter().max()?;
    let mut leaders = (0..256).filter(|&i| counts[i] == top);
    match (top, leaders.next(), leaders.next()) {
        (0, _, _) | (_, _, Some(_)) => None,
        (_, l, None) => l.map(|l| l as u8),
    }
}

/// The project's group roles for database `db` (role names are at most 63 bytes).
fn group_roles(db: &str) -> (String, String) {
    let mut stem: String = db
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    stem.truncate(40);
    (
        format!("tweetlab_{stem}_annotators"),
        format!("tweetlab_{stem}_reviewers"),
    )
}

fn new_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Whether the connection itself failed (closed, or an I/O error), not the statement.
fn lost_connection(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// A new id for one label sent to the server (128 random bits, hex).
pub fn new_op_id() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

/// A connection error's words: the server's message, or the client's.
fn postgres_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut m = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                m = format!("{m}: {s}");
                source = s.source();
            }
            m
        }
    }
}
