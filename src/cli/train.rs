//! `tweetlab train`: fine-tune on a labelled CSV, with a progress bar and the epochs as they end.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use indicatif::ProgressBar;

use super::{bar, fmt_metrics, load_data, say, ImportArgs};
use crate::data::team::{Target, TeamDb, Unsettled};
use crate::data::Dataset;
use crate::engine::device::DeviceChoice;
use crate::engine::metrics::Metrics;
use crate::engine::model::classifier::Pooling;
use crate::engine::model::source;
use crate::engine::train::{
    self, fmt_duration, EpochRecord, StepRecord, TrainConfig, TrainEvent, TrainHandle, TrainJob,
};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Labelled CSV (columns text and target/label).
    #[arg(long, required_unless_present = "db", conflicts_with = "db")]
    pub data: Option<PathBuf>,
    /// Train on a team project's final labels instead (a `postgresql://` URL or libpq
    /// `key=value` pairs; the password best as PGPASSWORD). The run is recorded in the project.
    #[arg(long, env = "TWEETLAB_TEAM_DB", hide_env_values = true)]
    pub db: Option<String>,
    /// With --db, rows without a final label: `skip` (left out), `majority` (the label most
    /// annotators gave, where one leads) or `imported` (the file's own label).
    #[arg(long, default_value = "skip", requires = "db")]
    pub unsettled: Unsettled,
    /// Directory for the fine-tuned model (Hugging Face layout).
    #[arg(long)]
    pub out: PathBuf,
    /// Pretrained model: a local directory or a Hugging Face Hub id.
    #[arg(long, default_value = source::DEFAULT_MODEL)]
    pub model: String,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub import: ImportArgs,
}

/// The settings of a run, shared by `train` and `distill`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Passes over the training rows [default: 2; all-mpnet-base-v2: its measured recipe].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Peak learning rate [default: 5e-5; all-mpnet-base-v2: its measured recipe].
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    pub batch_size: usize,
    /// Longest input in tokens; longer texts are truncated.
    #[arg(long, default_value_t = TrainConfig::default().max_len)]
    pub max_len: usize,
    /// Share of labelled rows held out for validation (0 = none).
    #[arg(long, default_value_t = TrainConfig::default().val_split)]
    pub val_split: f64,
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// cls = Hugging Face's pooler (exports match transformers); mean = masked mean.
    #[arg(long, default_value = "cls")]
    pub pooling: Pooling,
    /// Layer-wise learning-rate decay: each transformer layer down learns at this share of
    /// the rate of the one above (1 = the same rate everywhere).
    #[arg(long, default_value_t = TrainConfig::default().layer_lr_decay)]
    pub layer_lr_decay: f64,
    /// Print the run summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl RunArgs {
    /// The run's settings for `model`: its recipe's learning rate and epochs unless given.
    pub fn config(&self, model: &str) -> TrainConfig {
        let recipe = TrainConfig::for_model(model);
        TrainConfig {
            epochs: self.epochs.unwrap_or(recipe.epochs),
            lr: self.lr.unwrap_or(recipe.lr),
            batch_size: self.batch_size,
            max_len: self.max_len,
            val_split: self.val_split,
            seed: self.seed,
            device: self.device,
            pooling: self.pooling,
            layer_lr_decay: self.layer_lr_decay,
            // The global --precision (or TWEETLAB_PRECISION).
            precision: crate::engine::kernels::precision(),
            ..TrainConfig::default()
        }
    }
}

/// The labelled texts to train on, and the team project they came from (to record the run).
struct TrainingRows {
    texts: Vec<String>,
    labels: Vec<u8>,
    classes: Vec<String>,
    team: Option<TeamDb>,
}

/// Where the labelled texts come from: a CSV, or a team project.
fn training_rows(a: &TrainArgs) -> Result<TrainingRows> {
    if let Some(url) = &a.db {
        let mut db = TeamDb::connect(&Target::parse(url)?)?;
        let set = db.training_set(a.unsettled)?;
        eprintln!(
            "{} rows from the team project at {}: {} settled, {} by majority, {} imported labels, {} left out (--unsettled {:?})",
            set.texts.len(),
            db.target(),
            set.settled,
            set.from_majority,
            set.from_imported,
            set.left_out,
            a.unsettled
        );
        if set.texts.is_empty() {
            bail!("the team project has no rows with a final label yet: settle some, or train with --unsettled majority");
        }
        return Ok(TrainingRows {
            texts: set.texts,
            labels: set.labels,
            classes: set.classes,
            team: Some(db),
        });
    }
    let path = a.data.as_ref().expect("clap requires --data or --db");
    let (data, texts, labels) = labelled_csv(path, &a.import)?;
    eprintln!("{} labelled rows from {}", texts.len(), path.display());
    Ok(TrainingRows {
        texts,
        labels,
        classes: data.layout.labels.names(),
        team: None,
    })
}

/// A CSV read as the window reads it, with its labelled texts and their labels; refused when
/// no row has a label.
pub fn labelled_csv(path: &Path, import: &ImportArgs) -> Result<(Dataset, Vec<String>, Vec<u8>)> {
    let data = load_data(path, import)?;
    let (texts, labels): (Vec<String>, Vec<u8>) =
        data.labelled().map(|(t, l)| (t.text.clone(), l)).unzip();
    if texts.is_empty() {
        bail!(
            "{}: no labelled rows (column {:?})",
            path.display(),
            data.label_column().unwrap_or("none found")
        );
    }
    Ok((data, texts, labels))
}

pub fn train_cmd(a: TrainArgs) -> Result<ExitCode> {
    let TrainingRows {
        texts,
        labels,
        classes,
        mut team,
    } = training_rows(&a)?;
    let job = TrainJob {
        model: Some(a.model.clone()),
        texts,
        labels,
        classes,
        out_dir: a.out.clone(),
        config: a.run.config(&a.model),
        distil: None,
    };
    let outcome = follow(train::spawn(job))?;
    if let Some(db) = team.as_mut() {
        let r = a.run.config(&a.model);
        let settings = serde_json::json!({
            "epochs": r.epochs, "lr": r.lr, "batch_size": r.batch_size, "max_len": r.max_len,
            "val_split": r.val_split, "seed": r.seed, "unsettled": a.unsettled,
            "model_dir": outcome.dir,
        });
        let metrics = serde_json::json!({
            "saved_epoch": outcome.saved_epoch, "val": outcome.val, "seconds": outcome.seconds,
        });
        match db.record_run(&a.model, &settings, &metrics) {
            Ok(run) => eprintln!("recorded as run {run} of the team project"),
            Err(e) => eprintln!("warning: the run was not recorded in the team project: {e}"),
        }
    }
    outcome.print(a.run.json);
    Ok(ExitCode::SUCCESS)
}

/// How a run ended well.
pub struct Outcome {
    pub saved_epoch: usize,
    pub val: Option<Metrics>,
    pub dir: PathBuf,
    pub seconds: f64,
    pub epochs: Vec<EpochRecord>,
}

impl Outcome {
    /// The summary on stdout: JSON with `--json`, else two lines.
    pub fn print(&self, json: bool) {
        if json {
            let summary = serde_json::json!({
                "model_dir": self.dir, "saved_epoch": self.saved_epoch, "seconds": self.seconds,
                "val": self.val, "epochs": self.epochs,
            });
            println!("{summary}");
        } else {
            println!(
                "model saved to {} (epoch {}, {:.0} s)",
                self.dir.display(),
                self.saved_epoch,
                self.seconds
            );
            if let Some(m) = &self.val {
                println!("validation: {}", fmt_metrics(m));
            }
        }
    }
}

/// Shows a run's events on stderr (a progress bar on a terminal, a line now and then in a log)
/// until it ends.
pub fn follow(handle: TrainHandle) -> Result<Outcome> {
    let mut progress: Option<ProgressBar> = None;
    let mut epochs: Vec<EpochRecord> = Vec::new();
    let mut outcome = Err(anyhow::anyhow!("training stopped without a result"));
    for event in handle.events.iter() {
        match event {
            TrainEvent::Status { message } => say(&progress, &message),
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
            TrainEvent::Estimate {
                seconds_per_epoch,
                measured_steps,
            } => say(
                &progress,
                &format!(
                    "an epoch's training steps will take about {} (measured on {measured_steps} steps)",
                    fmt_duration(seconds_per_epoch)
                ),
            ),
            TrainEvent::Step(StepRecord {
                epoch,
                step,
                total_steps,
                loss,
                lr,
                samples_per_s,
            }) => {
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
            TrainEvent::Epoch(e) => {
                let line = match (e.val_loss, &e.val) {
                    (Some(vl), Some(m)) => format!(
                        "epoch {}: train loss {:.4}, val loss {vl:.4}, {} ({:.0} s)",
                        e.epoch,
                        e.train_loss,
                        fmt_metrics(m),
                        e.seconds
                    ),
                    _ => format!(
                        "epoch {}: train loss {:.4} ({:.0} s)",
                        e.epoch, e.train_loss, e.seconds
                    ),
                };
                say(&progress, &line);
                epochs.push(e);
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
    Ok(Outcome {
        saved_epoch,
        val,
        dir,
        seconds,
        epochs,
    })
}
