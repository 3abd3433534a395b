//! AdaMod (Ding, Ren, Luo & Sun, "An Adaptive and Momental Bound Method for Stochastic
//! Learning", 2019). Matches the official `adamod` 0.0.3.
//!
//! Adam whose element-wise step sizes are capped by their own long-term EMA (the "momental
//! bound"), which removes the huge early steps of Adam without a warm-up:
//!
//! ```text
//! m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g²
//! p <- p - lr wd p                                                  (decoupled, before the step)
//! eta = lr (sqrt(bc2) / bc1) / (sqrt(v) + eps)                       element-wise step sizes
//! s <- beta3 s + (1 - beta3) eta                                    (from 0, no bias correction)
//! p <- p - min(eta, s) m
//! ```

use candle::backprop::GradStore;
use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::macros::optimizer;
use crate::parts::{bias_correction, moments, value, SlotStep, Slots, WeightDecay};
use crate::registry::OptimizerInfo;
use crate::spec::{check, Hyperparameters, Invalid};

pub(crate) const INFO: OptimizerInfo = OptimizerInfo::of::<AdaMod>(
    "adamod",
    "AdaMod: Adam with step sizes bounded by their EMA (beta3)",
    "adamod 0.0.3",
    &[],
);

/// Hyperparameters of [`AdaMod`]; the defaults are the official ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamsAdaMod {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// The EMA factor of the step sizes (the memory of the momental bound).
    pub beta3: f64,
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for ParamsAdaMod {
    fn default() -> Self {
        Self { lr: 1e-3, beta1: 0.9, beta2: 0.999, beta3: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

impl Hyperparameters for ParamsAdaMod {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        check::adam_family(self.lr, self.beta1, self.beta2, self.eps, self.weight_decay)?;
        check::beta("beta3", self.beta3)
    }
}

#[derive(Debug)]
struct State {
    m: Tensor,
    v: Tensor,
    /// The EMA of the step sizes.
    s: Tensor,
}

/// AdaMod, see the module documentation.
#[derive(Debug)]
pub struct AdaMod {
    slots: Slots<State>,
    params: ParamsAdaMod,
}

optimizer!(AdaMod, ParamsAdaMod);

impl AdaMod {
    fn update(&mut self, grads: &GradStore) -> Result<()> {
        let p = &self.params;
        let decay = WeightDecay::new(p.weight_decay, true);
        for item in self.slots.with_grads(grads) {
            let (slot, grad) = item?;
            let SlotStep { t, var, state } =
                slot.advance(|var| Ok(State { m: var.zeros_like()?, v: var.zeros_like()?, s: var.zeros_like()? }))?;
            state.m = moments::ema(&state.m, grad, p.beta1)?;
            state.v = moments::ema_sq(&state.v, grad, p.beta2)?;
            let (param, _) = decay.apply(&value(var), grad, p.lr)?;
            let step_size = p.lr * bias_correction(p.beta2, t).sqrt() / bias_correction(p.beta1, t);
            let eta = state.v.sqrt()?.affine(1.0, p.eps)?.recip()?.affine(step_size, 0.0)?;
            state.s = moments::ema(&state.s, &eta, p.beta3)?;
            let bounded = eta.minimum(&state.s)?;
            var.set(&(param - (bounded * &state.m)?)?)?;
        }
        Ok(())
    }
}
