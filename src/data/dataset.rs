//! Importing a CSV (or TSV) of tweets: the Kaggle layout `id,keyword,location,text,target`
//! or any file with a text column and an optional label column.
//!
//! Real files are messy, so a bad row is reported with its line number and reason, and the rest
//! still loads. Only a file that cannot be used at all (empty, binary, no text column) fails.

use std::path::Path;

use serde::Serialize;

pub use super::labels::{LabelClass, LabelSet, MAX_CLASSES};

/// One row of the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Tweet {
    pub id: String,
    pub keyword: String,
    pub location: String,
    pub text: String,
    /// The class's index in the dataset's `LabelSet` (0/1 files: 0 = not a disaster,
    /// 1 = disaster); None = unlabelled.
    pub label: Option<u8>,
    /// The label cell when it held an unknown value (kept so that exports lose nothing).
    pub unparsed_label: Option<String>,
    /// Cells of the columns tweetlab does not use, in `Dataset::extra_columns` order.
    pub extra: Vec<String>,
    /// 1-based line where the record starts in the source file.
    pub line: u64,
}

/// A row that could not be used as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Problem {
    /// 1-based line in the file where the record starts.
    pub line: u64,
    pub reason: String,
}

/// Which column holds what (indices into `Dataset::header`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Columns {
    pub text: usize,
    pub label: Option<usize>,
    pub id: Option<usize>,
    pub keyword: Option<usize>,
    pub location: Option<usize>,
}

/// The source file's shape, kept so that the corrected dataset can be written back in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Layout {
    pub header: Vec<String>,
    pub columns: Columns,
    /// Header indices of the columns kept in `Tweet::extra`.
    pub extra_columns: Vec<usize>,
    /// Extra columns the analyst chose not to see or export (kept in the file and in `extra`).
    #[serde(default)]
    pub hidden_columns: Vec<usize>,
    pub delimiter: u8,
    pub labels: LabelSet,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Dataset {
    pub rows: Vec<Tweet>,
    pub problems: Vec<Problem>,
    pub layout: Layout,
    /// Rows whose bytes were not valid UTF-8 and were decoded with replacement characters.
    pub lossy_rows: usize,
    /// Past `MAX_PROBLEMS`: the line of the first problem not listed, and how many there are.
    #[serde(skip)]
    more_problems: Option<(u64, usize)>,
    /// Where each row's record lies in the bytes it was parsed from (one per row): what lets
    /// Save change label cells alone and keep every other byte of the analyst's file.
    #[serde(skip)]
    pub spans: Vec<RecordSpan>,
    /// Byte offset where the header line ends (before its line terminator).
    #[serde(skip)]
    pub header_end: usize,
}

/// A record's bytes in the parsed input, without its line terminator, and its label cell's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordSpan {
    pub start: usize,
    pub end: usize,
    pub label: Option<(usize, usize)>,
}

/// The byte range of field `field` in one record's raw bytes (quotes included), following the
/// csv crate's rules: a quote opens a quoted field only at the field's start, `""` inside is a
/// quote.
fn field_span(raw: &[u8], delimiter: u8, field: usize) -> Option<(usize, usize)> {
    let (mut index, mut start, mut quoted, mut i) = (0, 0, false, 0);
    while i < raw.len() {
        let b = raw[i];
        if quoted {
            if b == b'"' {
                if raw.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    quoted = false;
                }
            }
        } else if b == b'"' && i == start {
            quoted = true;
        } else if b == delimiter {
            if index == field {
                return Some((start, i));
            }
            index += 1;
            start = i + 1;
        }
        i += 1;
    }
    (index == field).then_some((start, raw.len()))
}

impl Dataset {
    /// Records a problem row, up to `MAX_PROBLEMS` of them; the rest are counted.
    fn problem(&mut self, line: u64, reason: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem { line, reason });
        } else {
            if self.more_problems.is_none() {
                self.more_problems = Some((line, 0));
            }
            if let Some((_, n)) = &mut self.more_problems {
                *n += 1;
            }
        }
    }

    pub fn labelled(&self) -> impl Iterator<Item = (&Tweet, u8)> {
        self.rows.iter().filter_map(|t| t.label.map(|l| (t, l)))
    }

    pub fn text_column(&self) -> &str {
        &self.layout.header[self.layout.columns.text]
    }

    pub fn label_column(&self) -> Option<&str> {
        self.layout
            .columns
            .label
            .map(|c| self.layout.header[c].as_str())
    }
}

/// Overrides for what the importer would detect by itself: the analyst's import choice, kept
/// in the workspace and remembered for files with the same header (`data::import`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ImportOptions {
    pub text_column: Option<String>,
    pub label_column: Option<String>,
    pub id_column: Option<String>,
    /// The label set; without one, a 0/1 column is binary, and a column of other values (or
    /// one named in `label_column`) gets one class per distinct value.
    pub labels: Option<LabelSet>,
    /// The field delimiter; sniffed among `, ; \t |` when not given.
    pub delimiter: Option<u8>,
    /// Columns not to show or export (their cells stay in the analyst's file).
    pub hidden_columns: Vec<String>,
    /// No label column at all, even when one would be detected.
    pub no_label_column: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {message}")]
    Unusable { path: String, message: String },
}

/// Problem rows listed one by one; past this many, one last entry counts the rest (a crafted
/// or badly broken file would otherwise make the list as large as the file).
pub const MAX_PROBLEMS: usize = 1000;

pub(crate) const TEXT_NAMES: [&str; 6] = ["text", "tweet", "content", "message", "body", "post"];
pub(crate) const LABEL_NAMES: [&str; 5] = ["target", "label", "labels", "class", "category"];

/// A header cell as lowercase words: `Tweet Text`, `tweet_text` and ` text ` compare alike.
fn header_words(h: &str) -> Vec<String> {
    h.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The first column (not in `taken`) named one of `names`: an exact name (case, spaces and
/// punctuation aside) before a header that merely contains it as a word (`Tweet Text`).
pub(crate) fn find_column(
    header: &[String],
    names: &[&str],
    taken: &[Option<usize>],
) -> Option<usize> {
    let free = |i: &usize| !taken.contains(&Some(*i));
    let cells: Vec<Vec<String>> = header.iter().map(|h| header_words(h)).collect();
    let exact = names.iter().find_map(|n| {
        let n = header_words(n);
        (0..header.len()).filter(free).find(|&i| cells[i] == n)
    });
    exact.or_else(|| {
        names.iter().find_map(|n| {
            let n = header_words(n);
            (0..header.len())
                .filter(free)
                .find(|&i| n.len() == 1 && cells[i].contains(&n[0]))
        })
    })
}

/// The delimiters sniffed, in order of preference on a tie.
pub const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// The delimiter that splits the first records of `bytes` into the most records with the
/// header's field count (more than one field), then into the most fields.
pub fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let sample = &bytes[..bytes.len().min(64 * 1024)];
    let mut best = (b',', 0usize, 0usize);
    for d in DELIMITERS {
        let mut reader = csv_reader(sample, d, false);
        let mut counts: Vec<usize> = Vec::new();
        for record in reader.byte_records().take(50) {
            match record {
                Ok(r) if r.len() == 1 && r.get(0).is_some_and(<[u8]>::is_empty) => {}
                Ok(r) => counts.push(r.len()),
                Err(_) => break,
            }
        }
        // The sample may cut its last record short.
        if sample.len() < bytes.len() && counts.len() > 1 {
            counts.pop();
        }
        let Some(&fields) = counts.first() else {
            continue;
        };
        if fields < 2 {
            continue;
        }
        let agreeing = counts.iter().filter(|&&c| c == fields).count();
        if (agreeing, fields) > (best.1, best.2) {
            best = (d, agreeing, fields);
        }
    }
    best.0
}

/// Distinct label cells of the body (up to `MAX_CLASSES + 1` of them), trimmed, first spelling
/// kept.
fn distinct_label_values(body: &[u8], delimiter: u8, column: usize) -> Vec<String> {
    let mut reader = csv_reader(body, delimiter, false);
    let mut distinct: Vec<String> = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(_) => continue,
        }
        let Some(cell) = record.get(column) else {
            continue;
        };
        let cell = String::from_utf8_lossy(cell);
        let cell = cell.trim();
        if !cell.is_empty() && !distinct.iter().any(|d| d.eq_ignore_ascii_case(cell)) {
            distinct.push(cell.to_string());
            if distinct.len() > MAX_CLASSES {
                break;
            }
        }
    }
    distinct
}

/// The label set for a label column read without one given: 0/1 stays binary; other values
/// become one class each when the column was named or holds no 0/1 value at all.
fn detect_label_set(values: &[String], named: Option<&str>) -> Result<LabelSet, String> {
    let binary = LabelSet::default();
    let all_binary = values.iter().all(|v| binary.knows(v));
    let any_binary = values.iter().any(|v| binary.knows(v));
    if all_binary || (named.is_none() && any_binary) {
        return Ok(binary);
    }
    match (values.len(), named) {
        (2..=MAX_CLASSES, _) => Ok(LabelSet::from_values(values)),
        (n, Some(column)) if n > MAX_CLASSES => Err(format!(
            "the label column `{column}` has more than {MAX_CLASSES} distinct values; tweetlab trains 2 to {MAX_CLASSES} classes: map the values to classes (--labels NAME=VALUE,VALUE;NAME=VALUE)"
        )),
        (_, Some(column)) => Err(format!(
            "the label column `{column}` holds one value only ({}); a model needs two classes or more: name them (--labels NAME=VALUE,VALUE;NAME=VALUE)",
            values.join(", ")
        )),
        _ => Ok(binary),
    }
}

/// Loads a CSV of tweets with detected columns. Fails only when the file cannot be used at all.
pub fn load_csv(path: &Path) -> Result<Dataset, DataError> {
    load_csv_with(path, &ImportOptions::default(), &mut |_, _| {})
}

/// Loads a CSV; `progress(bytes_done, bytes_total)` is called as records are read.
pub fn load_csv_with(
    path: &Path,
    options: &ImportOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Dataset, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::Unusable {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    let tsv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    parse(&bytes, tsv, options, progress).map_err(|message| DataError::Unusable {
        path: path.display().to_string(),
        message,
    })
}

/// Parses CSV bytes (the whole importer, without the file system; the fuzz target calls this).
pub fn parse(
    bytes: &[u8],
    tsv: bool,
    options: &ImportOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Dataset, String> {
    let input_len = bytes.len();
    let bytes = usable_bytes(bytes)?;
    let bom = input_len - bytes.len();
    let delimiter = match options.delimiter {
        Some(d) => d,
        None if tsv => b'\t',
        None => sniff_delimiter(bytes),
    };
    let mut reader = csv_reader(bytes, delimiter, true);
    let header = read_header(&mut reader)?;
    let named = |wanted: &Option<String>, role: &str| -> Result<Option<usize>, String> {
        match wanted {
            None => Ok(None),
            Some(name) => header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name.trim()))
                .or_else(|| find_column(&header, &[name.as_str()], &[]))
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "no {role} column named `{name}` (header is: {})",
                        header.join(", ")
                    )
                }),
        }
    };
    let text = match named(&options.text_column, "text")? {
        Some(c) => c,
        None => find_column(&header, &TEXT_NAMES, &[]).ok_or_else(|| {
            format!(
                "no text column: expected one named {} (header is: {}); name it with --text-column",
                TEXT_NAMES.join(", "),
                header.join(", ")
            )
        })?,
    };
    let id = match named(&options.id_column, "id")? {
        Some(c) => Some(c),
        None => find_column(&header, &["id"], &[Some(text)]),
    };
    let label = match named(&options.label_column, "label")? {
        _ if options.no_label_column => None,
        Some(c) => Some(c),
        None => find_column(&header, &LABEL_NAMES, &[Some(text), id]),
    };
    let keyword = find_column(&header, &["keyword"], &[Some(text), id, label]);
    let location = find_column(&header, &["location"], &[Some(text), id, label, keyword]);
    let columns = Columns {
        text,
        label,
        id,
        keyword,
        location,
    };
    let used = [
        Some(columns.text),
        columns.label,
        columns.id,
        columns.keyword,
        columns.location,
    ];
    let extra_columns: Vec<usize> = (0..header.len())
        .filter(|i| !used.contains(&Some(*i)))
        .collect();
    let hidden_columns: Vec<usize> = extra_columns
        .iter()
        .copied()
        .filter(|&i| {
            options
                .hidden_columns
                .iter()
                .any(|h| h.trim().eq_ignore_ascii_case(&header[i]))
        })
        .collect();
    // Start the body reader on the header's line terminator: the csv crate strips a UTF-8 BOM
    // at the start of its input, which must not happen to the first row's first field.
    let body_start = (reader.position().byte() as usize).saturating_sub(1);
    let labels = match (&options.labels, columns.label) {
        (Some(set), _) => {
            set.check()?;
            set.clone()
        }
        (None, Some(c)) => detect_label_set(
            &distinct_label_values(&bytes[body_start.min(bytes.len())..], delimiter, c),
            options.label_column.as_ref().map(|_| header[c].as_str()),
        )?,
        (None, None) => LabelSet::default(),
    };
    let mut data = Dataset {
        layout: Layout {
            header,
            columns,
            extra_columns,
            hidden_columns,
            delimiter,
            labels,
        },
        ..Default::default()
    };
    data.header_end = bytes[..body_start.min(bytes.len())]
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |p| p + 1);
    read_records(bytes, body_start, &mut data, progress);
    // Offsets into the input as given, BOM included.
    data.header_end += bom;
    for span in &mut data.spans {
        span.start += bom;
        span.end += bom;
        if let Some((a, b)) = &mut span.label {
            *a += bom;
            *b += bom;
        }
    }
    if let Some((line, n)) = data.more_problems.take() {
        data.problems.push(Problem {
            line,
            reason: format!("and {n} more problem rows from this line on (not listed)"),
        });
    }
    progress(bytes.len() as u64, bytes.len() as u64);
    Ok(data)
}

/// `bytes` without a UTF-8 BOM, refused when it is empty or binary.
pub(crate) fn usable_bytes(bytes: &[u8]) -> Result<&[u8], String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err("the file is empty".into());
    }
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return Err("this looks like a binary file, not a CSV".into());
    }
    Ok(bytes)
}

/// The header line's cells, trimmed.
pub(crate) fn read_header(reader: &mut csv::Reader<&[u8]>) -> Result<Vec<String>, String> {
    Ok(reader
        .byte_headers()
        .map_err(|e| format!("cannot read the header line: {e}"))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect())
}

pub(crate) fn csv_reader(bytes: &[u8], delimiter: u8, has_headers: bool) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(has_headers)
        .from_reader(bytes)
}

/// Whether `bytes` holds an odd number of quote characters: a quoted field never closed.
fn quotes_unbalanced(bytes: &[u8]) -> bool {
    bytes.iter().filter(|&&b| b == b'"').count() % 2 == 1
}

/// Counts lines up to byte offsets that only grow, in linear time overall. (The csv crate's
/// own line numbers drift after CRLF line ends.)
struct LineCounter<'a> {
    bytes: &'a [u8],
    counted_to: usize,
    newlines: u64,
}

impl LineCounter<'_> {
    /// 1-based line of the record starting at `offset` (line terminators before the record
    /// belong to earlier lines).
    fn line_of(&mut self, mut offset: usize) -> u64 {
        while matches!(self.bytes.get(offset), Some(b'\n' | b'\r')) {
            offset += 1;
        }
        let offset = offset.min(self.bytes.len());
        if offset >= self.counted_to {
            self.newlines += self.bytes[self.counted_to..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            self.counted_to = offset;
        }
        1 + self.newlines
    }
}

const NEVER_CLOSED: &str = "a quoted field is never closed (unterminated quote); the row is skipped and reading resumes on the next line";

/// Where the csv reader is inside a record, as far as finding the record's end goes (the
/// states of csv-core's reader with the default quoting: a quote inside an unquoted field is
/// a plain character, two quotes inside a quoted one are one quote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: it closes the field unless another quote follows.
    QuoteInQuoted,
}

impl Scan {
    fn step(self, byte: u8, delimiter: u8) -> Scan {
        match (self, byte) {
            (Scan::Quoted, b'"') => Scan::QuoteInQuoted,
            (Scan::Quoted, _) => Scan::Quoted,
            (Scan::FieldStart, b'"') | (Scan::QuoteInQuoted, b'"') => Scan::Quoted,
            (_, b) if b == delimiter => Scan::FieldStart,
            _ => Scan::Unquoted,
        }
    }
}

/// Tells, for a record starting on any line, whether it runs to the end of the input with a
/// quote left open, without reading the rest of the input for each line: after one such
/// record, reading resumes on the next line, and a crafted file (`a","` lines, one closing
/// quote at the end) made every line such a record, each read to the end (quadratic).
struct OpenQuoteLines<'a> {
    bytes: &'a [u8],
    /// Start of each stretch between line terminators (`\r` or `\n`), ascending.
    stretch_starts: Vec<usize>,
    /// A record starting at stretch i ends at the terminator after it.
    ends_at_once: Vec<bool>,
    /// A record that enters stretch i inside a quoted field ends at or after it, before the
    /// end of the input.
    ends_later: Vec<bool>,
    /// The last byte that is not white space.
    last_content: usize,
    /// Quote characters before `quotes_counted_to`.
    quotes_before: usize,
    quotes_counted_to: usize,
    total_quotes: usize,
    /// The first non-white-space byte at or after the last offset asked about.
    content_from: Option<(usize, usize)>,
}

impl<'a> OpenQuoteLines<'a> {
    fn new(bytes: &'a [u8], from: usize, delimiter: u8) -> Self {
        let terminator = |b: u8| b == b'\r' || b == b'\n';
        let mut stretch_starts = vec![from];
        stretch_starts.extend(
            (from..bytes.len())
                .filter(|&i| terminator(bytes[i]))
                .map(|i| i + 1),
        );
        // The reader counts a record that ends on the input's last line end (`\n`, `\r` or
        // `\r\n`) as running to the end, like one with no line end at all.
        let final_line_end = match bytes {
            [.., b'\r', b'\n'] => bytes.len() - 2,
            [.., b'\r' | b'\n'] => bytes.len() - 1,
            _ => bytes.len(),
        };
        let mut ends_at_once = Vec::with_capacity(stretch_starts.len());
        let mut ends_in_stretch = Vec::with_capacity(stretch_starts.len());
        for (i, &s) in stretch_starts.iter().enumerate() {
            let end = stretch_starts.get(i + 1).map_or(bytes.len(), |&n| n - 1);
            let terminated = end < final_line_end;
            let run = |state: Scan| {
                bytes[s..end]
                    .iter()
                    .fold(state, |st, &b| st.step(b, delimiter))
            };
            ends_at_once.push(terminated && run(Scan::FieldStart) != Scan::Quoted);
            ends_in_stretch.push(terminated && run(Scan::Quoted) != Scan::Quoted);
        }
        let mut ends_later = vec![false; stretch_starts.len() + 1];
        for i in (0..stretch_starts.len()).rev() {
            ends_later[i] = ends_in_stretch[i] || ends_later[i + 1];
        }
        Self {
            bytes,
            stretch_starts,
            ends_at_once,
            ends_later,
            last_content: bytes
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .unwrap_or(0),
            quotes_before: 0,
            quotes_counted_to: 0,
            total_quotes: bytes.iter().filter(|&&b| b == b'"').count(),
            content_from: None,
        }
    }

    /// Whether the record starting at `start` (the first byte after a line terminator) is one
    /// the reader reports as never closed: it runs to the end, spans lines and holds an odd
    /// number of quotes. Offsets asked about must grow.
    fn never_closed(&mut self, start: usize) -> bool {
        let Ok(i) = self.stretch_starts.binary_search(&start) else {
            return false;
        };
        if self.ends_at_once[i] || self.ends_later[i + 1] {
            return false;
        }
        self.quotes_before += self.bytes[self.quotes_counted_to..start]
            .iter()
            .filter(|&&b| b == b'"')
            .count();
        self.quotes_counted_to = start;
        if (self.total_quotes - self.quotes_before).is_multiple_of(2) {
            return false;
        }
        let content = match self.content_from {
            Some((asked, found)) if asked <= start && start <= found => found,
            _ => (start..self.bytes.len())
                .find(|&j| !self.bytes[j].is_ascii_whitespace())
                .unwrap_or(self.bytes.len()),
        };
        self.content_from = Some((start, content));
        self.bytes[content.min(self.bytes.len())..]
            .iter()
            .position(|&b| b == b'\n')
            .is_some_and(|nl| content + nl < self.last_content)
    }
}

/// Reads records from `all[start..]`. A quote left open swallows everything after it; such a
/// record is reported and reading resumes on the line after it started.
fn read_records(all: &[u8], start: usize, data: &mut Dataset, progress: &mut dyn FnMut(u64, u64)) {
    read_records_skipping(all, start, data, progress, true)
}

/// [`read_records`]; with `skip_open_quotes`, the lines whose records also run unclosed to the
/// end are reported without reading each of them to the end (the same problems, in linear
/// time; false: the reader reads every one, kept to check the skipping against).
fn read_records_skipping(
    all: &[u8],
    mut start: usize,
    data: &mut Dataset,
    progress: &mut dyn FnMut(u64, u64),
    skip_open_quotes: bool,
) {
    let mut open_quotes: Option<OpenQuoteLines> = None;
    let total = all.len() as u64;
    let mut lines = LineCounter {
        bytes: all,
        counted_to: 0,
        newlines: 0,
    };
    'chunks: while start < all.len() {
        let chunk = &all[start..];
        let mut reader = csv_reader(chunk, data.layout.delimiter, false);
        let mut record = csv::ByteRecord::new();
        loop {
            let before = reader.position().byte() as usize;
            match reader.read_byte_record(&mut record) {
                Ok(false) => break 'chunks,
                Ok(true) => {}
                Err(e) => {
                    let line = lines.line_of(start + before);
                    data.problem(line, format!("unreadable record: {e}"));
                    continue;
                }
            }
            let pos = record
                .position()
                .expect("records read have a position")
                .byte() as usize;
            let line = lines.line_of(start + pos);
            let end = reader.position().byte() as usize;
            let raw = &chunk[pos..end];
            let multi_line = raw.trim_ascii().contains(&b'\n');
            if end >= chunk.len() && multi_line && quotes_unbalanced(raw) {
                data.problem(line, NEVER_CLOSED.into());
                let rec_start = start
                    + pos
                    + raw
                        .iter()
                        .take_while(|&&b| b == b'\n' || b == b'\r')
                        .count();
                let Some(nl) = all[rec_start..].iter().position(|&b| b == b'\n') else {
                    break 'chunks;
                };
                // Resume on the newline itself (an empty line to the reader), for the same BOM
                // reason as the body start.
                start = rec_start + nl;
                if skip_open_quotes {
                    let lines_ahead = open_quotes.get_or_insert_with(|| {
                        OpenQuoteLines::new(all, start, data.layout.delimiter)
                    });
                    loop {
                        let next = (start..all.len())
                            .find(|&j| all[j] != b'\n' && all[j] != b'\r')
                            .unwrap_or(all.len());
                        if next >= all.len() || !lines_ahead.never_closed(next) {
                            break;
                        }
                        data.problem(lines.line_of(next), NEVER_CLOSED.into());
                        match all[next..].iter().position(|&b| b == b'\n') {
                            Some(nl) => start = next + nl,
                            None => break 'chunks,
                        }
                    }
                }
                continue 'chunks;
            }
            if record.position().is_some_and(|p| p.record() % 4096 == 0) {
                progress((start + end) as u64, total);
            }
            let lead = raw
                .iter()
                .take_while(|&&b| b == b'\n' || b == b'\r')
                .count();
            // Without its line terminator only: a TSV row's trailing tab is its last (empty)
            // cell, not whitespace.
            let body_len = raw[lead..]
                .iter()
                .rposition(|&b| b != b'\n' && b != b'\r')
                .map_or(0, |p| p + 1);
            let body = &raw[lead..lead + body_len];
            add_record(&record, line, start + pos + lead, body, data);
        }
    }
}

/// Adds one record as a row (or a problem); `raw` is its bytes without the line terminator,
/// starting at `offset` in the input.
fn add_record(record: &csv::ByteRecord, line: u64, offset: usize, raw: &[u8], data: &mut Dataset) {
    if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
        return; // blank line
    }
    let layout = &data.layout;
    let width = layout.header.len();
    let c = &layout.columns;
    if record.len() <= c.text {
        data.problem(
            line,
            format!(
                "only {} fields, but the text column `{}` is field {}",
                record.len(),
                layout.header[c.text],
                c.text + 1
            ),
        );
        return;
    }
    if record.len() > width {
        data.problem(
            line,
            format!(
                "{} fields, but the header has {}: is there an unquoted delimiter in the text?",
                record.len(),
                width
            ),
        );
        return;
    }
    let mut lossy = false;
    let mut cell = |col: Option<usize>| -> String {
        let Some(raw) = col.and_then(|i| record.get(i)) else {
            return String::new();
        };
        match std::str::from_utf8(raw) {
            Ok(s) => s.to_string(),
            Err(_) => {
                lossy = true;
                String::from_utf8_lossy(raw).into_owned()
            }
        }
    };
    let text = cell(Some(c.text));
    let label_cell = cell(c.label);
    let id = cell(c.id);
    let keyword = cell(c.keyword);
    let location = cell(c.location);
    let extra: Vec<String> = layout
        .extra_columns
        .iter()
        .map(|&i| cell(Some(i)))
        .collect();
    let parsed = layout.labels.parse(&label_cell);
    let no_id_column = c.id.is_none();
    let label_span = c
        .label
        .and_then(|f| field_span(raw, layout.delimiter, f))
        .map(|(a, b)| (offset + a, offset + b));
    let (label, unparsed_label) = match parsed {
        Ok(l) => (l, None),
        Err(reason) => {
            data.problem(line, format!("{reason}; row kept unlabelled"));
            (None, Some(label_cell))
        }
    };
    if lossy {
        data.lossy_rows += 1;
        data.problem(
            line,
            "invalid UTF-8, decoded with replacement characters".into(),
        );
    }
    let id = if id.trim().is_empty() && no_id_column {
        (data.rows.len() + 1).to_string()
    } else {
        id
    };
    data.spans.push(RecordSpan {
        start: offset,
        end: offset + raw.len(),
        label: label_span,
    });
    data.rows.push(Tweet {
        id,
        keyword,
        location,
        text,
        label,
        unparsed_label,
        extra,
        line,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The rows and problems `parse` finds, with or without skipping never-closed lines.
    fn rows_and_problems(bytes: &[u8], skip: bool) -> (Vec<(u64, String)>, Vec<Problem>) {
        let mut data = Dataset {
            layout: Layout {
                header: vec!["id".into(), "text".into()],
                columns: Columns {
                    text: 1,
                    label: None,
                    id: Some(0),
                    keyword: None,
                    location: None,
                },
                delimiter: b',',
                ..Default::default()
            },
            ..Default::default()
        };
        read_records_skipping(bytes, 0, &mut data, &mut |_, _| {}, skip);
        let rows = data.rows.iter().map(|t| (t.line, t.text.clone())).collect();
        (rows, data.problems)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        /// Skipping the lines whose records never close finds exactly what reading each of
        /// them to the end finds.
        #[test]
        fn skipping_never_closed_lines_changes_nothing(
            bytes in proptest::collection::vec(
                proptest::sample::select(b"a,\"\n\r ;\t".to_vec()), 0..120)
        ) {
            prop_assert_eq!(rows_and_problems(&bytes, true), rows_and_problems(&bytes, false));
        }
    }

    /// The crafted shape that made the importer quadratic: it is found as before.
    #[test]
    fn lines_of_open_quotes_are_each_reported_once() {
        for ending in ["", "\n", "\r\n", "\n\n"] {
            let mut csv = b"a\",\"\n".repeat(50);
            csv.extend_from_slice(b"b\"");
            csv.extend_from_slice(ending.as_bytes());
            let (fast, slow) = (
                rows_and_problems(&csv, true),
                rows_and_problems(&csv, false),
            );
            assert_eq!(fast, slow, "ending {ending:?}");
            // Each line is its own never-closed record only where the reader finds the long
            // record running to the very end; after `\r\n` or a blank last line it ends
            // before, and that is one problem.
            if ending.is_empty() || ending == "\n" {
                assert!(fast.1.len() >= 49, "ending {ending:?}: {:?}", fast.1.len());
            }
        }
    }

    fn load_str(content: &[u8]) -> Result<Dataset, String> {
        parse(content, false, &ImportOptions::default(), &mut |_, _| {})
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
        assert_eq!(
            d.rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![2, 4, 5]
        );
        assert!(d.problems.is_empty());
    }

    #[test]
    fn bad_rows_are_reported_with_their_line_and_the_rest_loads() {
        let d = load_str(b"id,text,target\n1,ok,1\n2\n3,\"two\nlines\",maybe\n4,\xff\xfe bytes,0\n5,a,b,c,d\n6,last,0\n").unwrap();
        assert_eq!(
            d.rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            vec!["1", "3", "4", "6"]
        );
        let lines: Vec<u64> = d.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![3, 4, 6, 7], "{:?}", d.problems);
        assert!(d.problems[1].reason.contains("maybe"));
        assert_eq!(d.rows[1].label, None);
        assert_eq!(d.rows[1].unparsed_label.as_deref(), Some("maybe"));
        assert_eq!(d.lossy_rows, 1);
        assert!(d.rows[2].text.contains('\u{FFFD}'));
    }

    #[test]
    fn an_unterminated_quote_loses_only_its_own_row() {
        let d =
            load_str(b"id,text,target\n1,fine,0\n2,\"never closed,1\n3,after,1\n4,also after,0\n")
                .unwrap();
        assert_eq!(
            d.rows.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(),
            vec!["fine", "after", "also after"]
        );
        assert_eq!(d.problems.len(), 1);
        assert_eq!(d.problems[0].line, 3);
        assert!(d.problems[0].reason.contains("unterminated"));
    }

    #[test]
    fn unusable_files_get_one_clear_message() {
        assert!(load_str(b"").unwrap_err().contains("empty"));
        assert!(load_str(b"  \n\n").unwrap_err().contains("empty"));
        assert!(load_str(b"\x00\x01\x02PK").unwrap_err().contains("binary"));
        let no_text = load_str(b"a,b\n1,2\n").unwrap_err();
        assert!(
            no_text.contains("no text column") && no_text.contains("a, b"),
            "{no_text}"
        );
    }

    #[test]
    fn tsv_other_column_names_and_generated_ids() {
        let d = load_str(b"tweet\tlabel\nhello\t1\nworld\t0\n").unwrap();
        assert_eq!(d.rows[0].text, "hello");
        assert_eq!(d.rows[0].label, Some(1));
        assert_eq!((d.rows[0].id.as_str(), d.rows[1].id.as_str()), ("1", "2"));
    }

    #[test]
    fn mapping_overrides_and_label_names() {
        let csv = b"msg,body,verdict,extra\nfirst,second,Relevant,x\nthird,fourth,irrelevant,y\n";
        let options = ImportOptions {
            text_column: Some("msg".into()),
            label_column: Some("verdict".into()),
            labels: Some(LabelSet::binary(
                vec!["irrelevant".into()],
                vec!["relevant".into()],
            )),
            ..Default::default()
        };
        let d = parse(csv, false, &options, &mut |_, _| {}).unwrap();
        assert_eq!(d.rows[0].text, "first");
        assert_eq!(
            d.rows.iter().map(|r| r.label).collect::<Vec<_>>(),
            vec![Some(1), Some(0)]
        );
        assert_eq!(d.layout.extra_columns, vec![1, 3]);
        assert_eq!(d.rows[1].extra, vec!["fourth".to_string(), "y".to_string()]);
        let missing = ImportOptions {
            text_column: Some("nope".into()),
            ..Default::default()
        };
        assert!(parse(csv, false, &missing, &mut |_, _| {})
            .unwrap_err()
            .contains("no text column named `nope`"));
    }

    #[test]
    fn a_huge_field_loads() {
        let mut csv = b"id,text\n1,\"".to_vec();
        csv.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
        csv.extend(b"\"\n2,small\n");
        let d = load_str(&csv).unwrap();
        assert_eq!(d.rows.len(), 2);
        assert_eq!(d.rows[0].text.len(), 10 * 1024 * 1024);
    }

    #[test]
    fn spaced_capitalised_headers_and_semicolons_with_string_labels() {
        let csv = "Tweet ID; Tweet Text ;Information Source;Informativeness\n\
                   7;Bridge down, road closed;Eyewitness;Related and informative\n\
                   8;thoughts and prayers;Media;Related - but not informative\n\
                   9;new phone who dis;Outsiders;Not related\n\
                   10;see link;Media;Not applicable\n";
        let options = ImportOptions {
            label_column: Some("informativeness".into()),
            ..Default::default()
        };
        let d = parse(csv.as_bytes(), false, &options, &mut |_, _| {}).unwrap();
        assert_eq!(d.layout.delimiter, b';');
        assert_eq!(d.text_column(), "Tweet Text");
        assert_eq!(d.layout.columns.id, Some(0));
        assert_eq!(d.rows[0].text, "Bridge down, road closed");
        assert_eq!(d.rows[0].id, "7");
        assert_eq!(
            d.layout.labels.names(),
            vec![
                "Not applicable",
                "Not related",
                "Related - but not informative",
                "Related and informative"
            ]
        );
        assert_eq!(
            d.rows.iter().map(|r| r.label).collect::<Vec<_>>(),
            vec![Some(3), Some(2), Some(1), Some(0)]
        );
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        // Detected, not named: the same column of strings is a label column only when asked.
        let d = parse(
            csv.as_bytes(),
            false,
            &ImportOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(d.layout.columns.label, None);
    }

    #[test]
    fn delimiters_are_sniffed_from_consistent_field_counts() {
        assert_eq!(sniff_delimiter(b"id,text,target\n1,\"a; b; c\",1\n"), b',');
        assert_eq!(
            sniff_delimiter(b"id;text;target\n1;a, b, c;1\n2;d;0\n"),
            b';'
        );
        assert_eq!(sniff_delimiter(b"id|text\n1|a, b; c\n"), b'|');
        assert_eq!(sniff_delimiter(b"id\ttext\n1\ta, b\n"), b'\t');
        assert_eq!(sniff_delimiter(b"text\nhello\n"), b',');
        let options = ImportOptions {
            delimiter: Some(b'|'),
            ..Default::default()
        };
        let d = parse(b"text,x|target\na,b|1\n", false, &options, &mut |_, _| {}).unwrap();
        assert_eq!(d.rows[0].text, "a,b");
    }

    #[test]
    fn label_columns_of_other_values_become_classes_and_binary_stays_binary() {
        let d = load_str(b"text,label\na,neg\nb,pos\nc,neutral\nd,\n").unwrap();
        assert_eq!(d.layout.labels.names(), vec!["neg", "neutral", "pos"]);
        assert_eq!(d.rows[3].label, None);
        let d = load_str(b"text,target\na,1\nb,0\nc,maybe\n").unwrap();
        assert!(d.layout.labels.is_default_binary());
        assert_eq!(d.problems.len(), 1);
        let named = ImportOptions {
            label_column: Some("target".into()),
            ..Default::default()
        };
        let d = parse(
            b"text,target\na,1\nb,0\nc,2\n",
            false,
            &named,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(d.layout.labels.names(), vec!["0", "1", "2"]);
        let one = parse(b"text,target\na,x\nb,x\n", false, &named, &mut |_, _| {}).unwrap_err();
        assert!(one.contains("one value only"), "{one}");
        let many: String = (0..30).map(|i| format!("t,v{i}\n")).collect();
        let err = parse(
            format!("text,target\n{many}").as_bytes(),
            false,
            &named,
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(err.contains("more than 20 distinct values"), "{err}");
    }
}
