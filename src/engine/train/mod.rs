//! Fine-tuning: AdamW with warmup and linear decay, gradient clipping, dynamic padding,
//! a stratified validation split, best-epoch checkpoints, and typed progress events.

mod config;
pub mod distil;
mod evaluate;
pub mod record;
mod step;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use candle_core::Tensor;
use crossbeam_channel::{Receiver, Sender};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

pub use config::TrainConfig;
pub use distil::{DistilRecord, Distillation};
pub use evaluate::evaluate;
pub use record::{EpochRecord, RunRecord, StepRecord};
pub use step::{
    clip_gradients, layer_lr_scale, learning_rate, train_step, train_step_timed, Optimisers,
    StepTimes, Targets,
};

use crate::engine::batching::bucketed_batches;
use crate::engine::device;
use crate::engine::kernels::{self, MatmulPath};
use crate::engine::metrics::Metrics;
use crate::engine::model::tokenize::{Batch, Encoded};
use crate::engine::model::{checkpoint, source, LoadedModel};
use crate::engine::EngineError;
use distil::{RowTarget, SoftTargets};

/// What the training thread reports, in this order: Status*, Started, (Step+, Epoch,
/// CheckpointSaved?)*, then exactly one of Finished, Cancelled or Failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TrainEvent {
    /// A slow preparation step (fetching the model, tokenising).
    Status {
        message: String,
    },
    Started {
        device: String,
        train_rows: usize,
        val_rows: usize,
        epochs: usize,
        steps_per_epoch: usize,
        total_steps: usize,
    },
    /// How long an epoch's training steps will take, measured on the run's first steps: sent
    /// once, early in the first epoch, so a run too slow for the machine can be cancelled.
    Estimate {
        seconds_per_epoch: f64,
        measured_steps: usize,
    },
    Step(StepRecord),
    Epoch(EpochRecord),
    CheckpointSaved {
        epoch: usize,
        dir: PathBuf,
    },
    Finished {
        saved_epoch: usize,
        val: Option<Metrics>,
        dir: PathBuf,
        seconds: f64,
    },
    Cancelled {
        steps_done: usize,
    },
    Failed {
        message: String,
    },
}

/// Everything one training run needs.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// Model directory or Hub id; None = the default model.
    pub model: Option<String>,
    pub texts: Vec<String>,
    /// Indices into `classes`.
    pub labels: Vec<u8>,
    /// The class names, in order: the head gets one output per class and the export's
    /// `id2label` these names.
    pub classes: Vec<String>,
    /// Where the best checkpoint is written.
    pub out_dir: PathBuf,
    pub config: TrainConfig,
    /// Learn from a teacher run too (and from its unlabelled texts).
    pub distil: Option<Distillation>,
}

/// A run in progress on its own thread.
pub struct TrainHandle {
    pub events: Receiver<TrainEvent>,
    cancel: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TrainHandle {
    /// Asks the run to stop; it does so before its next step.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts `job` on a new thread. Every outcome, errors included, arrives as an event.
pub fn spawn(job: TrainJob) -> TrainHandle {
    let (tx, rx) = crossbeam_channel::unbounded();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let thread = std::thread::Builder::new()
        .name("tweetlab-train".into())
        .spawn(move || {
            // A panic deep in candle must still end the run with an event, or a window waiting
            // for one would show "training" for ever.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&job, &tx, &flag)));
            let message = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(panic) => format!("the training thread stopped: {}", panic_message(&panic)),
            };
            let _ = tx.send(TrainEvent::Failed { message });
        })
        .expect("can spawn a thread");
    TrainHandle {
        events: rx,
        cancel,
        thread: Some(thread),
    }
}

/// The text a panic carried, for an error message.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Stratified split of `labels` into (train, validation) indices, shuffled with `seed`.
pub fn stratified_split(labels: &[u8], val_split: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    let classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    for class in 0..classes as u8 {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        idx.shuffle(&mut rng);
        let mut n_val = (idx.len() as f64 * val_split).round() as usize;
        if val_split > 0.0 && n_val == 0 && idx.len() >= 2 {
            n_val = 1;
        }
        n_val = n_val.min(idx.len().saturating_sub(1));
        val.extend_from_slice(&idx[..n_val]);
        train.extend_from_slice(&idx[n_val..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// Runs `job` on the calling thread, reporting on `events`, stopping when `cancel` is set.
pub fn run(
    job: &TrainJob,
    events: &Sender<TrainEvent>,
    cancel: &AtomicBool,
) -> Result<(), EngineError> {
    kernels::with_precision(job.config.precision, || {
        run_with_precision(job, events, cancel)
    })
}

fn run_with_precision(
    job: &TrainJob,
    events: &Sender<TrainEvent>,
    cancel: &AtomicBool,
) -> Result<(), EngineError> {
    let send = |e: TrainEvent| {
        let _ = events.send(e);
    };
    let cfg = &job.config;
    if job.texts.len() != job.labels.len() {
        return Err(EngineError::Data(format!(
            "{} texts but {} labels",
            job.texts.len(),
            job.labels.len()
        )));
    }
    let k = job.classes.len();
    if !(2..=crate::data::labels::MAX_CLASSES).contains(&k) {
        return Err(EngineError::Data(format!(
            "{k} classes: tweetlab trains 2 to {} classes",
            crate::data::labels::MAX_CLASSES
        )));
    }
    if let Some(bad) = job.labels.iter().find(|&&l| l as usize >= k) {
        return Err(EngineError::Data(format!(
            "label {bad} is not one of the {k} classes ({})",
            job.classes.join(", ")
        )));
    }
    if job.texts.len() < 2 {
        return Err(EngineError::Data(
            "need at least 2 labelled rows to train".into(),
        ));
    }
    if job.labels.iter().all(|&l| l == job.labels[0]) {
        let other = if k == 2 {
            "the other class"
        } else {
            "another class"
        };
        return Err(EngineError::Data(format!(
            "every labelled row is `{}`: label some tweets of {other} first",
            job.classes[job.labels[0] as usize]
        )));
    }
    if cfg.max_len < 2 {
        return Err(EngineError::Data(format!(
            "max length {} leaves no room for text ([CLS] and [SEP] take 2 tokens): use at least 8",
            cfg.max_len
        )));
    }
    if cfg.epochs == 0
        || cfg.batch_size == 0
        || !cfg.lr.is_finite()
        || cfg.lr <= 0.0
        || !(0.0..1.0).contains(&cfg.val_split)
        || !(cfg.layer_lr_decay > 0.0 && cfg.layer_lr_decay <= 1.0)
    {
        return Err(EngineError::Data(format!(
            "bad settings: epochs {} and batch size {} must be positive, lr {} positive, validation split {} in [0, 1), layer lr decay {} in (0, 1]",
            cfg.epochs, cfg.batch_size, cfg.lr, cfg.val_split, cfg.layer_lr_decay
        )));
    }
    let started = Instant::now();
    let files = source::resolve(job.model.as_deref(), &|m| {
        send(TrainEvent::Status {
            message: m.to_string(),
        })
    })?;
    let device = device::select(cfg.device)?;
    send(TrainEvent::Status {
        message: format!("loading {}", files.origin),
    });
    let model = LoadedModel::load_for(
        &files,
        &device,
        Some(cfg.pooling),
        cfg.seed,
        Some(&job.classes),
    )?;
    let max_len = cfg.max_len.min(model.net.encoder.config.max_tokens());

    // Unlabelled texts (distillation only) come after the labelled ones: indices from
    // `labelled` on have no label and are always trained on.
    let labelled = job.texts.len();
    let unlabelled: &[String] = job.distil.as_ref().map_or(&[], |d| &d.unlabelled);
    let texts: Vec<&str> = job
        .texts
        .iter()
        .chain(unlabelled)
        .map(String::as_str)
        .collect();
    send(TrainEvent::Status {
        message: format!("tokenising {} texts", texts.len()),
    });
    let encoded = model.tokenizer.encode_all(&texts, max_len)?;
    let lengths: Vec<usize> = encoded.iter().map(Encoded::len).collect();
    let (mut train_idx, val_idx) = stratified_split(&job.labels, cfg.val_split, cfg.seed);
    train_idx.extend(labelled..texts.len());

    let teacher = match &job.distil {
        Some(d) => {
            match teacher_logits(d, job, &texts, &train_idx, max_len, &device, &send, cancel) {
                Ok(t) => Some(t),
                Err(EngineError::Cancelled) => {
                    send(TrainEvent::Cancelled { steps_done: 0 });
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        None => None,
    };

    let steps_per_epoch = train_idx.len().div_ceil(cfg.batch_size);
    let total_steps = steps_per_epoch * cfg.epochs;
    let warmup = (total_steps as f64 * cfg.warmup_ratio).round() as usize;
    let layers = model.net.encoder.config.num_hidden_layers;
    let mut opt = Optimisers::with_lr_scales(&model.net.vars, cfg.lr, cfg.weight_decay, |n| {
        layer_lr_scale(n, layers, cfg.layer_lr_decay)
    })?;
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut dropout_rng = StdRng::seed_from_u64(cfg.seed.wrapping_add(1));

    let precision = kernels::matmul_path_in_use(&device);
    send(TrainEvent::Started {
        device: match precision {
            MatmulPath::Fp32 => device::describe(&device),
            p => format!("{}, {} dense layers", device::describe(&device), p.name()),
        },
        train_rows: train_idx.len(),
        val_rows: val_idx.len(),
        epochs: cfg.epochs,
        steps_per_epoch,
        total_steps,
    });

    let mut record = RunRecord {
        tweetlab_version: env!("CARGO_PKG_VERSION").to_string(),
        base_model: files.origin.clone(),
        pooling: model.net.pooling,
        config: TrainConfig {
            max_len,
            ..cfg.clone()
        },
        train_rows: train_idx.len(),
        val_rows: val_idx.len(),
        device: device::describe(&device),
        precision: precision.name().into(),
        epochs: Vec::new(),
        saved_epoch: 0,
        distilled: teacher.as_ref().map(|t| t.record.clone()),
    };
    let epoch_tokens: usize = train_idx.iter().map(|&i| lengths[i]).sum();
    let mut estimate = EpochEstimate::default();
    let mut best: Option<Metrics> = None;
    let mut step = 0usize;
    for epoch in 1..=cfg.epochs {
        let epoch_start = Instant::now();
        let mut loss_sum = 0f64;
        let mut seen = 0usize;
        for batch in bucketed_batches(&train_idx, &lengths, cfg.batch_size, &mut rng) {
            if cancel.load(Ordering::SeqCst) {
                send(TrainEvent::Cancelled { steps_done: step });
                return Ok(());
            }
            let t = Instant::now();
            let lr = learning_rate(cfg.lr, step, warmup, total_steps);
            opt.set_learning_rate(lr);
            let items: Vec<&Encoded> = batch.iter().map(|&i| &encoded[i]).collect();
            let b = Batch::from_encoded(&items, model.tokenizer.pad_id, None, &device)?;
            let targets = match &teacher {
                None => {
                    let y: Vec<u32> = batch.iter().map(|&i| job.labels[i] as u32).collect();
                    Targets::Labels(Tensor::new(y.as_slice(), &device)?)
                }
                Some(t) => {
                    let rows: Vec<RowTarget> = batch
                        .iter()
                        .map(|&i| RowTarget {
                            label: job.labels.get(i).copied(),
                            teacher_logits: t.logits[i].as_deref(),
                        })
                        .collect();
                    Targets::Distil(SoftTargets::new(
                        &rows,
                        k,
                        t.record.temperature,
                        t.record.teacher_weight,
                        &device,
                        candle_core::DType::F32,
                    )?)
                }
            };
            step += 1;
            let loss = train_step(
                &model,
                &mut opt,
                &b,
                &targets,
                &mut dropout_rng,
                cfg.max_grad_norm,
                step,
            )?;
            let batch_tokens: usize = batch.iter().map(|&i| lengths[i]).sum();
            if let Some(seconds_per_epoch) =
                estimate.add(step, t.elapsed().as_secs_f64(), batch_tokens, epoch_tokens)
            {
                send(TrainEvent::Estimate {
                    seconds_per_epoch,
                    measured_steps: EpochEstimate::MEASURED,
                });
            }
            loss_sum += loss as f64 * batch.len() as f64;
            seen += batch.len();
            send(TrainEvent::Step(StepRecord {
                epoch,
                step,
                total_steps,
                loss,
                lr,
                samples_per_s: batch.len() as f64 / t.elapsed().as_secs_f64(),
            }));
        }
        if cancel.load(Ordering::SeqCst) {
            send(TrainEvent::Cancelled { steps_done: step });
            return Ok(());
        }
        let train_loss = loss_sum / seen.max(1) as f64;
        let (val_loss, val) = if val_idx.is_empty() {
            (None, None)
        } else {
            send(TrainEvent::Status {
                message: format!("validating epoch {epoch}"),
            });
            let (l, m) = evaluate(&model, &encoded, &job.labels, &val_idx, cfg.eval_batch_size)?;
            (Some(l), Some(m))
        };
        let seconds = epoch_start.elapsed().as_secs_f64();
        let epoch_record = EpochRecord {
            epoch,
            train_loss,
            val_loss,
            val: val.clone(),
            seconds,
        };
        record.epochs.push(epoch_record.clone());
        send(TrainEvent::Epoch(epoch_record));
        let improved = match (&val, &best) {
            (Some(now), Some(before)) => now.f1 > before.f1,
            _ => true,
        };
        if improved {
            best = val;
            record.saved_epoch = epoch;
            checkpoint::save(&job.out_dir, &model)?;
        }
        // Written after every epoch: the record of every epoch stays current even when the
        // weights stay those of an earlier one.
        record.write(&job.out_dir)?;
        record.write_model_card(&job.out_dir, &model.labels)?;
        if improved {
            send(TrainEvent::CheckpointSaved {
                epoch,
                dir: job.out_dir.clone(),
            });
        }
    }
    send(TrainEvent::Finished {
        saved_epoch: record.saved_epoch,
        val: best,
        dir: job.out_dir.clone(),
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(())
}

/// The teacher's logits for the rows the student trains on (None elsewhere), and how it was set.
struct Teacher {
    logits: Vec<Option<Vec<f32>>>,
    record: DistilRecord,
}

/// Loads the teacher run, checks it answers in the job's classes, and scores the training texts
/// with it; the teacher is dropped before the student trains.
#[allow(clippy::too_many_arguments)]
fn teacher_logits(
    d: &Distillation,
    job: &TrainJob,
    texts: &[&str],
    train_idx: &[usize],
    max_len: usize,
    device: &candle_core::Device,
    send: &dyn Fn(TrainEvent),
    cancel: &AtomicBool,
) -> Result<Teacher, EngineError> {
    let temperature_ok = d.temperature.is_finite() && d.temperature > 0.0;
    if !temperature_ok || !(0.0..=1.0).contains(&d.teacher_weight) {
        return Err(EngineError::Data(format!(
            "bad distillation settings: temperature {} must be positive, teacher weight {} in [0, 1]",
            d.temperature, d.teacher_weight
        )));
    }
    let origin = d.teacher.display().to_string();
    let files = source::inspect_dir(&d.teacher, &origin)?;
    send(TrainEvent::Status {
        message: format!("loading the teacher {origin}"),
    });
    let teacher = LoadedModel::load(&files, device, None, 0)?;
    if !teacher.head_is_trained() {
        return Err(EngineError::BadModel(format!(
            "the teacher {origin} has no trained classifier head: give a fine-tuned run's directory"
        )));
    }
    if teacher.labels != job.classes {
        return Err(EngineError::Data(format!(
            "the teacher {origin} answers in the classes ({}), the data has ({}): distil from a run trained on these classes",
            teacher.labels.join(", "),
            job.classes.join(", ")
        )));
    }
    let items: Vec<&str> = train_idx.iter().map(|&i| texts[i]).collect();
    let encoded = teacher
        .tokenizer
        .encode_all(&items, max_len.min(teacher.net.encoder.config.max_tokens()))?;
    let mut tenth = 0;
    let scored = crate::engine::infer::encoded_logits(
        &teacher,
        &encoded,
        TrainConfig::default().eval_batch_size,
        &mut |done, total| {
            if done * 10 / total > tenth || done == total {
                tenth = done * 10 / total;
                send(TrainEvent::Status {
                    message: format!("the teacher scored {done} of {total} texts"),
                });
            }
        },
        Some(cancel),
    )?;
    let mut logits = vec![None; texts.len()];
    for (&i, z) in train_idx.iter().zip(scored) {
        logits[i] = Some(z);
    }
    let teacher_model = RunRecord::read(&d.teacher)
        .ok()
        .flatten()
        .map_or(origin, |r| r.base_model);
    Ok(Teacher {
        logits,
        record: d.record(&teacher_model),
    })
}

/// Seconds per epoch from the first steps' time per token (the first step, which allocates and
/// warms caches, left out): batches differ in length, so time follows tokens, not rows.
#[derive(Default)]
struct EpochEstimate {
    seconds: f64,
    tokens: usize,
}

impl EpochEstimate {
    /// Steps timed after the first.
    const MEASURED: usize = 3;

    /// Adds step `step`'s time; returns the estimate once, at the last measured step.
    fn add(
        &mut self,
        step: usize,
        seconds: f64,
        tokens: usize,
        epoch_tokens: usize,
    ) -> Option<f64> {
        if !(2..=Self::MEASURED + 1).contains(&step) {
            return None;
        }
        self.seconds += seconds;
        self.tokens += tokens;
        (step == Self::MEASURED + 1 && self.tokens > 0)
            .then(|| self.seconds / self.tokens as f64 * epoch_tokens as f64)
    }
}

/// "7 min 30 s", "45 s".
pub fn fmt_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_disjoint_and_complete() {
        let labels: Vec<u8> = (0..100).map(|i| u8::from(i % 4 == 0)).collect();
        let (train, val) = stratified_split(&labels, 0.2, 3);
        assert_eq!(train.len() + val.len(), 100);
        assert!(train.iter().all(|i| !val.contains(i)));
        let val_pos = val.iter().filter(|&&i| labels[i] == 1).count();
        assert_eq!(val_pos, 5);
        assert_eq!(val.len(), 20);
    }

    #[test]
    fn epoch_estimate_scales_the_timed_steps_by_tokens() {
        let mut e = EpochEstimate::default();
        assert_eq!(
            e.add(1, 100.0, 10, 1000),
            None,
            "the first step is not timed"
        );
        assert_eq!(e.add(2, 1.0, 100, 1000), None);
        assert_eq!(e.add(3, 2.0, 200, 1000), None);
        let est = e.add(4, 3.0, 300, 1000).unwrap();
        assert!((est - 10.0).abs() < 1e-9, "{est}");
        assert_eq!(e.add(5, 1.0, 100, 1000), None, "sent once");
    }
}
