//! `tweetlab predict`, `eval` and `explain`: a fine-tuned model applied to a CSV or a text.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{bar, fmt_metrics, load_data, ImportArgs, RunArgs};
use crate::data::export::{write_predictions, PredictionFormat};
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
    /// kaggle = id,target; full = id,keyword,text,given,predicted,p_disaster.
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
    #[command(flatten)]
    pub run: RunArgs,
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

pub fn predict_cmd(a: PredictArgs) -> Result<ExitCode> {
    let model = LoadedModel::load_finetuned(&a.model, a.run.device)?;
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

pub fn eval_cmd(a: EvalArgs) -> Result<ExitCode> {
    let model = LoadedModel::load_finetuned(&a.model, a.run.device)?;
    let mut data = load_data(&a.data, &a.import)?;
    data.rows.retain(|t| t.label.is_some());
    if data.rows.is_empty() {
        bail!("{}: no labelled rows to evaluate on", a.data.display());
    }
    let probs = predict_rows(&model, &data, &a.run)?;
    let labels: Vec<u8> = data.rows.iter().filter_map(|t| t.label).collect();
    let m = Metrics::from_probabilities(&labels, &probs);
    if a.json {
        println!("{}", serde_json::to_string(&m)?);
    } else {
        println!("{} rows: {}", labels.len(), fmt_metrics(&m));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn explain_cmd(a: ExplainArgs) -> Result<ExitCode> {
    let model = LoadedModel::load_finetuned(&a.model, a.run.device)?;
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
