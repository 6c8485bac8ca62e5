//! Summary figures for a dataset: what `tweetlab stats` prints.

use serde::Serialize;

use super::dataset::{Dataset, Problem};
use super::duplicates::find_duplicates;

#[derive(Debug, Clone, Serialize)]
pub struct PerClass {
    #[serde(rename = "0")]
    pub negative: usize,
    #[serde(rename = "1")]
    pub positive: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub rows: usize,
    pub labelled: usize,
    pub per_class: PerClass,
    pub duplicate_groups: usize,
    pub conflicting_groups: usize,
    pub problems: Vec<Problem>,
}

pub fn stats(data: &Dataset) -> Stats {
    let positive = data.rows.iter().filter(|r| r.label == Some(1)).count();
    let negative = data.rows.iter().filter(|r| r.label == Some(0)).count();
    let duplicates = find_duplicates(&data.rows);
    Stats {
        rows: data.rows.len(),
        labelled: positive + negative,
        per_class: PerClass { negative, positive },
        duplicate_groups: duplicates.groups.len(),
        conflicting_groups: duplicates.conflicting().count(),
        problems: data.problems.clone(),
    }
}
