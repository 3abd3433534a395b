//! Every optimizer the suite knows, by its canonical name. Adding an optimizer adds one entry
//! to [`REGISTRY`].

use candle::Var;
use serde_json::{Map, Value};

use crate::core::{Optim, Rule};
use crate::dynamic::BoxedOptimizer;
use crate::fused::{Kernels, WithKernels};
use crate::hyper::{self, HyperValue, Hyperparameters, SpecError};
use crate::{adabelief, adabound, adai, adaiw, adam, adamod, adamw, adashift, amsgrad, diffgrad, radam, sgd};

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
    /// The entry of the optimizer of rule `R`, whose name is the rule's and whose params
    /// struct gives the hyperparameters and defaults.
    pub const fn of<R: Rule>(
        summary: &'static str,
        reference: &'static str,
        required: &'static [&'static str],
    ) -> Self {
        Self {
            name: R::NAME,
            summary,
            reference,
            required,
            defaults: defaults_of::<R::Params>,
            check: check_of::<R::Params>,
            build: build_of::<R>,
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
    hyper::validated::<P>(name, params).map(drop)
}

fn build_of<R: Rule>(
    name: &str,
    params: Map<String, Value>,
    vars: Vec<Var>,
    kernels: Kernels,
) -> Result<BoxedOptimizer, SpecError> {
    let config = hyper::validated::<R::Params>(name, params)?;
    let optimizer = Optim::<R>::new_with_kernels(vars, config, kernels)
        .map_err(|err| SpecError::Build { optimizer: name.to_string(), message: err.to_string() })?;
    Ok(Box::new(optimizer))
}

/// Every optimizer, in the order `optbench optimizers` lists them: its rule, one line on what
/// it is, the implementation it is proven equal to, and the hyperparameters a spec must give.
pub static REGISTRY: &[OptimizerInfo] = &[
    OptimizerInfo::of::<sgd::SgdRule>("SGD with (Nesterov) momentum and L2 weight decay", "torch.optim.SGD", &["lr"]),
    OptimizerInfo::of::<adam::AdamRule>(
        "Adam; `amsgrad` adds the running maximum, `decoupled` makes it AdamW",
        "torch.optim.Adam",
        &[],
    ),
    OptimizerInfo::of::<adamw::AdamWRule>("Adam with decoupled weight decay", "torch.optim.AdamW", &[]),
    OptimizerInfo::of::<amsgrad::AmsGradRule>(
        "Adam normalised by the running maximum of the second moment; variant \"tf\" feeds the maximum back into it",
        "torch.optim.Adam(amsgrad=True) (variant \"torch\"), or the AdaShift authors' TensorFlow AMSGrad, optimizer_all.py of mknbv/adashift (variant \"tf\")",
        &[],
    ),
    OptimizerInfo::of::<adashift::AdaShiftRule>(
        "AdaShift: second moment from the gradient keep_num steps back, reduced by phi",
        "the authors' TensorFlow AdaShift, optimizer_all.py of mknbv/adashift (variant \"tf\"), or pytorch-optimizer 4.1.0 AdaShift (variant \"pytorch-optimizer\")",
        &[],
    ),
    OptimizerInfo::of::<adai::AdaiRule>(
        "Adai: adaptive inertia (momentum) from the relative second moment, L2 weight decay",
        "official adai_optim.Adai (= pytorch-optimizer 4.1.0 Adai)",
        &["lr"],
    ),
    OptimizerInfo::of::<adaiw::AdaiWRule>(
        "Adai with decoupled weight decay",
        "official adai_optim.Adai(decoupled=True)",
        &["lr"],
    ),
    OptimizerInfo::of::<adabelief::AdaBeliefRule>(
        "AdaBelief: step scaled by the belief in the gradient (EMA of (g - m)²)",
        "adabelief-pytorch 0.2.1",
        &[],
    ),
    OptimizerInfo::of::<adamod::AdaModRule>(
        "AdaMod: Adam with step sizes bounded by their EMA (beta3)",
        "adamod 0.0.3",
        &[],
    ),
    OptimizerInfo::of::<adabound::AdaBoundRule>(
        "AdaBound: Adam with step sizes clipped into bounds converging to final_lr; amsbound",
        "adabound 0.0.5",
        &[],
    ),
    OptimizerInfo::of::<radam::RAdamRule>(
        "RAdam: Adam with the variance of the adaptive step rectified",
        "official RAdam (LiyuanLucasLiu/RAdam radam/radam.py)",
        &[],
    ),
    OptimizerInfo::of::<diffgrad::DiffGradRule>(
        "diffGrad: Adam with the momentum damped where the gradient changes little",
        "torch-optimizer 0.3.0 DiffGrad",
        &[],
    ),
];

/// The entry for a canonical name.
pub fn find(name: &str) -> Option<&'static OptimizerInfo> {
    REGISTRY.iter().find(|info| info.name == name)
}

/// Every canonical name.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|info| info.name).collect()
}
