//! `tweetlab stats`: what a CSV holds, before any model.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::ImportArgs;
use crate::data::stats::stats;
use crate::workbench::open::read_rows;

#[derive(Args, Debug)]
pub struct StatsArgs {
    pub csv: PathBuf,
    /// Print one JSON object: rows, labelled, per_class, duplicate_groups, conflicting_groups, problems.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub import: ImportArgs,
}

pub fn stats_cmd(a: StatsArgs) -> Result<ExitCode> {
    let read = read_rows(&a.csv, a.import.given()?, &mut |_, _| {})?;
    let data = read.data;
    if read.edits_applied > 0 {
        eprintln!(
            "{} label edits from the workspace (not saved to the file yet) apply",
            read.edits_applied
        );
    }
    let s = stats(&data);
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    let per_class: Vec<String> = s
        .per_class
        .iter()
        .map(|(c, n)| format!("{c}: {n}"))
        .collect();
    println!(
        "{}: {} rows, {} labelled ({})",
        a.csv.display(),
        s.rows,
        s.labelled,
        per_class.join(", ")
    );
    println!(
        "text column `{}`, label column `{}`",
        data.text_column(),
        data.label_column().unwrap_or("none")
    );
    println!(
        "{} duplicate groups, {} with conflicting labels",
        s.duplicate_groups, s.conflicting_groups
    );
    println!(
        "{} problem rows{}",
        s.problems.len(),
        if s.problems.is_empty() { "" } else { ":" }
    );
    for p in s.problems.iter().take(20) {
        println!("  line {}: {}", p.line, p.reason);
    }
    if s.problems.len() > 20 {
        println!(
            "  ... and {} more (use --json for all)",
            s.problems.len() - 20
        );
    }
    Ok(ExitCode::SUCCESS)
}
