//! The headless command line: the same engine functions the GUI uses, for scripts and GPU
//! servers. Human-readable progress goes to stderr; results (and `--json`) go to stdout.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::export::{write_predictions, PredictionFormat};
use crate::data::stats::stats;
use crate::data::store::Workspace;
use crate::data::{load_csv_with, Dataset, ImportOptions, LabelMap};
use crate::engine::bench::{self, BenchConfig};
use crate::engine::classifier::Pooling;
use crate::engine::device::{self, DeviceChoice};
use crate::engine::explain::explain;
use crate::engine::infer;
use crate::engine::metrics::Metrics;
use crate::engine::model::LoadedModel;
use crate::engine::ops;
use crate::engine::source;
use crate::engine::train::{self, TrainConfig, TrainEvent, TrainJob};

#[derive(Parser, Debug)]
#[command(
    name = "tweetlab",
    version,
    about = "Triage tweets with a fine-tuned BERT: train, predict, explain."
)]
pub struct Cli {
    /// CPU threads for tensor work (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// CPU kernels: `fused` (custom ops with their own backward passes, the default) or `plain`
    /// (composed candle ops, the reference). Also TWEETLAB_KERNELS.
    #[arg(long, global = true, value_parser = ["fused", "plain"])]
    kernels: Option<String>,
    /// Compute every padded position, as PyTorch does, instead of real tokens only (the
    /// like-for-like benchmark). Also TWEETLAB_DENSE=1.
    #[arg(long, global = true)]
    dense: bool,
    #[command(subcommand)]
    command: Option<Command>,
    /// A CSV to open in the desktop workbench.
    csv: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Fine-tune a BERT model on a labelled CSV and save the best epoch.
    Train(TrainArgs),
    /// Predict every row of a CSV and write a predictions CSV.
    Predict(PredictArgs),
    /// Score a fine-tuned model on a labelled CSV.
    Eval(EvalArgs),
    /// Show how much each word pushes a text towards "disaster".
    Explain(ExplainArgs),
    /// Measure training and inference throughput (same fields as bench_torch.py).
    Bench(BenchArgs),
    /// Summarise a CSV: rows, labels, duplicates, conflicts and problem rows.
    Stats(StatsArgs),
    /// Rank labelled rows by how likely their label is wrong (k-fold, out-of-sample).
    Suspects(SuspectsArgs),
    /// Simulate labelling a labelled CSV with the active-learning queue and in random order:
    /// F1 on held-out rows against labels used.
    LearningCurve(CurveArgs),
    /// Manage pretrained models.
    #[command(subcommand)]
    Model(ModelCommand),
}

/// How to read the CSV when its column names or label values are not the usual ones.
#[derive(Args, Debug, Clone, Default)]
struct ImportArgs {
    /// Column holding the text (default: text, tweet, content, message or body).
    #[arg(long)]
    text_column: Option<String>,
    /// Column holding the label (default: target, label, class or labels).
    #[arg(long)]
    label_column: Option<String>,
    /// Column holding the row id (default: id; else row numbers).
    #[arg(long)]
    id_column: Option<String>,
    /// Comma-separated label values meaning "disaster" (default: 1,1.0,true).
    #[arg(long, value_delimiter = ',')]
    positive: Option<Vec<String>>,
    /// Comma-separated label values meaning "not a disaster" (default: 0,0.0,false).
    #[arg(long, value_delimiter = ',')]
    negative: Option<Vec<String>>,
}

impl ImportArgs {
    fn options(&self) -> ImportOptions {
        let labels = (self.positive.is_some() || self.negative.is_some()).then(|| {
            let default = LabelMap::default();
            LabelMap {
                negative: self.negative.clone().unwrap_or(default.negative),
                positive: self.positive.clone().unwrap_or(default.positive),
            }
        });
        ImportOptions {
            text_column: self.text_column.clone(),
            label_column: self.label_column.clone(),
            id_column: self.id_column.clone(),
            labels,
        }
    }
}

#[derive(Args, Debug)]
struct StatsArgs {
    csv: PathBuf,
    /// Print one JSON object: rows, labelled, per_class, duplicate_groups, conflicting_groups, problems.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    import: ImportArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SuspectMode {
    Fast,
    Full,
}

#[derive(Args, Debug)]
struct SuspectsArgs {
    /// Labelled CSV.
    csv: PathBuf,
    /// Pretrained encoder whose frozen embeddings feed the per-fold logistic regression.
    #[arg(long, default_value = source::DEFAULT_MODEL)]
    model: String,
    /// Cross-validation folds: every row is scored by a model that did not see it.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// fast = frozen embeddings + logistic regression per fold (seconds to a minute);
    /// full = the model fine-tuned per fold (one training run per fold).
    #[arg(long, default_value = "fast")]
    mode: SuspectMode,
    /// Epochs per fold in full mode.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    /// Peak learning rate in full mode (small sets want more epochs and a higher rate).
    #[arg(long, default_value_t = TrainConfig::default().lr)]
    lr: f64,
    /// Where to write `id,given,suggested,score` (most suspect first); default stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Longest input in tokens.
    #[arg(long, default_value_t = 64)]
    max_len: usize,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Print a JSON summary (estimated errors, suspects, thresholds) on stdout; needs --out.
    #[arg(long, requires = "out")]
    json: bool,
    #[command(flatten)]
    import: ImportArgs,
}

#[derive(Args, Debug)]
struct CurveArgs {
    /// Labelled CSV: 20% (stratified, seeded) is held out for scoring, the rest is the pool.
    csv: PathBuf,
    #[arg(long, default_value = source::DEFAULT_MODEL)]
    model: String,
    /// Rows labelled at random before the first model.
    #[arg(long, default_value_t = 20)]
    start: usize,
    /// Rows labelled between two retrainings of the fast model.
    #[arg(long, default_value_t = 20)]
    step: usize,
    /// Stop after this many labels.
    #[arg(long, default_value_t = 1000)]
    until: usize,
    /// Random orders (and starting sets) averaged.
    #[arg(long, default_value_t = 3)]
    repeats: u64,
    #[arg(long, default_value_t = 64)]
    max_len: usize,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// CSV with labels,f1_queue,f1_random; default stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    import: ImportArgs,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Labelled CSV (columns text and target/label).
    #[arg(long)]
    data: PathBuf,
    /// Directory for the fine-tuned model (Hugging Face layout).
    #[arg(long)]
    out: PathBuf,
    /// Pretrained model: a local directory or a Hugging Face Hub id.
    #[arg(long, default_value = source::DEFAULT_MODEL)]
    model: String,
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = TrainConfig::default().lr)]
    lr: f64,
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    batch_size: usize,
    /// Longest input in tokens; longer texts are truncated.
    #[arg(long, default_value_t = TrainConfig::default().max_len)]
    max_len: usize,
    /// Share of labelled rows held out for validation (0 = none).
    #[arg(long, default_value_t = TrainConfig::default().val_split)]
    val_split: f64,
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// cls = Hugging Face's pooler (exports match transformers); mean = masked mean.
    #[arg(long, default_value = "cls")]
    pooling: Pooling,
    /// Print the run summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    import: ImportArgs,
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// A fine-tuned model directory (from `tweetlab train`).
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// kaggle = id,target; full = id,keyword,text,given,predicted,p_disaster.
    #[arg(long, default_value = "kaggle")]
    format: PredictionFormat,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    import: ImportArgs,
}

#[derive(Args, Debug)]
struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    import: ImportArgs,
}

#[derive(Args, Debug)]
struct ExplainArgs {
    #[arg(long)]
    model: PathBuf,
    /// The text to explain.
    text: String,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Longest input in tokens (default: what the model was trained with).
    #[arg(long)]
    max_len: Option<usize>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Pretrained model: a local directory or a Hub id.
    #[arg(long, default_value = source::DEFAULT_MODEL)]
    model: String,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    #[arg(long, default_value_t = BenchConfig::default().steps)]
    steps: usize,
    #[arg(long, default_value_t = BenchConfig::default().warmup)]
    warmup: usize,
    #[arg(long, default_value_t = BenchConfig::default().seq)]
    seq: usize,
    #[arg(long)]
    json: bool,
    /// Instead of the model: time importing this CSV and building a workspace from it.
    #[arg(long, value_name = "CSV")]
    load: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum ModelCommand {
    /// Find or download a pretrained model and print its local directory.
    Fetch {
        /// A local directory or Hub id (default: the default model).
        source: Option<String>,
    },
}

/// Parses arguments, runs the command, and turns errors into a message and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        // Read by rayon and by candle's matmul; must be set before either starts.
        std::env::set_var("RAYON_NUM_THREADS", n.max(1).to_string());
    }
    if let Some(k) = cli.kernels.as_deref().and_then(ops::Kernels::parse) {
        ops::set_kernels(k);
    }
    if cli.dense {
        ops::set_dense(true);
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::Train(a)) => train_cmd(a),
        Some(Command::Predict(a)) => predict_cmd(a),
        Some(Command::Eval(a)) => eval_cmd(a),
        Some(Command::Explain(a)) => explain_cmd(a),
        Some(Command::Bench(a)) => bench_cmd(a),
        Some(Command::Stats(a)) => stats_cmd(a),
        Some(Command::Suspects(a)) => suspects_cmd(a),
        Some(Command::LearningCurve(a)) => curve_cmd(a),
        Some(Command::Model(ModelCommand::Fetch { source })) => {
            let files = source::resolve(source.as_deref(), &|m| eprintln!("{m}"))?;
            println!("{}", files.dir.display());
            Ok(ExitCode::SUCCESS)
        }
        None => open_workbench(cli.csv),
    }
}

/// The sample data, opened when the workbench starts without a file (from a checkout).
const SAMPLE_CSV: &str = "sample-data/train.csv";

#[cfg(feature = "gui")]
fn open_workbench(csv: Option<PathBuf>) -> Result<ExitCode> {
    let sample = Path::new(SAMPLE_CSV)
        .is_file()
        .then(|| PathBuf::from(SAMPLE_CSV));
    crate::app::run(csv, sample)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "gui"))]
fn open_workbench(csv: Option<PathBuf>) -> Result<ExitCode> {
    let what = csv
        .map(|p| format!(" for {}", p.display()))
        .unwrap_or_default();
    eprintln!(
        "This tweetlab was built without the desktop workbench{what} (feature `gui`). Use the command line:\n  \
         tweetlab train --data {SAMPLE_CSV} --out runs/sample\n  tweetlab --help"
    );
    Ok(ExitCode::from(2))
}

fn load_data(path: &Path, import: &ImportArgs) -> Result<Dataset> {
    let data = load_csv_with(path, &import.options(), &mut |_, _| {})?;
    for p in data.problems.iter().take(10) {
        eprintln!("warning: {}:{}: {}", path.display(), p.line, p.reason);
    }
    if data.problems.len() > 10 {
        eprintln!("warning: {} more problem rows", data.problems.len() - 10);
    }
    Ok(data)
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

fn spinner(message: &str) -> ProgressBar {
    let s = ProgressBar::new_spinner();
    s.set_message(message.to_string());
    s.enable_steady_tick(Duration::from_millis(120));
    s
}

/// Prints a line above the progress bar, or plainly when no bar is drawn (stderr is a file).
fn say(progress: &Option<ProgressBar>, line: &str) {
    match progress {
        Some(p) if !p.is_hidden() => p.println(line),
        _ => eprintln!("{line}"),
    }
}

fn fmt_metrics(m: &Metrics) -> String {
    format!(
        "acc {:.4}  precision {:.4}  recall {:.4}  F1 {:.4}  confusion [[tn {}, fp {}], [fn {}, tp {}]]",
        m.accuracy,
        m.precision,
        m.recall,
        m.f1,
        m.confusion.true_negative,
        m.confusion.false_positive,
        m.confusion.false_negative,
        m.confusion.true_positive
    )
}

fn train_cmd(a: TrainArgs) -> Result<ExitCode> {
    let data = load_data(&a.data, &a.import)?;
    let (texts, labels): (Vec<String>, Vec<u8>) =
        data.labelled().map(|(t, l)| (t.text.clone(), l)).unzip();
    if texts.is_empty() {
        bail!(
            "{}: no labelled rows (column {:?})",
            a.data.display(),
            data.label_column().unwrap_or("none found")
        );
    }
    eprintln!("{} labelled rows from {}", texts.len(), a.data.display());
    let job = TrainJob {
        model: Some(a.model),
        texts,
        labels,
        out_dir: a.out.clone(),
        config: TrainConfig {
            epochs: a.epochs,
            lr: a.lr,
            batch_size: a.batch_size,
            max_len: a.max_len,
            val_split: a.val_split,
            seed: a.seed,
            device: a.device,
            pooling: a.pooling,
            ..TrainConfig::default()
        },
    };
    let handle = train::spawn(job);
    let mut progress: Option<ProgressBar> = None;
    let mut epochs = Vec::new();
    let mut outcome = Err(anyhow::anyhow!("training stopped without a result"));
    for event in handle.events.iter() {
        match event {
            TrainEvent::Status { message } => eprintln!("{message}"),
            TrainEvent::Started {
                device,
                train_rows,
                val_rows,
                total_steps,
                ..
            } => {
                eprintln!("training on {device}: {train_rows} rows, {val_rows} held out for validation, {total_steps} steps");
                progress = Some(bar(
                    total_steps as u64,
                    "{elapsed_precise} [{bar:30}] step {pos}/{len} ETA {eta_precise}  {msg}",
                ));
            }
            TrainEvent::Step {
                epoch,
                step,
                total_steps,
                loss,
                lr,
                samples_per_s,
            } => {
                let message = format!(
                    "epoch {epoch} loss {loss:.4} lr {lr:.2e} {samples_per_s:.1} samples/s"
                );
                if let Some(p) = &progress {
                    p.inc(1);
                    p.set_message(message.clone());
                }
                // No bar is drawn when stderr is a log file: print a line now and then instead.
                if !std::io::stderr().is_terminal() && (step % 25 == 0 || step == total_steps) {
                    eprintln!("step {step}/{total_steps}: {message}");
                }
            }
            TrainEvent::Epoch {
                epoch,
                train_loss,
                val_loss,
                val,
                seconds,
            } => {
                let line = match (val_loss, val) {
                    (Some(vl), Some(m)) => format!("epoch {epoch}: train loss {train_loss:.4}, val loss {vl:.4}, {} ({seconds:.0} s)", fmt_metrics(&m)),
                    _ => format!("epoch {epoch}: train loss {train_loss:.4} ({seconds:.0} s)"),
                };
                say(&progress, &line);
                epochs.push(serde_json::json!({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val": val.map(|m| m.to_json()), "seconds": seconds}));
            }
            TrainEvent::CheckpointSaved { epoch, dir } => {
                let line = format!("saved epoch {epoch} to {}", dir.display());
                say(&progress, &line);
            }
            TrainEvent::Finished {
                saved_epoch,
                val,
                dir,
                seconds,
            } => {
                outcome = Ok((saved_epoch, val, dir, seconds));
            }
            TrainEvent::Cancelled { steps_done } => {
                outcome = Err(anyhow::anyhow!("cancelled after {steps_done} steps"))
            }
            TrainEvent::Failed { message } => outcome = Err(anyhow::anyhow!(message)),
        }
    }
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    handle.join();
    let (saved_epoch, val, dir, seconds) = outcome?;
    if a.json {
        let summary = serde_json::json!({
            "model_dir": dir, "saved_epoch": saved_epoch, "seconds": seconds,
            "val": val.map(|m| m.to_json()), "epochs": epochs,
        });
        println!("{summary}");
    } else {
        println!(
            "model saved to {} (epoch {saved_epoch}, {seconds:.0} s)",
            dir.display()
        );
        if let Some(m) = val {
            println!("validation: {}", fmt_metrics(&m));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_finetuned(dir: &Path, choice: DeviceChoice) -> Result<LoadedModel> {
    let files = source::inspect_dir(dir, &dir.display().to_string())?;
    let device = device::select(choice)?;
    let model = LoadedModel::load(&files, &device, None, 0)?;
    if !model.head_is_trained() {
        bail!(
            "{} has no trained classifier head (no classifier.weight): fine-tune it first with `tweetlab train --model {} ...`",
            dir.display(),
            dir.display()
        );
    }
    Ok(model)
}

fn predict_rows(model: &LoadedModel, data: &Dataset, run: &RunArgs) -> Result<Vec<f32>> {
    let texts: Vec<&str> = data.rows.iter().map(|t| t.text.as_str()).collect();
    let progress = bar(
        texts.len() as u64,
        "{elapsed_precise} [{bar:30}] {pos}/{len} texts ETA {eta_precise}",
    );
    let probs = infer::probabilities(
        model,
        &texts,
        run.max_len.unwrap_or_else(|| model.default_max_len()),
        run.batch_size,
        &mut |done, _| progress.set_position(done as u64),
    )?;
    progress.finish_and_clear();
    Ok(probs)
}

/// Frozen embeddings of every row of `data` (read from `csv`), cached in the CSV's workspace
/// (created, never overwritten, if there is none yet).
fn cached_embeddings(
    csv: &Path,
    data: &Dataset,
    model: &str,
    choice: DeviceChoice,
    max_len: usize,
) -> Result<Vec<Vec<f32>>> {
    let files = source::resolve(Some(model), &|m| eprintln!("{m}"))?;
    let device = device::select(choice)?;
    let model = LoadedModel::load(&files, &device, None, 0)?;
    let db = Workspace::default_path(csv);
    if !db.is_file() {
        Workspace::create(&db, csv, data)?;
    }
    let mut cache = crate::data::store::EmbeddingCache::open(&db)?;
    let texts: Vec<&str> = data.rows.iter().map(|t| t.text.as_str()).collect();
    let progress = bar(
        texts.len() as u64,
        "{elapsed_precise} [{bar:30}] {pos}/{len} new embeddings ETA {eta_precise}",
    );
    let (embeddings, from_cache) = crate::label_quality::embeddings(
        &model,
        &files.dir.display().to_string(),
        &texts,
        max_len,
        Some(&mut cache),
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

fn curve_cmd(a: CurveArgs) -> Result<ExitCode> {
    let mut data = load_data(&a.csv, &a.import)?;
    data.rows.retain(|t| t.label.is_some());
    if data.rows.len() < 50 {
        bail!(
            "{}: {} labelled rows; a learning curve needs at least 50",
            a.csv.display(),
            data.rows.len()
        );
    }
    let features = cached_embeddings(&a.csv, &data, &a.model, a.device, a.max_len)?;
    let labels: Vec<u8> = data.rows.iter().map(|t| t.label.unwrap_or(0)).collect();
    let sums = crate::label_quality::compare_strategies(
        &features, &labels, a.start, a.step, a.until, a.repeats,
    );
    let mut out = String::from("labels,f1_queue,f1_random\n");
    for (labels, q, rd) in &sums {
        out.push_str(&format!("{labels},{q:.4},{rd:.4}\n"));
    }
    match &a.out {
        Some(path) => {
            crate::data::atomic::write_atomic(path, |w| {
                std::io::Write::write_all(w, out.as_bytes())
            })
            .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {} points to {}", sums.len(), path.display());
        }
        None => print!("{out}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn suspects_cmd(a: SuspectsArgs) -> Result<ExitCode> {
    let data = load_data(&a.csv, &a.import)?;
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
            let embeddings = cached_embeddings(&a.csv, &data, &a.model, a.device, a.max_len)?;
            eprintln!(
                "{:.1} s loading the model and embedding",
                started.elapsed().as_secs_f64()
            );
            crate::label_quality::suspects(&data.rows, &embeddings, a.folds, a.seed)
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
    eprintln!(
        "{labelled} labelled rows, {}-fold out-of-sample accuracy {:.4}; estimated label errors: {} labelled 0, {} labelled 1; the first {} rows are the suspects ({total:.1} s in all)",
        a.folds,
        report.accuracy,
        issues.estimated_errors[0],
        issues.estimated_errors[1],
        issues.suspects
    );
    match &a.out {
        Some(out) => {
            crate::label_quality::write_suspects(out, &data.rows, &report)
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
        None => {
            crate::label_quality::write_suspects_to(std::io::stdout().lock(), &data.rows, &report)?
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn predict_cmd(a: PredictArgs) -> Result<ExitCode> {
    let model = load_finetuned(&a.model, a.run.device)?;
    let data = load_data(&a.data, &a.import)?;
    let probs = predict_rows(&model, &data, &a.run)?;
    write_predictions(&a.out, &data.rows, &probs, a.format)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let positive = probs.iter().filter(|&&p| p >= 0.5).count();
    eprintln!(
        "wrote {} predictions ({positive} disaster) to {}",
        probs.len(),
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn eval_cmd(a: EvalArgs) -> Result<ExitCode> {
    let model = load_finetuned(&a.model, a.run.device)?;
    let mut data = load_data(&a.data, &a.import)?;
    data.rows.retain(|t| t.label.is_some());
    if data.rows.is_empty() {
        bail!("{}: no labelled rows to evaluate on", a.data.display());
    }
    let probs = predict_rows(&model, &data, &a.run)?;
    let labels: Vec<u8> = data.rows.iter().filter_map(|t| t.label).collect();
    let m = Metrics::from_probabilities(&labels, &probs);
    if a.json {
        println!("{}", m.to_json());
    } else {
        println!("{} rows: {}", labels.len(), fmt_metrics(&m));
    }
    Ok(ExitCode::SUCCESS)
}

fn explain_cmd(a: ExplainArgs) -> Result<ExitCode> {
    let model = load_finetuned(&a.model, a.run.device)?;
    let e = explain(
        &model,
        &a.text,
        a.run.max_len.unwrap_or_else(|| model.default_max_len()),
    )?;
    if a.json {
        println!("{}", serde_json::to_string(&e)?);
    } else {
        println!("p(disaster) = {:.4}", e.p_disaster);
        for w in &e.words {
            println!("{:>+8.3}  {}", w.score, w.word);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Peak resident memory of this process so far, in MiB (Linux; NaN elsewhere).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn bench_load(csv: &Path, json: bool) -> Result<ExitCode> {
    let bytes = std::fs::metadata(csv)
        .with_context(|| format!("reading {}", csv.display()))?
        .len();
    let t = std::time::Instant::now();
    let data = load_csv_with(csv, &ImportOptions::default(), &mut |_, _| {})?;
    let parse_s = t.elapsed().as_secs_f64();
    let rss_after_parse = peak_rss_mib();
    let text_mib = data.rows.iter().map(|r| r.text.len()).sum::<usize>() as f64 / 1048576.0;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.sqlite");
    let t = std::time::Instant::now();
    drop(Workspace::create(&db, csv, &data)?);
    let import_s = t.elapsed().as_secs_f64();
    drop(data);
    let t = std::time::Instant::now();
    let ws = Workspace::open(&db)?;
    let open_s = t.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "csv": csv, "bytes": bytes, "rows": ws.rows().len(), "text_mib": (text_mib * 10.0).round() / 10.0,
        "parse_s": (parse_s * 1000.0).round() / 1000.0,
        "rows_per_s": (ws.rows().len() as f64 / parse_s).round(),
        "peak_rss_mib_after_parse": rss_after_parse.round(),
        "workspace_import_s": (import_s * 1000.0).round() / 1000.0,
        "workspace_open_s": (open_s * 1000.0).round() / 1000.0,
        "peak_rss_mib": peak_rss_mib().round(),
    });
    if json {
        println!("{report}");
    } else {
        println!(
            "{} rows ({:.0} MiB of text) parsed in {parse_s:.2} s, peak memory {rss_after_parse:.0} MiB; workspace built in {import_s:.2} s, reopened in {open_s:.2} s",
            ws.rows().len(),
            text_mib
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_cmd(a: BenchArgs) -> Result<ExitCode> {
    if let Some(csv) = &a.load {
        return bench_load(csv, a.json);
    }
    let files = source::resolve(Some(&a.model), &|m| eprintln!("{m}"))?;
    let device = device::select(a.device)?;
    let model = LoadedModel::load(&files, &device, Some(Pooling::Cls), 0)?;
    let cfg = BenchConfig {
        seq: a.seq,
        steps: a.steps,
        warmup: a.warmup,
        ..BenchConfig::default()
    };
    let s = spinner("benchmarking");
    let report = bench::run(&model, &cfg, &mut |m| s.set_message(m.to_string()))?;
    s.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} on {}: training {:.2} samples/s ({:.1} ms/step, batch {}), inference {:.2} samples/s ({:.1} ms/batch, batch {}), length {}, {} kernels, {}",
            report.model,
            report.device,
            report.train_samples_per_s,
            report.train_ms_per_step,
            report.train_bs,
            report.infer_samples_per_s,
            report.infer_ms_per_batch,
            report.infer_bs,
            report.seq,
            report.kernels,
            if report.unpadded {
                "padding skipped"
            } else {
                "padding computed"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn stats_cmd(a: StatsArgs) -> Result<ExitCode> {
    let data = load_csv_with(&a.csv, &a.import.options(), &mut |_, _| {})?;
    let s = stats(&data);
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} rows, {} labelled (0: {}, 1: {})",
        a.csv.display(),
        s.rows,
        s.labelled,
        s.per_class.negative,
        s.per_class.positive
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
