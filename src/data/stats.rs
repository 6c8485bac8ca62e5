//! Summary figures for a dataset: what `tweetlab stats` prints.

use serde::Serialize;

use super::dataset::{Dataset, Problem};
use super::duplicates::find_duplicates;

use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub rows: usize,
    pub labelled: usize,
    /// Rows per class, keyed as the window shows classes (`0`/`1` for 0/1 files, else names).
    pub per_class: BTreeMap<String, usize>,
    pub duplicate_groups: usize,
    pub conflicting_groups: usize,
    pub problems: Vec<Problem>,
}

pub fn stats(data: &Dataset) -> Stats {
    let labels = &data.layout.labels;
    let per_class: BTreeMap<String, usize> = (0..labels.len() as u8)
        .map(|c| {
            let n = data.rows.iter().filter(|r| r.label == Some(c)).count();
            (labels.short(c), n)
        })
        .collect();
    let duplicates = find_duplicates(&data.rows);
    Stats {
        rows: data.rows.len(),
        labelled: data.rows.iter().filter(|r| r.label.is_some()).count(),
        per_class,
        duplicate_groups: duplicates.groups.len(),
        conflicting_groups: duplicates.conflicting().count(),
        problems: data.problems.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::{parse, ImportOptions};

    #[test]
    fn every_class_is_counted_by_its_name() {
        let data = parse(
            b"text;label
a;high
b;low
c;none
d;high
e;
",
            false,
            &ImportOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
        let s = stats(&data);
        assert_eq!(s.labelled, 4);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["per_class"],
            serde_json::json!({"high": 2, "low": 1, "none": 1})
        );
    }
}
