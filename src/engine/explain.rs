//! Why did the model pick a class? Occlusion: hide one word at a time (all its WordPiece
//! pieces become [MASK]) and measure how far the class's log-odds (against all the others) fall.
//! A word's score is that drop, in logits: positive pushes towards the class, negative away
//! from it. With two classes and class 1 that is the disaster log-odds.
//! Cheaper gradient methods were tried and gave noisy scores; occlusion reads plainly.

use serde::Serialize;

use crate::engine::infer::{encoded_logits, softmax, top_class};
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
    /// Drop in the explained class's log-odds when this word is hidden.
    pub score: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub text: String,
    /// Every class's probability.
    pub probabilities: Vec<f32>,
    /// The class the words are scored for (the predicted one unless another was asked for).
    pub class: u8,
    /// Words in text order; words past the truncation length are absent.
    pub words: Vec<WordAttribution>,
}

/// log(p / (1 - p)) of `class`, from logits, without forming p (stable for confident models).
fn log_odds(logits: &[f32], class: usize) -> f32 {
    let max = logits
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != class)
        .map(|(_, &l)| l)
        .fold(f32::NEG_INFINITY, f32::max);
    let rest: f32 = logits
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != class)
        .map(|(_, &l)| (l - max).exp())
        .sum();
    logits[class] - max - rest.ln()
}

/// Explains one text for the predicted class, or `class` when given. Cost: one forward pass per
/// word (batched).
pub fn explain(
    model: &LoadedModel,
    text: &str,
    max_len: usize,
    class: Option<u8>,
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
    let probabilities = softmax(&scores[0]);
    let class = class.unwrap_or_else(|| top_class(&probabilities));
    if class as usize >= probabilities.len() {
        return Err(EngineError::Data(format!(
            "class {class}: the model has {} classes",
            probabilities.len()
        )));
    }
    let c = class as usize;
    let base = log_odds(&scores[0], c);
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
                score: base - log_odds(masked, c),
            }
        })
        .collect();
    Ok(Explanation {
        text: text.to_string(),
        probabilities,
        class,
        words: attributions,
    })
}
