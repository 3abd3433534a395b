//! Optimizer specs: an optimizer named as a config file names it, `name` plus hyperparameters,
//! the same shape in JSON, TOML and YAML:
//!
//! ```toml
//! name = "adashift"
//! lr = 1e-2
//! keep_num = 10
//! phi = "max"
//! ```
//!
//! [`OptimizerSpec::resolve`] checks a spec against the contract (`../shared/spec/optimizers.md`):
//! an unknown name or hyperparameter, a value of the wrong type or out of range is a
//! [`SpecError`] that names it and says what is expected. [`OptimizerSpec::build`] turns a spec
//! into a boxed optimizer.

use std::collections::BTreeMap;
use std::fmt;

use candle::Var;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::dynamic::BoxedOptimizer;
pub use crate::hyper::{check, coerce, HyperValue, Hyperparameters, Invalid, SpecError};
use crate::registry::{self, OptimizerInfo};

/// An optimizer by name with the hyperparameters a config gives it; the ones left out take
/// their defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerSpec {
    pub name: String,
    pub hyperparameters: BTreeMap<String, HyperValue>,
}

impl OptimizerSpec {
    /// A spec with every hyperparameter at its default.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), hyperparameters: BTreeMap::new() }
    }

    /// Sets one hyperparameter.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<HyperValue>) -> Self {
        self.hyperparameters.insert(key.into(), value.into());
        self
    }

    /// The registry entry of this spec's optimizer.
    pub fn info(&self) -> Result<&'static OptimizerInfo, SpecError> {
        registry::find(&self.name)
            .ok_or_else(|| SpecError::UnknownOptimizer { name: self.name.clone(), valid: registry::names().join(", ") })
    }

    /// The learning rate the spec gives, if any.
    pub fn lr(&self) -> Option<f64> {
        self.hyperparameters.get("lr").and_then(HyperValue::as_f64)
    }

    /// Checks the spec and returns it with every hyperparameter filled in (the defaults of
    /// the reference for the ones left out): what a result file records.
    pub fn resolve(&self) -> Result<OptimizerSpec, SpecError> {
        let info = self.info()?;
        let params = info.merged(self)?;
        (info.check)(&self.name, params.clone())?;
        let hyperparameters = params
            .iter()
            .map(|(k, v)| {
                let value = HyperValue::from_json(v).expect("defaults are scalars");
                (k.clone(), value)
            })
            .collect();
        Ok(OptimizerSpec { name: self.name.clone(), hyperparameters })
    }

    /// Builds the optimizer over `vars` (with the fused CPU kernels where there are some).
    pub fn build(&self, vars: Vec<Var>) -> Result<BoxedOptimizer, SpecError> {
        self.build_with_kernels(vars, crate::fused::Kernels::Auto)
    }

    /// Builds the optimizer over `vars` with the chosen kernels.
    pub fn build_with_kernels(
        &self,
        vars: Vec<Var>,
        kernels: crate::fused::Kernels,
    ) -> Result<BoxedOptimizer, SpecError> {
        let info = self.info()?;
        let params = info.merged(self)?;
        (info.build)(&self.name, params, vars, kernels)
    }

    /// A short, file-name-safe description of the hyperparameters that differ from the
    /// defaults, e.g. `lr-0.01_keep_num-10`; `default` when none do.
    pub fn slug(&self) -> String {
        if self.hyperparameters.is_empty() {
            return "default".to_string();
        }
        self.hyperparameters
            .iter()
            .map(|(k, v)| format!("{k}-{v}"))
            .collect::<Vec<_>>()
            .join("_")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "-_.+".contains(c) { c } else { '_' })
            .collect()
    }
}

impl OptimizerInfo {
    /// The defaults overlaid with the spec's values, after checking names and types.
    pub(crate) fn merged(&self, spec: &OptimizerSpec) -> Result<Map<String, Value>, SpecError> {
        let mut params = (self.defaults)();
        for key in self.required {
            if !spec.hyperparameters.contains_key(*key) {
                return Err(SpecError::Missing { optimizer: spec.name.clone(), key: key.to_string() });
            }
        }
        for (key, value) in &spec.hyperparameters {
            let Some(default) = params.get(key) else {
                return Err(SpecError::UnknownKey {
                    optimizer: spec.name.clone(),
                    key: key.clone(),
                    valid: params.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            };
            let default = HyperValue::from_json(default).expect("defaults are scalars");
            let value = coerce(&default, value).map_err(|expected| SpecError::WrongType {
                optimizer: spec.name.clone(),
                key: key.clone(),
                expected: expected.to_string(),
                got: value.describe(),
            })?;
            params.insert(key.clone(), value.to_json());
        }
        Ok(params)
    }
}

impl Serialize for OptimizerSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.hyperparameters.len() + 1))?;
        map.serialize_entry("name", &self.name)?;
        for (k, v) in &self.hyperparameters {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for OptimizerSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut hyperparameters = BTreeMap::<String, HyperValue>::deserialize(deserializer)?;
        match hyperparameters.remove("name") {
            Some(HyperValue::Str(name)) => Ok(Self { name, hyperparameters }),
            _ => Err(serde::de::Error::custom(SpecError::MissingName { valid: registry::names().join(", ") })),
        }
    }
}

impl fmt::Display for OptimizerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.hyperparameters.is_empty() {
            let kv: Vec<String> = self.hyperparameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, "({})", kv.join(", "))?;
        }
        Ok(())
    }
}
