//! Writing files people use: the Kaggle submission (`id,target`), a full predictions CSV, the
//! corrected dataset in its original layout, and the edit history. Every write is atomic, and
//! what the exporter writes re-imports to the same rows.

use std::io::Write;
use std::path::Path;

use super::atomic::write_atomic;
use super::dataset::{Layout, Tweet};
use super::duplicates::find_duplicates;
use super::flags::{Predicted, RowFlags};
use super::labels::LabelSet;
use super::store::EditRecord;

/// Which columns a predictions file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionFormat {
    /// Exactly `id,target`, one row per input row, in input order.
    Kaggle,
    /// `id,keyword,text,given,predicted`, `p_<class>` per class, `flags`.
    Full,
}

impl std::str::FromStr for PredictionFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kaggle" => Ok(Self::Kaggle),
            "full" => Ok(Self::Full),
            other => Err(format!("unknown format `{other}`: use kaggle or full")),
        }
    }
}

fn csv_io(e: csv::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn write_csv<W: Write>(
    w: W,
    delimiter: u8,
    rows: impl FnOnce(&mut csv::Writer<W>) -> csv::Result<()>,
) -> std::io::Result<()> {
    let mut csv = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(w);
    rows(&mut csv).map_err(csv_io)?;
    csv.flush()
}

/// A model's classes (its `id2label`, in head order) and its probabilities for each row, in
/// row order: what prediction hands to exports, the workspace and the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    pub classes: Vec<String>,
    pub probabilities: Vec<Vec<f32>>,
}

impl Predictions {
    /// The most probable class of row `i` (an index into `classes`).
    pub fn top(&self, i: usize) -> u8 {
        top_class(&self.probabilities[i])
    }

    /// The dataset's class (an index into `labels`) a model class stands for: the one of the
    /// same name.
    pub fn as_label(&self, class: u8, labels: &LabelSet) -> Option<u8> {
        let name = self.classes.get(class as usize)?;
        labels.index_of(name)
    }

    /// How the file would write model class `class`: its value in `labels` when the dataset
    /// has a class of that name, else the model's name for it.
    pub fn cell<'a>(&'a self, class: u8, labels: &'a LabelSet) -> &'a str {
        match self.as_label(class, labels) {
            Some(l) => labels.cell(l),
            None => self.classes.get(class as usize).map_or("", String::as_str),
        }
    }
}

/// The most probable class (the first on a tie).
pub fn top_class(probabilities: &[f32]) -> u8 {
    probabilities
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &p)| {
            if p > best.1 {
                (i, p)
            } else {
                best
            }
        })
        .0 as u8
}

/// Writes one prediction per row; `predictions.probabilities[i]` belongs to `rows[i]`, labels
/// are written as the dataset writes them (`labels`). The Kaggle format is `id,target`; the full
/// one `id,keyword,text,given,predicted`, then `p_<class>` for every class, then `flags`:
/// `disagrees` (prediction differs from the given label), `duplicate` and `conflict` (same text
/// carries different labels), separated by `|`.
pub fn write_predictions(
    path: &Path,
    rows: &[Tweet],
    labels: &LabelSet,
    predictions: &Predictions,
    format: PredictionFormat,
) -> std::io::Result<()> {
    if rows.len() != predictions.probabilities.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} rows but {} predictions: predict the file again",
                rows.len(),
                predictions.probabilities.len()
            ),
        ));
    }
    let duplicates = (format == PredictionFormat::Full).then(|| find_duplicates(rows));
    write_atomic(path, |w| {
        write_csv(w, b',', |csv| {
            match format {
                PredictionFormat::Kaggle => csv.write_record(["id", "target"])?,
                PredictionFormat::Full => {
                    let mut header: Vec<String> = ["id", "keyword", "text", "given", "predicted"]
                        .map(String::from)
                        .to_vec();
                    header.extend(predictions.classes.iter().map(|c| format!("p_{c}")));
                    header.push("flags".into());
                    csv.write_record(&header)?
                }
            }
            for (i, row) in rows.iter().enumerate() {
                let predicted = predictions.top(i);
                let predicted_cell = predictions.cell(predicted, labels);
                match &duplicates {
                    None => csv.write_record([row.id.as_str(), predicted_cell])?,
                    Some(d) => {
                        let predicted = match predictions.as_label(predicted, labels) {
                            Some(l) => Predicted::Label(l),
                            None => Predicted::Foreign,
                        };
                        let group_conflicts = d.group_of[i].map(|g| d.groups[g].is_conflicting());
                        let flags = RowFlags::of(row.label, predicted, group_conflicts);
                        let given = row.label.map_or("", |l| labels.cell(l));
                        let mut record: Vec<String> = vec![
                            row.id.clone(),
                            row.keyword.clone(),
                            row.text.clone(),
                            given.to_string(),
                            predicted_cell.to_string(),
                        ];
                        record.extend(
                            predictions.probabilities[i]
                                .iter()
                                .map(|p| format!("{p:.6}")),
                        );
                        record.push(flags.names().join("|"));
                        csv.write_record(&record)?
                    }
                }
            }
            Ok(())
        })
    })
}

/// The label cell for a row: its class name, else the unknown value it was imported with.
pub fn label_cell<'a>(layout: &'a Layout, row: &'a Tweet) -> &'a str {
    match row.label {
        Some(l) => layout.labels.cell(l),
        None => row.unparsed_label.as_deref().unwrap_or(""),
    }
}

/// Writes `rows` in the source file's own layout (same columns, order and delimiter) with the
/// current labels. A file that had no label column gets a `target` column at the end.
pub fn write_dataset(path: &Path, layout: &Layout, rows: &[Tweet]) -> std::io::Result<()> {
    let c = &layout.columns;
    let add_label = c.label.is_none();
    write_atomic(path, |w| {
        write_csv(w, layout.delimiter, |csv| {
            let mut header: Vec<&str> = layout.header.iter().map(String::as_str).collect();
            if add_label {
                header.push("target");
            }
            csv.write_record(&header)?;
            let mut record: Vec<&str> = Vec::with_capacity(header.len());
            for row in rows {
                record.clear();
                let mut extra = row.extra.iter();
                for col in 0..layout.header.len() {
                    let cell = if col == c.text {
                        row.text.as_str()
                    } else if Some(col) == c.label {
                        label_cell(layout, row)
                    } else if Some(col) == c.id {
                        row.id.as_str()
                    } else if Some(col) == c.keyword {
                        row.keyword.as_str()
                    } else if Some(col) == c.location {
                        row.location.as_str()
                    } else {
                        extra.next().map_or("", String::as_str)
                    };
                    record.push(cell);
                }
                if add_label {
                    record.push(label_cell(layout, row));
                }
                csv.write_record(&record)?;
            }
            Ok(())
        })
    })
}

/// Writes the edit history, oldest first.
pub fn write_history(path: &Path, edits: &[EditRecord]) -> std::io::Result<()> {
    let label = |l: Option<u8>| l.map(|l| l.to_string()).unwrap_or_default();
    write_atomic(path, |w| {
        write_csv(w, b',', |csv| {
            csv.write_record([
                "seq",
                "step",
                "action",
                "row_id",
                "line",
                "old",
                "new",
                "who",
                "at",
                "description",
            ])?;
            for e in edits {
                csv.write_record([
                    &e.seq.to_string(),
                    &e.group.to_string(),
                    e.action.as_str(),
                    &e.row_id,
                    &e.line.to_string(),
                    &label(e.old),
                    &label(e.new),
                    &e.who,
                    &e.at,
                    &e.description,
                ])?;
            }
            Ok(())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::{parse, ImportOptions};

    fn rows() -> Vec<Tweet> {
        vec![
            Tweet {
                id: "7".into(),
                keyword: "fire".into(),
                text: "a \"quoted\",\nmultiline text".into(),
                label: Some(1),
                ..Default::default()
            },
            Tweet {
                id: "8".into(),
                text: "plain".into(),
                ..Default::default()
            },
            Tweet {
                id: "9".into(),
                text: "PLAIN".into(),
                label: Some(0),
                ..Default::default()
            },
        ]
    }

    #[test]
    fn predictions_for_other_rows_are_an_error_and_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub.csv");
        let labels = LabelSet::default();
        let predictions = Predictions {
            classes: labels.names(),
            probabilities: vec![vec![0.5, 0.5]],
        };
        let err = write_predictions(
            &path,
            &rows(),
            &labels,
            &predictions,
            PredictionFormat::Full,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("3 rows but 1 predictions"),
            "{err}"
        );
        assert!(!path.exists());
    }

    #[test]
    fn kaggle_and_full_formats() {
        let dir = tempfile::tempdir().unwrap();
        let kaggle = dir.path().join("sub.csv");
        let labels = LabelSet::default();
        let predictions = Predictions {
            classes: labels.names(),
            probabilities: [0.9, 0.2, 0.7].iter().map(|&p| vec![1.0 - p, p]).collect(),
        };
        write_predictions(
            &kaggle,
            &rows(),
            &labels,
            &predictions,
            PredictionFormat::Kaggle,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&kaggle).unwrap(),
            "id,target\n7,1\n8,0\n9,1\n"
        );
        let full = dir.path().join("full.csv");
        write_predictions(
            &full,
            &rows(),
            &labels,
            &predictions,
            PredictionFormat::Full,
        )
        .unwrap();
        let mut r = csv::Reader::from_path(&full).unwrap();
        assert_eq!(
            r.headers().unwrap(),
            vec![
                "id",
                "keyword",
                "text",
                "given",
                "predicted",
                "p_not_disaster",
                "p_disaster",
                "flags"
            ]
        );
        let flags: Vec<String> = r.records().map(|x| x.unwrap()[7].to_string()).collect();
        assert_eq!(flags, vec!["", "duplicate", "disagrees|duplicate"]);
        // Three named classes: the class names, one probability column each.
        let three = LabelSet::from_values(&["high", "low", "none"]);
        let predictions = Predictions {
            classes: three.names(),
            probabilities: vec![
                vec![0.2, 0.5, 0.3],
                vec![0.6, 0.3, 0.1],
                vec![0.1, 0.1, 0.8],
            ],
        };
        write_predictions(&full, &rows(), &three, &predictions, PredictionFormat::Full).unwrap();
        let mut r = csv::Reader::from_path(&full).unwrap();
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header[5..8], ["p_high", "p_low", "p_none"]);
        let rows_read: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!((&rows_read[0][3], &rows_read[0][4]), ("low", "low"));
        assert_eq!((&rows_read[2][3], &rows_read[2][4]), ("high", "none"));
        assert_eq!(&rows_read[2][8], "disagrees|duplicate");
    }

    #[test]
    fn corrected_dataset_keeps_the_layout_and_unknown_labels() {
        let src = "text\tscore\tverdict\tid\nhello\t3\tyes\ta\n\"x,y\"\t4\tperhaps\tb\n";
        let options = ImportOptions {
            label_column: Some("verdict".into()),
            labels: Some(LabelSet::binary(vec!["no".into()], vec!["yes".into()])),
            ..Default::default()
        };
        let mut data = parse(src.as_bytes(), true, &options, &mut |_, _| {}).unwrap();
        assert_eq!(data.rows[1].unparsed_label.as_deref(), Some("perhaps"));
        data.rows[0].label = Some(0);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fixed.tsv");
        write_dataset(&out, &data.layout, &data.rows).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "text\tscore\tverdict\tid\nhello\t3\tno\ta\nx,y\t4\tperhaps\tb\n"
        );
    }

    #[test]
    fn a_file_without_labels_gets_a_target_column() {
        let data = parse(
            b"id,text\n1,hi\n",
            false,
            &ImportOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
        let mut rows = data.rows.clone();
        rows[0].label = Some(1);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("labelled.csv");
        write_dataset(&out, &data.layout, &rows).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "id,text,target\n1,hi,1\n"
        );
    }
}
