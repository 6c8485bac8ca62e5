//! Simulated labelling sessions: does the label-next queue beat random order on this data?

use serde::Serialize;

use super::confident;
use super::DIVERSITY;

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
/// count only once "labelled", so the queue never peeks at them. `classes` is the size of the
/// label set.
#[allow(clippy::too_many_arguments)]
pub fn learning_curve(
    features: &[Vec<f32>],
    labels: &[u8],
    classes: usize,
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

    use crate::engine::metrics::Metrics;
    use crate::label_quality::logreg::{FitOptions, LogReg};

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
        let two_classes = y.iter().any(|&l| Some(&l) != y.first());
        let model = two_classes.then(|| LogReg::fit(&x, &y, classes, FitOptions::default()));
        let uniform = vec![1.0 / classes.max(2) as f32; classes.max(2)];
        let p: Vec<Vec<f32>> = eval
            .iter()
            .map(|&i| {
                model
                    .as_ref()
                    .map_or_else(|| uniform.clone(), |m| m.predict(&features[i]))
            })
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
                let p: Vec<Vec<f32>> = unlabelled
                    .iter()
                    .map(|&i| m.predict(&features[i]))
                    .collect();
                let vectors: Vec<Vec<f32>> =
                    unlabelled.iter().map(|&i| features[i].clone()).collect();
                confident::next_to_label(&p, &vectors, take, DIVERSITY)
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
    classes: usize,
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
            classes,
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
            classes,
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
            let curve = learning_curve(&x, &y, 2, &pool, &eval, strategy, 4, 10, 64, 1);
            let labels: Vec<usize> = curve.iter().map(|p| p.labels).collect();
            assert_eq!(labels, vec![4, 14, 24, 34, 44, 54, 64], "{strategy:?}");
        }
        // Random order on an easy problem: the fast model learns it.
        let curve = learning_curve(&x, &y, 2, &pool, &eval, Strategy::Random, 4, 50, 300, 1);
        assert!(curve.last().unwrap().f1 > 0.8, "{curve:?}");
    }
}
