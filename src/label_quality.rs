//! Label quality for a dataset: frozen embeddings (cached in the workspace), out-of-sample
//! probabilities by k-fold cross-validation, suspect labels and the rows to label next. Glue
//! between `data` (rows, cache) and `engine` (encoder, logistic regression, confident
//! learning), shared by the CLI and the workbench.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::data::store::EmbeddingCache;
use crate::data::Tweet;
use crate::engine::embed::embed;
use crate::engine::model::LoadedModel;
use crate::engine::quality::{self, LabelIssues};

/// Embeddings of `texts`, read from `cache` where present; the rest are computed (batched) and
/// stored. `model_key` names the encoder (its directory) so two models never share vectors.
/// Returns the vectors and how many came from the cache.
pub fn embeddings(
    model: &LoadedModel,
    model_key: &str,
    texts: &[&str],
    max_len: usize,
    mut cache: Option<&mut EmbeddingCache>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<Vec<f32>>, usize)> {
    let key = format!("{model_key}|mean|{max_len}");
    let mut out: Vec<Option<Vec<f32>>> = match &cache {
        Some(c) => c.get(&key, texts)?,
        None => vec![None; texts.len()],
    };
    let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
    let from_cache = texts.len() - missing.len();
    if !missing.is_empty() {
        let todo: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
        let fresh = embed(model, &todo, max_len, 64, progress)?;
        if let Some(c) = cache.as_mut() {
            let items: Vec<(&str, &[f32])> = todo
                .iter()
                .zip(&fresh)
                .map(|(t, v)| (*t, v.as_slice()))
                .collect();
            c.put(&key, &items)?;
        }
        for (i, v) in missing.into_iter().zip(fresh) {
            out[i] = Some(v);
        }
    }
    Ok((
        out.into_iter().map(|v| v.unwrap_or_default()).collect(),
        from_cache,
    ))
}

/// Suspect labels of a dataset, by the fast mode: frozen embeddings + a logistic regression per
/// fold.
#[derive(Debug, Clone, Serialize)]
pub struct SuspectReport {
    /// Row index (into the dataset) of each labelled row, in the order `issues` refers to.
    pub labelled_rows: Vec<usize>,
    /// Out-of-sample p(disaster) per labelled row.
    pub p_disaster: Vec<f32>,
    pub issues: LabelIssues,
    /// Accuracy of the out-of-sample predictions against the given labels.
    pub accuracy: f64,
}

pub fn suspects(rows: &[Tweet], embeddings: &[Vec<f32>], folds: usize, seed: u64) -> SuspectReport {
    let (labelled_rows, labels) = labelled(rows);
    let features: Vec<Vec<f32>> = labelled_rows
        .iter()
        .map(|&i| embeddings[i].clone())
        .collect();
    let p = quality::cross_val_probs(&features, &labels, folds, seed);
    report(labelled_rows, &labels, p)
}

/// Row indices of the labelled rows, and their labels.
fn labelled(rows: &[Tweet]) -> (Vec<usize>, Vec<u8>) {
    (0..rows.len())
        .filter_map(|i| rows[i].label.map(|l| (i, l)))
        .unzip()
}

fn report(labelled_rows: Vec<usize>, labels: &[u8], p: Vec<f32>) -> SuspectReport {
    let correct = labels
        .iter()
        .zip(&p)
        .filter(|(&l, &p)| l == u8::from(p >= 0.5))
        .count();
    SuspectReport {
        accuracy: correct as f64 / labels.len().max(1) as f64,
        issues: quality::find_label_issues(labels, &p),
        labelled_rows,
        p_disaster: p,
    }
}

/// Suspect labels by the full mode: for each of `folds` stratified folds, `model` is fine-tuned
/// (with `config`, no validation split) on the other folds in `work_dir` and predicts this one.
/// Slow (one fine-tuning per fold); `progress(folds_done, folds)`.
pub fn suspects_fine_tuned(
    rows: &[Tweet],
    model: &str,
    config: &crate::engine::train::TrainConfig,
    folds: usize,
    work_dir: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SuspectReport> {
    use crate::engine::train::{self, TrainConfig, TrainJob};
    let (labelled_rows, labels) = labelled(rows);
    let fold_of = quality::stratified_folds(&labels, folds, config.seed);
    let mut p = vec![0.5f32; labels.len()];
    let folds = folds.max(2);
    for f in 0..folds {
        let (fit, held): (Vec<usize>, Vec<usize>) =
            (0..labels.len()).partition(|&i| fold_of[i] != f);
        let out_dir = work_dir.join(format!("fold-{f}"));
        let job = TrainJob {
            model: Some(model.to_string()),
            texts: fit
                .iter()
                .map(|&i| rows[labelled_rows[i]].text.clone())
                .collect(),
            labels: fit.iter().map(|&i| labels[i]).collect(),
            out_dir: out_dir.clone(),
            config: TrainConfig {
                val_split: 0.0,
                ..config.clone()
            },
        };
        // Events are not needed here; the run's outcome is its result.
        let (events, _) = crossbeam_channel::unbounded();
        train::run(&job, &events, &std::sync::atomic::AtomicBool::new(false))?;
        let files = crate::engine::source::inspect_dir(&out_dir, &out_dir.display().to_string())?;
        let device = crate::engine::device::select(config.device)?;
        let fine_tuned = LoadedModel::load(&files, &device, None, 0)?;
        let texts: Vec<&str> = held
            .iter()
            .map(|&i| rows[labelled_rows[i]].text.as_str())
            .collect();
        let held_p = crate::engine::infer::probabilities(
            &fine_tuned,
            &texts,
            fine_tuned.default_max_len(),
            64,
            &mut |_, _| {},
        )?;
        for (&i, q) in held.iter().zip(held_p) {
            p[i] = q;
        }
        progress(f + 1, folds);
    }
    Ok(report(labelled_rows, &labels, p))
}

/// The fast baseline: a logistic regression on frozen embeddings, fitted on the training part of
/// the same stratified split a fine-tuning run with `val_split` and `seed` uses, and scored on
/// its validation part. `features[i]` and `labels[i]` are the labelled rows in file order, as
/// the training job gets them.
pub fn baseline(
    features: &[Vec<f32>],
    labels: &[u8],
    val_split: f64,
    seed: u64,
) -> crate::engine::metrics::Metrics {
    use crate::engine::logreg::{FitOptions, LogReg};
    let (train, val) = crate::engine::train::stratified_split(labels, val_split, seed);
    let x: Vec<&[f32]> = train.iter().map(|&i| features[i].as_slice()).collect();
    let y: Vec<u8> = train.iter().map(|&i| labels[i]).collect();
    let model = LogReg::fit(&x, &y, FitOptions::default());
    let p: Vec<f32> = val.iter().map(|&i| model.predict(&features[i])).collect();
    let truth: Vec<u8> = val.iter().map(|&i| labels[i]).collect();
    crate::engine::metrics::Metrics::from_probabilities(&truth, &p)
}

/// Writes `id,given,suggested,score`, one row per labelled row, most suspect first.
pub fn write_suspects(path: &Path, rows: &[Tweet], report: &SuspectReport) -> std::io::Result<()> {
    crate::data::atomic::write_atomic(path, |w| write_suspects_to(w, rows, report))
}

pub fn write_suspects_to<W: std::io::Write>(
    w: W,
    rows: &[Tweet],
    report: &SuspectReport,
) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    let io = |e: csv::Error| std::io::Error::other(e.to_string());
    csv.write_record(["id", "given", "suggested", "score"])
        .map_err(io)?;
    for s in &report.issues.ranked {
        let row = &rows[report.labelled_rows[s.index]];
        csv.write_record([
            row.id.as_str(),
            &s.given.to_string(),
            &s.suggested.to_string(),
            &format!("{:.6}", s.score),
        ])
        .map_err(io)?;
    }
    csv.flush()
}

/// How the next rows to label are picked in a simulated labelling session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Strategy {
    /// The active-learning queue: least certain first, near-duplicates skipped.
    Uncertainty,
    /// The file in a shuffled order: what an analyst without a model would do.
    Random,
}

/// One point of a learning curve: F1 on the held-out rows after `labels` rows were labelled.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CurvePoint {
    pub labels: usize,
    pub f1: f64,
}

/// Simulates labelling the pool (`pool` indices into `features`/`labels`) `step` rows at a
/// time, starting from `start` random rows, retraining the fast model (logistic regression on
/// frozen embeddings) after every step and scoring it on `eval` rows. The labels of pool rows
/// count only once "labelled", so the queue never peeks at them.
#[allow(clippy::too_many_arguments)]
pub fn learning_curve(
    features: &[Vec<f32>],
    labels: &[u8],
    pool: &[usize],
    eval: &[usize],
    strategy: Strategy,
    start: usize,
    step: usize,
    until: usize,
    seed: u64,
) -> Vec<CurvePoint> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;

    use crate::engine::logreg::{FitOptions, LogReg};
    use crate::engine::metrics::Metrics;

    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut order: Vec<usize> = pool.to_vec();
    order.shuffle(&mut rng);
    let mut labelled: Vec<usize> = order.iter().copied().take(start).collect();
    let mut unlabelled: Vec<usize> = order.into_iter().skip(start).collect();
    let eval_labels: Vec<u8> = eval.iter().map(|&i| labels[i]).collect();
    let mut curve = Vec::new();
    loop {
        let x: Vec<&[f32]> = labelled.iter().map(|&i| features[i].as_slice()).collect();
        let y: Vec<u8> = labelled.iter().map(|&i| labels[i]).collect();
        let both_classes = y.contains(&0) && y.contains(&1);
        let model = both_classes.then(|| LogReg::fit(&x, &y, FitOptions::default()));
        let p: Vec<f32> = eval
            .iter()
            .map(|&i| model.as_ref().map_or(0.5, |m| m.predict(&features[i])))
            .collect();
        curve.push(CurvePoint {
            labels: labelled.len(),
            f1: Metrics::from_probabilities(&eval_labels, &p).f1,
        });
        if labelled.len() >= until || unlabelled.is_empty() {
            break;
        }
        let take = step.min(unlabelled.len());
        let picked: Vec<usize> = match (strategy, &model) {
            (Strategy::Uncertainty, Some(m)) => {
                let p: Vec<f32> = unlabelled
                    .iter()
                    .map(|&i| m.predict(&features[i]))
                    .collect();
                let vectors: Vec<Vec<f32>> =
                    unlabelled.iter().map(|&i| features[i].clone()).collect();
                quality::next_to_label(&p, &vectors, take, DIVERSITY)
                    .into_iter()
                    .map(|k| unlabelled[k])
                    .collect()
            }
            _ => unlabelled.iter().copied().take(take).collect(),
        };
        unlabelled.retain(|i| !picked.contains(i));
        labelled.extend(picked);
    }
    curve
}

/// Learning curves for both strategies, averaged over `repeats` seeded orders and held-out
/// splits (20% of the labelled rows each time): (labels used, mean F1 of the queue, mean F1 of
/// random order). What `tweetlab learning-curve` prints and the review window draws.
pub fn compare_strategies(
    features: &[Vec<f32>],
    labels: &[u8],
    start: usize,
    step: usize,
    until: usize,
    repeats: u64,
) -> Vec<(usize, f64, f64)> {
    let mut sums: Vec<(usize, f64, f64)> = Vec::new();
    let repeats = repeats.max(1);
    for r in 0..repeats {
        let (pool, eval) = crate::engine::train::stratified_split(labels, 0.2, 1000 + r);
        let queue = learning_curve(
            features,
            labels,
            &pool,
            &eval,
            Strategy::Uncertainty,
            start,
            step,
            until,
            r,
        );
        let random = learning_curve(
            features,
            labels,
            &pool,
            &eval,
            Strategy::Random,
            start,
            step,
            until,
            r,
        );
        for (k, (q, rd)) in queue.iter().zip(&random).enumerate() {
            if sums.len() <= k {
                sums.push((q.labels, 0.0, 0.0));
            }
            sums[k].1 += q.f1 / repeats as f64;
            sums[k].2 += rd.f1 / repeats as f64;
        }
    }
    sums
}

/// Cosine distance under which two queued tweets count as copies of each other. Exact
/// duplicates sit at 0; 0.05 is a judgement of "the same tweet again", not a tuned value.
pub const DIVERSITY: f32 = 0.05;

#[cfg(test)]
mod tests {
    use super::*;

    /// Two noisy clusters on a circle; the label is the cluster.
    fn clusters(n: usize) -> (Vec<Vec<f32>>, Vec<u8>) {
        (0..n)
            .map(|i| {
                let y = (i % 2) as u8;
                let a = if y == 1 { 0.3 } else { 2.0 } + ((i * 7919) % 100) as f32 / 60.0;
                (vec![a.cos(), a.sin(), ((i * 31) % 17) as f32 / 17.0], y)
            })
            .unzip()
    }

    #[test]
    fn learning_curves_count_labels_and_improve() {
        let (x, y) = clusters(400);
        let pool: Vec<usize> = (0..300).collect();
        let eval: Vec<usize> = (300..400).collect();
        for strategy in [Strategy::Uncertainty, Strategy::Random] {
            let curve = learning_curve(&x, &y, &pool, &eval, strategy, 4, 10, 64, 1);
            let labels: Vec<usize> = curve.iter().map(|p| p.labels).collect();
            assert_eq!(labels, vec![4, 14, 24, 34, 44, 54, 64], "{strategy:?}");
        }
        // Random order on an easy problem: the fast model learns it.
        let curve = learning_curve(&x, &y, &pool, &eval, Strategy::Random, 4, 50, 300, 1);
        assert!(curve.last().unwrap().f1 > 0.8, "{curve:?}");
    }
}
