//! Why did the model say "disaster"? Occlusion: hide one word at a time (all its WordPiece
//! pieces become [MASK]) and measure how far the disaster log-odds fall. A word's score is
//! that drop, in logits: positive pushes towards "disaster", negative away from it.
//! Cheaper gradient methods were tried and gave noisy scores; occlusion reads plainly.

use serde::Serialize;

use crate::engine::infer::{encoded_logits, p_disaster};
use crate::engine::model::tokenize::Encoded;
use crate::engine::model::LoadedModel;
use crate::engine::EngineError;

#[derive(Debug, Clone, Serialize)]
pub struct WordAttribution {
    /// The word as written in the original text.
    pub word: String,
    /// Byte span in the original text.
    pub start: usize,
    pub end: usize,
    /// Drop in the disaster log-odds when this word is hidden.
    pub score: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub text: String,
    pub p_disaster: f32,
    /// Words in text order; words past the truncation length are absent.
    pub words: Vec<WordAttribution>,
}

fn log_odds(logits: &[f32; 2]) -> f32 {
    logits[1] - logits[0]
}

/// Explains one text. Cost: one forward pass per word (batched).
pub fn explain(
    model: &LoadedModel,
    text: &str,
    max_len: usize,
) -> Result<Explanation, EngineError> {
    let encoded = model.tokenizer.encode_all(&[text], max_len)?.remove(0);
    // Token positions of each word, in order.
    let mut words: Vec<(u32, Vec<usize>)> = Vec::new();
    for (pos, w) in encoded.word_ids.iter().enumerate() {
        if let Some(w) = *w {
            match words.last_mut() {
                Some((last, positions)) if *last == w => positions.push(pos),
                _ => words.push((w, vec![pos])),
            }
        }
    }
    let mut variants: Vec<Encoded> = Vec::with_capacity(words.len() + 1);
    variants.push(encoded.clone());
    for (_, positions) in &words {
        let mut v = encoded.clone();
        for &p in positions {
            v.ids[p] = model.tokenizer.mask_id;
        }
        variants.push(v);
    }
    let scores = encoded_logits(model, &variants, 64, &mut |_, _| {}, None)?;
    let base = log_odds(&scores[0]);
    let attributions = words
        .iter()
        .zip(&scores[1..])
        .map(|((_, positions), masked)| {
            let start = encoded.offsets[positions[0]].0;
            let end = encoded.offsets[*positions.last().expect("a word has a token")].1;
            WordAttribution {
                word: text.get(start..end).unwrap_or_default().to_string(),
                start,
                end,
                score: base - log_odds(masked),
            }
        })
        .collect();
    Ok(Explanation {
        text: text.to_string(),
        p_disaster: p_disaster(scores[0]),
        words: attributions,
    })
}
