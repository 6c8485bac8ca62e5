//! `tweetlab distill`: train a fast student on a teacher run's probabilities (and the labels).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::train::{follow, labelled_csv, RunArgs};
use super::{load_data, ImportArgs};
use crate::engine::model::source;
use crate::engine::train::{self, Distillation, TrainJob};

#[derive(Args, Debug)]
pub struct DistilArgs {
    /// The teacher: a fine-tuned run's directory (an all-mpnet-base-v2 run, say).
    #[arg(long)]
    pub teacher: PathBuf,
    /// The student's pretrained model: a local directory or a Hugging Face Hub id.
    #[arg(long, default_value = source::DEFAULT_MODEL)]
    pub student: String,
    /// Labelled CSV (columns text and target/label); its rows without a label are learnt from
    /// the teacher alone.
    #[arg(long)]
    pub data: PathBuf,
    /// CSVs of tweets without labels (a text column; any label column is ignored): the student
    /// learns the teacher's answers on them too. Repeat for several files.
    #[arg(long)]
    pub unlabelled: Vec<PathBuf>,
    /// Directory for the distilled model (Hugging Face layout).
    #[arg(long)]
    pub out: PathBuf,
    /// Softmax temperature of the teacher's and the student's probabilities in the teacher's
    /// part of the loss (1 = the teacher's own probabilities).
    #[arg(long, default_value_t = Distillation::DEFAULT_TEMPERATURE)]
    pub temperature: f64,
    /// Share of a labelled row's loss that comes from the teacher (the rest from its label).
    #[arg(long, default_value_t = Distillation::DEFAULT_TEACHER_WEIGHT)]
    pub teacher_weight: f64,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub import: ImportArgs,
}

pub fn distil_cmd(a: DistilArgs) -> Result<ExitCode> {
    let (data, texts, labels) = labelled_csv(&a.data, &a.import)?;
    let mut unlabelled: Vec<String> = data
        .rows
        .iter()
        .filter(|t| t.label.is_none())
        .map(|t| t.text.clone())
        .collect();
    eprintln!(
        "{} labelled and {} unlabelled rows from {}",
        texts.len(),
        unlabelled.len(),
        a.data.display()
    );
    for path in &a.unlabelled {
        let extra = load_data(path, &a.import.text_only())?;
        eprintln!(
            "{} unlabelled rows from {}",
            extra.rows.len(),
            path.display()
        );
        unlabelled.extend(extra.rows.into_iter().map(|t| t.text));
    }
    let config = a.run.config(&a.student);
    let job = TrainJob {
        model: Some(a.student),
        texts,
        labels,
        classes: data.layout.labels.names(),
        out_dir: a.out,
        config,
        distil: Some(Distillation {
            temperature: a.temperature,
            teacher_weight: a.teacher_weight,
            unlabelled,
            ..Distillation::new(a.teacher)
        }),
    };
    follow(train::spawn(job))?.print(a.run.json);
    Ok(ExitCode::SUCCESS)
}
