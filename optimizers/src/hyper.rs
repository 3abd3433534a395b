//! Hyperparameters: the values a config gives an optimizer ([`HyperValue`]), the params structs
//! that hold them ([`Hyperparameters`]), their range checks ([`check`]) and what is wrong with
//! them ([`Invalid`], [`SpecError`]).
//!
//! A leaf: this module uses nothing else of the crate, so that the optimizer files, the
//! registry and the specs can all use it without importing one another in a circle.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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

    /// The value as a JSON scalar.
    pub fn to_json(&self) -> Value {
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
pub trait Hyperparameters: Default + Clone + fmt::Debug + Serialize + DeserializeOwned + Send + 'static {
    /// Checks every value against its range.
    fn validate(&self) -> Result<(), Invalid>;
    /// The learning rate.
    fn lr(&self) -> f64;
    /// Sets the learning rate (what a schedule does between steps).
    fn set_lr(&mut self, lr: f64);
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
pub fn typed<P: Hyperparameters>(optimizer: &str, params: Map<String, Value>) -> Result<P, SpecError> {
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
pub fn validated<P: Hyperparameters>(optimizer: &str, params: Map<String, Value>) -> Result<P, SpecError> {
    let typed: P = typed(optimizer, params)?;
    typed.validate().map_err(|invalid| SpecError::OutOfRange {
        optimizer: optimizer.to_string(),
        key: invalid.key.to_string(),
        value: invalid.value,
        reason: invalid.reason.to_string(),
    })?;
    Ok(typed)
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
