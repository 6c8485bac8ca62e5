//! How much annotators agree: percent agreement and Cohen's kappa for each pair (on the rows
//! both labelled), Fleiss' kappa over rows with the same number of labels, and each annotator's
//! labels against the final ones.

use std::collections::BTreeMap;

/// Two annotators on the rows both labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct PairAgreement {
    pub a: String,
    pub b: String,
    pub rows: usize,
    pub percent: f64,
    /// None where chance agreement is certain (both gave one class throughout).
    pub cohen_kappa: Option<f64>,
}

/// Labels by row: (row, annotator, class).
pub type Labelled<'a> = &'a [(i64, String, u8)];

/// Cohen's kappa of two label lists of the same rows over `classes` classes.
pub fn cohen_kappa(a: &[u8], b: &[u8], classes: usize) -> Option<f64> {
    assert_eq!(a.len(), b.len());
    let n = a.len() as f64;
    if a.is_empty() {
        return None;
    }
    let mut ca = vec![0f64; classes];
    let mut cb = vec![0f64; classes];
    let mut agree = 0f64;
    for (&x, &y) in a.iter().zip(b) {
        ca[x as usize] += 1.0;
        cb[y as usize] += 1.0;
        if x == y {
            agree += 1.0;
        }
    }
    let po = agree / n;
    let pe: f64 = ca.iter().zip(&cb).map(|(x, y)| (x / n) * (y / n)).sum();
    (pe < 1.0).then(|| (po - pe) / (1.0 - pe))
}

/// Fleiss' kappa of `counts[i][j]`: how many raters put item i in class j, the same number of
/// raters for every item (at least 2). None where it is undefined.
pub fn fleiss_kappa(counts: &[Vec<u32>]) -> Option<f64> {
    let n_items = counts.len();
    let raters: u32 = counts.first()?.iter().sum();
    if raters < 2 || counts.iter().any(|c| c.iter().sum::<u32>() != raters) {
        return None;
    }
    let classes = counts[0].len();
    let n = raters as f64;
    let total = n_items as f64 * n;
    let p_j: Vec<f64> = (0..classes)
        .map(|j| counts.iter().map(|c| c[j] as f64).sum::<f64>() / total)
        .collect();
    let p_bar = counts
        .iter()
        .map(|c| (c.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>() - n) / (n * (n - 1.0)))
        .sum::<f64>()
        / n_items as f64;
    let p_e: f64 = p_j.iter().map(|p| p * p).sum();
    (p_e < 1.0).then(|| (p_bar - p_e) / (1.0 - p_e))
}

/// Every pair of annotators who labelled a row in common.
pub fn pairs(labels: Labelled, classes: usize) -> Vec<PairAgreement> {
    let by_annotator = by_annotator(labels);
    let names: Vec<&String> = by_annotator.keys().collect();
    let mut out = Vec::new();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            let (la, lb) = (&by_annotator[*a], &by_annotator[*b]);
            let (xs, ys): (Vec<u8>, Vec<u8>) = la
                .iter()
                .filter_map(|(row, x)| lb.get(row).map(|y| (*x, *y)))
                .unzip();
            if xs.is_empty() {
                continue;
            }
            let agree = xs.iter().zip(&ys).filter(|(x, y)| x == y).count();
            out.push(PairAgreement {
                a: (*a).clone(),
                b: (*b).clone(),
                rows: xs.len(),
                percent: 100.0 * agree as f64 / xs.len() as f64,
                cohen_kappa: cohen_kappa(&xs, &ys, classes),
            });
        }
    }
    out
}

/// Fleiss' kappa over the rows with exactly `k` labels (k >= 2), and how many rows that is.
pub fn fleiss_over_rows(labels: Labelled, classes: usize, k: usize) -> (usize, Option<f64>) {
    let mut rows: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (row, _, class) in labels {
        rows.entry(*row).or_insert_with(|| vec![0; classes])[*class as usize] += 1;
    }
    let counts: Vec<Vec<u32>> = rows
        .into_values()
        .filter(|c| c.iter().sum::<u32>() as usize == k)
        .collect();
    let n = counts.len();
    (n, if k >= 2 { fleiss_kappa(&counts) } else { None })
}

/// Each annotator's confusion against the final labels: `[final][theirs]`.
pub fn confusion_against_final(
    labels: Labelled,
    finals: &BTreeMap<i64, u8>,
    classes: usize,
) -> BTreeMap<String, Vec<Vec<u32>>> {
    let mut out: BTreeMap<String, Vec<Vec<u32>>> = BTreeMap::new();
    for (row, who, class) in labels {
        if let Some(&f) = finals.get(row) {
            out.entry(who.clone())
                .or_insert_with(|| vec![vec![0; classes]; classes])[f as usize][*class as usize] +=
                1;
        }
    }
    out
}

/// Every agreement figure of a project, from the rows (and labels) the caller may see.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub pairs: Vec<PairAgreement>,
    /// Rows with exactly K labels, over which Fleiss' kappa is taken.
    pub fleiss_rows: usize,
    pub fleiss: Option<f64>,
    /// Per annotator, `[final][theirs]` on the settled rows.
    pub confusion: BTreeMap<String, Vec<Vec<u32>>>,
}

impl Summary {
    pub fn of(rows: &[super::TeamRow], classes: usize, k: usize) -> Self {
        let labels: Vec<(i64, String, u8)> = rows
            .iter()
            .flat_map(|r| r.labels.iter().map(|(a, l)| (r.row, a.clone(), *l)))
            .collect();
        let finals: BTreeMap<i64, u8> = rows
            .iter()
            .filter_map(|r| r.fin.map(|(l, _)| (r.row, l)))
            .collect();
        let (fleiss_rows, fleiss) = fleiss_over_rows(&labels, classes, k);
        Self {
            pairs: pairs(&labels, classes),
            fleiss_rows,
            fleiss,
            confusion: confusion_against_final(&labels, &finals, classes),
        }
    }
}

fn by_annotator(labels: Labelled) -> BTreeMap<String, BTreeMap<i64, u8>> {
    let mut out: BTreeMap<String, BTreeMap<i64, u8>> = BTreeMap::new();
    for (row, who, class) in labels {
        out.entry(who.clone()).or_default().insert(*row, *class);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from scikit-learn 1.9.1's `cohen_kappa_score` and statsmodels 0.15.0's
    // `fleiss_kappa` on the same data (tests/make_agreement_reference.py prints them).
    #[test]
    fn cohen_kappa_matches_scikit_learn() {
        let a = [0, 1, 1, 0, 2, 2, 1, 0, 1, 1, 2, 0];
        let b = [0, 1, 0, 0, 2, 1, 1, 0, 1, 2, 2, 1];
        let got = cohen_kappa(&a, &b, 3).unwrap();
        assert!((got - COHEN_REFERENCE).abs() < 1e-9, "{got}");
        assert_eq!(cohen_kappa(&[1, 1], &[1, 1], 2), None);
    }

    #[test]
    fn fleiss_kappa_matches_statsmodels() {
        let counts: Vec<Vec<u32>> = FLEISS_TABLE.iter().map(|r| r.to_vec()).collect();
        let got = fleiss_kappa(&counts).unwrap();
        assert!((got - FLEISS_REFERENCE).abs() < 1e-9, "{got}");
    }

    #[test]
    fn pairs_use_only_rows_both_labelled() {
        let l = |r: i64, w: &str, c: u8| (r, w.to_string(), c);
        let labels = vec![
            l(0, "a", 1),
            l(0, "b", 1),
            l(1, "a", 0),
            l(1, "b", 1),
            l(2, "a", 0),
            l(3, "b", 0),
        ];
        let p = pairs(&labels, 2);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].rows, p[0].percent), (2, 50.0));
    }

    #[test]
    fn confusion_counts_each_annotator_against_settled_rows_only() {
        let l = |r: i64, w: &str, c: u8| (r, w.to_string(), c);
        let labels = vec![l(0, "a", 1), l(1, "a", 0), l(2, "a", 1), l(0, "b", 0)];
        let finals = BTreeMap::from([(0, 1), (1, 1)]);
        let m = confusion_against_final(&labels, &finals, 2);
        assert_eq!(m["a"], vec![vec![0, 0], vec![1, 1]]);
        assert_eq!(m["b"], vec![vec![0, 0], vec![1, 0]]);
    }

    const COHEN_REFERENCE: f64 = 0.4893617021276596;
    const FLEISS_TABLE: [[u32; 3]; 6] = [
        [3, 0, 0],
        [0, 3, 0],
        [2, 1, 0],
        [1, 1, 1],
        [0, 2, 1],
        [0, 0, 3],
    ];
    const FLEISS_REFERENCE: f64 = 0.4112149532710281;
}
