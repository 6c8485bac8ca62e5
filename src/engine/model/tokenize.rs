//! Text to token ids: loading a BERT tokenizer, batching with dynamic padding, and building a
//! WordPiece vocabulary from a corpus (for small models and tests).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeSet, HashMap};
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;

use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{
    AddedToken, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer,
    Tokenizer, TruncationParams,
};

use crate::engine::model::source::TokenizerFile;
use crate::engine::EngineError;

/// One tokenised text, unpadded.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// Byte span of each token in the original text ((0, 0) for special tokens).
    pub offsets: Vec<(usize, usize)>,
    /// Index of the pre-tokenised word each token belongs to (None for special tokens).
    pub word_ids: Vec<Option<u32>>,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Tensors for one batch, padded to its longest member.
#[derive(Debug, Clone)]
pub struct Batch {
    pub input_ids: Tensor,
    pub type_ids: Tensor,
    pub attention_mask: Tensor,
}

impl Batch {
    /// Pads `items` to the longest (or to `pad_to`, if longer) and moves them to `device`.
    pub fn from_encoded(
        items: &[&Encoded],
        pad_id: u32,
        pad_to: Option<usize>,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let longest = items.iter().map(|e| e.len()).max().unwrap_or(0);
        let len = pad_to.map_or(longest, |p| p.max(longest)).max(1);
        let b = items.len();
        let mut ids = vec![pad_id; b * len];
        let mut types = vec![0u32; b * len];
        let mut mask = vec![0u32; b * len];
        for (row, e) in items.iter().enumerate() {
            let base = row * len;
            ids[base..base + e.len()].copy_from_slice(&e.ids);
            types[base..base + e.len()].copy_from_slice(&e.type_ids);
            mask[base..base + e.len()].fill(1);
        }
        Ok(Self {
            input_ids: Tensor::from_vec(ids, (b, len), device)?,
            type_ids: Tensor::from_vec(types, (b, len), device)?,
            attention_mask: Tensor::from_vec(mask, (b, len), device)?.to_dtype(DType::F32)?,
        })
    }
}

/// A BERT tokenizer with truncation set and padding off (we pad per batch).
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    pub pad_id: u32,
    /// Id used to hide a word when explaining by occlusion ([MASK], else [UNK]).
    pub mask_id: u32,
    /// The longest input the model's positions cover: no encoding is longer, whatever
    /// length a caller asks for.
    pub max_tokens: usize,
}

impl TextTokenizer {
    pub fn load(file: &TokenizerFile, lowercase: bool) -> Result<Self, EngineError> {
        let inner = match file {
            TokenizerFile::Json(path) => Tokenizer::from_file(path).map_err(|e| {
                EngineError::BadModel(format!("{}: cannot read tokenizer: {e}", path.display()))
            })?,
            TokenizerFile::Vocab(path) => from_vocab(path, lowercase)?,
            TokenizerFile::Bpe { vocab, merges } => byte_level_bpe(vocab, merges)?,
        };
        Self::from_tokenizer(inner)
    }

    pub fn from_tokenizer(mut inner: Tokenizer) -> Result<Self, EngineError> {
        // Files like MiniLM's carry fixed padding to 128: we pad per batch instead.
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let id = |t: &str| inner.token_to_id(t);
        let pad_id = id("[PAD]").or_else(|| id("<pad>")).unwrap_or(0);
        let mask_id = ["[MASK]", "<mask>", "[UNK]", "<unk>"]
            .into_iter()
            .find_map(id)
            .ok_or_else(|| {
                EngineError::Tokenizer(
                    "tokenizer has no mask or unknown token ([MASK], <mask>, [UNK], <unk>)".into(),
                )
            })?;
        Ok(Self {
            inner,
            pad_id,
            mask_id,
            max_tokens: usize::MAX,
        })
    }

    /// The underlying tokenizer, for saving next to a checkpoint.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.inner
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Tokenises each text, truncated to `max_len` tokens (at most [`Self::max_tokens`])
    /// including [CLS] and [SEP].
    pub fn encode_all(&self, texts: &[&str], max_len: usize) -> Result<Vec<Encoded>, EngineError> {
        self.truncating(max_len)?.encode(texts)
    }

    /// A copy that truncates to `max_len` tokens: made once, it encodes many small requests
    /// without being set up again each time (the server's handlers).
    pub fn truncating(&self, max_len: usize) -> Result<TruncatingTokenizer, EngineError> {
        let mut inner = self.inner.clone();
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len.min(self.max_tokens).max(2),
                ..Default::default()
            }))
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(TruncatingTokenizer { inner })
    }

    pub fn token_text(&self, id: u32) -> String {
        self.inner.id_to_token(id).unwrap_or_default()
    }
}

/// A tokenizer with its truncation length set (see [`TextTokenizer::truncating`]).
#[derive(Clone)]
pub struct TruncatingTokenizer {
    inner: Tokenizer,
}

impl TruncatingTokenizer {
    /// Encodes a few texts on the calling thread. `encode` hands texts to rayon's global pool,
    /// which candle's kernels keep busy while a model runs: a server's handler would wait for
    /// the model to finish a pass before it could even tokenise the next request.
    pub fn encode_here(&self, texts: &[&str]) -> Result<Vec<Encoded>, EngineError> {
        texts
            .iter()
            .map(|t| {
                self.inner
                    .encode(*t, true)
                    .map(|e| Encoded::from(&e))
                    .map_err(|e| EngineError::Tokenizer(e.to_string()))
            })
            .collect()
    }

    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Encoded>, EngineError> {
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(encodings.iter().map(Encoded::from).collect())
    }
}

impl From<&tokenizers::Encoding> for Encoded {
    fn from(e: &tokenizers::Encoding) -> Self {
        Self {
            ids: e.get_ids().to_vec(),
            type_ids: e.get_type_ids().to_vec(),
            offsets: e.get_offsets().to_vec(),
            word_ids: e.get_word_ids().to_vec(),
        }
    }
}

fn bert_pipeline(
    model: WordPiece,
    lowercase: bool,
    cls: u32,
    sep: u32,
) -> Result<Tokenizer, EngineError> {
    let mut tok = Tokenizer::new(model);
    tok.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)))
        .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    tok.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), sep),
        ("[CLS]".into(), cls),
    )));
    tok.with_decoder(Some(WordPieceDecoder::default()));
    Ok(tok)
}

fn from_vocab(path: &Path, lowercase: bool) -> Result<Tokenizer, EngineError> {
    let model = WordPiece::from_file(&path.to_string_lossy())
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| {
            EngineError::BadModel(format!("{}: cannot read vocabulary: {e}", path.display()))
        })?;
    let cls = tokenizers::Model::token_to_id(&model, "[CLS]");
    let sep = tokenizers::Model::token_to_id(&model, "[SEP]");
    match (cls, sep) {
        (Some(cls), Some(sep)) => bert_pipeline(model, lowercase, cls, sep),
        _ => Err(EngineError::BadModel(format!(
            "{}: vocabulary lacks [CLS] or [SEP]",
            path.display()
        ))),
    }
}

/// RoBERTa's tokenizer from its `vocab.json` and `merges.txt`, as `transformers` converts it:
/// byte-level BPE, `<s> text </s>`, no prefix space.
fn byte_level_bpe(vocab: &Path, merges: &Path) -> Result<Tokenizer, EngineError> {
    let bad = |e: String| {
        EngineError::BadModel(format!(
            "{} and {}: cannot read the BPE tokenizer: {e}",
            vocab.display(),
            merges.display()
        ))
    };
    let model = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let id = |t: &str| tokenizers::Model::token_to_id(&model, t);
    let (Some(bos), Some(eos)) = (id("<s>"), id("</s>")) else {
        return Err(bad("the vocabulary lacks <s> or </s>".into()));
    };
    let specials: Vec<AddedToken> = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        .into_iter()
        .filter(|t| id(t).is_some())
        .map(|t| AddedToken::from(t, true).lstrip(t == "<mask>"))
        .collect();
    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevel::new(false, true, true)));
    tok.with_post_processor(Some(
        RobertaProcessing::new(("</s>".into(), eos), ("<s>".into(), bos))
            .trim_offsets(true)
            .add_prefix_space(false),
    ));
    tok.add_special_tokens(specials)
        .map_err(|e| bad(e.to_string()))?;
    Ok(tok)
}

/// Special tokens in the order BERT vocabularies use, so [PAD] gets id 0.
const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// Builds a lowercase WordPiece vocabulary of at most `vocab_size` entries from `texts`: the
/// special tokens, every character (alone and as a `##` continuation), then whole words by
/// frequency. The same corpus always gives the same vocabulary.
///
/// tokenizers' own `WordPieceTrainer` is not used: it numbers `##` pieces in hash-map order,
/// so merge ties, and with them the vocabulary, change from one process to the next.
pub fn train_wordpiece<S: AsRef<str>>(
    texts: impl Iterator<Item = S>,
    vocab_size: usize,
) -> Result<TextTokenizer, EngineError> {
    let err =
        |e: tokenizers::Error| EngineError::Tokenizer(format!("building a vocabulary failed: {e}"));
    let normalizer = BertNormalizer::new(true, true, None, true);
    let mut counts: HashMap<String, u64> = HashMap::new();
    for text in texts {
        let mut pieces = PreTokenizedString::from(text.as_ref());
        pieces.normalize(|s| normalizer.normalize(s)).map_err(err)?;
        BertPreTokenizer.pre_tokenize(&mut pieces).map_err(err)?;
        for (word, _, _) in pieces.get_splits(OffsetReferential::Normalized, OffsetType::Byte) {
            *counts.entry(word.to_string()).or_default() += 1;
        }
    }
    let chars: BTreeSet<char> = counts.keys().flat_map(|w| w.chars()).collect();
    let mut vocab: Vec<String> = SPECIAL_TOKENS.iter().map(|t| t.to_string()).collect();
    vocab.extend(chars.iter().map(|c| c.to_string()));
    vocab.extend(chars.iter().map(|c| format!("##{c}")));
    let mut words: Vec<(&String, u64)> = counts
        .iter()
        .filter(|(w, _)| w.chars().count() > 1)
        .map(|(w, &c)| (w, c))
        .collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let room = vocab_size.saturating_sub(vocab.len());
    vocab.extend(words.into_iter().take(room).map(|(w, _)| w.clone()));
    let ids: ahash::AHashMap<String, u32> = vocab
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i as u32))
        .collect();
    let model = WordPiece::builder()
        .vocab(ids)
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
    let mut tok = bert_pipeline(model, true, 2, 3)?;
    tok.add_special_tokens(SPECIAL_TOKENS.map(|t| AddedToken::from(t, true)))
        .map_err(err)?;
    TextTokenizer::from_tokenizer(tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_vocabulary_is_deterministic_and_tokenises_like_bert() {
        let texts = [
            "Forest fire near the lake",
            "Fire! Fire near La Ronge",
            "evacuate the lake now",
        ];
        let a = train_wordpiece(texts.iter(), 60).unwrap();
        let b = train_wordpiece(texts.iter().rev(), 60).unwrap();
        assert_eq!(
            a.tokenizer().to_string(false).unwrap(),
            b.tokenizer().to_string(false).unwrap()
        );
        assert_eq!((a.pad_id, a.mask_id), (0, 4));
        let enc = a
            .encode_all(&["FIRE near Ronge? forage"], 16)
            .unwrap()
            .remove(0);
        let tokens: Vec<String> = enc.ids.iter().map(|&i| a.token_text(i)).collect();
        // "?" never occurs in the corpus; "forage" is spelled from continuation pieces.
        assert_eq!(
            tokens,
            [
                "[CLS]", "fire", "near", "ronge", "[UNK]", "f", "##o", "##r", "##a", "##g", "##e",
                "[SEP]"
            ]
        );
        assert_eq!(enc.word_ids[4..6], [Some(3), Some(4)]);
    }
}
