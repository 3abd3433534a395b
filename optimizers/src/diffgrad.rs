//! diffGrad (Dubey et al., "diffGrad: An Optimization Method for Convolutional Neural
//! Networks", IEEE TNNLS 2019). Matches `torch-optimizer` 0.3.0 `DiffGrad` (= diffGrad_v2).
//!
//! Adam whose first moment is damped by a "friction" coefficient that is small where the
//! gradient changes little between steps:
//!
//! ```text
//! g <- g + wd p
//! m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g²
//! dfc = 1 / (1 + exp(-|g_prev - g|))          (g_prev starts at 0, then is this step's g)
//! p <- p - (lr sqrt(bc2) / bc1) m dfc / (sqrt(v) + eps)
//! ```

use candle::backprop::GradStore;
use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::macros::optimizer;
use crate::parts::{bias_correction, moments, value, SlotStep, Slots, WeightDecay};
use crate::registry::OptimizerInfo;
use crate::spec::{check, Hyperparameters, Invalid};

pub(crate) const INFO: OptimizerInfo = OptimizerInfo::of::<DiffGrad>(
    "diffgrad",
    "diffGrad: Adam with the momentum damped where the gradient changes little",
    "torch-optimizer 0.3.0 DiffGrad",
    &[],
);

/// Hyperparameters of [`DiffGrad`]; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamsDiffGrad {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
}

impl Default for ParamsDiffGrad {
    fn default() -> Self {
        Self { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

impl Hyperparameters for ParamsDiffGrad {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        check::adam_family(self.lr, self.beta1, self.beta2, self.eps, self.weight_decay)
    }
}

#[derive(Debug)]
struct State {
    m: Tensor,
    v: Tensor,
    previous_grad: Tensor,
}

/// diffGrad, see the module documentation.
#[derive(Debug)]
pub struct DiffGrad {
    slots: Slots<State>,
    params: ParamsDiffGrad,
}

optimizer!(DiffGrad, ParamsDiffGrad);

impl DiffGrad {
    fn update(&mut self, grads: &GradStore) -> Result<()> {
        let p = &self.params;
        let decay = WeightDecay::new(p.weight_decay, false);
        for item in self.slots.with_grads(grads) {
            let (slot, grad) = item?;
            let SlotStep { t, var, state } = slot.advance(|var| {
                Ok(State { m: var.zeros_like()?, v: var.zeros_like()?, previous_grad: var.zeros_like()? })
            })?;
            let (param, grad) = decay.apply(&value(var), grad, p.lr)?;
            state.m = moments::ema(&state.m, &grad, p.beta1)?;
            state.v = moments::ema_sq(&state.v, &grad, p.beta2)?;
            let denom = state.v.sqrt()?.affine(1.0, p.eps)?;
            let friction = (&state.previous_grad - &grad)?.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.recip()?;
            state.previous_grad = grad;
            let step_size = p.lr * bias_correction(p.beta2, t).sqrt() / bias_correction(p.beta1, t);
            let update = ((&state.m * friction)? / denom)?.affine(step_size, 0.0)?;
            var.set(&(param - update)?)?;
        }
        Ok(())
    }
}
