//! Label quality: out-of-sample probabilities by k-fold cross-validation, suspect labels ranked
//! by self-confidence with the number of label errors estimated by confident learning
//! (Northcutt et al., 2021), and the unlabelled rows worth labelling next (least certain first,
//! with near-duplicates skipped). Everything here works on probabilities and embeddings, so the
//! same code serves the fast mode (frozen embeddings + logistic regression) and fine-tuned models.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::label_quality::logreg::{FitOptions, LogReg};

/// Fold of each labelled row (0..k), stratified: each class is shuffled (seeded) and dealt out
/// round-robin, so every fold has the same class balance.
pub fn stratified_folds(labels: &[u8], k: usize, seed: u64) -> Vec<usize> {
    let k = k.max(2);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut fold = vec![0; labels.len()];
    for class in [0u8, 1] {
        let mut members: Vec<usize> = (0..labels.len())
            .filter(|&i| labels[i].min(1) == class)
            .collect();
        members.shuffle(&mut rng);
        for (j, &i) in members.iter().enumerate() {
            fold[i] = j % k;
        }
    }
    fold
}

/// p(class 1) for every row from a logistic regression that never saw that row: fitted on the
/// other k-1 folds.
pub fn cross_val_probs(features: &[Vec<f32>], labels: &[u8], k: usize, seed: u64) -> Vec<f32> {
    let folds = stratified_folds(labels, k, seed);
    let mut p = vec![0.5f32; labels.len()];
    for f in 0..k.max(2) {
        let (train, test): (Vec<usize>, Vec<usize>) =
            (0..labels.len()).partition(|&i| folds[i] != f);
        if train.is_empty() || test.is_empty() {
            continue;
        }
        let x: Vec<&[f32]> = train.iter().map(|&i| features[i].as_slice()).collect();
        let y: Vec<u8> = train.iter().map(|&i| labels[i]).collect();
        let model = LogReg::fit(&x, &y, FitOptions::default());
        for i in test {
            p[i] = model.predict(&features[i]);
        }
    }
    p
}

/// One labelled row, judged.
#[derive(Debug, Clone, Serialize)]
pub struct Suspect {
    /// Index into the labelled rows given to `find_label_issues`.
    pub index: usize,
    pub given: u8,
    pub suggested: u8,
    /// 1 - p(given label): how strongly the out-of-sample model disagrees (higher = more suspect).
    pub score: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelIssues {
    /// Every labelled row: first the suspects, then the rest, each part most suspect first.
    pub ranked: Vec<Suspect>,
    /// Per class j: the mean p(j) over rows labelled j (confident learning's thresholds).
    pub thresholds: [f32; 2],
    /// [given][confidently predicted]: rows whose p(j) reaches class j's threshold.
    pub confident_joint: [[usize; 2]; 2],
    /// Estimated label errors among rows labelled 0 and among rows labelled 1.
    pub estimated_errors: [usize; 2],
    /// How many rows at the top of `ranked` are suspects: for each class, its estimated number
    /// of errors, taken from that class's least self-confident rows.
    pub suspects: usize,
}

impl LabelIssues {
    /// The suspects themselves, most suspect first.
    pub fn suspects(&self) -> &[Suspect] {
        &self.ranked[..self.suspects]
    }
}

/// Ranks labelled rows by self-confidence and estimates how many labels are wrong.
/// `p1[i]` is an out-of-sample p(class 1) for the row labelled `labels[i]`.
pub fn find_label_issues(labels: &[u8], p1: &[f32]) -> LabelIssues {
    assert_eq!(labels.len(), p1.len(), "one probability per labelled row");
    let prob = |i: usize, class: usize| if class == 1 { p1[i] } else { 1.0 - p1[i] };
    let mut thresholds = [0.5f32; 2];
    for (class, t) in thresholds.iter_mut().enumerate() {
        let members: Vec<usize> = (0..labels.len())
            .filter(|&i| usize::from(labels[i].min(1)) == class)
            .collect();
        if !members.is_empty() {
            *t = members.iter().map(|&i| prob(i, class)).sum::<f32>() / members.len() as f32;
        }
    }
    let mut joint = [[0usize; 2]; 2];
    for (i, &label) in labels.iter().enumerate() {
        let above: Vec<usize> = (0..2).filter(|&c| prob(i, c) >= thresholds[c]).collect();
        let predicted = match above.as_slice() {
            [] => continue,
            [c] => *c,
            _ => usize::from(p1[i] >= 0.5),
        };
        joint[usize::from(label.min(1))][predicted] += 1;
    }
    // Calibrate each row of the joint to the class's size, then count its off-diagonal.
    let mut estimated = [0usize; 2];
    for given in 0..2 {
        let n_given = labels
            .iter()
            .filter(|&&l| usize::from(l.min(1)) == given)
            .count();
        let row_sum = joint[given][0] + joint[given][1];
        if row_sum > 0 {
            let off = joint[given][1 - given] as f64 / row_sum as f64 * n_given as f64;
            estimated[given] = off.round() as usize;
        }
    }
    let mut ranked: Vec<Suspect> = labels
        .iter()
        .enumerate()
        .map(|(i, &given)| {
            let given = given.min(1);
            Suspect {
                index: i,
                given,
                suggested: 1 - given,
                score: 1.0 - prob(i, usize::from(given)),
            }
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    // Suspects first: each class's `estimated` least self-confident rows.
    let mut quota = estimated;
    let (mut suspects, rest): (Vec<Suspect>, Vec<Suspect>) = ranked.into_iter().partition(|s| {
        let q = &mut quota[usize::from(s.given)];
        let take = *q > 0;
        *q = q.saturating_sub(1);
        take
    });
    let count = suspects.len();
    suspects.extend(rest);
    let ranked = suspects;
    LabelIssues {
        ranked,
        thresholds,
        confident_joint: joint,
        estimated_errors: estimated,
        suspects: count,
    }
}

/// Unlabelled rows to label next: least certain first (smallest |p - 0.5|), preferring rows
/// whose embedding is at least `min_distance` (cosine distance) from every row already chosen,
/// so the queue is not twenty copies of one tweet. When too few rows are that far apart, the
/// most uncertain of the skipped ones fill the queue. Returns up to `n` indices into `p1`.
pub fn next_to_label(
    p1: &[f32],
    embeddings: &[Vec<f32>],
    n: usize,
    min_distance: f32,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p1.len()).collect();
    order.sort_by(|&a, &b| {
        (p1[a] - 0.5)
            .abs()
            .total_cmp(&(p1[b] - 0.5).abs())
            .then(a.cmp(&b))
    });
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let cosine = |a: usize, b: usize| {
        let dot: f32 = embeddings[a]
            .iter()
            .zip(&embeddings[b])
            .map(|(x, y)| x * y)
            .sum();
        dot / (norm(&embeddings[a]) * norm(&embeddings[b]))
    };
    let mut chosen: Vec<usize> = Vec::with_capacity(n);
    let mut skipped = Vec::new();
    for i in order {
        if chosen.len() == n {
            break;
        }
        if chosen.iter().any(|&c| 1.0 - cosine(i, c) < min_distance) {
            skipped.push(i);
        } else {
            chosen.push(i);
        }
    }
    let missing = n.saturating_sub(chosen.len());
    chosen.extend(skipped.into_iter().take(missing));
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified_and_seeded() {
        let labels: Vec<u8> = (0..100).map(|i| u8::from(i % 4 == 0)).collect();
        let folds = stratified_folds(&labels, 5, 1);
        for f in 0..5 {
            let members: Vec<usize> = (0..100).filter(|&i| folds[i] == f).collect();
            assert_eq!(members.len(), 20);
            assert_eq!(members.iter().filter(|&&i| labels[i] == 1).count(), 5);
        }
        assert_eq!(folds, stratified_folds(&labels, 5, 1));
        assert_ne!(folds, stratified_folds(&labels, 5, 2));
    }

    #[test]
    fn confident_learning_counts_and_ranks_the_flipped_rows() {
        // 40 rows per class; the model leans to the true class; rows 0..4 of class 0 and row
        // 40 of class 1 carry the wrong label. A row counts in the confident joint only when
        // its probability reaches the class's mean, so the flipped rows are made confident.
        let truth: Vec<u8> = (0..80).map(|i| u8::from(i >= 40)).collect();
        let mut given = truth.clone();
        for i in [0, 1, 2, 3, 40] {
            given[i] = 1 - given[i];
        }
        let p1: Vec<f32> = truth
            .iter()
            .enumerate()
            .map(|(i, &t)| match (t, i) {
                (1, _) => 0.9 - (i % 3) as f32 * 0.05,
                // The mislabelled rows are among the model's surest.
                (_, 0..=3) => 0.1,
                _ => 0.1 + (i % 3) as f32 * 0.05,
            })
            .collect();
        let issues = find_label_issues(&given, &p1);
        assert_eq!(issues.suspects, 5);
        assert_eq!(issues.estimated_errors, [1, 4]);
        let mut top: Vec<usize> = issues.suspects().iter().map(|s| s.index).collect();
        top.sort();
        assert_eq!(top, vec![0, 1, 2, 3, 40]);
        assert!(issues.ranked[0].score > 0.8);
        assert_eq!(issues.ranked.len(), 80);
    }

    #[test]
    fn next_to_label_prefers_uncertain_rows_and_skips_near_copies() {
        let p1 = vec![0.9, 0.51, 0.52, 0.2, 0.45];
        let e = |a: f32| vec![a.cos(), a.sin()];
        // Rows 1 and 2 point the same way; row 4 elsewhere.
        let embeddings = vec![e(0.0), e(1.0), e(1.001), e(2.0), e(3.0)];
        assert_eq!(next_to_label(&p1, &embeddings, 3, 0.01), vec![1, 4, 3]);
        assert_eq!(next_to_label(&p1, &embeddings, 2, 0.0), vec![1, 2]);
        // Everything is a near-copy of something: the skipped rows fill the queue.
        assert_eq!(next_to_label(&p1, &embeddings, 5, 2.0), vec![1, 2, 4, 3, 0]);
    }
}
