//! Importing a CSV (or TSV) of tweets: the Kaggle layout `id,keyword,location,text,target`
//! or any file with a text column and an optional label column.
//!
//! Real files are messy, so a bad row is reported with its line number and skipped (or kept
//! unlabelled, for an unknown label) and the rest still loads.

use std::path::Path;

use serde::Serialize;

/// One row of the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tweet {
    pub id: String,
    pub keyword: String,
    pub location: String,
    pub text: String,
    /// 0 = not a disaster, 1 = disaster, None = unlabelled.
    pub label: Option<u8>,
}

/// A row that could not be used as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line in the file where the record starts.
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Dataset {
    pub rows: Vec<Tweet>,
    pub problems: Vec<Problem>,
    pub text_column: String,
    pub label_column: Option<String>,
    /// Rows whose bytes were not valid UTF-8 and were decoded with replacement characters.
    pub lossy_rows: usize,
}

impl Dataset {
    pub fn labelled(&self) -> impl Iterator<Item = (&Tweet, u8)> {
        self.rows.iter().filter_map(|t| t.label.map(|l| (t, l)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {message}")]
    Unusable { path: String, message: String },
}

const TEXT_NAMES: [&str; 5] = ["text", "tweet", "content", "message", "body"];
const LABEL_NAMES: [&str; 4] = ["target", "label", "class", "labels"];

fn find_column(header: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| header.iter().position(|h| h.trim().eq_ignore_ascii_case(n)))
}

/// Reads a label cell: 0/1 (also "0.0", "true"/"false"); empty means unlabelled.
pub fn parse_label(cell: &str) -> Result<Option<u8>, String> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "0" | "0.0" | "false" => Ok(Some(0)),
        "1" | "1.0" | "true" => Ok(Some(1)),
        other => Err(format!("unknown label value `{other}` (expected 0 or 1)")),
    }
}

/// Loads a CSV of tweets. Fails only when the file cannot be used at all.
pub fn load_csv(path: &Path) -> Result<Dataset, DataError> {
    let unusable = |message: String| DataError::Unusable {
        path: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| unusable(format!("cannot read: {e}")))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(unusable("the file is empty".into()));
    }
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return Err(unusable("this looks like a binary file, not a CSV".into()));
    }
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let delimiter = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"))
        || (first_line.contains(&b'\t') && !first_line.contains(&b','))
    {
        b'\t'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .byte_headers()
        .map_err(|e| unusable(format!("cannot read the header line: {e}")))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    let text_col = find_column(&header, &TEXT_NAMES).ok_or_else(|| {
        unusable(format!(
            "no text column: expected one named {} (header is: {})",
            TEXT_NAMES.join(", "),
            header.join(", ")
        ))
    })?;
    let label_col = find_column(&header, &LABEL_NAMES);
    let id_col = find_column(&header, &["id"]);
    let keyword_col = find_column(&header, &["keyword"]);
    let location_col = find_column(&header, &["location"]);

    let mut data = Dataset {
        text_column: header[text_col].clone(),
        label_column: label_col.map(|c| header[c].clone()),
        ..Default::default()
    };
    let mut record = csv::ByteRecord::new();
    let mut row_number = 0usize;
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                data.problems.push(Problem {
                    line,
                    reason: format!("unreadable record: {e}"),
                });
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        row_number += 1;
        if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
            continue; // blank line
        }
        let mut lossy = false;
        let mut cell = |col: Option<usize>| -> Option<String> {
            let raw = record.get(col?)?;
            Some(match std::str::from_utf8(raw) {
                Ok(s) => s.to_string(),
                Err(_) => {
                    lossy = true;
                    String::from_utf8_lossy(raw).into_owned()
                }
            })
        };
        let Some(text) = cell(Some(text_col)) else {
            data.problems.push(Problem {
                line,
                reason: format!(
                    "only {} fields, the text column is field {}",
                    record.len(),
                    text_col + 1
                ),
            });
            continue;
        };
        let label = match cell(label_col).map(|c| parse_label(&c)) {
            None | Some(Ok(None)) => None,
            Some(Ok(l)) => l,
            Some(Err(reason)) => {
                data.problems.push(Problem {
                    line,
                    reason: format!("{reason}; row kept unlabelled"),
                });
                None
            }
        };
        let id = cell(id_col)
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| row_number.to_string());
        let tweet = Tweet {
            id,
            keyword: cell(keyword_col).unwrap_or_default(),
            location: cell(location_col).unwrap_or_default(),
            text,
            label,
        };
        if lossy {
            data.lossy_rows += 1;
            data.problems.push(Problem {
                line,
                reason: "invalid UTF-8, decoded with replacement characters".into(),
            });
        }
        data.rows.push(tweet);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load_str(content: &[u8]) -> Result<Dataset, DataError> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        load_csv(f.path())
    }

    #[test]
    fn kaggle_layout_with_quoted_newlines_bom_and_crlf() {
        let d = load_str(b"\xEF\xBB\xBFid,keyword,location,text,target\r\n1,fire,,\"Forest fire\r\nnear town\",1\r\n2,,,\"said \"\"hi\"\"\",0\r\n3,,,no label,\r\n").unwrap();
        assert_eq!(d.rows.len(), 3);
        assert_eq!(d.rows[0].text, "Forest fire\r\nnear town");
        assert_eq!(d.rows[0].keyword, "fire");
        assert_eq!(d.rows[1].text, "said \"hi\"");
        assert_eq!(
            d.rows.iter().map(|r| r.label).collect::<Vec<_>>(),
            vec![Some(1), Some(0), None]
        );
        assert!(d.problems.is_empty());
    }

    #[test]
    fn bad_rows_are_reported_with_their_line_and_the_rest_loads() {
        let d =
            load_str(b"id,text,target\n1,ok,1\n2\n3,\"two\nlines\",maybe\n4,\xff\xfe bytes,0\n")
                .unwrap();
        assert_eq!(d.rows.len(), 3, "{:?}", d.problems);
        let lines: Vec<u64> = d.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![3, 4, 6]);
        assert!(d.problems[1].reason.contains("maybe"));
        assert_eq!(d.rows[1].label, None);
        assert_eq!(d.lossy_rows, 1);
    }

    #[test]
    fn unusable_files_get_one_clear_message() {
        let empty = load_str(b"").unwrap_err().to_string();
        assert!(empty.contains("empty"), "{empty}");
        let binary = load_str(b"\x00\x01\x02PK").unwrap_err().to_string();
        assert!(binary.contains("binary"), "{binary}");
        let no_text = load_str(b"a,b\n1,2\n").unwrap_err().to_string();
        assert!(
            no_text.contains("no text column") && no_text.contains("a, b"),
            "{no_text}"
        );
    }

    #[test]
    fn tsv_and_other_column_names() {
        let d = load_str(b"tweet\tlabel\nhello\t1\n").unwrap();
        assert_eq!(d.rows[0].text, "hello");
        assert_eq!(d.rows[0].label, Some(1));
        assert_eq!(d.rows[0].id, "1");
    }
}
