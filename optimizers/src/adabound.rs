//! AdaBound and AMSBound (Luo, Xiong, Liu & Sun, "Adaptive Gradient Methods with Dynamic Bound
//! of Learning Rate", ICLR 2019). Matches the official `adabound` 0.0.5.
//!
//! Adam whose element-wise step sizes are clipped into bounds that close in on `final_lr`, so
//! that the method moves from Adam towards SGD:
//!
//! ```text
//! g <- g + wd p
//! m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g²
//! amsbound:  vmax <- max(vmax, v), and vmax replaces v below
//! final = final_lr lr / base_lr          (base_lr = lr at construction: the bounds follow schedules)
//! lower = final (1 - 1 / (gamma t + 1));   upper = final (1 + 1 / (gamma t))
//! p <- p - clamp(lr (sqrt(bc2) / bc1) / (sqrt(v) + eps), lower, upper) m
//! ```

use candle::backprop::GradStore;
use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::macros::optimizer;
use crate::parts::{bias_correction, moments, value, SlotStep, Slots, WeightDecay};
use crate::registry::OptimizerInfo;
use crate::spec::{check, Hyperparameters, Invalid};

pub(crate) const INFO: OptimizerInfo = OptimizerInfo::of::<AdaBound>(
    "adabound",
    "AdaBound: Adam with step sizes clipped into bounds converging to final_lr; amsbound",
    "adabound 0.0.5",
    &[],
);

/// Hyperparameters of [`AdaBound`]; the defaults are the official ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamsAdaBound {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// The SGD learning rate the bounds converge to (scaled with the schedule).
    pub final_lr: f64,
    /// How fast the bounds close in.
    pub gamma: f64,
    pub eps: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Normalise by the running maximum of the second moment (AMSBound).
    pub amsbound: bool,
}

impl Default for ParamsAdaBound {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            final_lr: 0.1,
            gamma: 1e-3,
            eps: 1e-8,
            weight_decay: 0.0,
            amsbound: false,
        }
    }
}

impl Hyperparameters for ParamsAdaBound {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        check::adam_family(self.lr, self.beta1, self.beta2, self.eps, self.weight_decay)?;
        if self.lr == 0.0 {
            return Err(Invalid {
                key: "lr",
                value: "0".to_string(),
                reason: "AdaBound scales its bounds by lr / base_lr and needs base_lr > 0",
            });
        }
        check::non_negative("final_lr", self.final_lr)?;
        check::beta("gamma", self.gamma)
    }
}

#[derive(Debug)]
struct State {
    m: Tensor,
    v: Tensor,
    vmax: Option<Tensor>,
}

/// AdaBound / AMSBound, see the module documentation.
#[derive(Debug)]
pub struct AdaBound {
    slots: Slots<State>,
    params: ParamsAdaBound,
    /// The learning rate at construction, to which `final_lr` refers.
    base_lr: f64,
}

optimizer!(AdaBound, ParamsAdaBound, |vars, params| Ok(Self { slots: Slots::new(vars), base_lr: params.lr, params }));

impl AdaBound {
    fn update(&mut self, grads: &GradStore) -> Result<()> {
        let p = &self.params;
        let decay = WeightDecay::new(p.weight_decay, false);
        let final_lr = p.final_lr * p.lr / self.base_lr;
        for item in self.slots.with_grads(grads) {
            let (slot, grad) = item?;
            let SlotStep { t, var, state } = slot.advance(|var| {
                Ok(State {
                    m: var.zeros_like()?,
                    v: var.zeros_like()?,
                    vmax: if p.amsbound { Some(var.zeros_like()?) } else { None },
                })
            })?;
            let (param, grad) = decay.apply(&value(var), grad, p.lr)?;
            state.m = moments::ema(&state.m, &grad, p.beta1)?;
            state.v = moments::ema_sq(&state.v, &grad, p.beta2)?;
            let v = match &mut state.vmax {
                Some(vmax) => {
                    *vmax = moments::running_max(vmax, &state.v)?;
                    &*vmax
                }
                None => &state.v,
            };
            let step_size = p.lr * bias_correction(p.beta2, t).sqrt() / bias_correction(p.beta1, t);
            let lower = final_lr * (1.0 - 1.0 / (p.gamma * t as f64 + 1.0));
            let upper = final_lr * (1.0 + 1.0 / (p.gamma * t as f64));
            let eta = v.sqrt()?.affine(1.0, p.eps)?.recip()?.affine(step_size, 0.0)?;
            let bounded = eta.clamp(lower, upper)?;
            var.set(&(param - (bounded * &state.m)?)?)?;
        }
        Ok(())
    }
}
