//! The workbench: one way to open a CSV, predict and review it, and run that work in the
//! background, shared by the window (`app`) and the command line (`cli`). No UI code: the
//! window draws and routes, the command line parses and prints, and both call this.

pub mod jobs;
pub mod open;
pub mod review;
pub mod team;

pub use jobs::{JobEvent, Progress};
pub use open::{import_choice, ChoiceSource, ImportChoice, OpenOutcome, Opened, Opening};
