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

use candle::backprop::GradStore;
use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::macros::optimizer;
use crate::parts::{moments, value, Rectification, RectifiedStep, SlotStep, Slots, WeightDecay};
use crate::registry::OptimizerInfo;
use crate::spec::{check, Hyperparameters, Invalid};

pub(crate) const INFO: OptimizerInfo = OptimizerInfo::of::<RAdam>(
    "radam",
    "RAdam: Adam with the variance of the adaptive step rectified",
    "official RAdam (LiyuanLucasLiu/RAdam radam/radam.py)",
    &[],
);

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
}

#[derive(Debug)]
struct State {
    m: Tensor,
    v: Tensor,
}

/// RAdam, see the module documentation.
#[derive(Debug)]
pub struct RAdam {
    slots: Slots<State>,
    params: ParamsRAdam,
}

optimizer!(RAdam, ParamsRAdam);

impl RAdam {
    fn update(&mut self, grads: &GradStore) -> Result<()> {
        let p = &self.params;
        let decay = WeightDecay::new(p.weight_decay, true);
        for item in self.slots.with_grads(grads) {
            let (slot, grad) = item?;
            let SlotStep { t, var, state } =
                slot.advance(|var| Ok(State { m: var.zeros_like()?, v: var.zeros_like()? }))?;
            state.m = moments::ema(&state.m, grad, p.beta1)?;
            state.v = moments::ema_sq(&state.v, grad, p.beta2)?;
            let update = match Rectification::step(p.beta1, p.beta2, t, p.degenerated_to_sgd) {
                RectifiedStep::Adaptive(factor) => {
                    let denom = state.v.sqrt()?.affine(1.0, p.eps)?;
                    (&state.m / denom)?.affine(p.lr * factor, 0.0)?
                }
                RectifiedStep::Sgd(factor) => state.m.affine(p.lr * factor, 0.0)?,
                RectifiedStep::Skip => continue,
            };
            let (param, _) = decay.apply(&value(var), grad, p.lr)?;
            var.set(&(param - update)?)?;
        }
        Ok(())
    }
}
