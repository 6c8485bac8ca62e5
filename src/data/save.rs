//! Save: the current labels written into the analyst's own CSV. Only label cells change (a file
//! without a label column gets one at the end of its header and of each row it imported);
//! every other byte stays as it was: lines the importer skipped, quoting, line ends, invalid
//! UTF-8. A file that changed since it was imported is never written.

use std::path::PathBuf;

use super::atomic::write_bytes_atomic;
use super::dataset::{parse, ImportOptions, Layout, Tweet};
use super::export::label_cell;
use super::store::{absolute, Fingerprint};

/// What Save needs, copied out of the workspace so the window can go on editing.
#[derive(Debug, Clone)]
pub struct SaveJob {
    pub source: PathBuf,
    pub layout: Layout,
    pub rows: Vec<Tweet>,
    /// The source as imported or last saved (None: a workspace from before fingerprints).
    pub fingerprint: Option<Fingerprint>,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(
        "{0} changed since it was imported (edited elsewhere, appended to or replaced), so nothing was written to it. Open it again: tweetlab imports it again and carries your edits over; or use Save as… to write your version elsewhere."
    )]
    Changed(PathBuf),
    #[error("{path}: {message}")]
    Other { path: PathBuf, message: String },
}

/// What a Save did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The file written (symbolic links followed).
    pub path: PathBuf,
    /// Rows whose label cell changed.
    pub changed: usize,
    /// The file as written now.
    pub fingerprint: Fingerprint,
}

/// Writes `job.rows`' labels into the source file, atomically; see the module's doc.
pub fn save_to_source(job: &SaveJob) -> Result<Saved, SaveError> {
    let path = absolute(&job.source);
    let other = |message: String| SaveError::Other {
        path: path.clone(),
        message,
    };
    let bytes = std::fs::read(&path).map_err(|e| other(format!("cannot read it: {e}")))?;
    let meta = std::fs::metadata(&path).map_err(|e| other(e.to_string()))?;
    if let Some(fp) = &job.fingerprint {
        if Fingerprint::of_bytes(&bytes, &meta).sha256 != fp.sha256 {
            return Err(SaveError::Changed(path));
        }
    }
    let layout = &job.layout;
    let column = |c: Option<usize>| c.map(|i| layout.header[i].clone());
    let options = ImportOptions {
        text_column: column(Some(layout.columns.text)),
        label_column: column(layout.columns.label),
        id_column: column(layout.columns.id),
        labels: Some(layout.labels.clone()),
        delimiter: Some(layout.delimiter),
        no_label_column: layout.columns.label.is_none(),
        ..Default::default()
    };
    let file = parse(&bytes, false, &options, &mut |_, _| {}).map_err(other)?;
    let same_rows = file.rows.len() == job.rows.len()
        && file
            .rows
            .iter()
            .zip(&job.rows)
            .all(|(a, b)| a.id == b.id && a.text == b.text);
    if !same_rows {
        return Err(SaveError::Changed(path));
    }
    let delimiter = layout.delimiter;
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8);
    let mut at = 0;
    let mut changed = 0;
    let add_column = layout.columns.label.is_none();
    if add_column {
        out.extend_from_slice(&bytes[..file.header_end]);
        out.push(delimiter);
        out.extend_from_slice(b"target");
        at = file.header_end;
    }
    for ((row, was), span) in job.rows.iter().zip(&file.rows).zip(&file.spans) {
        let cell = quoted(label_cell(layout, row), delimiter);
        match span.label {
            _ if add_column => {
                out.extend_from_slice(&bytes[at..span.end]);
                out.push(delimiter);
                out.extend_from_slice(cell.as_bytes());
                at = span.end;
                changed += usize::from(row.label.is_some());
            }
            Some((start, end)) if row.label != was.label => {
                out.extend_from_slice(&bytes[at..start]);
                out.extend_from_slice(cell.as_bytes());
                at = end;
                changed += 1;
            }
            None if row.label != was.label => {
                return Err(other(format!(
                "line {} has no cell in the label column; use Save as… to write a corrected copy",
                was.line
            )))
            }
            _ => {}
        }
    }
    out.extend_from_slice(&bytes[at..]);
    write_bytes_atomic(&path, &out).map_err(|e| other(format!("cannot write it: {e}")))?;
    let fingerprint = Fingerprint::of(&path).map_err(|e| other(e.to_string()))?;
    Ok(Saved {
        path,
        changed,
        fingerprint,
    })
}

/// `cell` as a CSV field: quoted when it holds the delimiter, a quote or a line break.
fn quoted(cell: &str, delimiter: u8) -> String {
    if cell
        .bytes()
        .any(|b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r')
    {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::load_csv;

    fn save_labels(path: &std::path::Path, labels: &[Option<u8>]) -> Vec<u8> {
        let data = load_csv(path).unwrap();
        let mut rows = data.rows.clone();
        for (row, &label) in rows.iter_mut().zip(labels) {
            row.label = label;
        }
        save_to_source(&SaveJob {
            source: path.to_path_buf(),
            layout: data.layout,
            rows,
            fingerprint: None,
        })
        .unwrap();
        std::fs::read(path).unwrap()
    }

    #[test]
    fn an_empty_last_label_cell_of_a_tsv_is_filled_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.tsv");
        std::fs::write(&path, b"id\ttext\ttarget\r\n1\thello\t\r\n2\tworld\t0\r\n").unwrap();
        let saved = save_labels(&path, &[Some(1), Some(0)]);
        assert_eq!(saved, b"id\ttext\ttarget\r\n1\thello\t1\r\n2\tworld\t0\r\n");
    }

    #[test]
    fn a_file_without_labels_gets_a_column_and_quoted_cells_stay_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "\u{feff}id,text\n1,\"a, \"\"quoted\"\" one\"\n2,b\n").unwrap();
        let saved = save_labels(&path, &[Some(1), None]);
        assert_eq!(
            String::from_utf8(saved).unwrap(),
            "\u{feff}id,text,target\n1,\"a, \"\"quoted\"\" one\",1\n2,b,\n"
        );
    }
}
