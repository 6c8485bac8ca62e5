//! The model worker: one thread owns the loaded model (and, on CUDA, the device). Handlers send
//! it already tokenised texts with a reply channel over a bounded queue; it gathers what arrives
//! within a few milliseconds, up to a token budget, runs those texts as one pass (sorted by
//! length, so little is padded) and answers each request with its own rows.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tokio::sync::oneshot;

use super::metrics::Metrics;
use crate::engine::explain::{explain, Explanation};
use crate::engine::infer::{batch_logits, map_batches};
use crate::engine::model::tokenize::Encoded;
use crate::engine::model::LoadedModel;

/// Work for the model.
pub enum Work {
    /// Each text's logits (one per class).
    Predict {
        encoded: Vec<Encoded>,
        reply: oneshot::Sender<Result<Vec<Vec<f32>>, String>>,
    },
    /// Word contributions for one text.
    Explain {
        text: String,
        reply: oneshot::Sender<Result<Explanation, String>>,
    },
}

impl Work {
    fn tokens(&self) -> usize {
        match self {
            Work::Predict { encoded, .. } => encoded.iter().map(Encoded::len).sum(),
            Work::Explain { .. } => 0,
        }
    }
}

/// How the worker gathers requests into one pass.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Stop gathering once the texts gathered hold this many tokens.
    pub max_batch_tokens: usize,
    /// Stop gathering this long after the first request of a pass arrived.
    pub max_wait: Duration,
    /// Texts per forward pass (longer gathers run as several, sorted by length).
    pub forward_batch: usize,
}

/// Serves `work` until every sender is gone, then returns (what was queued is answered first).
pub fn run(model: &LoadedModel, work: &Receiver<Work>, batching: Batching, metrics: &Arc<Metrics>) {
    while let Ok(first) = work.recv() {
        let deadline = Instant::now() + batching.max_wait;
        let mut tokens = first.tokens();
        let mut gathered = vec![first];
        while tokens < batching.max_batch_tokens {
            match work.recv_deadline(deadline) {
                Ok(w) => {
                    tokens += w.tokens();
                    gathered.push(w);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        metrics.queue_depth.store(work.len(), Ordering::Relaxed);
        let mut predicts = Vec::new();
        for w in gathered {
            match w {
                Work::Predict { encoded, reply } => predicts.push((encoded, reply)),
                Work::Explain { text, reply } => {
                    let result = explain(model, &text, model.default_max_len(), None)
                        .map_err(|e| e.to_string());
                    let _ = reply.send(result);
                }
            }
        }
        if !predicts.is_empty() {
            predict(model, predicts, batching.forward_batch, metrics);
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, String>>;

/// One pass over every text of `requests`; each request gets its own rows back, in order.
fn predict(
    model: &LoadedModel,
    requests: Vec<(Vec<Encoded>, Reply)>,
    forward_batch: usize,
    metrics: &Metrics,
) {
    let items: Vec<&Encoded> = requests.iter().flat_map(|(e, _)| e.iter()).collect();
    metrics.record_batch(items.len());
    let result = map_batches(
        model,
        &items,
        forward_batch,
        &mut |_, _| {},
        None,
        &mut |_, b| Ok(batch_logits(model, b)?.to_vec2::<f32>()?),
    );
    match result {
        Ok(logits) => {
            let mut rows = logits.into_iter();
            for (encoded, reply) in requests {
                let mine: Vec<Vec<f32>> = rows.by_ref().take(encoded.len()).collect();
                let _ = reply.send(Ok(mine));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for (_, reply) in requests {
                let _ = reply.send(Err(message.clone()));
            }
        }
    }
}
