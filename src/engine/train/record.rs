//! The run record: one typed shape per concept from the training loop to the screen. A step is a
//! [`StepRecord`] and an epoch an [`EpochRecord`] in the loop's events, in the workspace (through
//! [`RunRecorder`]), in the run file next to the weights ([`RunRecord`]), in `train --json` and in
//! the window's curves (read back by [`recorded_runs`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::atomic::write_bytes_atomic;
use crate::data::store::{MetricKind, RunLog, RunStatus, StoreError};
use crate::engine::metrics::Metrics;
use crate::engine::model::checkpoint::RUN_FILE;
use crate::engine::model::classifier::Pooling;
use crate::engine::train::{DistilRecord, TrainConfig, TrainEvent};
use crate::engine::EngineError;

/// One optimisation step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub epoch: usize,
    /// 1-based step over the whole run.
    pub step: usize,
    pub total_steps: usize,
    pub loss: f32,
    pub lr: f64,
    pub samples_per_s: f64,
}

/// One epoch: training loss, and validation loss and metrics when rows were held out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "EpochJson")]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub val: Option<Metrics>,
    pub seconds: f64,
}

/// An epoch as written now, or as workspaces before the typed record kept it (F1 and accuracy
/// only, the epoch in the row's key).
#[derive(Deserialize)]
#[serde(untagged)]
enum EpochJson {
    Record {
        epoch: usize,
        train_loss: f64,
        val_loss: Option<f64>,
        val: Option<Metrics>,
        seconds: f64,
    },
    Older {
        train_loss: f64,
        val_loss: Option<f64>,
        f1: Option<f64>,
        accuracy: Option<f64>,
        seconds: f64,
    },
}

impl From<EpochJson> for EpochRecord {
    fn from(j: EpochJson) -> Self {
        match j {
            EpochJson::Record {
                epoch,
                train_loss,
                val_loss,
                val,
                seconds,
            } => Self {
                epoch,
                train_loss,
                val_loss,
                val,
                seconds,
            },
            EpochJson::Older {
                train_loss,
                val_loss,
                f1,
                accuracy,
                seconds,
            } => Self {
                epoch: 0,
                train_loss,
                val_loss,
                val: f1.map(|f1| Metrics {
                    f1,
                    accuracy: accuracy.unwrap_or_default(),
                    ..Metrics::default()
                }),
                seconds,
            },
        }
    }
}

/// tweetlab's record of how a checkpoint was made, written next to its weights (`RUN_FILE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub tweetlab_version: String,
    pub base_model: String,
    pub pooling: Pooling,
    pub config: TrainConfig,
    pub train_rows: usize,
    pub val_rows: usize,
    pub device: String,
    /// The dense layers' arithmetic that ran ("fp32", "bf16-amx", ...); empty in older records.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub precision: String,
    pub epochs: Vec<EpochRecord>,
    /// The epoch whose weights are saved.
    pub saved_epoch: usize,
    /// Set when the run learnt from a teacher run too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distilled: Option<DistilRecord>,
}

impl RunRecord {
    /// Reads `dir/tweetlab_run.json` if there is one.
    pub fn read(dir: &Path) -> Result<Option<Self>, EngineError> {
        let path = dir.join(RUN_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| EngineError::io(&path, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| EngineError::BadModel(format!("{}: {e}", path.display())))
    }

    /// Writes `dir/tweetlab_run.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<(), EngineError> {
        let path = dir.join(RUN_FILE);
        let json = serde_json::to_vec_pretty(self).expect("the run record serialises");
        write_bytes_atomic(&path, &json).map_err(|e| EngineError::io(&path, e))
    }

    /// The Hugging Face model card (`README.md`): pipeline tag, base model, class names, the
    /// saved epoch's validation figures and how to use it; a mean-pooling head is marked, since
    /// `transformers` would load it with CLS pooling and answer differently.
    pub fn model_card(&self, labels: &[String]) -> String {
        use std::fmt::Write;
        let mut card = String::new();
        let _ = writeln!(
            card,
            "---\npipeline_tag: text-classification\nlibrary_name: transformers\nbase_model: {}\ntags:\n- tweetlab\n- text-classification\n---\n",
            self.base_model
        );
        let _ = writeln!(
            card,
            "# Tweet classifier\n\nFine-tuned from `{}` with tweetlab {} on {} labelled rows ({} held out for validation), {} epochs, learning rate {}, batch {}, inputs up to {} tokens, device {}.\n",
            self.base_model,
            self.tweetlab_version,
            self.train_rows + self.val_rows,
            self.val_rows,
            self.epochs.len(),
            self.config.lr,
            self.config.batch_size,
            self.config.max_len,
            self.device
        );
        if let Some(d) = &self.distilled {
            let _ = writeln!(
                card,
                "Distilled from a fine-tuned `{}` (the run in `{}`): it learnt the teacher's probabilities at temperature {} (weight {} on labelled rows, the rest from the labels) and on {} unlabelled rows.\n",
                d.teacher_model, d.teacher, d.temperature, d.teacher_weight, d.unlabelled_rows
            );
        }
        if self.config.pooling == Pooling::Mean {
            let _ = writeln!(
                card,
                "**Mean pooling.** This head reads the mean of the token states. `transformers` loads these weights but its classification head reads the first token ([CLS], `<s>`) instead, so its probabilities are not this model's: serve it with `tweetlab serve` or `tweetlab predict`.\n"
            );
        }
        let _ = writeln!(card, "## Labels\n\n| id | label |\n|---|---|");
        for (i, l) in labels.iter().enumerate() {
            let _ = writeln!(card, "| {i} | {l} |");
        }
        let saved = self.epochs.iter().find(|e| e.epoch == self.saved_epoch);
        if let Some(m) = saved.and_then(|e| e.val.as_ref()) {
            let _ = writeln!(
                card,
                "\n## Validation (epoch {})\n\n| metric | value |\n|---|---|\n| {} | {:.4} |\n| accuracy | {:.4} |\n| precision | {:.4} |\n| recall | {:.4} |",
                self.saved_epoch,
                m.f1_name(),
                m.f1,
                m.accuracy,
                m.precision,
                m.recall
            );
            if m.classes() > 2 {
                for (l, c) in labels.iter().zip(&m.per_class) {
                    let _ = writeln!(card, "| F1 {l} | {:.4} |", c.f1);
                }
            }
        }
        let _ = writeln!(
            card,
            "\n## Use\n\n```python\nfrom transformers import pipeline\nclassify = pipeline(\"text-classification\", model=\"PATH/TO/THIS/DIR\", top_k=None)\nclassify(\"Forest fire near La Ronge Sask. Canada\")\n```\n\nor `tweetlab serve --model PATH/TO/THIS/DIR`, then `curl -s 127.0.0.1:8080/invocations -d '{{\"inputs\": \"Forest fire near La Ronge\"}}'`."
        );
        card
    }

    /// Writes the model card as `dir/README.md`, atomically.
    pub fn write_model_card(&self, dir: &Path, labels: &[String]) -> Result<(), EngineError> {
        let path = dir.join("README.md");
        write_bytes_atomic(&path, self.model_card(labels).as_bytes())
            .map_err(|e| EngineError::io(&path, e))
    }
}

/// What a workspace records of a run when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// The pretrained model as the user named it.
    pub model: String,
    /// Where the fine-tuned model is written.
    pub out_dir: PathBuf,
    pub config: TrainConfig,
    pub labelled_rows: usize,
}

/// Writes a run's events into a workspace as they happen.
pub struct RunRecorder {
    log: RunLog,
    run: i64,
}

impl RunRecorder {
    /// Records the start of a run with `settings` in the workspace file `workspace`.
    pub fn start(workspace: &Path, settings: &RunSettings) -> Result<Self, StoreError> {
        let mut log = RunLog::open(workspace)?;
        let run = log.start_run(&settings.model, settings)?;
        Ok(Self { log, run })
    }

    pub fn run_id(&self) -> i64 {
        self.run
    }

    /// Records the steps, epochs and outcome; other events are not kept.
    pub fn record(&mut self, event: &TrainEvent) -> Result<(), StoreError> {
        match event {
            TrainEvent::Step(s) => self.log.record(self.run, MetricKind::Step, s.step, s),
            TrainEvent::Epoch(e) => self.log.record(self.run, MetricKind::Epoch, e.epoch, e),
            TrainEvent::Finished { .. } => self.log.finish_run(self.run, RunStatus::Finished),
            TrainEvent::Cancelled { .. } => self.log.finish_run(self.run, RunStatus::Cancelled),
            TrainEvent::Failed { .. } => self.log.finish_run(self.run, RunStatus::Failed),
            _ => Ok(()),
        }
    }
}

/// A run as a workspace recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRun {
    pub id: i64,
    pub started: String,
    pub status: RunStatus,
    /// None for a run whose settings no longer read.
    pub settings: Option<RunSettings>,
    /// Steps with their loss; steps recorded before the typed record carry only loss and
    /// learning rate.
    pub steps: Vec<StepRecord>,
    pub epochs: Vec<EpochRecord>,
}

impl RecordedRun {
    /// Where its fine-tuned model was written, if that still holds a model.
    pub fn model_dir(&self) -> Option<&Path> {
        self.settings
            .as_ref()
            .map(|s| s.out_dir.as_path())
            .filter(|d| d.join("config.json").is_file())
    }
}

/// Every run the workspace behind `log` recorded, oldest first, with its curves.
pub fn recorded_runs(log: &RunLog) -> Result<Vec<RecordedRun>, StoreError> {
    /// A step as older workspaces stored it.
    #[derive(Deserialize)]
    struct OlderStep {
        loss: f32,
        #[serde(default)]
        lr: f64,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StepJson {
        Record(StepRecord),
        Older(OlderStep),
    }
    let mut out = Vec::new();
    for row in log.runs::<RunSettings>()? {
        let steps = log
            .series::<StepJson>(row.id, MetricKind::Step)?
            .into_iter()
            .map(|(step, s)| match s {
                StepJson::Record(r) => r,
                StepJson::Older(o) => StepRecord {
                    epoch: 0,
                    step,
                    total_steps: 0,
                    loss: o.loss,
                    lr: o.lr,
                    samples_per_s: 0.0,
                },
            })
            .collect();
        let epochs = log
            .series::<EpochRecord>(row.id, MetricKind::Epoch)?
            .into_iter()
            .map(|(epoch, record)| EpochRecord { epoch, ..record })
            .collect();
        out.push(RecordedRun {
            id: row.id,
            started: row.started,
            status: row.status,
            settings: row.settings,
            steps,
            epochs,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::checkpoint::TrainedWith;

    fn epoch(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 0.61,
            val_loss: Some(0.52),
            val: Some(Metrics::from_probabilities(
                &[1, 0, 1],
                &[vec![0.2, 0.8], vec![0.7, 0.3], vec![0.6, 0.4]],
            )),
            seconds: 1.25,
        }
    }

    #[test]
    fn the_loader_reads_what_the_run_record_writes() {
        let dir = tempfile::tempdir().unwrap();
        let record = RunRecord {
            tweetlab_version: "0".into(),
            base_model: "tiny".into(),
            pooling: Pooling::Mean,
            config: TrainConfig {
                max_len: 40,
                ..TrainConfig::default()
            },
            train_rows: 3,
            val_rows: 1,
            device: "cpu".into(),
            precision: String::new(),
            epochs: vec![epoch(1)],
            saved_epoch: 1,
            distilled: None,
        };
        record.write(dir.path()).unwrap();
        assert_eq!(RunRecord::read(dir.path()).unwrap(), Some(record));
        assert_eq!(
            TrainedWith::read(dir.path()).unwrap(),
            Some(TrainedWith {
                pooling: Pooling::Mean,
                max_len: 40
            })
        );
    }

    #[test]
    fn epochs_of_older_workspaces_still_read() {
        let old = serde_json::json!({"train_loss": 0.6, "val_loss": 0.5, "f1": 0.7, "accuracy": 0.8, "seconds": 3.0});
        let e: EpochRecord = serde_json::from_value(old).unwrap();
        assert_eq!(e.val.map(|m| m.f1), Some(0.7));
        assert_eq!(e.val_loss, Some(0.5));
        let new = serde_json::to_value(epoch(2)).unwrap();
        assert_eq!(
            serde_json::from_value::<EpochRecord>(new).unwrap(),
            epoch(2)
        );
    }

    #[test]
    fn the_model_card_names_the_base_labels_metrics_and_marks_mean_pooling() {
        let mut record = RunRecord {
            tweetlab_version: "0".into(),
            base_model: "sentence-transformers/all-MiniLM-L6-v2".into(),
            pooling: Pooling::Cls,
            config: TrainConfig::default(),
            train_rows: 3,
            val_rows: 1,
            device: "cpu".into(),
            precision: String::new(),
            epochs: vec![epoch(1)],
            saved_epoch: 1,
            distilled: None,
        };
        let labels: Vec<String> = ["not_disaster", "disaster"].map(String::from).to_vec();
        let card = record.model_card(&labels);
        assert!(card.starts_with("---\npipeline_tag: text-classification\n"));
        assert!(card.contains("base_model: sentence-transformers/all-MiniLM-L6-v2"));
        assert!(card.contains("| 1 | disaster |"));
        assert!(card.contains("| F1 | "), "{card}");
        assert!(!card.contains("Mean pooling"));
        record.pooling = Pooling::Mean;
        record.config.pooling = Pooling::Mean;
        assert!(record.model_card(&labels).contains("**Mean pooling.**"));
    }
}
