//! tweetlab: a workbench for triaging short social-media posts with a fine-tuned BERT.
//!
//! Layers, each using only those below it:
//! - `cli` and, with the `gui` feature, `app` (the desktop workbench) — the edges;
//! - `protocol` — the events background work sends to the UI;
//! - `engine` — candle models, training, inference, explanations (no UI code);
//! - `label_quality` — suspects and active learning: glue between `data` and `engine`;
//! - `data` — CSV import, exports, atomic writes.

#[cfg(feature = "gui")]
pub mod app;
pub mod cli;
pub mod data;
pub mod engine;
pub mod label_quality;
pub mod protocol;
