//! Frozen sentence embeddings of the pretrained encoder, computed once per text and model and
//! cached in the workspace: the features every label-quality tool fits on.

use std::path::Path;

use anyhow::Result;

use crate::data::store::EmbeddingCache;
use crate::engine::device::{self, DeviceChoice};
use crate::engine::infer::embed;
use crate::engine::model::{source, LoadedModel};

/// Embeddings of `texts`, read from `cache` where present; the rest are computed (batched) and
/// stored. `model_key` names the encoder (its directory) so two models never share vectors.
/// Returns the vectors and how many came from the cache.
pub fn embeddings(
    model: &LoadedModel,
    model_key: &str,
    texts: &[&str],
    max_len: usize,
    mut cache: Option<&mut EmbeddingCache>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<Vec<f32>>, usize)> {
    // bf16 vectors differ from f32 ones in the last digits: each arithmetic keeps its own.
    let path = crate::engine::kernels::matmul_path_in_use(&model.device);
    let key = if path.is_bf16() {
        format!("{model_key}|mean|{max_len}|{}", path.name())
    } else {
        format!("{model_key}|mean|{max_len}")
    };
    let mut out: Vec<Option<Vec<f32>>> = match &cache {
        Some(c) => c.get(&key, texts)?,
        None => vec![None; texts.len()],
    };
    let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
    let from_cache = texts.len() - missing.len();
    if !missing.is_empty() {
        let todo: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
        let fresh = embed(model, &todo, max_len, 64, progress)?;
        if let Some(c) = cache.as_mut() {
            let items: Vec<(&str, &[f32])> = todo
                .iter()
                .zip(&fresh)
                .map(|(t, v)| (*t, v.as_slice()))
                .collect();
            c.put(&key, &items)?;
        }
        for (i, v) in missing.into_iter().zip(fresh) {
            out[i] = Some(v);
        }
    }
    Ok((
        out.into_iter().map(|v| v.unwrap_or_default()).collect(),
        from_cache,
    ))
}

/// Embeddings of `texts` by the pretrained `model` (a directory or Hub id) on the device `choice`
/// picks, cached in the workspace file `workspace`. `status` hears the slow steps (finding and
/// loading the model), `progress(done, total)` the texts embedded. Returns the vectors and how
/// many came from the cache.
pub fn cached_embeddings(
    workspace: &Path,
    texts: &[&str],
    model: &str,
    choice: DeviceChoice,
    max_len: usize,
    status: &dyn Fn(&str),
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<Vec<f32>>, usize)> {
    status(&format!("loading {model}"));
    let files = source::resolve(Some(model), status)?;
    let encoder = LoadedModel::load(&files, &device::select(choice)?, None, 0)?;
    let mut cache = EmbeddingCache::open(workspace)?;
    embeddings(
        &encoder,
        &files.dir.display().to_string(),
        texts,
        max_len,
        Some(&mut cache),
        progress,
    )
}
