//! The headless command line: the same engine and label-quality functions the window uses,
//! for scripts and GPU servers. Human-readable progress goes to stderr; results (and `--json`)
//! go to stdout. One file per command family; this one holds the parser, the dispatch and the
//! helpers they share.

mod bench;
mod distil;
mod predict;
mod quality;
#[cfg(feature = "serve")]
mod serve;
mod stats;
mod team;
mod team_bench;
mod train;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::{Dataset, ImportOptions, LabelSet};
use crate::engine::device::DeviceChoice;
use crate::engine::kernels;
use crate::engine::metrics::Metrics;
use crate::engine::model::source;
use crate::workbench::open::{read_rows, ChoiceSource, ReadRows};

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
    /// Compute every padded position and every token of the last layer, as PyTorch does,
    /// instead of only what the answer needs (the like-for-like benchmark). Also TWEETLAB_DENSE=1.
    #[arg(long, global = true)]
    dense: bool,
    /// Dense layers' arithmetic: `auto` (bf16 where the CPU multiplies bf16 natively, with AMX
    /// or AVX512-BF16; fp32 elsewhere), `fp32`, or `bf16` (emulated, slower, without those
    /// units). Sums and weights stay f32. Also TWEETLAB_PRECISION.
    #[arg(long, global = true, value_parser = ["auto", "fp32", "bf16"])]
    precision: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
    /// A CSV to open in the desktop workbench.
    csv: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Fine-tune a BERT model on a labelled CSV and save the best epoch.
    Train(train::TrainArgs),
    /// Train a fast student (MiniLM by default) on a teacher run's probabilities, mixed with
    /// the labels, on the labelled rows and any unlabelled tweets.
    #[command(alias = "distil")]
    Distill(distil::DistilArgs),
    /// Predict every row of a CSV and write a predictions CSV.
    Predict(predict::PredictArgs),
    /// Score a fine-tuned model on a labelled CSV.
    Eval(predict::EvalArgs),
    /// Show how much each word pushes a text towards "disaster".
    Explain(predict::ExplainArgs),
    /// Measure training and inference throughput (same fields as bench_torch.py).
    Bench(bench::BenchArgs),
    /// Summarise a CSV: rows, labels, duplicates, conflicts and problem rows.
    Stats(stats::StatsArgs),
    /// Rank labelled rows by how likely their label is wrong (k-fold, out-of-sample).
    Suspects(quality::SuspectsArgs),
    /// Simulate labelling a labelled CSV with the active-learning queue and in random order:
    /// F1 on held-out rows against labels used.
    LearningCurve(quality::CurveArgs),
    /// Serve a fine-tuned model over HTTP (SageMaker and text-embeddings-inference routes),
    /// with dynamic batching.
    #[cfg(feature = "serve")]
    Serve(serve::ServeArgs),
    /// Manage pretrained models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Label one dataset as a team on a shared PostgreSQL database: per-annotator labels,
    /// K labels per row, agreement and review.
    Team(team::TeamArgs),
}

/// How to read the CSV when its column names, delimiter or label values are not the usual ones.
#[derive(Args, Debug, Clone, Default)]
pub struct ImportArgs {
    /// Column holding the text (default: text, tweet, content, message, body or post, also as a
    /// word of the header: `Tweet Text`).
    #[arg(long)]
    text_column: Option<String>,
    /// Column holding the label (default: target, label, labels, class or category). Without
    /// --labels, each distinct value of a named column is a class (0/1 stays binary).
    #[arg(long)]
    label_column: Option<String>,
    /// Column holding the row id (default: id; else row numbers).
    #[arg(long)]
    id_column: Option<String>,
    /// Field delimiter: , ; tab | (default: sniffed from the first rows).
    #[arg(long, value_parser = parse_delimiter)]
    delimiter: Option<u8>,
    /// Classes and the label values meaning each: `NAME=VALUE,VALUE;NAME=VALUE;…` (2 to 20).
    #[arg(long)]
    labels: Option<String>,
    /// Comma-separated label values meaning "not labelled yet" (with --labels).
    #[arg(long, value_delimiter = ',')]
    unlabelled_values: Vec<String>,
    /// Comma-separated label values meaning "disaster" (default: 1,1.0,true).
    #[arg(long, value_delimiter = ',')]
    positive: Option<Vec<String>>,
    /// Comma-separated label values meaning "not a disaster" (default: 0,0.0,false).
    #[arg(long, value_delimiter = ',')]
    negative: Option<Vec<String>>,
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "\\t" | "\t" | "tab" => Ok(b'\t'),
        "|" | "pipe" => Ok(b'|'),
        other => Err(format!("unknown delimiter `{other}`: use , ; tab or |")),
    }
}

impl ImportArgs {
    /// Only the flags that say where the text is: for files read for their texts alone.
    pub fn text_only(&self) -> Self {
        Self {
            text_column: self.text_column.clone(),
            delimiter: self.delimiter,
            ..Self::default()
        }
    }

    /// The import choice these flags make; None when no import flag is given, so that the
    /// file is read as the window reads it (`workbench::open::import_choice`).
    pub fn given(&self) -> anyhow::Result<Option<ImportOptions>> {
        let any = self.text_column.is_some()
            || self.label_column.is_some()
            || self.id_column.is_some()
            || self.delimiter.is_some()
            || self.labels.is_some()
            || !self.unlabelled_values.is_empty()
            || self.positive.is_some()
            || self.negative.is_some();
        if any {
            self.options().map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn options(&self) -> anyhow::Result<ImportOptions> {
        let binary = (self.positive.is_some() || self.negative.is_some()).then(|| {
            let default = LabelSet::default();
            LabelSet::binary(
                self.negative
                    .clone()
                    .unwrap_or_else(|| default.classes[0].values.clone()),
                self.positive
                    .clone()
                    .unwrap_or_else(|| default.classes[1].values.clone()),
            )
        });
        let labels = match (&self.labels, binary) {
            (Some(_), Some(_)) => {
                anyhow::bail!("--labels names every class: leave out --positive and --negative")
            }
            (Some(spec), None) => Some(
                LabelSet::parse_spec(spec, &self.unlabelled_values)
                    .map_err(|e| anyhow::anyhow!("--labels: {e}"))?,
            ),
            (None, binary) => binary,
        };
        Ok(ImportOptions {
            text_column: self.text_column.clone(),
            label_column: self.label_column.clone(),
            id_column: self.id_column.clone(),
            labels,
            delimiter: self.delimiter,
            ..Default::default()
        })
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Longest input in tokens (default: what the model was trained with).
    #[arg(long)]
    pub max_len: Option<usize>,
}

#[derive(Subcommand, Debug)]
enum ModelCommand {
    /// Find or download a pretrained model and print its local directory.
    Fetch {
        /// A local directory or Hub id (default: the default model).
        source: Option<String>,
    },
    /// List encoders known to work, with their size and estimated epoch time.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The known models as a table (or JSON), with the epoch time each would take on the Kaggle
/// disaster tweets, scaled from the default model's measured one.
fn model_list(json: bool) -> String {
    use crate::engine::model::catalog::{
        epoch_seconds, KNOWN_MODELS, MEASURED_DEFAULT_SECONDS_PER_1000,
    };
    use crate::engine::model::config::supported_model_types;
    const ROWS: usize = 6091;
    let minutes = |m: &crate::engine::model::catalog::KnownModel| {
        epoch_seconds(m, ROWS, MEASURED_DEFAULT_SECONDS_PER_1000) / 60.0
    };
    if json {
        let rows: Vec<serde_json::Value> = KNOWN_MODELS
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id, "model_type": m.model_type, "params_millions": m.params_m,
                    "layers": m.layers, "hidden": m.hidden, "languages": m.languages,
                    "relative_cost": m.relative_cost(), "readable": m.readable(),
                    "epoch_minutes_6091_tweets": minutes(m),
                    "epoch_time": if m.id == KNOWN_MODELS[0].id { "measured" } else { "estimated" },
                    "note": m.note,
                })
            })
            .collect();
        return format!("{}\n", serde_json::to_string_pretty(&rows).expect("JSON"));
    }
    let mut out = format!(
        "{:<60} {:<11} {:>7} {:>8} {:>9}  {}\n",
        "model", "type", "params", "layers", "epoch", "languages; note"
    );
    for m in &KNOWN_MODELS {
        let epoch = format!(
            "{}{:.0} min",
            if m.id == KNOWN_MODELS[0].id { "" } else { "~" },
            minutes(m)
        );
        out += &format!(
            "{:<60} {:<11} {:>6.0}M {:>3} x {:<3} {:>9}  {}; {}\n",
            m.id, m.model_type, m.params_m, m.layers, m.hidden, epoch, m.languages, m.note
        );
    }
    out += &format!(
        "\nEpoch: one pass over the 6,091 Kaggle disaster tweets with validation on a 2-core CPU; \
         measured for the default model, ~ scaled from it by the layers' FLOPs.\n\
         Any other Hub id or local directory of these types works too: {}.\n",
        supported_model_types().join(", ")
    );
    out
}

/// Parses arguments, runs the command, and turns errors into a message and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        // Read by rayon and by candle's matmul; must be set before either starts.
        std::env::set_var("RAYON_NUM_THREADS", n.max(1).to_string());
    }
    if let Some(k) = cli.kernels.as_deref().and_then(kernels::Kernels::parse) {
        kernels::set_kernels(k);
    }
    if cli.dense {
        kernels::set_dense(true);
    }
    if let Some(p) = cli.precision.as_deref().and_then(kernels::Precision::parse) {
        kernels::set_precision(p);
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
        Some(Command::Train(a)) => train::train_cmd(a),
        Some(Command::Distill(a)) => distil::distil_cmd(a),
        Some(Command::Predict(a)) => predict::predict_cmd(a),
        Some(Command::Eval(a)) => predict::eval_cmd(a),
        Some(Command::Explain(a)) => predict::explain_cmd(a),
        Some(Command::Bench(a)) => bench::bench_cmd(a),
        Some(Command::Stats(a)) => stats::stats_cmd(a),
        Some(Command::Suspects(a)) => quality::suspects_cmd(a),
        Some(Command::LearningCurve(a)) => quality::curve_cmd(a),
        #[cfg(feature = "serve")]
        Some(Command::Serve(a)) => serve::serve_cmd(a),
        Some(Command::Team(a)) => team::team_cmd(a),
        Some(Command::Model(ModelCommand::Fetch { source })) => {
            let files = source::resolve(source.as_deref(), &|m| eprintln!("{m}"))?;
            println!("{}", files.dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Model(ModelCommand::List { json })) => {
            print!("{}", model_list(json));
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

/// The rows of `path` as the window shows them (`workbench::open::read_rows`), saying on stderr
/// which import choice applied and any label edits taken from the workspace.
pub(crate) fn load_data(path: &Path, import: &ImportArgs) -> Result<Dataset> {
    Ok(read_data(path, import)?.data)
}

pub(crate) fn read_data(path: &Path, import: &ImportArgs) -> Result<ReadRows> {
    let read = read_rows(path, import.given()?, &mut |_, _| {})?;
    let data = &read.data;
    if !matches!(read.choice, ChoiceSource::Given | ChoiceSource::Detected) {
        eprintln!(
            "reading {} with {} (give import flags to read it otherwise)",
            path.display(),
            read.choice
        );
    }
    if let Some(warning) = read.warning {
        eprintln!(
            "warning: {}: {warning} Read with detected columns; choose with --text-column and --label-column.",
            path.display()
        );
    }
    if read.edits_applied > 0 {
        eprintln!(
            "{} label edits from the workspace (not saved to the file yet) apply",
            read.edits_applied
        );
    }
    for p in data.problems.iter().take(10) {
        eprintln!("warning: {}:{}: {}", path.display(), p.line, p.reason);
    }
    if data.problems.len() > 10 {
        eprintln!("warning: {} more problem rows", data.problems.len() - 10);
    }
    Ok(read)
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
    if m.classes() > 2 {
        let f1: Vec<String> = m.per_class.iter().map(|c| format!("{:.4}", c.f1)).collect();
        format!(
            "acc {:.4}  macro-F1 {:.4}  F1 per class [{}]  confusion (given x predicted) {:?}",
            m.accuracy,
            m.macro_f1,
            f1.join(", "),
            m.confusion.matrix
        )
    } else {
        let c = &m.confusion.matrix;
        let at = |i: usize, j: usize| c.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0);
        format!(
            "acc {:.4}  precision {:.4}  recall {:.4}  F1 {:.4}  confusion [[tn {}, fp {}], [fn {}, tp {}]]",
            m.accuracy,
            m.precision,
            m.recall,
            m.f1,
            at(0, 0),
            at(0, 1),
            at(1, 0),
            at(1, 1)
        )
    }
}
