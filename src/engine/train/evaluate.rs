//! Validation: mean loss and metrics of the model on held-out rows.

use candle_core::Tensor;

use crate::engine::infer::{batch_logits, map_batches};
use crate::engine::metrics::Metrics;
use crate::engine::model::tokenize::Encoded;
use crate::engine::model::LoadedModel;
use crate::engine::EngineError;

/// Mean loss and metrics on `indices`.
pub fn evaluate(
    model: &LoadedModel,
    encoded: &[Encoded],
    labels: &[u8],
    indices: &[usize],
    batch_size: usize,
) -> Result<(f64, Metrics), EngineError> {
    let items: Vec<&Encoded> = indices.iter().map(|&i| &encoded[i]).collect();
    let mut loss_sum = 0f64;
    let probs = map_batches(
        model,
        &items,
        batch_size,
        &mut |_, _| {},
        None,
        &mut |batch, b| {
            let y: Vec<u32> = batch.iter().map(|&k| labels[indices[k]] as u32).collect();
            let y = Tensor::new(y.as_slice(), &model.device)?;
            let logits = batch_logits(model, b)?;
            loss_sum += candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64
                * batch.len() as f64;
            Ok(candle_nn::ops::softmax(&logits, 1)?.to_vec2::<f32>()?)
        },
    )?;
    let given: Vec<u8> = indices.iter().map(|&i| labels[i]).collect();
    Ok((
        loss_sum / indices.len().max(1) as f64,
        Metrics::from_probabilities(&given, &probs),
    ))
}
