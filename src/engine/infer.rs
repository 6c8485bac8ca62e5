//! Batched prediction: texts in, logits and class-1 probabilities out, in input order.

use std::sync::atomic::{AtomicBool, Ordering};

use super::batching::sorted_batches;
use super::model::LoadedModel;
use super::ops::Mode;
use super::tokenize::{Batch, Encoded};
use super::EngineError;

/// Logits `[not disaster, disaster]` for each text. `progress(done, total)` is called after
/// each batch; a set `cancel` stops early with an error.
pub fn logits(
    model: &LoadedModel,
    texts: &[&str],
    max_len: usize,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
    cancel: Option<&AtomicBool>,
) -> Result<Vec<[f32; 2]>, EngineError> {
    let encoded = model.tokenizer.encode_all(texts, max_len)?;
    let lengths: Vec<usize> = encoded.iter().map(Encoded::len).collect();
    let mut out = vec![[0f32; 2]; texts.len()];
    let mut done = 0;
    for batch in sorted_batches(&lengths, batch_size) {
        if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            return Err(EngineError::Data("prediction cancelled".into()));
        }
        let items: Vec<&Encoded> = batch.iter().map(|&i| &encoded[i]).collect();
        let b = Batch::from_encoded(&items, model.tokenizer.pad_id, None, &model.device)?;
        let rows = model.net.forward(&b, &mut Mode::Eval)?.to_vec2::<f32>()?;
        for (&i, row) in batch.iter().zip(rows) {
            out[i] = [row[0], row[1]];
        }
        done += batch.len();
        progress(done, texts.len());
    }
    Ok(out)
}

/// Probability of class 1 from a pair of logits.
pub fn p_disaster(logits: [f32; 2]) -> f32 {
    1.0 / (1.0 + (logits[0] - logits[1]).exp())
}

/// Probability of class 1 for each text.
pub fn probabilities(
    model: &LoadedModel,
    texts: &[&str],
    max_len: usize,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<f32>, EngineError> {
    Ok(logits(model, texts, max_len, batch_size, progress, None)?
        .into_iter()
        .map(p_disaster)
        .collect())
}
