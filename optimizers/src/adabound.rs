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
//! Fused CPU kernel: `fused::adabound` (bit-identical to the tensor ops below, AMSBound too).

use std::collections::BTreeMap;

use candle::{Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::core::{value, Optim, Rule, Step};
pub use crate::fused::adabound::AdaBoundStep;
use crate::fused::{self, HostVecs};
use crate::hyper::{check, Hyperparameters, Invalid};
use crate::parts::{adam_step_size, AdamMoments, WeightDecay};
use crate::state::{SlotReader, SlotWriter};

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

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// AdaBound / AMSBound, see the module documentation.
pub type AdaBound = Optim<AdaBoundRule>;

/// The rule of [`AdaBound`].
#[derive(Debug)]
pub struct AdaBoundRule {
    /// The learning rate at construction, to which `final_lr` refers (saved with the state).
    base_lr: f64,
}

impl Rule for AdaBoundRule {
    const NAME: &'static str = "adabound";
    type Params = ParamsAdaBound;
    type State = AdamMoments;
    type Scalars = AdaBoundStep;
    type Global = ();

    fn new(p: &ParamsAdaBound) -> Self {
        Self { base_lr: p.lr }
    }

    fn init(&self, p: &ParamsAdaBound, var: &Var) -> Result<AdamMoments> {
        AdamMoments::zeros(var, p.amsbound)
    }

    fn scalars(&self, p: &ParamsAdaBound, t: u64) -> AdaBoundStep {
        let final_lr = p.final_lr * p.lr / self.base_lr;
        AdaBoundStep {
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            weight_decay: p.weight_decay,
            step_size: adam_step_size(p.lr, p.beta1, p.beta2, t),
            lower: final_lr * (1.0 - 1.0 / (p.gamma * t as f64 + 1.0)),
            upper: final_lr * (1.0 + 1.0 / (p.gamma * t as f64)),
        }
    }

    fn update(&self, p: &ParamsAdaBound, step: Step<'_, AdamMoments, AdaBoundStep>, _: &()) -> Result<()> {
        let Step { scalars: s, var, grad, state, .. } = step;
        let decay = WeightDecay::new(p.weight_decay, false);
        let (param, grad) = decay.apply(&value(var), &grad, p.lr)?;
        let v = state.update(&grad, p.beta1, p.beta2)?;
        let eta = v.sqrt()?.affine(1.0, p.eps)?.recip()?.affine(s.step_size, 0.0)?;
        let bounded = eta.clamp(s.lower, s.upper)?;
        var.set(&(param - (bounded * &state.m)?)?)
    }

    fn save(&self, _: &ParamsAdaBound, state: &AdamMoments, out: &mut SlotWriter<'_>) -> Result<()> {
        state.save(out)
    }

    fn load(&self, p: &ParamsAdaBound, _: &Var, _: u64, input: &mut SlotReader<'_>) -> Result<AdamMoments> {
        AdamMoments::load(input, p.amsbound)
    }

    fn saved_scalars(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([("base_lr".to_string(), self.base_lr)])
    }

    fn restore_scalars(&mut self, scalars: &BTreeMap<String, f64>) -> Result<()> {
        match scalars.get("base_lr") {
            Some(&base_lr) if base_lr > 0.0 => {
                self.base_lr = base_lr;
                Ok(())
            }
            Some(base_lr) => candle::bail!("optimizer state: adabound's `base_lr` must be > 0, not {base_lr}"),
            None => candle::bail!("optimizer state: adabound's state needs the scalar `base_lr`"),
        }
    }

    fn fused_slots(&self, p: &ParamsAdaBound) -> Option<&'static [&'static str]> {
        const SLOTS: [&str; 3] = ["m", "v", "vmax"];
        Some(if p.amsbound { &SLOTS } else { &SLOTS[..2] })
    }

    fn fused_update(
        &self,
        _: &ParamsAdaBound,
        s: &AdaBoundStep,
        var: &Var,
        grad: &Tensor,
        host: &mut HostVecs,
    ) -> Result<()> {
        fused::apply("adabound", var, grad, s, host)
    }
}
