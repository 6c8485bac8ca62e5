//! `BertForSequenceClassification`, head and all, with the weight names `transformers` uses,
//! so that an exported checkpoint loads there and gives the same probabilities.

use std::collections::{BTreeMap, HashMap};

use candle_core::{Device, Module, Tensor, Var, D};
use serde::{Deserialize, Serialize};

use crate::engine::kernels::{Linear, Mode};
use crate::engine::model::bert::{linear, BertConfig, BertEncoder};
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

pub struct BertClassifier {
    pub encoder: BertEncoder,
    pooler: Linear,
    classifier: Linear,
    pub pooling: Pooling,
    classifier_dropout: f64,
    /// Every trainable tensor under its Hugging Face name.
    pub vars: BTreeMap<String, Var>,
    pub load_report: LoadReport,
}

impl BertClassifier {
    /// Builds the classifier from checkpoint tensors (already renamed by
    /// `params::normalise_names`) with a head of `num_labels` outputs; a missing pooler or
    /// classifier is initialised from `seed`.
    pub fn from_tensors(
        tensors: HashMap<String, Tensor>,
        config: &BertConfig,
        pooling: Pooling,
        num_labels: usize,
        device: &Device,
        seed: u64,
        origin: &str,
    ) -> Result<Self, EngineError> {
        Self::build(
            Params::new(tensors, device, seed, origin),
            config,
            pooling,
            num_labels,
        )
    }

    /// A model with every weight drawn fresh from `seed` (tests and tiny models).
    pub fn random(
        config: &BertConfig,
        pooling: Pooling,
        num_labels: usize,
        device: &Device,
        seed: u64,
    ) -> Result<Self, EngineError> {
        Self::build(Params::fresh(device, seed), config, pooling, num_labels)
    }

    fn build(
        mut p: Params,
        config: &BertConfig,
        pooling: Pooling,
        num_labels: usize,
    ) -> Result<Self, EngineError> {
        let encoder = BertEncoder::load(&mut p, config)?;
        let c = &config.base;
        let h = c.hidden_size;
        let pooler = linear(&mut p, "bert.pooler.dense", h, h, c.initializer_range)?;
        let classifier = linear(&mut p, "classifier", h, num_labels, c.initializer_range)?;
        let load_report = p.report().clone();
        Ok(Self {
            encoder,
            pooler,
            classifier,
            pooling,
            classifier_dropout: c.classifier_dropout.unwrap_or(c.hidden_dropout_prob),
            vars: p.into_vars(),
            load_report,
        })
    }

    /// The pooled sentence vector `[B, H]`.
    pub fn pooled(&self, batch: &Batch, mode: &mut Mode) -> candle_core::Result<Tensor> {
        let hidden = self.encoder.forward(
            &batch.input_ids,
            &batch.type_ids,
            &batch.attention_mask,
            mode,
        )?;
        match self.pooling {
            Pooling::Cls => {
                let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
                self.pooler.forward(&cls)?.tanh()
            }
            Pooling::Mean => {
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
        let pooled = mode.dropout(&pooled, self.classifier_dropout)?;
        self.classifier.forward(&pooled)
    }

    /// How many classes the head scores.
    pub fn num_labels(&self) -> usize {
        self.vars
            .get("classifier.weight")
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
