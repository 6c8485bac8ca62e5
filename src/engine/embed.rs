//! Frozen sentence embeddings: the pretrained encoder's last hidden states averaged over the real
//! tokens (how all-MiniLM-L6-v2 was trained to be used), scaled to unit length. No fine-tuning,
//! so they are computed once per text and cached; the label-quality tools fit small heads on them.

use candle_core::D;

use super::batching::sorted_batches;
use super::model::LoadedModel;
use super::ops::Mode;
use super::tokenize::{Batch, Encoded};
use super::EngineError;

/// One unit-length vector per text, in input order. `progress(done, total)` after each batch.
pub fn embed(
    model: &LoadedModel,
    texts: &[&str],
    max_len: usize,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Vec<f32>>, EngineError> {
    let encoded = model.tokenizer.encode_all(texts, max_len)?;
    let lengths: Vec<usize> = encoded.iter().map(Encoded::len).collect();
    let mut out = vec![Vec::new(); texts.len()];
    let mut done = 0;
    for batch in sorted_batches(&lengths, batch_size) {
        let items: Vec<&Encoded> = batch.iter().map(|&i| &encoded[i]).collect();
        let b = Batch::from_encoded(&items, model.tokenizer.pad_id, None, &model.device)?;
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
        let rows = mean.broadcast_div(&norm)?.to_vec2::<f32>()?;
        for (&i, row) in batch.iter().zip(rows) {
            out[i] = row;
        }
        done += batch.len();
        progress(done, texts.len());
    }
    Ok(out)
}
