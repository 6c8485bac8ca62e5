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
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    for class in 0..classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        members.shuffle(&mut rng);
        for (j, &i) in members.iter().enumerate() {
            fold[i] = j % k;
        }
    }
    fold
}

/// Every class's probability (of `classes`) for every row from a logistic regression that never
/// saw that row: fitted on the other k-1 folds.
pub fn cross_val_probs(
    features: &[Vec<f32>],
    labels: &[u8],
    classes: usize,
    k: usize,
    seed: u64,
) -> Vec<Vec<f32>> {
    let folds = stratified_folds(labels, k, seed);
    let classes = classes.max(2);
    let mut p = vec![vec![1.0 / classes as f32; classes]; labels.len()];
    for f in 0..k.max(2) {
        let (train, test): (Vec<usize>, Vec<usize>) =
            (0..labels.len()).partition(|&i| folds[i] != f);
        if train.is_empty() || test.is_empty() {
            continue;
        }
        let x: Vec<&[f32]> = train.iter().map(|&i| features[i].as_slice()).collect();
        let y: Vec<u8> = train.iter().map(|&i| labels[i]).collect();
        let model = LogReg::fit(&x, &y, classes, FitOptions::default());
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
    pub thresholds: Vec<f32>,
    /// [given][confidently predicted]: rows whose p(j) reaches class j's threshold.
    pub confident_joint: Vec<Vec<usize>>,
    /// Estimated label errors among the rows labelled with each class.
    pub estimated_errors: Vec<usize>,
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

/// The most probable class other than `given`.
fn best_other(p: &[f32], given: usize) -> u8 {
    (0..p.len())
        .filter(|&c| c != given)
        .fold(None, |best: Option<usize>, c| match best {
            Some(b) if p[b] >= p[c] => Some(b),
            _ => Some(c),
        })
        .unwrap_or(0) as u8
}

/// Ranks labelled rows by self-confidence and estimates how many labels are wrong.
/// `probs[i]` holds out-of-sample probabilities of every class for the row labelled
/// `labels[i]`.
pub fn find_label_issues(labels: &[u8], probs: &[Vec<f32>]) -> LabelIssues {
    assert_eq!(
        labels.len(),
        probs.len(),
        "one probability row per labelled row"
    );
    let k = probs
        .first()
        .map_or(2, Vec::len)
        .max(labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0));
    let prob = |i: usize, class: usize| probs[i].get(class).copied().unwrap_or(0.0);
    let mut thresholds = vec![1.0 / k as f32; k];
    for (class, t) in thresholds.iter_mut().enumerate() {
        let members: Vec<usize> = (0..labels.len())
            .filter(|&i| labels[i] as usize == class)
            .collect();
        if !members.is_empty() {
            *t = members.iter().map(|&i| prob(i, class)).sum::<f32>() / members.len() as f32;
        }
    }
    let mut joint = vec![vec![0usize; k]; k];
    for (i, &label) in labels.iter().enumerate() {
        let above: Vec<usize> = (0..k).filter(|&c| prob(i, c) >= thresholds[c]).collect();
        let predicted = match above.as_slice() {
            [] => continue,
            [c] => *c,
            many => *many
                .iter()
                .fold(None, |best: Option<&usize>, c| match best {
                    Some(b) if prob(i, *b) >= prob(i, *c) => Some(b),
                    _ => Some(c),
                })
                .expect("several"),
        };
        joint[label as usize][predicted] += 1;
    }
    // Calibrate each row of the joint to the class's size, then count its off-diagonal.
    let mut estimated = vec![0usize; k];
    for given in 0..k {
        let n_given = labels.iter().filter(|&&l| l as usize == given).count();
        let row_sum: usize = joint[given].iter().sum();
        if row_sum > 0 {
            let off = (row_sum - joint[given][given]) as f64 / row_sum as f64 * n_given as f64;
            estimated[given] = off.round() as usize;
        }
    }
    let mut ranked: Vec<Suspect> = labels
        .iter()
        .enumerate()
        .map(|(i, &given)| Suspect {
            index: i,
            given,
            suggested: best_other(&probs[i], given as usize),
            score: 1.0 - prob(i, given as usize),
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    // Suspects first: each class's `estimated` least self-confident rows.
    let mut quota = estimated.clone();
    let (mut suspects, rest): (Vec<Suspect>, Vec<Suspect>) = ranked.into_iter().partition(|s| {
        let q = &mut quota[s.given as usize];
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

/// How unsure a prediction is: the margin between its two most probable classes (smaller is
/// less sure; for two classes that is 2 |p - 0.5|).
pub fn margin(p: &[f32]) -> f32 {
    let (mut first, mut second) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &q in p {
        if q > first {
            second = first;
            first = q;
        } else if q > second {
            second = q;
        }
    }
    first - second
}

/// Unlabelled rows to label next: least certain first (smallest margin between the two most
/// probable classes), preferring rows whose embedding is at least `min_distance` (cosine
/// distance) from every row already chosen, so the queue is not twenty copies of one tweet.
/// When too few rows are that far apart, the most uncertain of the skipped ones fill the queue.
/// Returns up to `n` indices into `probs`.
pub fn next_to_label(
    probs: &[Vec<f32>],
    embeddings: &[Vec<f32>],
    n: usize,
    min_distance: f32,
) -> Vec<usize> {
    let margins: Vec<f32> = probs.iter().map(|p| margin(p)).collect();
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| margins[a].total_cmp(&margins[b]).then(a.cmp(&b)));
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
        let probs: Vec<Vec<f32>> = p1.iter().map(|&p| vec![1.0 - p, p]).collect();
        let issues = find_label_issues(&given, &probs);
        assert_eq!(issues.suspects, 5);
        assert_eq!(issues.estimated_errors, vec![1, 4]);
        let mut top: Vec<usize> = issues.suspects().iter().map(|s| s.index).collect();
        top.sort();
        assert_eq!(top, vec![0, 1, 2, 3, 40]);
        assert!(issues.ranked[0].score > 0.8);
        assert_eq!(issues.ranked.len(), 80);
    }

    #[test]
    fn next_to_label_prefers_uncertain_rows_and_skips_near_copies() {
        let p1: Vec<Vec<f32>> = [0.9, 0.51, 0.52, 0.2, 0.45]
            .iter()
            .map(|&p| vec![1.0 - p, p])
            .collect();
        let e = |a: f32| vec![a.cos(), a.sin()];
        // Rows 1 and 2 point the same way; row 4 elsewhere.
        let embeddings = vec![e(0.0), e(1.0), e(1.001), e(2.0), e(3.0)];
        assert_eq!(next_to_label(&p1, &embeddings, 3, 0.01), vec![1, 4, 3]);
        assert_eq!(next_to_label(&p1, &embeddings, 2, 0.0), vec![1, 2]);
        // Everything is a near-copy of something: the skipped rows fill the queue.
        assert_eq!(next_to_label(&p1, &embeddings, 5, 2.0), vec![1, 2, 4, 3, 0]);
    }

    #[test]
    fn three_classes_flag_the_row_the_model_puts_in_another_class() {
        // 30 rows per class, the model sure of the true class; row 63 (truly class 2) is labelled
        // class 0, and the model is as sure of class 2 there as on any class-2 row.
        let truth: Vec<u8> = (0..90).map(|i| (i / 30) as u8).collect();
        let mut given = truth.clone();
        given[63] = 0;
        let probs: Vec<Vec<f32>> = truth
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let sure = 0.8 - (i % 3) as f32 * 0.05;
                let mut p = vec![(1.0 - sure) / 2.0; 3];
                p[t as usize] = sure;
                p
            })
            .collect();
        let issues = find_label_issues(&given, &probs);
        assert_eq!(issues.estimated_errors.len(), 3);
        assert_eq!(issues.suspects, 1, "{:?}", issues.estimated_errors);
        let top = &issues.suspects()[0];
        assert_eq!((top.index, top.given, top.suggested), (63, 0, 2));
        // The queue: the row whose two best classes are closest comes first.
        let queue = vec![
            vec![0.6, 0.3, 0.1],
            vec![0.4, 0.35, 0.25],
            vec![0.9, 0.05, 0.05],
        ];
        let flat = vec![vec![1.0, 0.0]; 3];
        assert_eq!(next_to_label(&queue, &flat, 3, 0.0), vec![1, 0, 2]);
    }
}
