//! `tweetlab team`: a dataset labelled by a team on a shared PostgreSQL database.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::ImportArgs;
use crate::data::atomic::write_atomic;
use crate::data::team::{agreement, ProjectSettings, Target, TeamDb};
use crate::data::LabelSet;

#[derive(Args, Debug)]
pub struct TeamArgs {
    /// The project's database: a `postgresql://` URL or libpq `key=value` pairs. Also
    /// TWEETLAB_TEAM_DB; the password is best given as PGPASSWORD (kept off the process list).
    #[arg(long, env = "TWEETLAB_TEAM_DB", global = true, hide_env_values = true)]
    db: Option<String>,
    #[command(subcommand)]
    command: TeamCommand,
}

#[derive(Subcommand, Debug)]
enum TeamCommand {
    /// Create the team project in an empty database from a CSV (as the project's owner).
    Init(Box<InitArgs>),
    /// Make NAME an annotator (a PostgreSQL login role with a new password); prints what to
    /// hand over.
    AddAnnotator {
        name: String,
        /// May settle disagreements (write final labels).
        #[arg(long)]
        reviewer: bool,
    },
    /// The team's progress: labels per annotator, rows by number of labels, agreement.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Write every row with each annotator's label and the final label (CSV).
    Export {
        #[arg(long)]
        out: PathBuf,
    },
    /// Claim your next rows to label (your claims held first, renewed).
    Next {
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
    /// Label a row (by its number in `next`) with a class name or number.
    Label { row: i64, class: String },
    /// As a reviewer: the final label of a row.
    Settle { row: i64, class: String },
    /// Give back every row you hold.
    Release,
    /// Simulated annotators labelling a new project in an empty database as fast as they can:
    /// labels/s, label write and next-row latencies, and the invariants checked in SQL.
    Bench(Box<super::team_bench::BenchArgs>),
}

#[derive(Args, Debug)]
struct InitArgs {
    /// The CSV to label (read as `tweetlab stats` reads it).
    #[arg(long)]
    data: PathBuf,
    /// Labels each row gets from the queue (K).
    #[arg(long)]
    overlap: u8,
    /// Annotators see only their own labels until a row is final.
    #[arg(long)]
    blind: bool,
    /// Minutes a claimed row stays reserved for its annotator without a heartbeat.
    #[arg(long, default_value_t = 10.0)]
    claim_minutes: f64,
    /// The project's name (default: the file's name).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    import: ImportArgs,
}

pub fn team_cmd(a: TeamArgs) -> Result<ExitCode> {
    let url =
        a.db.context("give the project's database with --db URL (or TWEETLAB_TEAM_DB)")?;
    let target = Target::parse(&url)?;
    let mut db = TeamDb::connect(&target)?;
    match a.command {
        TeamCommand::Init(i) => init(&mut db, *i),
        TeamCommand::AddAnnotator { name, reviewer } => {
            let password = db.add_annotator(&name, reviewer)?;
            println!(
                "{name} is {} of this project. Hand over, the password separately:",
                if reviewer {
                    "an annotator and a reviewer"
                } else {
                    "an annotator"
                }
            );
            println!("connection: {}", db.target().connection_line(&name));
            println!("password:   {password}");
            Ok(ExitCode::SUCCESS)
        }
        TeamCommand::Status { json } => status(&mut db, json),
        TeamCommand::Export { out } => export(&mut db, &out),
        TeamCommand::Next { count } => {
            let labels = db.project()?.labels;
            let claimed = db.claim(count)?;
            if claimed.is_empty() {
                eprintln!("nothing left for you to label");
            }
            for c in claimed {
                println!(
                    "{}",
                    serde_json::json!({"row": c.row, "id": c.source_id, "text": c.text,
                                       "classes": labels.names(), "claim_expires": c.expires})
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TeamCommand::Label { row, class } => {
            let class = class_of(&db.project()?.labels, &class)?;
            db.label(row, class)?;
            Ok(ExitCode::SUCCESS)
        }
        TeamCommand::Settle { row, class } => {
            let class = class_of(&db.project()?.labels, &class)?;
            db.settle(row, class)?;
            Ok(ExitCode::SUCCESS)
        }
        TeamCommand::Bench(b) => super::team_bench::bench(&mut db, *b),
        TeamCommand::Release => {
            eprintln!("{} rows given back", db.release()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init(db: &mut TeamDb, i: InitArgs) -> Result<ExitCode> {
    if !(i.claim_minutes > 0.0 && i.claim_minutes.is_finite()) {
        anyhow::bail!("--claim-minutes must be more than 0");
    }
    let data = super::load_data(&i.data, &i.import)?;
    let name = i.name.unwrap_or_else(|| {
        i.data
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "tweets".into())
    });
    let settings = ProjectSettings {
        name,
        overlap: i.overlap,
        blind: i.blind,
        claim_ttl: Duration::from_secs_f64(i.claim_minutes * 60.0),
    };
    db.init(&settings, &data, &i.data.display().to_string())?;
    eprintln!(
        "team project {} created: {} rows, classes {}, {} labels per row{}",
        settings.name,
        data.rows.len(),
        data.layout.labels.names().join(", "),
        settings.overlap,
        if settings.blind { ", blind" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

/// A class by name (any case) or number.
fn class_of(labels: &LabelSet, class: &str) -> Result<u8> {
    if let Some(i) = labels.index_of(class) {
        return Ok(i);
    }
    match class.trim().parse::<u8>() {
        Ok(i) if (i as usize) < labels.len() => Ok(i),
        _ => anyhow::bail!(
            "`{class}` is not a class of this project: {}",
            labels.names().join(", ")
        ),
    }
}

fn status(db: &mut TeamDb, json: bool) -> Result<ExitCode> {
    let project = db.project()?;
    let progress = db.progress()?;
    let classes = project.labels.len();
    let rows = db.rows()?;
    let k = project.overlap as usize;
    let agreement::Summary {
        pairs,
        fleiss_rows,
        fleiss,
        confusion,
    } = agreement::Summary::of(&rows, classes, k);
    if json {
        let v = serde_json::json!({
            "project": project.name,
            "overlap": project.overlap,
            "blind": project.blind,
            "annotators": progress.annotators.iter().map(|(n, l, c)|
                serde_json::json!({"name": n, "labels": l, "claims": c})).collect::<Vec<_>>(),
            "rows_by_labels": progress.rows_by_labels.iter().map(|(n, r, s)|
                serde_json::json!({"labels": n, "rows": r, "settled": s})).collect::<Vec<_>>(),
            "pairs": pairs.iter().map(|p| serde_json::json!({
                "a": p.a, "b": p.b, "rows": p.rows, "percent": p.percent,
                "cohen_kappa": p.cohen_kappa})).collect::<Vec<_>>(),
            "fleiss_kappa": fleiss,
            "fleiss_rows": fleiss_rows,
            "confusion_against_final": confusion,
        });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} labels per row{}, classes {}",
        project.name,
        project.overlap,
        if project.blind { ", blind" } else { "" },
        project.labels.names().join(", ")
    );
    println!("annotator                labels  claims");
    for (name, l, c) in &progress.annotators {
        println!("{name:<24} {l:>6}  {c:>6}");
    }
    println!("labels on a row   rows  settled");
    for (n, rows, settled) in &progress.rows_by_labels {
        println!("{n:>15} {rows:>6} {settled:>8}");
    }
    for p in &pairs {
        let kappa = p
            .cohen_kappa
            .map_or_else(|| "undefined".into(), |k| format!("{k:.3}"));
        println!(
            "{} ~ {}: {} rows in common, {:.1}% agree, Cohen's kappa {kappa}",
            p.a, p.b, p.rows, p.percent
        );
    }
    for (name, m) in &confusion {
        let settled: u32 = m.iter().flatten().sum();
        let same: u32 = (0..classes).map(|c| m[c][c]).sum();
        println!("{name}: {same} of {settled} labels on settled rows equal the final label (confusion final x theirs {m:?})");
    }
    if k >= 3 {
        match fleiss {
            Some(f) => println!("Fleiss' kappa {f:.3} over the {fleiss_rows} rows with {k} labels"),
            None => println!("Fleiss' kappa: no rows with {k} labels you may see yet"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn export(db: &mut TeamDb, out: &std::path::Path) -> Result<ExitCode> {
    let project = db.project()?;
    let rows = db.rows()?;
    let annotators: Vec<String> = rows
        .iter()
        .flat_map(|r| r.labels.iter().map(|(a, _)| a.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let labels = &project.labels;
    write_atomic(out, |w| {
        let mut csv = csv::Writer::from_writer(w);
        let mut header = vec!["row".to_string(), "id".into(), "text".into()];
        header.extend(annotators.iter().cloned());
        header.extend(["final".to_string(), "how".into()]);
        csv.write_record(&header)?;
        for r in &rows {
            let by: BTreeMap<&str, u8> = r.labels.iter().map(|(a, l)| (a.as_str(), *l)).collect();
            let mut record = vec![r.row.to_string(), r.source_id.clone(), r.text.clone()];
            for a in &annotators {
                record.push(
                    by.get(a.as_str())
                        .map_or_else(String::new, |&l| labels.name(l)),
                );
            }
            match r.fin {
                Some((l, how)) => record.extend([labels.name(l), how.as_str().to_string()]),
                None => record.extend([String::new(), String::new()]),
            }
            csv.write_record(&record)?;
        }
        csv.flush()
    })
    .with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "{} rows, {} annotators, {} final labels written to {}",
        rows.len(),
        annotators.len(),
        rows.iter().filter(|r| r.fin.is_some()).count(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
