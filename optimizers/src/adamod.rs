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
//! Fused CPU kernel: `fused::adamod` (bit-identical to the tensor ops below).

use candle::{Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::core::{value, Optim, Rule, Step};
pub use crate::fused::adamod::AdaModStep;
use crate::fused::{self, HostVecs};
use crate::hyper::{check, Hyperparameters, Invalid};
use crate::parts::{adam_step_size, moments, AdamMoments, WeightDecay};
use crate::state::{SlotReader, SlotWriter};

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

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// The state of one variable.
#[derive(Debug)]
pub struct State {
    moments: AdamMoments,
    /// The EMA of the step sizes.
    s: Tensor,
}

/// AdaMod, see the module documentation.
pub type AdaMod = Optim<AdaModRule>;

/// The rule of [`AdaMod`].
#[derive(Debug)]
pub struct AdaModRule;

impl Rule for AdaModRule {
    const NAME: &'static str = "adamod";
    type Params = ParamsAdaMod;
    type State = State;
    type Scalars = AdaModStep;
    type Global = ();

    fn new(_: &ParamsAdaMod) -> Self {
        Self
    }

    fn init(&self, _: &ParamsAdaMod, var: &Var) -> Result<State> {
        Ok(State { moments: AdamMoments::zeros(var, false)?, s: var.zeros_like()? })
    }

    fn scalars(&self, p: &ParamsAdaMod, t: u64) -> AdaModStep {
        AdaModStep {
            beta1: p.beta1,
            beta2: p.beta2,
            beta3: p.beta3,
            eps: p.eps,
            step_size: adam_step_size(p.lr, p.beta1, p.beta2, t),
            shrink: WeightDecay::new(p.weight_decay, true).shrink_factor(p.lr),
        }
    }

    fn update(&self, p: &ParamsAdaMod, step: Step<'_, State, AdaModStep>, _: &()) -> Result<()> {
        let Step { scalars, var, grad, state, .. } = step;
        let v = state.moments.update(&grad, p.beta1, p.beta2)?;
        let denom = v.sqrt()?.affine(1.0, p.eps)?;
        let param = WeightDecay::new(p.weight_decay, true).param(&value(var), p.lr)?;
        let eta = denom.recip()?.affine(scalars.step_size, 0.0)?;
        state.s = moments::ema(&state.s, &eta, p.beta3)?;
        let bounded = eta.minimum(&state.s)?;
        var.set(&(param - (bounded * &state.moments.m)?)?)
    }

    fn save(&self, _: &ParamsAdaMod, state: &State, out: &mut SlotWriter<'_>) -> Result<()> {
        state.moments.save(out)?;
        out.put("s", &state.s)
    }

    fn load(&self, _: &ParamsAdaMod, _: &Var, _: u64, input: &mut SlotReader<'_>) -> Result<State> {
        Ok(State { moments: AdamMoments::load(input, false)?, s: input.take_like_var("s")? })
    }

    fn fused_slots(&self, _: &ParamsAdaMod) -> Option<&'static [&'static str]> {
        Some(&["m", "v", "s"])
    }

    fn fused_update(
        &self,
        _: &ParamsAdaMod,
        s: &AdaModStep,
        var: &Var,
        grad: &Tensor,
        host: &mut HostVecs,
    ) -> Result<()> {
        fused::apply("adamod", var, grad, s, host)
    }
}
