//! Opening a CSV the same way everywhere: which import choice applies to a file, the window's
//! workspace session, and the rows the command line reads.
//!
//! The choice, first found wins: one given now (the import dialog, or the command line's import
//! flags), the one kept in the file's workspace, one remembered for a file with the same header,
//! else detection.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::data::duplicates::{find_duplicates, Duplicates};
use crate::data::import::{self, ImportMemory};
use crate::data::store::{Arrival, RunStatus, Workspace};
use crate::data::{load_csv_with, Dataset, ImportOptions, Problem};
use crate::engine::train::record::{recorded_runs, RecordedRun};
use crate::workbench::review::RowProbabilities;

/// Where the import choice for a file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceSource {
    /// Given now: the import dialog or the command line's flags.
    Given,
    /// Kept in the file's workspace (made in the import dialog).
    Workspace,
    /// Remembered for another file with the same header.
    Remembered,
    /// Nothing chosen: columns detected by name.
    Detected,
}

impl fmt::Display for ChoiceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Given => "given now",
            Self::Workspace => "the choice kept in its workspace",
            Self::Remembered => "the choice remembered for its header",
            Self::Detected => "detected columns",
        })
    }
}

/// The import choice that applies to a file.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportChoice {
    Known(ImportOptions, ChoiceSource),
    /// Detection is not enough: the analyst should choose (`reason` says what).
    NeedsChoice {
        reason: &'static str,
    },
}

pub const NO_TEXT_COLUMN: &str = "No column is named like a text column: choose the text column.";
pub const LABEL_COLUMN_UNCLEAR: &str =
    "No column is named like a label column, but some look like one: choose the label column (or none).";

/// The choice for `csv` when none is given now.
pub fn import_choice(csv: &Path) -> anyhow::Result<ImportChoice> {
    let db = Workspace::default_path(csv);
    if let Some(o) = Workspace::stored_import_options(&db) {
        return Ok(ImportChoice::Known(o, ChoiceSource::Workspace));
    }
    if db.exists() {
        // A workspace imported with detected columns keeps reading the file that way.
        return Ok(ImportChoice::Known(
            ImportOptions::default(),
            ChoiceSource::Detected,
        ));
    }
    // A file that cannot be previewed is left to the importer, whose message names the problem.
    let detected = ImportChoice::Known(ImportOptions::default(), ChoiceSource::Detected);
    let Ok((sample, whole_file)) = import::read_sample(csv) else {
        return Ok(detected);
    };
    let Ok(preview) = import::preview(&sample, whole_file, None) else {
        return Ok(detected);
    };
    if let Some(o) = ImportMemory::user().recall(&preview.header) {
        return Ok(ImportChoice::Known(o, ChoiceSource::Remembered));
    }
    if preview.needs_choice() {
        let reason = if preview.text.is_none() {
            NO_TEXT_COLUMN
        } else {
            LABEL_COLUMN_UNCLEAR
        };
        return Ok(ImportChoice::NeedsChoice { reason });
    }
    Ok(detected)
}

/// How a file is opened: as before (see [`import_choice`]), or with the analyst's new choice.
pub enum Opening {
    Known,
    Chosen(ImportOptions),
}

/// An open workspace session: the workspace of a CSV and what is derived from it on opening.
pub struct Opened {
    pub csv: PathBuf,
    pub workspace: Workspace,
    /// Imported now, reopened, rebuilt or re-imported after the file changed.
    pub arrival: Arrival,
    pub problems: Vec<Problem>,
    pub duplicates: Duplicates,
    pub past_runs: Vec<RecordedRun>,
    /// The latest finished run's predictions (one slot per row) and its model directory.
    pub predictions: Option<(i64, PathBuf, RowProbabilities)>,
}

/// What opening a file came to.
pub enum OpenOutcome {
    Opened(Box<Opened>),
    NeedsChoice { reason: &'static str },
}

/// Opens the workspace of `csv` (importing the CSV the first time, or again with a new choice),
/// finds duplicates and reads the past runs and the latest finished run's predictions.
pub fn open(
    csv: &Path,
    opening: Opening,
    progress: &mut dyn FnMut(u64, u64),
) -> anyhow::Result<OpenOutcome> {
    let db = Workspace::default_path(csv);
    let (workspace, arrival) = match opening {
        Opening::Chosen(options) => {
            let data = load_csv_with(csv, &options, progress)?;
            let (mut ws, arrival) = Workspace::import_again(&db, csv, &data)?;
            ws.set_import_options(&options)?;
            // Remembering is a convenience: a read-only data folder must not stop the import.
            let _ = ImportMemory::user().remember(&data.layout.header, &options);
            (ws, arrival)
        }
        Opening::Known => {
            let options = match import_choice(csv)? {
                ImportChoice::Known(o, _) => o,
                ImportChoice::NeedsChoice { reason } => {
                    return Ok(OpenOutcome::NeedsChoice { reason })
                }
            };
            let progress = std::cell::RefCell::new(progress);
            Workspace::open_or_import(&db, csv, || {
                load_csv_with(csv, &options, &mut |d, t| (progress.borrow_mut())(d, t))
            })?
        }
    };
    let problems = workspace.problems().to_vec();
    let duplicates = find_duplicates(workspace.rows());
    let log = workspace.run_log()?;
    let past_runs = recorded_runs(&log)?;
    let predictions = past_runs
        .iter()
        .rev()
        .filter(|r| r.status == RunStatus::Finished)
        .find_map(|r| {
            let dir = r.model_dir()?.to_path_buf();
            let p = log.predictions(r.id, workspace.rows().len()).ok()?;
            p.iter().any(Option::is_some).then_some((r.id, dir, p))
        });
    Ok(OpenOutcome::Opened(Box::new(Opened {
        csv: csv.to_path_buf(),
        workspace,
        arrival,
        problems,
        duplicates,
        past_runs,
        predictions,
    })))
}

/// The rows of `csv` as the window shows them, read without changing anything: the import
/// choice as [`import_choice`] finds it unless `given`, and, while the file is as its workspace
/// imported it with that choice, the analyst's label edits not yet saved to the file.
pub struct ReadRows {
    pub data: Dataset,
    /// The choice the rows were read with, and where it came from.
    pub options: ImportOptions,
    pub choice: ChoiceSource,
    /// Labels taken from the workspace because they differ from the file's.
    pub edits_applied: usize,
    /// Why detection may not be what the analyst wants (detection was used anyway).
    pub warning: Option<&'static str>,
}

pub fn read_rows(
    csv: &Path,
    given: Option<ImportOptions>,
    progress: &mut dyn FnMut(u64, u64),
) -> anyhow::Result<ReadRows> {
    let (options, choice, warning) = match given {
        Some(o) => (o, ChoiceSource::Given, None),
        None => match import_choice(csv)? {
            ImportChoice::Known(o, source) => (o, source, None),
            ImportChoice::NeedsChoice { reason } => (
                ImportOptions::default(),
                ChoiceSource::Detected,
                Some(reason),
            ),
        },
    };
    let mut data = load_csv_with(csv, &options, progress)?;
    let edits_applied = apply_workspace_edits(csv, &options, &mut data);
    Ok(ReadRows {
        data,
        options,
        choice,
        edits_applied,
        warning,
    })
}

/// Copies the labels of `csv`'s workspace onto `data` when the workspace holds these very rows:
/// the file unchanged since it was imported, with the same choice. Returns how many changed.
fn apply_workspace_edits(csv: &Path, options: &ImportOptions, data: &mut Dataset) -> usize {
    let db = Workspace::default_path(csv);
    if !db.exists() {
        return 0;
    }
    let stored = Workspace::stored_import_options(&db).unwrap_or_default();
    if &stored != options {
        return 0;
    }
    let Ok(ws) = Workspace::open(&db) else {
        return 0;
    };
    let unchanged = ws
        .fingerprint()
        .is_some_and(|fp| fp.matches(csv).unwrap_or(false));
    let same_rows = ws.rows().len() == data.rows.len()
        && ws
            .rows()
            .iter()
            .zip(&data.rows)
            .all(|(a, b)| a.id == b.id && a.text == b.text);
    if !unchanged || !same_rows || ws.layout().labels != data.layout.labels {
        return 0;
    }
    let mut changed = 0;
    for (row, kept) in data.rows.iter_mut().zip(ws.rows()) {
        if row.label != kept.label {
            row.label = kept.label;
            changed += 1;
        }
    }
    changed
}
