//! Writing predictions: the Kaggle submission (`id,target`) and a full CSV with
//! probabilities. Every write is atomic.

use std::path::Path;

use super::atomic::write_atomic;
use super::dataset::Tweet;

/// Which columns a predictions file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionFormat {
    /// Exactly `id,target`, one row per input row, in input order.
    Kaggle,
    /// `id,keyword,text,given,predicted,p_disaster`.
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

/// Writes one prediction per row; `p_disaster[i]` belongs to `rows[i]`.
pub fn write_predictions(
    path: &Path,
    rows: &[Tweet],
    p_disaster: &[f32],
    format: PredictionFormat,
) -> std::io::Result<()> {
    assert_eq!(rows.len(), p_disaster.len(), "one probability per row");
    write_atomic(path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        let to_io = |e: csv::Error| std::io::Error::other(e.to_string());
        match format {
            PredictionFormat::Kaggle => csv.write_record(["id", "target"]).map_err(to_io)?,
            PredictionFormat::Full => csv
                .write_record(["id", "keyword", "text", "given", "predicted", "p_disaster"])
                .map_err(to_io)?,
        }
        for (row, &p) in rows.iter().zip(p_disaster) {
            let predicted = if p >= 0.5 { "1" } else { "0" };
            match format {
                PredictionFormat::Kaggle => csv
                    .write_record([row.id.as_str(), predicted])
                    .map_err(to_io)?,
                PredictionFormat::Full => {
                    let given = row.label.map(|l| l.to_string()).unwrap_or_default();
                    let p = format!("{p:.6}");
                    csv.write_record([&row.id, &row.keyword, &row.text, &given, predicted, &p])
                        .map_err(to_io)?
                }
            }
        }
        csv.flush()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::load_csv;

    #[test]
    fn full_export_reimports_with_the_same_texts() {
        let rows = vec![
            Tweet {
                id: "7".into(),
                keyword: "fire".into(),
                location: String::new(),
                text: "a \"quoted\",\nmultiline text".into(),
                label: Some(1),
            },
            Tweet {
                id: "8".into(),
                keyword: String::new(),
                location: String::new(),
                text: "plain".into(),
                label: None,
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("full.csv");
        write_predictions(&full, &rows, &[0.9, 0.2], PredictionFormat::Full).unwrap();
        let back = load_csv(&full).unwrap();
        assert_eq!(
            back.rows.iter().map(|r| &r.text).collect::<Vec<_>>(),
            vec![&rows[0].text, &rows[1].text]
        );
        let kaggle = dir.path().join("sub.csv");
        write_predictions(&kaggle, &rows, &[0.9, 0.2], PredictionFormat::Kaggle).unwrap();
        assert_eq!(
            std::fs::read_to_string(&kaggle).unwrap(),
            "id,target\n7,1\n8,0\n"
        );
    }
}
