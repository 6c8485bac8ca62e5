//! `BertForSequenceClassification` and its RoBERTa and DistilBERT counterparts, head and all,
//! with the weight names `transformers` uses, so that an exported checkpoint loads there and
//! gives the same probabilities.

use std::collections::{BTreeMap, HashMap};

use candle_core::{Device, Module, Tensor, Var, D};
use serde::{Deserialize, Serialize};

use crate::engine::kernels::{Linear, Mode};
use crate::engine::model::config::{EncoderConfig, Family};
use crate::engine::model::encoder::{linear, Encoder};
use crate::engine::model::params::{LoadReport, Params};
use crate::engine::model::tokenize::Batch;
use crate::engine::EngineError;

/// How a tweet's token states become one vector for the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// [CLS] -> dense -> tanh: Hugging Face's pooler (the default; exports match `transformers`).
    #[default]
    Cls,
    /// Mean of the real tokens' states (what sentence-transformers trained MiniLM with).
    /// `transformers`' BertForSequenceClassification cannot reproduce it.
    Mean,
}

impl std::str::FromStr for Pooling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cls" => Ok(Pooling::Cls),
            "mean" => Ok(Pooling::Mean),
            other => Err(format!("unknown pooling `{other}`: use cls or mean")),
        }
    }
}

/// The classification head of each family, as `transformers` builds it.
enum Head {
    /// BERT: pooler (dense + tanh) on [CLS], dropout, `classifier`.
    Pooler { pooler: Linear, classifier: Linear },
    /// RoBERTa: dropout, `classifier.dense`, tanh, dropout, `classifier.out_proj` on `<s>`.
    Roberta { dense: Linear, out_proj: Linear },
    /// DistilBERT: `pre_classifier`, ReLU, dropout, `classifier` on [CLS].
    Distil {
        pre_classifier: Linear,
        classifier: Linear,
    },
}

/// An encoder with its family's classification head (`*ForSequenceClassification`).
pub struct Classifier {
    pub encoder: Encoder,
    head: Head,
    pub pooling: Pooling,
    /// Every trainable tensor under its Hugging Face name.
    pub vars: BTreeMap<String, Var>,
    pub load_report: LoadReport,
}

impl Classifier {
    /// Builds the classifier from checkpoint tensors (already renamed by
    /// `params::normalise_names`) with a head of `num_labels` outputs; missing head weights
    /// are initialised from `seed`.
    pub fn from_tensors(
        tensors: HashMap<String, Tensor>,
        config: &EncoderConfig,
        pooling: Pooling,
        num_labels: usize,
        device: &Device,
        seed: u64,
        origin: &str,
    ) -> Result<Self, EngineError> {
        Self::build(
            Params::new(tensors, config.family, device, seed, origin),
            config,
            pooling,
            num_labels,
        )
    }

    /// A model with every weight drawn fresh from `seed` (tests and tiny models).
    pub fn random(
        config: &EncoderConfig,
        pooling: Pooling,
        num_labels: usize,
        device: &Device,
        seed: u64,
    ) -> Result<Self, EngineError> {
        Self::build(
            Params::fresh(config.family, device, seed),
            config,
            pooling,
            num_labels,
        )
    }

    fn build(
        mut p: Params,
        c: &EncoderConfig,
        pooling: Pooling,
        num_labels: usize,
    ) -> Result<Self, EngineError> {
        let encoder = Encoder::load(&mut p, c)?;
        let h = c.hidden_size;
        let std = c.initializer_range;
        let mut linear = |name: &str, out: usize| linear(&mut p, name, h, out, std);
        let head = match c.family {
            Family::Bert => Head::Pooler {
                pooler: linear("bert.pooler.dense", h)?,
                classifier: linear("classifier", num_labels)?,
            },
            // MPNetForSequenceClassification's head is RoBERTa's, under the same names.
            Family::Roberta | Family::Mpnet => Head::Roberta {
                dense: linear("classifier.dense", h)?,
                out_proj: linear("classifier.out_proj", num_labels)?,
            },
            Family::DistilBert => Head::Distil {
                pre_classifier: linear("pre_classifier", h)?,
                classifier: linear("classifier", num_labels)?,
            },
        };
        let load_report = p.report().clone();
        Ok(Self {
            encoder,
            head,
            pooling,
            vars: p.into_vars(),
            load_report,
        })
    }

    /// The sentence vector `[B, H]` the head's scoring starts from: the first token's state
    /// (through BERT's pooler), or the mean of the real tokens' states.
    pub fn pooled(&self, batch: &Batch, mode: &mut Mode) -> candle_core::Result<Tensor> {
        let (ids, types, mask) = (&batch.input_ids, &batch.type_ids, &batch.attention_mask);
        match self.pooling {
            Pooling::Cls => {
                let first = self.encoder.forward_first_token(ids, types, mask, mode)?;
                match &self.head {
                    Head::Pooler { pooler, .. } => pooler.forward(&first)?.tanh(),
                    _ => Ok(first),
                }
            }
            Pooling::Mean => {
                let hidden = self.encoder.forward(ids, types, mask, mode)?;
                let mask = batch
                    .attention_mask
                    .to_dtype(hidden.dtype())?
                    .unsqueeze(D::Minus1)?;
                let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
                summed.broadcast_div(&mask.sum(1)?.clamp(1e-9, f64::MAX)?)
            }
        }
    }

    /// Logits `[B, classes]`.
    pub fn forward(&self, batch: &Batch, mode: &mut Mode) -> candle_core::Result<Tensor> {
        let pooled = self.pooled(batch, mode)?;
        let p = self.encoder.config.classifier_dropout;
        match &self.head {
            Head::Pooler { classifier, .. } => classifier.forward(&mode.dropout(&pooled, p)?),
            Head::Roberta { dense, out_proj } => {
                let x = dense.forward(&mode.dropout(&pooled, p)?)?.tanh()?;
                out_proj.forward(&mode.dropout(&x, p)?)
            }
            Head::Distil {
                pre_classifier,
                classifier,
            } => {
                let x = pre_classifier.forward(&pooled)?.relu()?;
                classifier.forward(&mode.dropout(&x, p)?)
            }
        }
    }

    /// How many classes the head scores.
    pub fn num_labels(&self) -> usize {
        let output = format!("{}.weight", self.encoder.config.family.head_output());
        self.vars
            .get(&output)
            .map_or(0, |w| w.as_tensor().dims()[0])
    }

    /// Named tensors as they are now, for saving.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }
}
