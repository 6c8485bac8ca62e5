//! A trainable transformer encoder (BERT, RoBERTa, DistilBERT) with Hugging Face's weight names.
//!
//! Same architecture and names as `transformers`' `BertModel`, `RobertaModel` and
//! `DistilBertModel`, but built from differentiable ops with real dropout, so that fine-tuning
//! updates every layer.

use candle_core::{Module, Tensor, D};

use crate::engine::kernels::{
    attention, attention_packed, bias_gelu, single_query_attention, unpadded_in_use, AttentionMask,
    LayerNorm, Linear, Mode,
};
use crate::engine::model::config::{Activation, EncoderConfig, Family};
use crate::engine::model::params::{Init, Params};
use crate::engine::EngineError;

pub(crate) fn linear(
    p: &mut Params,
    name: &str,
    in_dim: usize,
    out_dim: usize,
    std: f64,
) -> Result<Linear, EngineError> {
    Ok(Linear {
        weight: p.get(
            &format!("{name}.weight"),
            &[out_dim, in_dim],
            Init::Normal(std),
        )?,
        bias: p.get(&format!("{name}.bias"), &[out_dim], Init::Zeros)?,
    })
}

fn layer_norm(p: &mut Params, name: &str, dim: usize, eps: f64) -> Result<LayerNorm, EngineError> {
    Ok(LayerNorm {
        weight: p.get(&format!("{name}.weight"), &[dim], Init::Ones)?,
        bias: p.get(&format!("{name}.bias"), &[dim], Init::Zeros)?,
        eps,
    })
}

struct Embeddings {
    word: Tensor,
    position: Tensor,
    /// None for DistilBERT, which has no token types.
    token_type: Option<Tensor>,
    norm: LayerNorm,
    dropout: f64,
    /// Row of the first real position (RoBERTa: `pad_token_id + 1`).
    position_offset: usize,
}

impl Embeddings {
    fn forward(
        &self,
        input_ids: &Tensor,
        type_ids: &Tensor,
        mode: &mut Mode,
    ) -> candle_core::Result<Tensor> {
        let (b, l) = input_ids.dims2()?;
        let hidden = self.word.dim(1)?;
        let words = self
            .word
            .embedding(&input_ids.flatten_all()?)?
            .reshape((b, l, hidden))?;
        let words = match &self.token_type {
            Some(table) => {
                let types = table
                    .embedding(&type_ids.flatten_all()?)?
                    .reshape((b, l, hidden))?;
                (words + types)?
            }
            None => words,
        };
        let positions = self
            .position
            .narrow(0, self.position_offset, l)?
            .unsqueeze(0)?;
        let xs = words.broadcast_add(&positions)?;
        let xs = self.norm.forward(&xs)?;
        mode.dropout(&xs, self.dropout)
    }

    /// The embeddings of the real tokens only, `[T, H]`.
    fn forward_packed(
        &self,
        input_ids: &Tensor,
        type_ids: &Tensor,
        packing: &Packing,
        mode: &mut Mode,
    ) -> candle_core::Result<Tensor> {
        let words = self.word.embedding(&packing.select(input_ids)?)?;
        let words = match &self.token_type {
            Some(table) => (words + table.embedding(&packing.select(type_ids)?)?)?,
            None => words,
        };
        let positions = self.position.embedding(&packing.positions)?;
        let xs = (words + positions)?;
        let xs = self.norm.forward(&xs)?;
        mode.dropout(&xs, self.dropout)
    }
}

/// One past the last column of `attention_mask` `[B, L]` that holds a real token.
fn used_length(attention_mask: &Tensor) -> candle_core::Result<usize> {
    let mask = attention_mask
        .to_dtype(candle_core::DType::U32)?
        .to_vec2::<u32>()?;
    Ok(mask
        .iter()
        .filter_map(|row| row.iter().rposition(|m| *m != 0))
        .map(|i| i + 1)
        .max()
        .unwrap_or(0))
}

/// Where the real (unpadded) tokens of a batch sit, so that every position-wise layer (the
/// dense layers, LayerNorm, GELU, dropout: nearly all the work) runs on real tokens only.
/// Attention alone needs the `[B, L]` grid back. Outputs at real tokens equal the padded
/// computation's; tweets are far shorter than the batch's longest, so this skips much work.
pub struct Packing {
    /// Flat index `b * L + i` of each real token, `[T]` u32.
    index: Tensor,
    /// Position embedding row of each real token, `[T]` u32.
    positions: Tensor,
    /// Row in `[T, …]` of each sequence's first token, `[B]` u32.
    first: Tensor,
    /// Each sequence's number of real tokens, when they are its first positions (so its
    /// rows in `[T, …]` are one run and attention can run on them without the grid).
    lengths: Option<Vec<usize>>,
    batch: usize,
    len: usize,
}

impl Packing {
    /// `None` when the batch has no padding (nothing to skip). Positions are numbered from
    /// `position_offset`.
    pub fn new(
        attention_mask: &Tensor,
        position_offset: usize,
    ) -> candle_core::Result<Option<Self>> {
        let (batch, len) = attention_mask.dims2()?;
        let mask = attention_mask
            .to_dtype(candle_core::DType::U32)?
            .to_vec2::<u32>()?;
        let mut index = Vec::new();
        let mut positions = Vec::new();
        let mut first = Vec::with_capacity(batch);
        let mut lengths = Some(Vec::with_capacity(batch));
        for (b, row) in mask.iter().enumerate() {
            if row.first() == Some(&0) {
                // Padding before a text (or an empty row): its first position has no packed
                // row to stand for it, so compute this rare batch on the grid.
                return Ok(None);
            }
            first.push(index.len() as u32);
            let real = row.iter().take_while(|m| **m != 0).count();
            if row[real..].iter().any(|m| *m != 0) {
                lengths = None;
            }
            if let Some(l) = lengths.as_mut() {
                l.push(real);
            }
            for (i, m) in row.iter().enumerate() {
                if *m != 0 {
                    index.push((b * len + i) as u32);
                    positions.push((position_offset + i) as u32);
                }
            }
        }
        if index.len() == batch * len || index.is_empty() {
            return Ok(None);
        }
        let device = attention_mask.device();
        Ok(Some(Self {
            index: Tensor::new(index.as_slice(), device)?,
            positions: Tensor::new(positions.as_slice(), device)?,
            first: Tensor::new(first.as_slice(), device)?,
            lengths,
            batch,
            len,
        }))
    }

    /// `[B, L]` ids → the real tokens' ids `[T]`.
    fn select(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        ids.flatten_all()?.index_select(&self.index, 0)
    }

    /// `[T, W]` → `[B, L, W]`, zeros at padding.
    pub fn unpack(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let w = xs.dim(1)?;
        Tensor::zeros((self.batch * self.len, w), xs.dtype(), xs.device())?
            .index_add(&self.index, xs, 0)?
            .reshape((self.batch, self.len, w))
    }

    /// `[T, W]` → each sequence's first token `[B, W]`.
    fn first_tokens(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        xs.index_select(&self.first, 0)
    }

    /// `[B, L, W]` → `[T, W]`.
    fn pack(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let w = xs.dim(2)?;
        xs.reshape((self.batch * self.len, w))?
            .index_select(&self.index, 0)
    }
}

struct SelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    heads: usize,
    head_dim: usize,
    dropout: f64,
}

impl SelfAttention {
    /// `xs` is `[B, L, H]`, or `[T, H]` with `packing`; the output has the same shape.
    fn forward(
        &self,
        xs: &Tensor,
        mask: &AttentionMask,
        packing: Option<&Packing>,
        mode: &mut Mode,
    ) -> candle_core::Result<Tensor> {
        let q = self.query.forward(xs)?;
        let (k, v) = (self.key.forward(xs)?, self.value.forward(xs)?);
        let (heads, scale) = (self.heads, self.scale());
        if let Some(lengths) = packing.and_then(|p| p.lengths.as_deref()) {
            let packed =
                attention_packed(&q, &k, &v, mask, lengths, heads, scale, self.dropout, mode)?;
            if let Some(context) = packed {
                return Ok(context);
            }
        }
        let (q, k, v) = (
            on_grid(q, packing)?,
            on_grid(k, packing)?,
            on_grid(v, packing)?,
        );
        let context = attention(
            &q,
            &k,
            &v,
            mask,
            self.heads,
            self.scale(),
            self.dropout,
            mode,
        )?;
        match packing {
            Some(p) => p.pack(&context),
            None => Ok(context),
        }
    }

    /// The context of each sequence's first token only, `[B, H]`: its query against every
    /// token's key and value. `first` is the first tokens' input rows `[B, H]`.
    fn forward_first_token(
        &self,
        xs: &Tensor,
        first: &Tensor,
        mask: &AttentionMask,
        packing: Option<&Packing>,
        mode: &mut Mode,
    ) -> candle_core::Result<Tensor> {
        let q = self.query.forward(first)?;
        let (k, v) = self.keys_values(xs, packing)?;
        let (heads, scale) = (self.heads, self.scale());
        single_query_attention(&q, &k, &v, mask, heads, scale, self.dropout, mode)
    }

    /// Every token's key and value, on the `[B, L, H]` grid attention reads.
    fn keys_values(
        &self,
        xs: &Tensor,
        packing: Option<&Packing>,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((
            on_grid(self.key.forward(xs)?, packing)?,
            on_grid(self.value.forward(xs)?, packing)?,
        ))
    }

    fn scale(&self) -> f64 {
        1.0 / (self.head_dim as f64).sqrt()
    }
}

/// Each sequence's first token `[B, W]` from position-wise rows (`[T, W]` when packed, else
/// `[B, L, W]`).
fn first_token_rows(xs: &Tensor, packing: Option<&Packing>) -> candle_core::Result<Tensor> {
    match packing {
        Some(p) => p.first_tokens(xs),
        None => xs.narrow(1, 0, 1)?.squeeze(1),
    }
}

/// Position-wise rows (`[T, W]` when packed) back on the `[B, L, W]` grid.
fn on_grid(xs: Tensor, packing: Option<&Packing>) -> candle_core::Result<Tensor> {
    match packing {
        Some(p) => p.unpack(&xs),
        None => Ok(xs),
    }
}

struct Layer {
    attention: SelfAttention,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    act: Activation,
    /// Dropout after the attention's output projection (DistilBERT has none).
    attention_out_dropout: f64,
    dropout: f64,
}

impl Layer {
    fn forward(
        &self,
        xs: &Tensor,
        mask: &AttentionMask,
        packing: Option<&Packing>,
        mode: &mut Mode,
    ) -> candle_core::Result<Tensor> {
        let attended = self.attention.forward(xs, mask, packing, mode)?;
        self.after_attention(&attended, xs, mode)
    }

    /// [`Layer::forward`] for each sequence's first token only, `[B, H]`: the last layer's
    /// work when only that token's state is read (CLS pooling), a sixth of the layer's dense
    /// work instead of all of it.
    fn forward_first_token(
        &self,
        xs: &Tensor,
        mask: &AttentionMask,
        packing: Option<&Packing>,
        mode: &mut Mode,
    ) -> candle_core::Result<Tensor> {
        let first = first_token_rows(xs, packing)?;
        let attended = self
            .attention
            .forward_first_token(xs, &first, mask, packing, mode)?;
        self.after_attention(&attended, &first, mode)
    }

    /// Output projection, residual and norm, then the feed-forward block: everything after
    /// attention, position by position. `xs` is the layer's input at the same positions.
    fn after_attention(
        &self,
        attended: &Tensor,
        xs: &Tensor,
        mode: &mut Mode,
    ) -> candle_core::Result<Tensor> {
        let attended = mode.dropout(
            &self.attention_out.forward(attended)?,
            self.attention_out_dropout,
        )?;
        let xs = self.attention_norm.forward(&(attended + xs)?)?;
        let inner = match self.act {
            Activation::Gelu => bias_gelu(
                &self.intermediate.forward_no_bias(&xs)?,
                &self.intermediate.bias,
            )?,
            Activation::GeluTanh => self.intermediate.forward(&xs)?.gelu()?,
            Activation::Relu => self.intermediate.forward(&xs)?.relu()?,
        };
        let out = mode.dropout(&self.output.forward(&inner)?, self.dropout)?;
        self.output_norm.forward(&(out + xs)?)
    }
}

/// MPNet's relative position bias: one `[buckets, heads]` table shared by every layer, read at
/// each (query, key) pair's bucket of `key - query` and added to the attention scores.
struct RelativeBias {
    table: Tensor,
    buckets: usize,
}

/// The largest distance with buckets of its own; farther ones share log-spaced buckets (fixed in
/// transformers' MPNet).
const RELATIVE_MAX_DISTANCE: i64 = 128;

/// T5's bidirectional bucket of `relative = key - query`, as transformers' MPNet computes it:
/// half the buckets for each direction, exact for small distances, log-spaced up to
/// [`RELATIVE_MAX_DISTANCE`], the last bucket beyond.
pub fn relative_position_bucket(relative: i64, buckets: usize) -> usize {
    let half = (buckets / 2) as i64;
    let n = -relative;
    let mut bucket = if n < 0 { half } else { 0 };
    let n = n.abs();
    let max_exact = half / 2;
    if n < max_exact {
        bucket += n;
    } else {
        // float32 as in torch: log(n / max_exact) / log(max_distance / max_exact) * (half -
        // max_exact), truncated.
        let ratio = (n as f32 / max_exact as f32).ln()
            / (RELATIVE_MAX_DISTANCE as f32 / max_exact as f32).ln();
        let large = max_exact + (ratio * (half - max_exact) as f32) as i64;
        bucket += large.min(half - 1);
    }
    bucket as usize
}

impl RelativeBias {
    /// The bias for a grid of `len` positions, `[heads, len, len]`.
    fn for_length(&self, len: usize) -> candle_core::Result<Tensor> {
        let ids: Vec<u32> = (0..len as i64)
            .flat_map(|q| {
                (0..len as i64).map(move |k| relative_position_bucket(k - q, self.buckets) as u32)
            })
            .collect();
        let ids = Tensor::from_vec(ids, len * len, self.table.device())?;
        let heads = self.table.dim(1)?;
        self.table
            .embedding(&ids)?
            .reshape((len, len, heads))?
            .permute((2, 0, 1))?
            .contiguous()
    }
}

/// The encoder: embeddings and transformer layers (no pooler; see `classifier`).
pub struct Encoder {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    relative_bias: Option<RelativeBias>,
    pub config: EncoderConfig,
}

impl Encoder {
    pub fn load(p: &mut Params, c: &EncoderConfig) -> Result<Self, EngineError> {
        let h = c.hidden_size;
        let eps = c.layer_norm_eps;
        let std = c.initializer_range;
        let family = c.family;
        let emb = |what: &str| family.embedding_name(what);
        let embeddings = Embeddings {
            word: p.get(
                &emb("word_embeddings.weight"),
                &[c.vocab_size, h],
                Init::Normal(std),
            )?,
            position: p.get(
                &emb("position_embeddings.weight"),
                &[c.max_position_embeddings, h],
                Init::Normal(std),
            )?,
            token_type: match c.type_vocab_size {
                0 => None,
                types => Some(p.get(
                    &emb("token_type_embeddings.weight"),
                    &[types, h],
                    Init::Normal(std),
                )?),
            },
            norm: layer_norm(p, &emb("LayerNorm"), h, eps)?,
            dropout: c.hidden_dropout,
            position_offset: c.position_offset,
        };
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let n = family.layer_names(i);
            layers.push(Layer {
                attention: SelfAttention {
                    query: linear(p, &n.query, h, h, std)?,
                    key: linear(p, &n.key, h, h, std)?,
                    value: linear(p, &n.value, h, h, std)?,
                    heads: c.num_attention_heads,
                    head_dim: h / c.num_attention_heads,
                    dropout: c.attention_dropout,
                },
                attention_out: linear(p, &n.attention_out, h, h, std)?,
                attention_norm: layer_norm(p, &n.attention_norm, h, eps)?,
                intermediate: linear(p, &n.intermediate, h, c.intermediate_size, std)?,
                output: linear(p, &n.output, c.intermediate_size, h, std)?,
                output_norm: layer_norm(p, &n.output_norm, h, eps)?,
                act: c.activation,
                attention_out_dropout: match family {
                    Family::DistilBert => 0.0,
                    _ => c.hidden_dropout,
                },
                dropout: c.hidden_dropout,
            });
        }
        let relative_bias = match c.relative_buckets {
            0 => None,
            buckets => Some(RelativeBias {
                table: p.get(
                    &format!("{}.encoder.relative_attention_bias.weight", family.prefix()),
                    &[buckets, c.num_attention_heads],
                    Init::Normal(std),
                )?,
                buckets,
            }),
        };
        Ok(Self {
            embeddings,
            layers,
            relative_bias,
            config: c.clone(),
        })
    }

    /// Hidden states `[B, L, H]` for token ids `[B, L]` and a 0/1 attention mask `[B, L]`.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        type_ids: &Tensor,
        attention_mask: &Tensor,
        mode: &mut Mode,
    ) -> candle_core::Result<Tensor> {
        self.run(input_ids, type_ids, attention_mask, Read::All, mode)
    }

    /// The first token's hidden state `[B, H]` (what CLS pooling reads): the same values as
    /// `forward(…)[:, 0]`. When padding is skipped and nothing trains, the last layer computes
    /// that token alone (its keys and values still come from every token); otherwise this is
    /// the full pass, so that `--dense` stays the like-for-like benchmark and a training run
    /// (its dropout masks drawn in order from one seed) does not depend on this shortcut.
    pub fn forward_first_token(
        &self,
        input_ids: &Tensor,
        type_ids: &Tensor,
        attention_mask: &Tensor,
        mode: &mut Mode,
    ) -> candle_core::Result<Tensor> {
        if mode.is_train() || !unpadded_in_use(input_ids.device()) {
            let hidden = self.forward(input_ids, type_ids, attention_mask, mode)?;
            return first_token_rows(&hidden, None);
        }
        self.run(input_ids, type_ids, attention_mask, Read::FirstToken, mode)
    }

    fn run(
        &self,
        input_ids: &Tensor,
        type_ids: &Tensor,
        attention_mask: &Tensor,
        read: Read,
        mode: &mut Mode,
    ) -> candle_core::Result<Tensor> {
        let l = input_ids.dim(D::Minus1)?;
        if l > self.config.max_tokens() {
            candle_core::bail!(
                "sequence of {l} tokens exceeds the model's {} positions",
                self.config.max_tokens()
            )
        }
        if unpadded_in_use(input_ids.device()) {
            // Columns after the longest sequence hold padding only: drop them, and give them
            // back as zeros at the end so the output keeps the input's shape.
            let used = used_length(attention_mask)?;
            if used > 0 && used < l {
                let narrow = |t: &Tensor| t.narrow(1, 0, used);
                let xs = self.run(
                    &narrow(input_ids)?,
                    &narrow(type_ids)?,
                    &narrow(attention_mask)?,
                    read,
                    mode,
                )?;
                return match read {
                    Read::All => xs.pad_with_zeros(1, 0, l - used),
                    Read::FirstToken => Ok(xs),
                };
            }
        }
        // MPNet's position bias, `[heads, L, L]`, once per batch for every layer.
        let mask = AttentionMask {
            position_bias: match &self.relative_bias {
                Some(bias) => Some(bias.for_length(attention_mask.dim(1)?)?),
                None => None,
            },
            ..AttentionMask::padding(attention_mask)?
        };
        let packing = if unpadded_in_use(input_ids.device()) {
            Packing::new(attention_mask, self.config.position_offset)?
        } else {
            None
        };
        let mut xs = match &packing {
            Some(p) => self
                .embeddings
                .forward_packed(input_ids, type_ids, p, mode)?,
            None => self.embeddings.forward(input_ids, type_ids, mode)?,
        };
        let full_layers = match read {
            Read::All => self.layers.len(),
            Read::FirstToken => self.layers.len().saturating_sub(1),
        };
        for layer in &self.layers[..full_layers] {
            xs = layer.forward(&xs, &mask, packing.as_ref(), mode)?;
        }
        match (read, self.layers.last()) {
            (Read::FirstToken, Some(last)) => {
                last.forward_first_token(&xs, &mask, packing.as_ref(), mode)
            }
            (Read::FirstToken, None) => first_token_rows(&xs, packing.as_ref()),
            (Read::All, _) => on_grid(xs, packing.as_ref()),
        }
    }
}

/// Which positions of the last layer a pass computes.
#[derive(Clone, Copy)]
enum Read {
    All,
    FirstToken,
}
