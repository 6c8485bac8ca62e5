//! Named trainable parameters, filled from a checkpoint or freshly initialised.
//!
//! We keep our own store rather than `candle_nn::VarMap` because loading must tolerate the
//! naming variants of real checkpoints (with or without the `bert.` prefix, legacy
//! `gamma`/`beta`), must say exactly which tensor is missing or misshapen, and must initialise
//! from a seeded generator so that runs are reproducible (candle cannot seed its CPU RNG).

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use crate::engine::model::config::Family;
use crate::engine::EngineError;

/// How to create a parameter the checkpoint does not provide.
#[derive(Debug, Clone, Copy)]
pub enum Init {
    /// Normal(0, std), as Hugging Face initialises Linear and Embedding weights.
    Normal(f64),
    Zeros,
    Ones,
}

/// Where each parameter came from, reported after loading.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub loaded: usize,
    pub initialised: Vec<String>,
}

pub struct Params {
    vars: BTreeMap<String, Var>,
    source: HashMap<String, Tensor>,
    device: Device,
    rng: StdRng,
    report: LoadReport,
    origin: String,
    /// Whose head weights may be missing from a pretrained checkpoint.
    family: Family,
    /// Initialise every parameter (a model from scratch), not only the head.
    fresh: bool,
}

impl Params {
    /// A store whose parameters come from `source` (already renamed to the names of
    /// `family`'s `*ForSequenceClassification`), falling back to seeded initialisation for the
    /// head.
    pub fn new(
        source: HashMap<String, Tensor>,
        family: Family,
        device: &Device,
        seed: u64,
        origin: &str,
    ) -> Self {
        Self {
            vars: BTreeMap::new(),
            source,
            device: device.clone(),
            rng: StdRng::seed_from_u64(seed ^ 0x0077_6565_746c_6162),
            report: LoadReport::default(),
            origin: origin.to_string(),
            family,
            fresh: false,
        }
    }

    /// A store that initialises every parameter: a model from scratch (tests, tiny models).
    pub fn fresh(family: Family, device: &Device, seed: u64) -> Self {
        Self {
            fresh: true,
            ..Self::new(HashMap::new(), family, device, seed, "new model")
        }
    }

    /// Returns the tensor for `name`, registering it as trainable.
    pub fn get(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Tensor, EngineError> {
        let tensor = match self.source.remove(name) {
            Some(t) => {
                if t.dims() != shape {
                    return Err(EngineError::BadModel(format!(
                        "{}: tensor `{name}` has shape {:?}, the config implies {:?}",
                        self.origin,
                        t.dims(),
                        shape
                    )));
                }
                self.report.loaded += 1;
                t.to_dtype(DType::F32)?.to_device(&self.device)?
            }
            None if !self.fresh && !self.family.may_be_initialised(name) => {
                return Err(EngineError::BadModel(format!(
                    "{}: the weights lack tensor `{name}` (shape {:?}); is this a {} checkpoint in the Hugging Face layout?",
                    self.origin, shape, self.family.prefix()
                )))
            }
            None => {
                let n: usize = shape.iter().product();
                let data: Vec<f32> = match init {
                    Init::Zeros => vec![0.0; n],
                    Init::Ones => vec![1.0; n],
                    Init::Normal(std) => {
                        let normal = Normal::new(0.0f32, std as f32).expect("valid std");
                        (0..n).map(|_| normal.sample(&mut self.rng)).collect()
                    }
                };
                self.report.initialised.push(name.to_string());
                Tensor::from_vec(data, shape, &self.device)?
            }
        };
        let var = Var::from_tensor(&tensor)?;
        let t = var.as_tensor().clone();
        self.vars.insert(name.to_string(), var);
        Ok(t)
    }

    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// All trainable variables, by name.
    pub fn into_vars(self) -> BTreeMap<String, Var> {
        self.vars
    }
}

/// Renames checkpoint tensors to the names `family`'s `*ForSequenceClassification` uses: the
/// family's prefix (`bert.`, `roberta.`, `distilbert.`) on a bare encoder's weights,
/// `weight`/`bias` for legacy `gamma`/`beta`.
pub fn normalise_names(tensors: Vec<(String, Tensor)>, family: Family) -> HashMap<String, Tensor> {
    let mut out = HashMap::with_capacity(tensors.len());
    for (name, t) in tensors {
        let mut name = name;
        if name.ends_with(".gamma") {
            name = format!("{}.weight", name.trim_end_matches(".gamma"));
        } else if name.ends_with(".beta") {
            name = format!("{}.bias", name.trim_end_matches(".beta"));
        }
        if family.bare_roots().iter().any(|p| name.starts_with(p)) {
            name = format!("{}.{name}", family.prefix());
        }
        out.insert(name, t);
    }
    out
}
