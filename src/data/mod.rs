//! Tweets on disk: importing CSVs, the SQLite workspace, duplicates, exports, safe writes.
//! No model code and no UI code here.

pub mod atomic;
pub mod dataset;
pub mod duplicates;
pub mod export;
pub mod flags;
pub mod import;
pub mod labels;
pub mod save;
pub mod stats;
pub mod store;
pub mod team;
pub mod user_dirs;

pub use dataset::{load_csv, load_csv_with, Dataset, ImportOptions, Problem, Tweet};
pub use labels::{LabelClass, LabelSet};
