//! `tweetlab suspects` and `learning-curve`: label quality on a CSV, with the frozen embeddings
//! cached in the CSV's workspace.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{bar, read_data, ImportArgs};
use crate::data::store::Workspace;
use crate::data::{load_csv_with, Dataset, ImportOptions};
use crate::engine::device::DeviceChoice;
use crate::engine::train::TrainConfig;
use crate::workbench::review::{self, CurveSettings};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuspectMode {
    Fast,
    Full,
}

#[derive(Args, Debug)]
pub struct SuspectsArgs {
    /// Labelled CSV.
    pub csv: PathBuf,
    /// Pretrained encoder whose frozen embeddings feed the per-fold logistic regression.
    #[arg(long, default_value = review::EMBEDDING_MODEL)]
    pub model: String,
    /// Cross-validation folds: every row is scored by a model that did not see it.
    #[arg(long, default_value_t = review::FOLDS)]
    pub folds: usize,
    /// fast = frozen embeddings + logistic regression per fold (seconds to a minute);
    /// full = the model fine-tuned per fold (one training run per fold).
    #[arg(long, default_value = "fast")]
    pub mode: SuspectMode,
    /// Epochs per fold in full mode.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    pub epochs: usize,
    /// Peak learning rate in full mode (small sets want more epochs and a higher rate).
    #[arg(long, default_value_t = TrainConfig::default().lr)]
    pub lr: f64,
    /// Where to write `id,given,suggested,score` (most suspect first); default stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = review::SEED)]
    pub seed: u64,
    /// Longest input in tokens.
    #[arg(long, default_value_t = review::EMBEDDING_MAX_LEN)]
    pub max_len: usize,
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Print a JSON summary (estimated errors, suspects, thresholds) on stdout; needs --out.
    #[arg(long, requires = "out")]
    pub json: bool,
    #[command(flatten)]
    pub import: ImportArgs,
}

#[derive(Args, Debug)]
pub struct CurveArgs {
    /// Labelled CSV: 20% (stratified, seeded) is held out for scoring, the rest is the pool.
    pub csv: PathBuf,
    #[arg(long, default_value = review::EMBEDDING_MODEL)]
    pub model: String,
    /// Rows labelled at random before the first model.
    #[arg(long, default_value_t = review::CURVE_START)]
    pub start: usize,
    /// Rows labelled between two retrainings of the fast model.
    #[arg(long, default_value_t = review::CURVE_STEP)]
    pub step: usize,
    /// Stop after this many labels.
    #[arg(long, default_value_t = review::CURVE_UNTIL)]
    pub until: usize,
    /// Random orders (and starting sets) averaged.
    #[arg(long, default_value_t = review::CURVE_REPEATS)]
    pub repeats: u64,
    #[arg(long, default_value_t = review::EMBEDDING_MAX_LEN)]
    pub max_len: usize,
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// CSV with labels,f1_queue,f1_random; default stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub import: ImportArgs,
}

/// Frozen embeddings of every row of `data` (read from `csv` with `import`), cached in the
/// CSV's workspace. A workspace made here holds the whole file, whatever rows `data` keeps.
fn cached_embeddings(
    csv: &Path,
    options: &ImportOptions,
    data: &Dataset,
    model: &str,
    choice: DeviceChoice,
    max_len: usize,
) -> Result<Vec<Vec<f32>>> {
    let db = Workspace::default_path(csv);
    let (workspace, _) =
        Workspace::open_or_import(&db, csv, || load_csv_with(csv, options, &mut |_, _| {}))?;
    drop(workspace);
    let texts: Vec<&str> = data.rows.iter().map(|t| t.text.as_str()).collect();
    let progress = bar(
        texts.len() as u64,
        "{elapsed_precise} [{bar:30}] {pos}/{len} new embeddings ETA {eta_precise}",
    );
    let (embeddings, from_cache) = crate::label_quality::cached_embeddings(
        &db,
        &texts,
        model,
        choice,
        max_len,
        &|m| eprintln!("{m}"),
        &mut |done, total| {
            progress.set_length(total as u64);
            progress.set_position(done as u64)
        },
    )?;
    progress.finish_and_clear();
    eprintln!(
        "{from_cache} of {} embeddings from the cache in {}",
        texts.len(),
        db.display()
    );
    Ok(embeddings)
}

pub fn curve_cmd(a: CurveArgs) -> Result<ExitCode> {
    if a.step == 0 {
        bail!("--step must be at least 1 (rows labelled between two retrainings)");
    }
    let read = read_data(&a.csv, &a.import)?;
    let mut data = read.data;
    data.rows.retain(|t| t.label.is_some());
    if data.rows.len() < 50 {
        bail!(
            "{}: {} labelled rows; a learning curve needs at least 50",
            a.csv.display(),
            data.rows.len()
        );
    }
    let features = cached_embeddings(&a.csv, &read.options, &data, &a.model, a.device, a.max_len)?;
    let curve = review::simulate(
        &data.rows,
        &features,
        data.layout.labels.len(),
        CurveSettings {
            start: a.start,
            step: a.step,
            until: a.until,
            repeats: a.repeats,
        },
    );
    let mut out = String::from("labels,f1_queue,f1_random\n");
    for ((labels, q), (_, rd)) in curve.queue.iter().zip(&curve.random) {
        out.push_str(&format!("{labels},{q:.4},{rd:.4}\n"));
    }
    match &a.out {
        Some(path) => {
            crate::data::atomic::write_atomic(path, |w| {
                std::io::Write::write_all(w, out.as_bytes())
            })
            .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {} points to {}", curve.queue.len(), path.display());
        }
        None => print!("{out}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn suspects_cmd(a: SuspectsArgs) -> Result<ExitCode> {
    let read = read_data(&a.csv, &a.import)?;
    let data = &read.data;
    let labelled = data.rows.iter().filter(|t| t.label.is_some()).count();
    if labelled < 2 * a.folds.max(2) {
        bail!(
            "{}: {labelled} labelled rows; {} folds need at least {}",
            a.csv.display(),
            a.folds,
            2 * a.folds.max(2)
        );
    }
    let started = std::time::Instant::now();
    let report = match a.mode {
        SuspectMode::Fast => {
            let embeddings =
                cached_embeddings(&a.csv, &read.options, data, &a.model, a.device, a.max_len)?;
            eprintln!(
                "{:.1} s loading the model and embedding",
                started.elapsed().as_secs_f64()
            );
            crate::label_quality::suspects(
                &data.rows,
                &embeddings,
                data.layout.labels.len(),
                a.folds,
                a.seed,
            )
        }
        SuspectMode::Full => {
            let work = tempfile::tempdir().context("a temporary folder for the fold models")?;
            let config = TrainConfig {
                epochs: a.epochs,
                lr: a.lr,
                max_len: a.max_len,
                seed: a.seed,
                device: a.device,
                ..TrainConfig::default()
            };
            crate::label_quality::suspects_fine_tuned(
                &data.rows,
                &data.layout.labels.names(),
                &a.model,
                &config,
                a.folds,
                work.path(),
                &mut |done, folds| eprintln!("fold {done} of {folds} fine-tuned and scored"),
            )?
        }
    };
    let total = started.elapsed().as_secs_f64();
    let issues = &report.issues;
    let per_class: Vec<String> = issues
        .estimated_errors
        .iter()
        .enumerate()
        .map(|(c, n)| format!("{n} labelled {}", data.layout.labels.cell(c as u8)))
        .collect();
    eprintln!(
        "{labelled} labelled rows, {}-fold out-of-sample accuracy {:.4}; estimated label errors: {}; the first {} rows are the suspects ({total:.1} s in all)",
        a.folds,
        report.accuracy,
        per_class.join(", "),
        issues.suspects
    );
    match &a.out {
        Some(out) => {
            crate::label_quality::write_suspects(out, &data.rows, &data.layout.labels, &report)
                .with_context(|| format!("writing {}", out.display()))?;
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "labelled": labelled,
                        "folds": a.folds,
                        "accuracy": report.accuracy,
                        "estimated_errors": issues.estimated_errors,
                        "suspects": issues.suspects,
                        "thresholds": issues.thresholds,
                        "confident_joint": issues.confident_joint,
                        "seconds": total,
                    })
                );
            }
        }
        None => crate::label_quality::write_suspects_to(
            std::io::stdout().lock(),
            &data.rows,
            &data.layout.labels,
            &report,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}
