//! tweetlab: a workbench for triaging short social-media posts with a fine-tuned BERT.
//!
//! Layers, each using only those below it:
//! - `cli` (and, with the `gui` feature, the desktop app) — the edges;
//! - `engine` — candle models, training, inference, explanations (no UI code);
//! - `data` — CSV import, exports, atomic writes.

pub mod cli;
pub mod data;
pub mod engine;
