//! tweetlab: a workbench for triaging short social-media posts with a fine-tuned BERT.
//!
//! Layers, each using only those below it:
//! - `cli`, with the `gui` feature `app` (the desktop workbench), and with the `serve` feature
//!   `serve` (the HTTP model server) — the edges;
//! - `workbench` — one way to open a CSV, predict, review and run background jobs, shared by
//!   the window and the command line (no UI code);
//! - `label_quality` — suspect labels and what to label next, on frozen embeddings;
//! - `engine` — candle: kernels, models, training, inference, explanations (no UI code);
//! - `data` — CSV import, the SQLite workspace, exports, atomic writes.

#[cfg(feature = "gui")]
pub mod app;
pub mod cli;
pub mod data;
pub mod engine;
pub mod label_quality;
#[cfg(feature = "serve")]
pub mod serve;
pub mod workbench;
