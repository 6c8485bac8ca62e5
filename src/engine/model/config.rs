//! Which encoder a checkpoint holds and its sizes, read from a Hugging Face `config.json`.
//!
//! BERT, RoBERTa (with XLM-RoBERTa and CamemBERT, the same architecture) and DistilBERT share
//! one encoder here; they differ in weight names, position numbering, token types and the
//! classification head, which [`Family`] describes.

use crate::engine::EngineError;

/// An encoder architecture tweetlab can fine-tune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Bert,
    /// RoBERTa, XLM-RoBERTa, CamemBERT: BERT's layers, positions counted from
    /// `pad_token_id + 1`, one token type, a two-layer head on `<s>`, no pooler.
    Roberta,
    /// Six-layer distilled BERT: its own weight names, no token types, no pooler, a
    /// `pre_classifier` + ReLU head.
    DistilBert,
    /// MPNet: BERT's layers under its own names, positions counted from `pad_token_id + 1`, no
    /// token types, a relative position bias (T5's buckets, one table for every layer) added
    /// to the attention scores, RoBERTa's head on `<s>`.
    Mpnet,
}

/// The `model_type`s tweetlab reads, their family and the `transformers` class an export of
/// each loads as.
const MODEL_TYPES: [(&str, Family, &str); 6] = [
    ("bert", Family::Bert, "Bert"),
    ("roberta", Family::Roberta, "Roberta"),
    ("xlm-roberta", Family::Roberta, "XLMRoberta"),
    ("camembert", Family::Roberta, "Camembert"),
    ("distilbert", Family::DistilBert, "DistilBert"),
    ("mpnet", Family::Mpnet, "MPNet"),
];

/// The model types tweetlab fine-tunes, for messages and `tweetlab model list`.
pub fn supported_model_types() -> Vec<&'static str> {
    MODEL_TYPES.iter().map(|(t, _, _)| *t).collect()
}

impl Family {
    /// The prefix of the encoder's weights in a `*ForSequenceClassification` checkpoint.
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::Roberta => "roberta",
            Family::DistilBert => "distilbert",
            Family::Mpnet => "mpnet",
        }
    }

    /// Top-level module names of a bare encoder checkpoint (`BertModel` and the like save
    /// without the prefix).
    pub fn bare_roots(self) -> &'static [&'static str] {
        match self {
            Family::Bert | Family::Roberta | Family::Mpnet => {
                &["embeddings.", "encoder.", "pooler."]
            }
            Family::DistilBert => &["embeddings.", "transformer."],
        }
    }

    /// The head's linear layer that scores the classes (its rows are the classes).
    pub fn head_output(self) -> &'static str {
        match self {
            Family::Bert | Family::DistilBert => "classifier",
            Family::Roberta | Family::Mpnet => "classifier.out_proj",
        }
    }

    /// Weights a pretrained (not yet fine-tuned) checkpoint may lack: the head's.
    pub fn may_be_initialised(self, name: &str) -> bool {
        match self {
            Family::Bert => name.starts_with("bert.pooler.") || name.starts_with("classifier."),
            Family::Roberta | Family::Mpnet => name.starts_with("classifier."),
            Family::DistilBert => {
                name.starts_with("pre_classifier.") || name.starts_with("classifier.")
            }
        }
    }

    /// Weight names of layer `i`.
    pub fn layer_names(self, i: usize) -> LayerNames {
        let n = |s: &str| match self {
            Family::DistilBert => format!("distilbert.transformer.layer.{i}.{s}"),
            _ => format!("{}.encoder.layer.{i}.{s}", self.prefix()),
        };
        match self {
            Family::Bert | Family::Roberta => LayerNames {
                query: n("attention.self.query"),
                key: n("attention.self.key"),
                value: n("attention.self.value"),
                attention_out: n("attention.output.dense"),
                attention_norm: n("attention.output.LayerNorm"),
                intermediate: n("intermediate.dense"),
                output: n("output.dense"),
                output_norm: n("output.LayerNorm"),
            },
            Family::Mpnet => LayerNames {
                query: n("attention.attn.q"),
                key: n("attention.attn.k"),
                value: n("attention.attn.v"),
                attention_out: n("attention.attn.o"),
                attention_norm: n("attention.LayerNorm"),
                intermediate: n("intermediate.dense"),
                output: n("output.dense"),
                output_norm: n("output.LayerNorm"),
            },
            Family::DistilBert => LayerNames {
                query: n("attention.q_lin"),
                key: n("attention.k_lin"),
                value: n("attention.v_lin"),
                attention_out: n("attention.out_lin"),
                attention_norm: n("sa_layer_norm"),
                intermediate: n("ffn.lin1"),
                output: n("ffn.lin2"),
                output_norm: n("output_layer_norm"),
            },
        }
    }

    /// The name of an embedding weight (`word_embeddings`, `position_embeddings`, ...).
    pub fn embedding_name(self, what: &str) -> String {
        format!("{}.embeddings.{what}", self.prefix())
    }
}

/// The weight names (without `.weight`/`.bias`) of one transformer layer.
pub struct LayerNames {
    pub query: String,
    pub key: String,
    pub value: String,
    pub attention_out: String,
    pub attention_norm: String,
    pub intermediate: String,
    pub output: String,
    pub output_norm: String,
}

/// The feed-forward activation (`hidden_act`, DistilBERT's `activation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The exact, erf-based GELU (`gelu`).
    Gelu,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    Relu,
}

/// Architecture settings common to every family, as their configs name them.
#[derive(Debug, Clone)]
pub struct EncoderConfig {
    pub family: Family,
    /// config.json's `model_type` (`xlm-roberta`, ...), kept for the export's class name.
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub activation: Activation,
    pub hidden_dropout: f64,
    pub attention_dropout: f64,
    /// Dropout inside the classification head.
    pub classifier_dropout: f64,
    pub max_position_embeddings: usize,
    /// 0 when the family has no token type embeddings (DistilBERT).
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub initializer_range: f64,
    /// Index of the first real position (RoBERTa: `pad_token_id + 1`; else 0).
    pub position_offset: usize,
    /// Buckets of the relative position bias (MPNet's `relative_attention_num_buckets`; 0:
    /// none).
    pub relative_buckets: usize,
}

type Json = serde_json::Value;

/// Reads typed fields of a config, each error naming the field.
struct Fields<'a> {
    json: &'a Json,
    origin: &'a str,
}

impl Fields<'_> {
    fn bad(&self, field: &str, want: &str) -> EngineError {
        let found = self
            .json
            .get(field)
            .map_or("nothing".to_string(), |v| v.to_string());
        EngineError::BadModel(format!(
            "{}: config.json has {field} = {found}; it must be {want}",
            self.origin
        ))
    }

    fn size(&self, field: &str, default: Option<usize>, max: usize) -> Result<usize, EngineError> {
        let want = format!("a whole number between 1 and {max}");
        let value = match self.json.get(field) {
            None | Some(Json::Null) => default.ok_or_else(|| self.bad(field, &want))?,
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| self.bad(field, &want))?,
        };
        if value == 0 || value > max {
            return Err(self.bad(field, &want));
        }
        Ok(value)
    }

    /// A number, `default` when absent or null.
    fn number(&self, field: &str, default: f64) -> Result<f64, EngineError> {
        match self.json.get(field) {
            None | Some(Json::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| self.bad(field, "a number")),
        }
    }

    fn probability(&self, field: &str, default: f64) -> Result<f64, EngineError> {
        let p = self.number(field, default)?;
        if !(0.0..1.0).contains(&p) {
            return Err(self.bad(field, "in [0, 1)"));
        }
        Ok(p)
    }

    fn activation(&self, field: &str) -> Result<Activation, EngineError> {
        match self
            .json
            .get(field)
            .and_then(Json::as_str)
            .unwrap_or("gelu")
        {
            "gelu" | "gelu_python" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            _ => Err(self.bad(field, "gelu, gelu_new, gelu_pytorch_tanh or relu")),
        }
    }
}

/// Which family `config.json` describes: its `model_type`, else its first architecture's name
/// (old configs), else BERT (older still).
fn family_of(json: &Json, origin: &str) -> Result<(Family, String), EngineError> {
    let declared = json.get("model_type").and_then(Json::as_str).or_else(|| {
        let arch = json.get("architectures")?.get(0)?.as_str()?;
        MODEL_TYPES
            .iter()
            .rev()
            .find(|(_, _, class)| arch.starts_with(class))
            .map(|(t, _, _)| *t)
    });
    let model_type = declared.unwrap_or("bert");
    MODEL_TYPES
        .iter()
        .find(|(t, _, _)| *t == model_type)
        .map(|(t, family, _)| (*family, t.to_string()))
        .ok_or_else(|| {
            EngineError::BadModel(format!(
                "{origin}: model_type `{model_type}` is not one tweetlab can fine-tune; it reads {} checkpoints",
                supported_model_types().join(", ")
            ))
        })
}

impl EncoderConfig {
    /// Parses a Hugging Face `config.json`, refusing sizes that would make loading panic or
    /// allocate without bound (a crafted or corrupted file) with the field's name.
    pub fn from_json(json: &Json, origin: &str) -> Result<Self, EngineError> {
        let (family, model_type) = family_of(json, origin)?;
        let f = Fields { json, origin };
        let config = match family {
            Family::Bert | Family::Roberta | Family::Mpnet => {
                if let Some(kind) = json.get("position_embedding_type").and_then(Json::as_str) {
                    if kind != "absolute" {
                        return Err(f.bad("position_embedding_type", "\"absolute\""));
                    }
                }
                let hidden_dropout = f.probability("hidden_dropout_prob", 0.1)?;
                let pad = json.get("pad_token_id").and_then(Json::as_u64);
                let mpnet = family == Family::Mpnet;
                Self {
                    family,
                    model_type,
                    vocab_size: f.size("vocab_size", None, 2_000_000)?,
                    hidden_size: f.size("hidden_size", None, 16_384)?,
                    num_hidden_layers: f.size("num_hidden_layers", None, 256)?,
                    num_attention_heads: f.size("num_attention_heads", None, 256)?,
                    intermediate_size: f.size("intermediate_size", None, 65_536)?,
                    activation: f.activation("hidden_act")?,
                    hidden_dropout,
                    attention_dropout: f
                        .probability("attention_probs_dropout_prob", hidden_dropout)?,
                    classifier_dropout: f.probability("classifier_dropout", hidden_dropout)?,
                    max_position_embeddings: f.size("max_position_embeddings", None, 65_536)?,
                    // MPNet has no token types.
                    type_vocab_size: if mpnet {
                        0
                    } else {
                        f.size("type_vocab_size", Some(2), 1_024)?
                    },
                    layer_norm_eps: f.number("layer_norm_eps", 1e-12)?,
                    initializer_range: f.number("initializer_range", 0.02)?,
                    position_offset: match family {
                        Family::Roberta | Family::Mpnet => pad.unwrap_or(1) as usize + 1,
                        _ => 0,
                    },
                    relative_buckets: if mpnet {
                        f.size("relative_attention_num_buckets", Some(32), 1_024)?
                    } else {
                        0
                    },
                }
            }
            Family::DistilBert => {
                if json.get("sinusoidal_pos_embds").and_then(Json::as_bool) == Some(true) {
                    return Err(f.bad(
                        "sinusoidal_pos_embds",
                        "false (fixed sinusoidal positions are not trained by tweetlab)",
                    ));
                }
                Self {
                    family,
                    model_type,
                    vocab_size: f.size("vocab_size", None, 2_000_000)?,
                    hidden_size: f.size("dim", None, 16_384)?,
                    num_hidden_layers: f.size("n_layers", None, 256)?,
                    num_attention_heads: f.size("n_heads", None, 256)?,
                    intermediate_size: f.size("hidden_dim", None, 65_536)?,
                    activation: f.activation("activation")?,
                    hidden_dropout: f.probability("dropout", 0.1)?,
                    attention_dropout: f.probability("attention_dropout", 0.1)?,
                    classifier_dropout: f.probability("seq_classif_dropout", 0.2)?,
                    max_position_embeddings: f.size("max_position_embeddings", None, 65_536)?,
                    type_vocab_size: 0,
                    // Fixed in transformers' DistilBERT.
                    layer_norm_eps: 1e-12,
                    initializer_range: f.number("initializer_range", 0.02)?,
                    position_offset: 0,
                    relative_buckets: 0,
                }
            }
        };
        if !config
            .hidden_size
            .is_multiple_of(config.num_attention_heads)
        {
            return Err(EngineError::BadModel(format!(
                "{origin}: hidden_size {} is not a multiple of num_attention_heads {}",
                config.hidden_size, config.num_attention_heads
            )));
        }
        if config.initializer_range < 0.0 || !(config.initializer_range as f32).is_finite() {
            return Err(f.bad("initializer_range", "a finite number, 0 or more"));
        }
        if config.layer_norm_eps <= 0.0 {
            return Err(f.bad("layer_norm_eps", "a positive number"));
        }
        if config.position_offset + 2 > config.max_position_embeddings {
            return Err(f.bad(
                "max_position_embeddings",
                &format!(
                    "more than pad_token_id + 2 = {}",
                    config.position_offset + 1
                ),
            ));
        }
        Ok(config)
    }

    /// The longest input in tokens the position embeddings cover.
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings - self.position_offset
    }

    /// The `transformers` class an export loads as (`XLMRobertaForSequenceClassification`).
    pub fn architecture(&self) -> String {
        let class = MODEL_TYPES
            .iter()
            .find(|(t, _, _)| *t == self.model_type)
            .map_or("Bert", |(_, _, c)| c);
        format!("{class}ForSequenceClassification")
    }

    /// The slow tokenizer class named in an export's tokenizer_config.json when the source
    /// model had none (`transformers` then builds the fast one from tokenizer.json).
    pub fn tokenizer_class(&self) -> String {
        let class = MODEL_TYPES
            .iter()
            .find(|(t, _, _)| *t == self.model_type)
            .map_or("Bert", |(_, _, c)| c);
        format!("{class}Tokenizer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bert() -> Json {
        serde_json::json!({
            "model_type": "bert", "vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64
        })
    }

    #[test]
    fn families_from_model_type_or_architecture() {
        let mut c = bert();
        c["model_type"] = "xlm-roberta".into();
        c["pad_token_id"] = 1.into();
        let x = EncoderConfig::from_json(&c, "m").unwrap();
        assert_eq!(
            (x.family, x.position_offset, x.max_tokens()),
            (Family::Roberta, 2, 62)
        );
        assert_eq!(x.architecture(), "XLMRobertaForSequenceClassification");
        c.as_object_mut().unwrap().remove("model_type");
        c["architectures"] = serde_json::json!(["RobertaForMaskedLM"]);
        assert_eq!(
            EncoderConfig::from_json(&c, "m").unwrap().model_type,
            "roberta"
        );
        c.as_object_mut().unwrap().remove("architectures");
        assert_eq!(
            EncoderConfig::from_json(&c, "m").unwrap().family,
            Family::Bert
        );
    }

    #[test]
    fn distilbert_fields_and_refusals_name_the_field() {
        let d = serde_json::json!({
            "model_type": "distilbert", "vocab_size": 100, "dim": 32, "n_layers": 2, "n_heads": 2,
            "hidden_dim": 64, "max_position_embeddings": 64, "activation": "gelu"
        });
        let c = EncoderConfig::from_json(&d, "m").unwrap();
        assert_eq!(
            (c.hidden_size, c.intermediate_size, c.type_vocab_size),
            (32, 64, 0)
        );
        assert_eq!(c.classifier_dropout, 0.2);

        let mut e = bert();
        e["model_type"] = "electra".into();
        let err = EncoderConfig::from_json(&e, "m").unwrap_err().to_string();
        assert!(
            err.contains("electra") && err.contains("distilbert"),
            "{err}"
        );
        let mut e = bert();
        e["hidden_act"] = "swish".into();
        let err = EncoderConfig::from_json(&e, "m").unwrap_err().to_string();
        assert!(err.contains("hidden_act = \"swish\""), "{err}");
        let mut e = bert();
        e["position_embedding_type"] = "relative_key".into();
        let err = EncoderConfig::from_json(&e, "m").unwrap_err().to_string();
        assert!(err.contains("position_embedding_type"), "{err}");
    }
}
