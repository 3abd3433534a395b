//! Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015), with the
//! AMSGrad maximum (Reddi et al., "On the Convergence of Adam and Beyond", ICLR 2018) and L2 or
//! decoupled weight decay. Matches `torch.optim.Adam` (and `AdamW`, `Adam(amsgrad=True)`).
//!
//! ```text
//! decoupled:  p <- p (1 - lr wd)            otherwise  g <- g + wd p
//! m <- beta1 m + (1 - beta1) g
//! v <- beta2 v + (1 - beta2) g²
//! amsgrad:    vmax <- max(vmax, v), and vmax replaces v below
//! p <- p - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)       bc_i = 1 - beta_i^t
//! ```

use candle::backprop::GradStore;
use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::fused::{self, adam::AdamStep, HostVecs, Kernels};
use crate::macros::optimizer;
use crate::parts::{bias_correction, moments, value, SlotStep, Slots, WeightDecay};
use crate::registry::OptimizerInfo;
use crate::spec::{check, Hyperparameters, Invalid};

pub(crate) const INFO: OptimizerInfo = OptimizerInfo::of::<Adam>(
    "adam",
    "Adam; `amsgrad` adds the running maximum, `decoupled` makes it AdamW",
    "torch.optim.Adam",
    &[],
);

/// Hyperparameters of [`Adam`]; the defaults are `torch.optim.Adam`'s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamsAdam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Decoupled (AdamW) weight decay instead of an L2 term in the gradient.
    pub decoupled: bool,
    /// Normalise by the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
}

impl Default for ParamsAdam {
    fn default() -> Self {
        Self { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled: false, amsgrad: false }
    }
}

impl Hyperparameters for ParamsAdam {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        check::adam_family(self.lr, self.beta1, self.beta2, self.eps, self.weight_decay)
    }
}

#[derive(Debug)]
enum State {
    /// The tensor path: m, v (and vmax) as tensors on the variable's device.
    Tensors { m: Tensor, v: Tensor, vmax: Option<Tensor> },
    /// The fused CPU kernel: [m, v] (and vmax) on the host.
    Host(HostVecs),
}

/// Adam / AdamW / AMSGrad, see the module documentation.
#[derive(Debug)]
pub struct Adam {
    slots: Slots<State>,
    params: ParamsAdam,
    kernels: Kernels,
}

impl Adam {
    /// How many variables are updated by the fused CPU kernel (after their first step).
    pub fn fused_variables(&self) -> usize {
        self.slots.states().filter(|s| matches!(s, State::Host(_))).count()
    }
}

optimizer!(Adam, ParamsAdam, |vars, params, kernels| Ok(Self { slots: Slots::new(vars), params, kernels }));

impl Adam {
    fn update(&mut self, grads: &GradStore) -> Result<()> {
        let p = &self.params;
        let decay = WeightDecay::new(p.weight_decay, p.decoupled);
        let kernels = self.kernels;
        for item in self.slots.with_grads(grads) {
            let (slot, grad) = item?;
            let SlotStep { t, var, state } = slot.advance(|var| {
                let count = if p.amsgrad { 3 } else { 2 };
                if kernels.fused_for(var) {
                    return Ok(State::Host(HostVecs::zeros(var.dtype(), count, var.elem_count())?));
                }
                Ok(State::Tensors {
                    m: var.zeros_like()?,
                    v: var.zeros_like()?,
                    vmax: if p.amsgrad { Some(var.zeros_like()?) } else { None },
                })
            })?;
            let (bc1, bc2) = (bias_correction(p.beta1, t), bias_correction(p.beta2, t));
            match state {
                State::Host(host) => {
                    let step = AdamStep { decay, lr: p.lr, beta1: p.beta1, beta2: p.beta2, eps: p.eps, bc1, bc2 };
                    fused::apply("adam", var, grad, &step, host)?;
                }
                State::Tensors { m, v, vmax } => {
                    let (param, grad) = decay.apply(&value(var), grad, p.lr)?;
                    *m = moments::ema(m, &grad, p.beta1)?;
                    *v = moments::ema_sq(v, &grad, p.beta2)?;
                    let v = match vmax {
                        Some(vmax) => {
                            *vmax = moments::running_max(vmax, v)?;
                            &*vmax
                        }
                        None => &*v,
                    };
                    let denom = v.sqrt()?.affine(1.0 / bc2.sqrt(), p.eps)?;
                    let update = (&*m / denom)?.affine(p.lr / bc1, 0.0)?;
                    var.set(&(param - update)?)?;
                }
            }
        }
        Ok(())
    }
}
