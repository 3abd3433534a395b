//! Every optimizer the suite knows, by its canonical name. Adding an optimizer adds one line
//! to [`REGISTRY`].

use candle::Var;
use serde_json::{Map, Value};

use crate::dynamic::BoxedOptimizer;
use crate::fused::{Kernels, WithKernels};
use crate::spec::{self, HyperValue, Hyperparameters, SpecError};

/// Builds an optimizer from a complete hyperparameter map (defaults merged in).
type Builder = fn(&str, Map<String, Value>, Vec<Var>, Kernels) -> Result<BoxedOptimizer, SpecError>;

/// What the suite knows about one optimizer name.
pub struct OptimizerInfo {
    /// The canonical name, as configs write it.
    pub name: &'static str,
    /// One line on what it is.
    pub summary: &'static str,
    /// The implementation it is proven equal to.
    pub reference: &'static str,
    /// Hyperparameters a spec must give (the reference has no default for them).
    pub required: &'static [&'static str],
    pub(crate) defaults: fn() -> Map<String, Value>,
    pub(crate) check: fn(&str, Map<String, Value>) -> Result<(), SpecError>,
    pub(crate) build: Builder,
}

impl OptimizerInfo {
    /// The entry of optimizer `O`, whose params struct gives the hyperparameters and defaults.
    pub const fn of<O>(
        name: &'static str,
        summary: &'static str,
        reference: &'static str,
        required: &'static [&'static str],
    ) -> Self
    where
        O: WithKernels + Send + 'static,
        O::Config: Hyperparameters,
    {
        Self {
            name,
            summary,
            reference,
            required,
            defaults: defaults_of::<O::Config>,
            check: check_of::<O::Config>,
            build: build_of::<O>,
        }
    }

    /// The hyperparameters in declaration order with their defaults (`None` when required).
    pub fn hyperparameters(&self) -> Vec<(String, Option<HyperValue>)> {
        (self.defaults)()
            .into_iter()
            .map(|(key, value)| {
                let default = if self.required.contains(&key.as_str()) {
                    None
                } else {
                    Some(serde_json::from_value(value).expect("defaults are scalars"))
                };
                (key, default)
            })
            .collect()
    }
}

fn defaults_of<P: Hyperparameters>() -> Map<String, Value> {
    match serde_json::to_value(P::default()) {
        Ok(Value::Object(map)) => map,
        other => unreachable!("params structs serialise to maps, got {other:?}"),
    }
}

fn check_of<P: Hyperparameters>(name: &str, params: Map<String, Value>) -> Result<(), SpecError> {
    spec::validated::<P>(name, params).map(drop)
}

fn build_of<O>(
    name: &str,
    params: Map<String, Value>,
    vars: Vec<Var>,
    kernels: Kernels,
) -> Result<BoxedOptimizer, SpecError>
where
    O: WithKernels + Send + 'static,
    O::Config: Hyperparameters,
{
    let config = spec::validated::<O::Config>(name, params)?;
    let optimizer = O::new_with_kernels(vars, config, kernels)
        .map_err(|err| SpecError::Build { optimizer: name.to_string(), message: err.to_string() })?;
    Ok(Box::new(optimizer))
}

/// Every optimizer, in the order `optbench optimizers` lists them.
pub static REGISTRY: &[OptimizerInfo] = &[
    crate::sgd::INFO,
    crate::adam::INFO,
    crate::adamw::INFO,
    crate::amsgrad::INFO,
    crate::adashift::INFO,
    crate::adai::INFO,
    crate::adaiw::INFO,
    crate::adabelief::INFO,
    crate::adamod::INFO,
    crate::adabound::INFO,
    crate::radam::INFO,
    crate::diffgrad::INFO,
];

/// The entry for a canonical name.
pub fn find(name: &str) -> Option<&'static OptimizerInfo> {
    REGISTRY.iter().find(|info| info.name == name)
}

/// Every canonical name.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|info| info.name).collect()
}
