//! The analyst's import choice before a file becomes a workspace: a preview of the first rows
//! with each column's distinct values (what the window's import dialog shows), whether a file
//! needs that choice at all, and the choices remembered per header so that a file of the same
//! shape opens the same way next time.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::write_bytes_atomic;
use super::dataset::{
    csv_reader, find_column, read_header, sniff_delimiter, usable_bytes, ImportOptions,
    LABEL_NAMES, TEXT_NAMES,
};
use super::labels::{LabelSet, MAX_CLASSES};

/// How much of a file the preview reads: enough for a few thousand tweets.
pub const SAMPLE_BYTES: usize = 256 * 1024;

/// Rows of the sample shown in the dialog.
pub const PREVIEW_ROWS: usize = 8;

/// The first part of a file, parsed with one delimiter.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub delimiter: u8,
    pub header: Vec<String>,
    /// The first `PREVIEW_ROWS` records' cells.
    pub rows: Vec<Vec<String>>,
    /// Per column, its distinct non-empty values (trimmed) with their counts in the sample, in
    /// natural order; `None` when it has more than `MAX_CLASSES`.
    pub values: Vec<Option<Vec<(String, usize)>>>,
    /// Records read from the sample.
    pub sampled_rows: usize,
    /// Whether the sample is the whole file.
    pub whole_file: bool,
    /// The columns the importer would pick by itself.
    pub text: Option<usize>,
    pub id: Option<usize>,
    pub label: Option<usize>,
}

/// Reads up to `SAMPLE_BYTES` of `path`.
pub fn read_sample(path: &Path) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(SAMPLE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    let whole = bytes.len() <= SAMPLE_BYTES;
    bytes.truncate(SAMPLE_BYTES);
    Ok((bytes, whole))
}

/// Previews `sample` (the start of a file; `whole_file` when it is all of it) split by
/// `delimiter`, or the sniffed one.
pub fn preview(sample: &[u8], whole_file: bool, delimiter: Option<u8>) -> Result<Preview, String> {
    let sample = usable_bytes(sample)?;
    let delimiter = delimiter.unwrap_or_else(|| sniff_delimiter(sample));
    let mut reader = csv_reader(sample, delimiter, true);
    let header = read_header(&mut reader)?;
    let mut rows = Vec::new();
    let mut counts: Vec<Vec<(String, usize)>> = vec![Vec::new(); header.len()];
    let mut many = vec![false; header.len()];
    let mut sampled_rows = 0;
    let mut records: Vec<csv::ByteRecord> = reader.byte_records().filter_map(Result::ok).collect();
    // A sample cut short may end in half a record.
    if !whole_file && records.len() > 1 {
        records.pop();
    }
    for record in &records {
        if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
            continue;
        }
        sampled_rows += 1;
        let cells: Vec<String> = record
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        for (c, cell) in cells.iter().enumerate().take(header.len()) {
            let v = cell.trim();
            if v.is_empty() || many[c] {
                continue;
            }
            let column = &mut counts[c];
            match column.iter().position(|(d, _)| d.eq_ignore_ascii_case(v)) {
                Some(k) => column[k].1 += 1,
                None if column.len() < MAX_CLASSES => column.push((v.to_string(), 1)),
                None => many[c] = true,
            }
        }
        if rows.len() < PREVIEW_ROWS {
            rows.push(cells);
        }
    }
    let values = counts
        .into_iter()
        .zip(&many)
        .map(|(mut v, &many)| {
            (!many).then(|| {
                let order =
                    LabelSet::from_values(&v.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>());
                v.sort_by_key(|(d, _)| order.index_of(d));
                v
            })
        })
        .collect();
    let text = find_column(&header, &TEXT_NAMES, &[]);
    let id = find_column(&header, &["id"], &[text]);
    let label = find_column(&header, &LABEL_NAMES, &[text, id]);
    Ok(Preview {
        delimiter,
        header,
        rows,
        values,
        sampled_rows,
        whole_file,
        text,
        id,
        label,
    })
}

impl Preview {
    /// Whether the analyst should choose before importing: no text column found, or no label
    /// column found while another column looks like one (2 to 20 distinct values).
    pub fn needs_choice(&self) -> bool {
        let known = [self.text, self.id, self.label];
        let looks_like_labels = (0..self.header.len()).any(|c| {
            !known.contains(&Some(c))
                && !matches!(self.header[c].to_lowercase().trim(), "keyword" | "location")
                && self.values[c]
                    .as_ref()
                    .is_some_and(|v| (2..=MAX_CLASSES).contains(&v.len()))
        });
        self.text.is_none() || (self.label.is_none() && looks_like_labels)
    }
}

/// One remembered choice: the header it was made for and the options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Remembered {
    header: Vec<String>,
    options: ImportOptions,
}

/// Import choices remembered per header, in a JSON file of the user's tweetlab folder.
pub struct ImportMemory {
    path: PathBuf,
}

impl ImportMemory {
    /// The memory beside the workspaces (`$TWEETLAB_DATA_DIR` or the user's data folder).
    pub fn user() -> Self {
        Self::at(super::store::data_root().join("import-choices.json"))
    }

    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    fn read(&self) -> Vec<Remembered> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The choice made last for a file with this header (compared trimmed, case-insensitively).
    pub fn recall(&self, header: &[String]) -> Option<ImportOptions> {
        self.read()
            .into_iter()
            .find(|r| same_header(&r.header, header))
            .map(|r| r.options)
    }

    /// Remembers `options` for files with `header`, replacing an older choice for it.
    pub fn remember(&self, header: &[String], options: &ImportOptions) -> std::io::Result<()> {
        let mut all = self.read();
        all.retain(|r| !same_header(&r.header, header));
        all.insert(
            0,
            Remembered {
                header: header.to_vec(),
                options: options.clone(),
            },
        );
        all.truncate(50);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_bytes_atomic(
            &self.path,
            &serde_json::to_vec_pretty(&all).expect("options serialise"),
        )
    }
}

fn same_header(a: &[String], b: &[String]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.trim().eq_ignore_ascii_case(y.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRISIS: &[u8] = b"Tweet ID; Tweet Text ;Information Source;Informativeness\n\
        1;Bridge down;Eyewitness;Related and informative\n\
        2;prayers;Media;Related - but not informative\n\
        3;lol;Outsiders;Not related\n\
        4;see link;Media;Not applicable\n\
        5;fire on 5th;Eyewitness;Related and informative\n";

    #[test]
    fn a_crisis_file_previews_its_columns_and_asks_for_a_choice() {
        let p = preview(CRISIS, true, None).unwrap();
        assert_eq!(p.delimiter, b';');
        assert_eq!(p.header[1], "Tweet Text");
        assert_eq!((p.text, p.id, p.label), (Some(1), Some(0), None));
        assert_eq!(p.sampled_rows, 5);
        assert_eq!(p.rows[0][3], "Related and informative");
        let informativeness = p.values[3].as_ref().unwrap();
        assert_eq!(informativeness.len(), 4);
        assert!(informativeness.contains(&("Related and informative".to_string(), 2)));
        assert!(p.needs_choice());
        // Tweet IDs are distinct per row, but 5 rows are few: still 5 <= 20 values; the id
        // column is known, so it does not count.
        let kaggle = preview(
            b"id,keyword,location,text,target\n1,fire,,a,1\n2,,,b,0\n",
            true,
            None,
        )
        .unwrap();
        assert!(!kaggle.needs_choice());
        let unlabelled = preview(b"id,text\n1,a\n", true, None).unwrap();
        assert!(!unlabelled.needs_choice());
        let no_text = preview(b"a,b\n1,2\n", true, None).unwrap();
        assert!(no_text.needs_choice());
    }

    #[test]
    fn choices_are_remembered_per_header() {
        let dir = tempfile::tempdir().unwrap();
        let memory = ImportMemory::at(dir.path().join("choices.json"));
        let header: Vec<String> = ["Tweet ID", "Tweet Text"].map(String::from).to_vec();
        assert_eq!(memory.recall(&header), None);
        let options = ImportOptions {
            text_column: Some("Tweet Text".into()),
            delimiter: Some(b';'),
            labels: Some(LabelSet::from_values(&["a", "b"])),
            ..Default::default()
        };
        memory.remember(&header, &options).unwrap();
        let spaced: Vec<String> = [" tweet id", "TWEET TEXT "].map(String::from).to_vec();
        assert_eq!(memory.recall(&spaced), Some(options));
        assert_eq!(memory.recall(&header[..1]), None);
    }
}
