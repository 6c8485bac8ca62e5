//! `tweetlab predict`, `eval` and `explain`: a fine-tuned model applied to a CSV or a text.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{bar, fmt_metrics, load_data, ImportArgs, RunArgs};
use crate::data::export::{write_predictions, PredictionFormat, Predictions};
use crate::data::Dataset;
use crate::engine::explain::explain;
use crate::engine::infer;
use crate::engine::metrics::Metrics;
use crate::engine::model::LoadedModel;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A fine-tuned model directory (from `tweetlab train`).
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    /// kaggle = id,target; full = id,keyword,text,given,predicted, p_<class> per class, flags.
    #[arg(long, default_value = "kaggle")]
    pub format: PredictionFormat,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub import: ImportArgs,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub import: ImportArgs,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// The text to explain.
    pub text: String,
    #[arg(long)]
    pub json: bool,
    /// Score the words for this class (a name; default: the predicted class).
    #[arg(long)]
    pub class: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

fn predict_rows(model: &LoadedModel, data: &Dataset, run: &RunArgs) -> Result<Predictions> {
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
    Ok(Predictions {
        classes: model.labels.clone(),
        probabilities: probs,
    })
}

pub fn predict_cmd(a: PredictArgs) -> Result<ExitCode> {
    let model = LoadedModel::load_finetuned(&a.model, a.run.device)?;
    let data = load_data(&a.data, &a.import)?;
    let predictions = predict_rows(&model, &data, &a.run)?;
    write_predictions(
        &a.out,
        &data.rows,
        &data.layout.labels,
        &predictions,
        a.format,
    )
    .with_context(|| format!("writing {}", a.out.display()))?;
    let mut counts = vec![0usize; predictions.classes.len()];
    for i in 0..predictions.probabilities.len() {
        counts[predictions.top(i) as usize] += 1;
    }
    let counts: Vec<String> = predictions
        .classes
        .iter()
        .zip(&counts)
        .map(|(c, n)| format!("{n} {c}"))
        .collect();
    eprintln!(
        "wrote {} predictions ({}) to {}",
        predictions.probabilities.len(),
        counts.join(", "),
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn eval_cmd(a: EvalArgs) -> Result<ExitCode> {
    let model = LoadedModel::load_finetuned(&a.model, a.run.device)?;
    let mut data = load_data(&a.data, &a.import)?;
    data.rows.retain(|t| t.label.is_some());
    if data.rows.is_empty() {
        bail!("{}: no labelled rows to evaluate on", a.data.display());
    }
    // The file's classes as the model's: by name.
    let to_model: Vec<Option<u8>> = data
        .layout
        .labels
        .names()
        .iter()
        .map(|n| model.labels.iter().position(|m| m == n).map(|i| i as u8))
        .collect();
    if to_model.iter().any(Option::is_none) {
        bail!(
            "{}: the file's classes ({}) are not the model's ({})",
            a.data.display(),
            data.layout.labels.names().join(", "),
            model.labels.join(", ")
        );
    }
    let predictions = predict_rows(&model, &data, &a.run)?;
    let labels: Vec<u8> = data
        .rows
        .iter()
        .filter_map(|t| t.label.and_then(|l| to_model[l as usize]))
        .collect();
    let m = Metrics::from_probabilities(&labels, &predictions.probabilities);
    if a.json {
        println!("{}", serde_json::to_string(&m)?);
    } else {
        println!("{} rows: {}", labels.len(), fmt_metrics(&m));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn explain_cmd(a: ExplainArgs) -> Result<ExitCode> {
    let model = LoadedModel::load_finetuned(&a.model, a.run.device)?;
    let class = match &a.class {
        None => None,
        Some(name) => Some(
            model
                .labels
                .iter()
                .position(|l| l.eq_ignore_ascii_case(name))
                .with_context(|| {
                    format!(
                        "no class `{name}`: the model's classes are {}",
                        model.labels.join(", ")
                    )
                })? as u8,
        ),
    };
    let e = explain(
        &model,
        &a.text,
        a.run.max_len.unwrap_or_else(|| model.default_max_len()),
        class,
    )?;
    if a.json {
        println!("{}", serde_json::to_string(&e)?);
    } else {
        for (name, p) in model.labels.iter().zip(&e.probabilities) {
            println!("p({name}) = {p:.4}");
        }
        println!(
            "words for `{}` (positive: towards it):",
            model.labels[e.class as usize]
        );
        for w in &e.words {
            println!("{:>+8.3}  {}", w.score, w.word);
        }
    }
    Ok(ExitCode::SUCCESS)
}
