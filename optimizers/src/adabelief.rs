//! AdaBelief (Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
//! Gradients", NeurIPS 2020). Matches the official `adabelief-pytorch` 0.2.1 with every flag.
//!
//! The second moment is the EMA of the squared deviation of the gradient from its EMA (the
//! "belief"), and `eps` is added to it inside the state at every step:
//!
//! ```text
//! decoupled:  p <- p (1 - lr wd)   (fixed_decay: p <- p (1 - wd))     otherwise  g <- g + wd p
//! m <- beta1 m + (1 - beta1) g
//! s <- beta2 s + (1 - beta2) (g - m)² + eps                          (the new m)
//! amsgrad:    smax <- max(smax, s), and smax replaces s in the plain update
//! rectify = false:   p <- p - (lr / bc1) m / (sqrt(s) / sqrt(bc2) + eps)
//! rectify = true (RAdam's rectification, see `parts::rectify`):
//!     rho_t >= 5:              p <- p - lr r_t m / (sqrt(s) + eps)   (s, even with amsgrad)
//!     else degenerated_to_sgd: p <- p - (lr / bc1) m
//!     else:                    no update (the weight decay above still applies)
//! ```

use candle::backprop::GradStore;
use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::macros::optimizer;
use crate::parts::{bias_correction, moments, value, Rectification, RectifiedStep, SlotStep, Slots, WeightDecay};
use crate::registry::OptimizerInfo;
use crate::spec::{check, Hyperparameters, Invalid};

pub(crate) const INFO: OptimizerInfo = OptimizerInfo::of::<AdaBelief>(
    "adabelief",
    "AdaBelief: step scaled by the belief in the gradient (EMA of (g - m)²)",
    "adabelief-pytorch 0.2.1",
    &[],
);

/// Hyperparameters of [`AdaBelief`]; the defaults are those of `adabelief-pytorch` 0.2.1
/// (the paper's CV results used `eps = 1e-8`, `decoupled = false`, `rectify = false`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamsAdaBelief {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Decoupled weight decay (`weight_decouple` in the reference) instead of L2.
    pub decoupled: bool,
    /// With `decoupled`: shrink by `wd` instead of `lr * wd`.
    pub fixed_decay: bool,
    /// RAdam's variance rectification.
    pub rectify: bool,
    pub amsgrad: bool,
    /// With `rectify`: take an SGD-with-momentum step while the variance is intractable.
    pub degenerated_to_sgd: bool,
}

impl Default for ParamsAdaBelief {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-16,
            weight_decay: 0.0,
            decoupled: true,
            fixed_decay: false,
            rectify: true,
            amsgrad: false,
            degenerated_to_sgd: true,
        }
    }
}

impl Hyperparameters for ParamsAdaBelief {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        check::adam_family(self.lr, self.beta1, self.beta2, self.eps, self.weight_decay)
    }
}

impl ParamsAdaBelief {
    fn weight_decay(&self) -> WeightDecay {
        match (self.decoupled, self.fixed_decay) {
            _ if self.weight_decay == 0.0 => WeightDecay::None,
            (true, true) => WeightDecay::Fixed(self.weight_decay),
            (true, false) => WeightDecay::Decoupled(self.weight_decay),
            (false, _) => WeightDecay::L2(self.weight_decay),
        }
    }
}

#[derive(Debug)]
struct State {
    m: Tensor,
    s: Tensor,
    smax: Option<Tensor>,
}

/// AdaBelief, see the module documentation.
#[derive(Debug)]
pub struct AdaBelief {
    slots: Slots<State>,
    params: ParamsAdaBelief,
}

optimizer!(AdaBelief, ParamsAdaBelief);

impl AdaBelief {
    fn update(&mut self, grads: &GradStore) -> Result<()> {
        let p = &self.params;
        let decay = p.weight_decay();
        for item in self.slots.with_grads(grads) {
            let (slot, grad) = item?;
            let SlotStep { t, var, state } = slot.advance(|var| {
                Ok(State {
                    m: var.zeros_like()?,
                    s: var.zeros_like()?,
                    smax: if p.amsgrad { Some(var.zeros_like()?) } else { None },
                })
            })?;
            let (param, grad) = decay.apply(&value(var), grad, p.lr)?;
            state.m = moments::ema(&state.m, &grad, p.beta1)?;
            let residual = (&grad - &state.m)?;
            state.s = moments::ema_sq(&state.s, &residual, p.beta2)?.affine(1.0, p.eps)?;
            if let Some(smax) = &mut state.smax {
                *smax = moments::running_max(smax, &state.s)?;
            }
            let update = if !p.rectify {
                let s = state.smax.as_ref().unwrap_or(&state.s);
                let bc1 = bias_correction(p.beta1, t);
                let bc2 = bias_correction(p.beta2, t);
                let denom = s.sqrt()?.affine(1.0 / bc2.sqrt(), p.eps)?;
                Some((&state.m / denom)?.affine(p.lr / bc1, 0.0)?)
            } else {
                match Rectification::step(p.beta1, p.beta2, t, p.degenerated_to_sgd) {
                    RectifiedStep::Adaptive(factor) => {
                        let denom = state.s.sqrt()?.affine(1.0, p.eps)?;
                        Some((&state.m / denom)?.affine(p.lr * factor, 0.0)?)
                    }
                    RectifiedStep::Sgd(factor) => Some(state.m.affine(p.lr * factor, 0.0)?),
                    RectifiedStep::Skip => None,
                }
            };
            match update {
                Some(update) => var.set(&(param - update)?)?,
                None if decay.shrinks_param() => var.set(&param)?,
                None => {}
            }
        }
        Ok(())
    }
}
