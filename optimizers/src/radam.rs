//! RAdam, rectified Adam (Liu et al., "On the Variance of the Adaptive Learning Rate and
//! Beyond", ICLR 2020). Matches the official `radam.py` (LiyuanLucasLiu/RAdam, `radam/radam.py`
//! at d9fd30a), computed at the parameters' own precision (the reference casts to f32).
//!
//! ```text
//! m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g²
//! rho_t >= 5 (see `parts::rectify`):   p <- p (1 - lr wd);  p <- p - lr r_t m / (sqrt(v) + eps)
//! else, degenerated_to_sgd:            p <- p (1 - lr wd);  p <- p - (lr / bc1) m
//! else:                                nothing at all this step (not even the decay)
//! ```
//! Fused CPU kernel: `fused::radam` (bit-identical to the tensor ops below).

use candle::{Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::core::{value, Optim, Rule, Step};
pub use crate::fused::radam::RAdamStep;
use crate::fused::{self, HostVecs};
use crate::hyper::{check, Hyperparameters, Invalid};
use crate::parts::{AdamMoments, Rectification, RectifiedStep, WeightDecay};
use crate::state::{SlotReader, SlotWriter};

/// Hyperparameters of [`RAdam`]; the defaults are the official ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamsRAdam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay, applied only in steps that update.
    pub weight_decay: f64,
    /// Take an SGD-with-momentum step while the variance is intractable, instead of none.
    pub degenerated_to_sgd: bool,
}

impl Default for ParamsRAdam {
    fn default() -> Self {
        Self { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, degenerated_to_sgd: false }
    }
}

impl Hyperparameters for ParamsRAdam {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        check::adam_family(self.lr, self.beta1, self.beta2, self.eps, self.weight_decay)
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// RAdam, see the module documentation.
pub type RAdam = Optim<RAdamRule>;

/// The rule of [`RAdam`].
#[derive(Debug)]
pub struct RAdamRule;

impl Rule for RAdamRule {
    const NAME: &'static str = "radam";
    type Params = ParamsRAdam;
    type State = AdamMoments;
    type Scalars = RAdamStep;
    type Global = ();

    fn new(_: &ParamsRAdam) -> Self {
        Self
    }

    fn init(&self, _: &ParamsRAdam, var: &Var) -> Result<AdamMoments> {
        AdamMoments::zeros(var, false)
    }

    fn scalars(&self, p: &ParamsRAdam, t: u64) -> RAdamStep {
        RAdamStep {
            lr: p.lr,
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            rectified: Rectification::step(p.beta1, p.beta2, t, p.degenerated_to_sgd),
            shrink: WeightDecay::new(p.weight_decay, true).shrink_factor(p.lr),
        }
    }

    fn update(&self, p: &ParamsRAdam, step: Step<'_, AdamMoments, RAdamStep>, _: &()) -> Result<()> {
        let Step { scalars, var, grad, state, .. } = step;
        let v = state.update(&grad, p.beta1, p.beta2)?;
        let update = match scalars.rectified {
            RectifiedStep::Adaptive(factor) => {
                let denom = v.sqrt()?.affine(1.0, p.eps)?;
                (&state.m / denom)?.affine(p.lr * factor, 0.0)?
            }
            RectifiedStep::Sgd(factor) => state.m.affine(p.lr * factor, 0.0)?,
            RectifiedStep::Skip => return Ok(()),
        };
        let param = WeightDecay::new(p.weight_decay, true).param(&value(var), p.lr)?;
        var.set(&(param - update)?)
    }

    fn save(&self, _: &ParamsRAdam, state: &AdamMoments, out: &mut SlotWriter<'_>) -> Result<()> {
        state.save(out)
    }

    fn load(&self, _: &ParamsRAdam, _: &Var, _: u64, input: &mut SlotReader<'_>) -> Result<AdamMoments> {
        AdamMoments::load(input, false)
    }

    fn fused_slots(&self, _: &ParamsRAdam) -> Option<&'static [&'static str]> {
        Some(&["m", "v"])
    }

    fn fused_update(
        &self,
        _: &ParamsRAdam,
        s: &RAdamStep,
        var: &Var,
        grad: &Tensor,
        host: &mut HostVecs,
    ) -> Result<()> {
        fused::apply("radam", var, grad, s, host)
    }
}
