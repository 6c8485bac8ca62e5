//! Batched forward passes over texts: logits, class probabilities and frozen sentence
//! embeddings, in input order. Every batched pass in tweetlab (prediction, validation, embedding,
//! explanation) goes through [`map_batches`].

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Tensor, D};

use crate::engine::batching::sorted_batches;
use crate::engine::kernels::Mode;
use crate::engine::model::tokenize::{Batch, Encoded};
use crate::engine::model::LoadedModel;
use crate::engine::EngineError;

/// One padded batch through the model: the batch's indices into the items, and the batch; one
/// row out per index.
pub type BatchForward<'a, T> = dyn FnMut(&[usize], &Batch) -> Result<Vec<T>, EngineError> + 'a;

/// Runs `forward` on batches of `encoded` grouped by length (so little is padded) and puts the
/// rows it returns back in input order. `forward` gets the batch's indices into `encoded` and the
/// padded batch, and returns one row per index. `progress(done, total)` is called after each
/// batch; a set `cancel` stops early with an error.
pub fn map_batches<T: Clone + Default>(
    model: &LoadedModel,
    encoded: &[&Encoded],
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
    cancel: Option<&AtomicBool>,
    forward: &mut BatchForward<'_, T>,
) -> Result<Vec<T>, EngineError> {
    let lengths: Vec<usize> = encoded.iter().map(|e| e.len()).collect();
    let mut out = vec![T::default(); encoded.len()];
    let mut done = 0;
    for batch in sorted_batches(&lengths, batch_size) {
        if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            return Err(EngineError::Cancelled);
        }
        let items: Vec<&Encoded> = batch.iter().map(|&i| encoded[i]).collect();
        let b = Batch::from_encoded(&items, model.tokenizer.pad_id, None, &model.device)?;
        for (&i, row) in batch.iter().zip(forward(&batch, &b)?) {
            out[i] = row;
        }
        done += batch.len();
        progress(done, encoded.len());
    }
    Ok(out)
}

/// The classifier's logits, one row per batch item.
pub fn batch_logits(model: &LoadedModel, batch: &Batch) -> Result<Tensor, EngineError> {
    Ok(model.net.forward(batch, &mut Mode::Eval)?)
}

/// Logits, one per class, for each text. `progress(done, total)` is called after
/// each batch; a set `cancel` stops early with an error.
pub fn logits(
    model: &LoadedModel,
    texts: &[&str],
    max_len: usize,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
    cancel: Option<&AtomicBool>,
) -> Result<Vec<Vec<f32>>, EngineError> {
    let encoded = model.tokenizer.encode_all(texts, max_len)?;
    encoded_logits(model, &encoded, batch_size, progress, cancel)
}

/// [`logits`] of texts already tokenised.
pub fn encoded_logits(
    model: &LoadedModel,
    encoded: &[Encoded],
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
    cancel: Option<&AtomicBool>,
) -> Result<Vec<Vec<f32>>, EngineError> {
    let items: Vec<&Encoded> = encoded.iter().collect();
    map_batches(model, &items, batch_size, progress, cancel, &mut |_, b| {
        Ok(batch_logits(model, b)?.to_vec2::<f32>()?)
    })
}

/// Class probabilities from one row of logits (a stable softmax).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

pub use crate::data::export::top_class;

/// Every class's probability, for each text.
pub fn probabilities(
    model: &LoadedModel,
    texts: &[&str],
    max_len: usize,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Vec<f32>>, EngineError> {
    Ok(logits(model, texts, max_len, batch_size, progress, None)?
        .iter()
        .map(|l| softmax(l))
        .collect())
}

/// Frozen sentence embeddings: the pretrained encoder's last hidden states averaged over the
/// real tokens (how all-MiniLM-L6-v2 was trained to be used), scaled to unit length; one vector
/// per text, in input order. No fine-tuning, so they can be computed once per text and cached.
pub fn embed(
    model: &LoadedModel,
    texts: &[&str],
    max_len: usize,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Vec<f32>>, EngineError> {
    let encoded = model.tokenizer.encode_all(texts, max_len)?;
    let items: Vec<&Encoded> = encoded.iter().collect();
    map_batches(model, &items, batch_size, progress, None, &mut |_, b| {
        let hidden = model.net.encoder.forward(
            &b.input_ids,
            &b.type_ids,
            &b.attention_mask,
            &mut Mode::Eval,
        )?;
        let mask = b.attention_mask.unsqueeze(D::Minus1)?;
        let mean = hidden
            .broadcast_mul(&mask)?
            .sum(1)?
            .broadcast_div(&mask.sum(1)?.clamp(1e-9, f64::MAX)?)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    })
}
