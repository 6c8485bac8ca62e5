//! A trainable BERT encoder with Hugging Face's weight names.
//!
//! Same architecture and names as `transformers`' `BertModel` (and candle-transformers' copy,
//! whose `Config` we reuse), but built from differentiable ops with real dropout, so that
//! fine-tuning updates every layer.

use candle_core::{Module, Tensor, D};
use candle_transformers::models::bert::{Config, HiddenAct};

use super::ops::{additive_attention_mask, bias_gelu, masked_softmax, LayerNorm, Linear, Mode};
use super::params::{Init, Params};
use super::EngineError;

/// Architecture settings: candle-transformers' `Config` plus what it leaves out.
#[derive(Debug, Clone)]
pub struct BertConfig {
    pub base: Config,
    pub attention_probs_dropout_prob: f64,
}

impl BertConfig {
    /// Parses a Hugging Face `config.json`.
    pub fn from_json(value: &serde_json::Value, origin: &str) -> Result<Self, EngineError> {
        let base: Config = serde_json::from_value(value.clone()).map_err(|e| {
            EngineError::BadModel(format!("{origin}: config.json is not a BERT config: {e}"))
        })?;
        if base.num_attention_heads == 0
            || !base.hidden_size.is_multiple_of(base.num_attention_heads)
        {
            return Err(EngineError::BadModel(format!(
                "{origin}: hidden_size {} is not a multiple of num_attention_heads {}",
                base.hidden_size, base.num_attention_heads
            )));
        }
        let attention_probs_dropout_prob = value
            .get("attention_probs_dropout_prob")
            .and_then(|v| v.as_f64())
            .unwrap_or(base.hidden_dropout_prob);
        Ok(Self {
            base,
            attention_probs_dropout_prob,
        })
    }
}

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
    token_type: Tensor,
    norm: LayerNorm,
    dropout: f64,
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
        let types = self
            .token_type
            .embedding(&type_ids.flatten_all()?)?
            .reshape((b, l, hidden))?;
        let positions = self.position.narrow(0, 0, l)?.unsqueeze(0)?;
        let xs = (words + types)?.broadcast_add(&positions)?;
        let xs = self.norm.forward(&xs)?;
        mode.dropout(&xs, self.dropout)
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
    fn split_heads(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (b, l, _) = xs.dims3()?;
        xs.reshape((b, l, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor, mode: &mut Mode) -> candle_core::Result<Tensor> {
        let (b, l, h) = xs.dims3()?;
        let q = self.split_heads(&self.query.forward(xs)?)?;
        let k = self.split_heads(&self.key.forward(xs)?)?;
        let v = self.split_heads(&self.value.forward(xs)?)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let probs = masked_softmax(&q.matmul(&k.t()?)?, mask, scale)?;
        let probs = mode.dropout(&probs, self.dropout)?;
        probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, h))
    }
}

struct Layer {
    attention: SelfAttention,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    act: HiddenAct,
    dropout: f64,
}

impl Layer {
    fn forward(&self, xs: &Tensor, mask: &Tensor, mode: &mut Mode) -> candle_core::Result<Tensor> {
        let attended = self.attention.forward(xs, mask, mode)?;
        let attended = mode.dropout(&self.attention_out.forward(&attended)?, self.dropout)?;
        let xs = self.attention_norm.forward(&(attended + xs)?)?;
        let inner = match self.act {
            HiddenAct::Gelu => bias_gelu(
                &self.intermediate.forward_no_bias(&xs)?,
                &self.intermediate.bias,
            )?,
            HiddenAct::GeluApproximate => self.intermediate.forward(&xs)?.gelu()?,
            HiddenAct::Relu => self.intermediate.forward(&xs)?.relu()?,
        };
        let out = mode.dropout(&self.output.forward(&inner)?, self.dropout)?;
        self.output_norm.forward(&(out + xs)?)
    }
}

/// The encoder: embeddings and transformer layers (no pooler; see `classifier`).
pub struct BertEncoder {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    pub config: BertConfig,
}

impl BertEncoder {
    pub fn load(p: &mut Params, config: &BertConfig) -> Result<Self, EngineError> {
        let c = &config.base;
        let h = c.hidden_size;
        let eps = c.layer_norm_eps;
        let std = c.initializer_range;
        let embeddings = Embeddings {
            word: p.get(
                "bert.embeddings.word_embeddings.weight",
                &[c.vocab_size, h],
                Init::Normal(std),
            )?,
            position: p.get(
                "bert.embeddings.position_embeddings.weight",
                &[c.max_position_embeddings, h],
                Init::Normal(std),
            )?,
            token_type: p.get(
                "bert.embeddings.token_type_embeddings.weight",
                &[c.type_vocab_size, h],
                Init::Normal(std),
            )?,
            norm: layer_norm(p, "bert.embeddings.LayerNorm", h, eps)?,
            dropout: c.hidden_dropout_prob,
        };
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let n = format!("bert.encoder.layer.{i}");
            layers.push(Layer {
                attention: SelfAttention {
                    query: linear(p, &format!("{n}.attention.self.query"), h, h, std)?,
                    key: linear(p, &format!("{n}.attention.self.key"), h, h, std)?,
                    value: linear(p, &format!("{n}.attention.self.value"), h, h, std)?,
                    heads: c.num_attention_heads,
                    head_dim: h / c.num_attention_heads,
                    dropout: config.attention_probs_dropout_prob,
                },
                attention_out: linear(p, &format!("{n}.attention.output.dense"), h, h, std)?,
                attention_norm: layer_norm(p, &format!("{n}.attention.output.LayerNorm"), h, eps)?,
                intermediate: linear(
                    p,
                    &format!("{n}.intermediate.dense"),
                    h,
                    c.intermediate_size,
                    std,
                )?,
                output: linear(p, &format!("{n}.output.dense"), c.intermediate_size, h, std)?,
                output_norm: layer_norm(p, &format!("{n}.output.LayerNorm"), h, eps)?,
                act: c.hidden_act,
                dropout: c.hidden_dropout_prob,
            });
        }
        Ok(Self {
            embeddings,
            layers,
            config: config.clone(),
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
        let l = input_ids.dim(D::Minus1)?;
        if l > self.config.base.max_position_embeddings {
            candle_core::bail!(
                "sequence of {l} tokens exceeds the model's {} positions",
                self.config.base.max_position_embeddings
            )
        }
        let mask = additive_attention_mask(attention_mask)?;
        let mut xs = self.embeddings.forward(input_ids, type_ids, mode)?;
        for layer in &self.layers {
            xs = layer.forward(&xs, &mask, mode)?;
        }
        Ok(xs)
    }
}
