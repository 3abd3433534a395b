//! Adai, adaptive inertia (Xie et al., "Adaptive Inertia: Disentangling the Effects of Adaptive
//! Learning Rate and Momentum", ICML 2022). Matches the official `adai_optim.Adai`
//! (zeke-xie/adaptive-inertia-adai), equal to `pytorch-optimizer` 4.1.0 `Adai`.
//!
//! The momentum factor `beta1` is chosen per element from the second moment relative to its
//! mean over ALL elements of ALL parameters that have a gradient, so the step couples them:
//!
//! ```text
//! pass 1, every parameter with a gradient:
//!     L2: g <- g + wd p        or decoupled (AdaiW): p <- p (1 - lr wd)
//!     v <- beta2 v + (1 - beta2) g²
//! vbar = sum over all of (sum(v) / bc2) / (number of elements)           one scalar
//! pass 2:
//!     beta1 = clamp(1 - beta0 (v / bc2) / vbar, 0, 1 - eps)                element-wise
//!     beta1_prod <- beta1_prod beta1                                     (starts at ones)
//!     m <- beta1 m + (1 - beta1) g
//!     p <- p - lr m / (1 - beta1_prod)
//! ```
//! `eps` is the inertia bound, not a denominator guard: there is no denominator.

use candle::backprop::GradStore;
use candle::{DType, Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::macros::optimizer;
use crate::parts::{bias_correction, moments, value, SlotStep, Slots, WeightDecay};
use crate::registry::OptimizerInfo;
use crate::spec::{check, Hyperparameters, Invalid};

pub(crate) const INFO: OptimizerInfo = OptimizerInfo::of::<Adai>(
    "adai",
    "Adai: adaptive inertia (momentum) from the relative second moment, L2 weight decay",
    "official adai_optim.Adai (= pytorch-optimizer 4.1.0 Adai)",
    &["lr"],
);

/// Hyperparameters of [`Adai`]; the defaults are the official ones. Specs must give `lr` (the
/// official Adai has no default); this struct uses `pytorch-optimizer`'s `1e-3`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamsAdai {
    pub lr: f64,
    pub beta0: f64,
    pub beta2: f64,
    /// The inertia bound: `beta1 <= 1 - eps`.
    pub eps: f64,
    pub weight_decay: f64,
    /// Decoupled weight decay (AdaiW) instead of an L2 term.
    pub decoupled: bool,
}

impl Default for ParamsAdai {
    fn default() -> Self {
        Self { lr: 1e-3, beta0: 0.1, beta2: 0.99, eps: 1e-3, weight_decay: 0.0, decoupled: false }
    }
}

impl Hyperparameters for ParamsAdai {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        check::non_negative("lr", self.lr)?;
        check::non_negative("beta0", self.beta0)?;
        check::beta("beta2", self.beta2)?;
        check::non_negative("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)
    }
}

#[derive(Debug)]
struct State {
    m: Tensor,
    v: Tensor,
    beta1_prod: Tensor,
}

/// Adai / AdaiW, see the module documentation.
#[derive(Debug)]
pub struct Adai {
    slots: Slots<State>,
    params: ParamsAdai,
}

optimizer!(Adai, ParamsAdai);

impl Adai {
    fn update(&mut self, grads: &GradStore) -> Result<()> {
        let p = &self.params;
        let decay = WeightDecay::new(p.weight_decay, p.decoupled);
        let mut active = Vec::new();
        // Pass 1: second moments, and their bias-corrected sum over everything (kept on the
        // device in f64, so that no step waits for a device-to-host copy per tensor).
        let mut total: Option<Tensor> = None;
        let mut count = 0usize;
        for item in self.slots.with_grads(grads) {
            let (slot, grad) = item?;
            let SlotStep { t, var, state } = slot.advance(|var| {
                Ok(State { m: var.zeros_like()?, v: var.zeros_like()?, beta1_prod: var.ones_like()? })
            })?;
            let (param, grad) = decay.apply(&value(var), grad, p.lr)?;
            state.v = moments::ema_sq(&state.v, &grad, p.beta2)?;
            let bc2 = bias_correction(p.beta2, t);
            let sum = state.v.sum_all()?.to_dtype(DType::F64)?.affine(1.0 / bc2, 0.0)?;
            total = Some(match total {
                None => sum,
                Some(total) => (total + sum)?,
            });
            count += grad.elem_count();
            active.push((t, var, state, param, grad));
        }
        let Some(total) = total else { return Ok(()) };
        let mean = total.affine(1.0 / count as f64, 0.0)?;
        // Pass 2: the adaptive inertia and the update.
        for (t, var, state, param, grad) in active {
            let mean = mean.to_dtype(var.dtype())?;
            let v_hat = state.v.affine(1.0 / bias_correction(p.beta2, t), 0.0)?;
            let beta1 = v_hat.broadcast_div(&mean)?.affine(-p.beta0, 1.0)?.clamp(0.0, 1.0 - p.eps)?;
            state.beta1_prod = (&state.beta1_prod * &beta1)?;
            state.m = ((&state.m * &beta1)? + (beta1.affine(-1.0, 1.0)? * grad)?)?;
            let m_hat = (&state.m / state.beta1_prod.affine(-1.0, 1.0)?)?;
            var.set(&(param - m_hat.affine(p.lr, 0.0)?)?)?;
        }
        Ok(())
    }
}
