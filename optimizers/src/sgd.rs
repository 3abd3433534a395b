//! Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay.
//! Matches `torch.optim.SGD`.
//!
//! ```text
//! g <- g + wd p
//! momentum > 0:  buf <- g on the first step, then buf <- momentum buf + (1 - dampening) g
//!                d <- g + momentum buf if nesterov, else buf
//! otherwise:     d <- g
//! p <- p - lr d
//! ```

use candle::backprop::GradStore;
use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::macros::optimizer;
use crate::parts::{value, SlotStep, Slots, WeightDecay};
use crate::registry::OptimizerInfo;
use crate::spec::{check, Hyperparameters, Invalid};

pub(crate) const INFO: OptimizerInfo =
    OptimizerInfo::of::<Sgd>("sgd", "SGD with (Nesterov) momentum and L2 weight decay", "torch.optim.SGD", &["lr"]);

/// Hyperparameters of [`Sgd`]; the defaults are `torch.optim.SGD`'s. Specs must give `lr`,
/// as the papers' reference (PyTorch before 2.2) had no default for it; this struct uses
/// PyTorch 2.x's `1e-3`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamsSgd {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

impl Default for ParamsSgd {
    fn default() -> Self {
        Self { lr: 1e-3, momentum: 0.0, dampening: 0.0, nesterov: false, weight_decay: 0.0 }
    }
}

impl Hyperparameters for ParamsSgd {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        check::non_negative("lr", self.lr)?;
        check::non_negative("momentum", self.momentum)?;
        check::unit("dampening", self.dampening)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Invalid {
                key: "nesterov",
                value: "true".to_string(),
                reason: "Nesterov momentum needs momentum > 0 and dampening = 0",
            });
        }
        Ok(())
    }
}

/// SGD, see the module documentation.
#[derive(Debug)]
pub struct Sgd {
    /// The momentum buffer of each variable, absent before its first step.
    slots: Slots<Option<Tensor>>,
    params: ParamsSgd,
}

optimizer!(Sgd, ParamsSgd);

impl Sgd {
    fn update(&mut self, grads: &GradStore) -> Result<()> {
        let p = &self.params;
        let decay = WeightDecay::new(p.weight_decay, false);
        for item in self.slots.with_grads(grads) {
            let (slot, grad) = item?;
            let SlotStep { var, state, .. } = slot.advance(|_| Ok(None))?;
            let (param, grad) = decay.apply(&value(var), grad, p.lr)?;
            let direction = if p.momentum != 0.0 {
                let buf = match state.take() {
                    None => grad.clone(),
                    Some(buf) => (buf.affine(p.momentum, 0.0)? + grad.affine(1.0 - p.dampening, 0.0)?)?,
                };
                let direction = if p.nesterov { (&grad + buf.affine(p.momentum, 0.0)?)? } else { buf.clone() };
                *state = Some(buf);
                direction
            } else {
                grad
            };
            var.set(&(param - direction.affine(p.lr, 0.0)?)?)?;
        }
        Ok(())
    }
}
