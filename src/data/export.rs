//! Writing files people use: the Kaggle submission (`id,target`), a full predictions CSV, the
//! corrected dataset in its original layout, and the edit history. Every write is atomic, and
//! what the exporter writes re-imports to the same rows.

use std::io::Write;
use std::path::Path;

use super::atomic::write_atomic;
use super::dataset::{Layout, Tweet};
use super::duplicates::find_duplicates;
use super::store::EditRecord;

/// Which columns a predictions file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionFormat {
    /// Exactly `id,target`, one row per input row, in input order.
    Kaggle,
    /// `id,keyword,text,given,predicted,p_disaster,flags`.
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

/// Writes one prediction per row; `p_disaster[i]` belongs to `rows[i]`. The full format's
/// `flags` column lists `disagrees` (prediction differs from the given label), `duplicate` and
/// `conflict` (same text carries both labels), separated by `|`.
pub fn write_predictions(
    path: &Path,
    rows: &[Tweet],
    p_disaster: &[f32],
    format: PredictionFormat,
) -> std::io::Result<()> {
    assert_eq!(rows.len(), p_disaster.len(), "one probability per row");
    let duplicates = (format == PredictionFormat::Full).then(|| find_duplicates(rows));
    write_atomic(path, |w| {
        write_csv(w, b',', |csv| {
            match format {
                PredictionFormat::Kaggle => csv.write_record(["id", "target"])?,
                PredictionFormat::Full => csv.write_record([
                    "id",
                    "keyword",
                    "text",
                    "given",
                    "predicted",
                    "p_disaster",
                    "flags",
                ])?,
            }
            for (i, (row, &p)) in rows.iter().zip(p_disaster).enumerate() {
                let predicted = u8::from(p >= 0.5);
                let predicted_s = predicted.to_string();
                match &duplicates {
                    None => csv.write_record([row.id.as_str(), &predicted_s])?,
                    Some(d) => {
                        let mut flags = Vec::new();
                        if row.label.is_some_and(|l| l != predicted) {
                            flags.push("disagrees");
                        }
                        if let Some(g) = d.group_of[i] {
                            flags.push(if d.groups[g].is_conflicting() {
                                "conflict"
                            } else {
                                "duplicate"
                            });
                        }
                        let given = row.label.map(|l| l.to_string()).unwrap_or_default();
                        csv.write_record([
                            &row.id,
                            &row.keyword,
                            &row.text,
                            &given,
                            &predicted_s,
                            &format!("{p:.6}"),
                            &flags.join("|"),
                        ])?
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
        Some(l) => layout.labels.name(l),
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
    fn kaggle_and_full_formats() {
        let dir = tempfile::tempdir().unwrap();
        let kaggle = dir.path().join("sub.csv");
        write_predictions(&kaggle, &rows(), &[0.9, 0.2, 0.7], PredictionFormat::Kaggle).unwrap();
        assert_eq!(
            std::fs::read_to_string(&kaggle).unwrap(),
            "id,target\n7,1\n8,0\n9,1\n"
        );
        let full = dir.path().join("full.csv");
        write_predictions(&full, &rows(), &[0.9, 0.2, 0.7], PredictionFormat::Full).unwrap();
        let mut r = csv::Reader::from_path(&full).unwrap();
        let flags: Vec<String> = r.records().map(|x| x.unwrap()[6].to_string()).collect();
        assert_eq!(flags, vec!["", "duplicate", "disagrees|duplicate"]);
    }

    #[test]
    fn corrected_dataset_keeps_the_layout_and_unknown_labels() {
        let src = "text\tscore\tverdict\tid\nhello\t3\tyes\ta\n\"x,y\"\t4\tperhaps\tb\n";
        let options = ImportOptions {
            label_column: Some("verdict".into()),
            labels: Some(crate::data::LabelMap {
                negative: vec!["no".into()],
                positive: vec!["yes".into()],
            }),
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
