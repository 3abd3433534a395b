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
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::dynamic::BoxedOptimizer;
use crate::registry::{self, OptimizerInfo};

/// One hyperparameter value as a config file writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HyperValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl HyperValue {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::Int(i) => Some(i as f64),
            Self::Float(x) => Some(x),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => Value::from(*i),
            Self::Float(x) => Value::from(*x),
            Self::Str(s) => Value::String(s.clone()),
        }
    }

    /// A JSON scalar as a value (integers that fit an `i64` stay integers); `None` for
    /// arrays, objects and null.
    pub fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(Self::Bool(*b)),
            Value::Number(n) => n.as_i64().map(Self::Int).or_else(|| n.as_f64().map(Self::Float)),
            Value::String(s) => Some(Self::Str(s.clone())),
            _ => None,
        }
    }

    /// The value with its type, for error messages: `the string "fast"`.
    pub fn describe(&self) -> String {
        match self {
            Self::Bool(b) => format!("the boolean {b}"),
            Self::Int(i) => format!("the integer {i}"),
            Self::Float(x) => format!("the number {x}"),
            Self::Str(s) => format!("the string \"{s}\""),
        }
    }
}

impl fmt::Display for HyperValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) if *x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e6) => write!(f, "{x:e}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Str(s) => write!(f, "{s}"),
        }
    }
}

impl From<f64> for HyperValue {
    fn from(x: f64) -> Self {
        Self::Float(x)
    }
}
impl From<i64> for HyperValue {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}
impl From<bool> for HyperValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}
impl From<&str> for HyperValue {
    fn from(s: &str) -> Self {
        Self::Str(s.to_string())
    }
}

/// An optimizer by name with the hyperparameters a config gives it; the ones left out take
/// their defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerSpec {
    pub name: String,
    pub hyperparameters: BTreeMap<String, HyperValue>,
}

/// What is wrong with an optimizer spec. Each message names the optimizer and key, and says
/// what is expected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("unknown optimizer `{name}`; valid names: {valid}")]
    UnknownOptimizer { name: String, valid: String },
    #[error("unknown hyperparameter `{key}` for optimizer `{optimizer}`; valid hyperparameters: {valid}")]
    UnknownKey { optimizer: String, key: String, valid: String },
    #[error("optimizer `{optimizer}` needs `{key}`: its reference implementation has no default for it")]
    Missing { optimizer: String, key: String },
    #[error("hyperparameter `{key}` of optimizer `{optimizer}` must be {expected}, not {got}")]
    WrongType { optimizer: String, key: String, expected: String, got: String },
    #[error("hyperparameter `{key}` of optimizer `{optimizer}` is out of range: {value} ({reason})")]
    OutOfRange { optimizer: String, key: String, value: String, reason: String },
    #[error("an optimizer spec needs a `name` (a string): one of {valid}")]
    MissingName { valid: String },
    #[error("optimizer `{optimizer}` could not be built: {message}")]
    Build { optimizer: String, message: String },
}

/// A hyperparameter value out of its range, as reported by [`Hyperparameters::validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid {
    pub key: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// The params struct of an optimizer: its `Default` is the reference's defaults, it
/// (de)serialises with the contract's key names, and it knows its valid ranges.
pub trait Hyperparameters: Default + Clone + fmt::Debug + Serialize + DeserializeOwned {
    /// Checks every value against its range.
    fn validate(&self) -> Result<(), Invalid>;
}

/// Range checks shared by the params structs.
pub mod check {
    use super::Invalid;

    fn invalid(key: &'static str, value: f64, reason: &'static str) -> Result<(), Invalid> {
        Err(Invalid { key, value: value.to_string(), reason })
    }

    /// A finite value `>= 0` (learning rates, epsilons, weight decay, momentum).
    pub fn non_negative(key: &'static str, value: f64) -> Result<(), Invalid> {
        if value.is_finite() && value >= 0.0 {
            Ok(())
        } else {
            invalid(key, value, "must be a finite number >= 0")
        }
    }

    /// An EMA factor in `[0, 1)`.
    pub fn beta(key: &'static str, value: f64) -> Result<(), Invalid> {
        if (0.0..1.0).contains(&value) {
            Ok(())
        } else {
            invalid(key, value, "must be in [0, 1)")
        }
    }

    /// The ranges of the hyperparameters Adam's relatives share: `lr`, `eps` and `weight_decay`
    /// >= 0, `beta1` and `beta2` in `[0, 1)`.
    pub fn adam_family(lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Result<(), Invalid> {
        non_negative("lr", lr)?;
        beta("beta1", beta1)?;
        beta("beta2", beta2)?;
        non_negative("eps", eps)?;
        non_negative("weight_decay", weight_decay)
    }

    /// A fraction in `[0, 1]` (SGD's dampening).
    pub fn unit(key: &'static str, value: f64) -> Result<(), Invalid> {
        if (0.0..=1.0).contains(&value) {
            Ok(())
        } else {
            invalid(key, value, "must be in [0, 1]")
        }
    }
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

/// Checks a configured value against the type of its default and converts it where the
/// config's spelling differs (an integer where a number is expected). On a mismatch, returns
/// what was expected, for the error message.
pub fn coerce(default: &HyperValue, value: &HyperValue) -> Result<HyperValue, &'static str> {
    match (default, value) {
        (HyperValue::Bool(_), HyperValue::Bool(_)) => Ok(value.clone()),
        (HyperValue::Bool(_), _) => Err("true or false"),
        (HyperValue::Int(_), HyperValue::Int(i)) if *i >= 0 => Ok(value.clone()),
        (HyperValue::Int(_), _) => Err("a whole number >= 0"),
        (HyperValue::Float(_), HyperValue::Int(_) | HyperValue::Float(_)) => {
            Ok(HyperValue::Float(value.as_f64().expect("numeric")))
        }
        (HyperValue::Float(_), _) => Err("a number"),
        (HyperValue::Str(_), HyperValue::Str(_)) => Ok(value.clone()),
        (HyperValue::Str(_), _) => Err("a string"),
    }
}

/// Deserialises the merged map into the params struct, attributing a failure (an unknown
/// choice of a string-valued hyperparameter) to its key.
pub(crate) fn typed<P: Hyperparameters>(optimizer: &str, params: Map<String, Value>) -> Result<P, SpecError> {
    serde_json::from_value::<P>(Value::Object(params.clone())).map_err(|err| {
        let defaults = serde_json::to_value(P::default()).expect("params serialise");
        let key = params
            .iter()
            .find(|(key, value)| {
                let mut trial = defaults.clone();
                trial[key.as_str()] = (*value).clone();
                serde_json::from_value::<P>(trial).is_err()
            })
            .map(|(key, _)| key.clone())
            .unwrap_or_default();
        SpecError::WrongType {
            optimizer: optimizer.to_string(),
            key,
            expected: "a valid choice".to_string(),
            got: err.to_string(),
        }
    })
}

/// Range-checks a typed params struct.
pub(crate) fn validated<P: Hyperparameters>(optimizer: &str, params: Map<String, Value>) -> Result<P, SpecError> {
    let typed: P = typed(optimizer, params)?;
    typed.validate().map_err(|invalid| SpecError::OutOfRange {
        optimizer: optimizer.to_string(),
        key: invalid.key.to_string(),
        value: invalid.value,
        reason: invalid.reason.to_string(),
    })?;
    Ok(typed)
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

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hyperparameter `{}` is out of range: {} ({})", self.key, self.value, self.reason)
    }
}

impl From<Invalid> for candle::Error {
    fn from(invalid: Invalid) -> Self {
        candle::Error::Msg(invalid.to_string())
    }
}
