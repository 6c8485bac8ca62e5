//! Tweets on disk: importing CSVs, exporting predictions, writing files safely. No model code
//! and no UI code here.

pub mod atomic;
pub mod dataset;
pub mod export;

pub use dataset::{load_csv, Dataset, Problem, Tweet};
