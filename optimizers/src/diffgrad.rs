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
//! Fused CPU kernel: `fused::diffgrad` (bit-identical to the tensor ops below, with the same `exp`).

use candle::{Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::core::{value, Optim, Rule, Step};
pub use crate::fused::diffgrad::DiffGradStep;
use crate::fused::{self, HostVecs};
use crate::hyper::{check, Hyperparameters, Invalid};
use crate::parts::{adam_step_size, AdamMoments, WeightDecay};
use crate::state::{SlotReader, SlotWriter};

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
    previous_grad: Tensor,
}

/// diffGrad, see the module documentation.
pub type DiffGrad = Optim<DiffGradRule>;

/// The rule of [`DiffGrad`].
#[derive(Debug)]
pub struct DiffGradRule;

impl Rule for DiffGradRule {
    const NAME: &'static str = "diffgrad";
    type Params = ParamsDiffGrad;
    type State = State;
    type Scalars = DiffGradStep;
    type Global = ();

    fn new(_: &ParamsDiffGrad) -> Self {
        Self
    }

    fn init(&self, _: &ParamsDiffGrad, var: &Var) -> Result<State> {
        Ok(State { moments: AdamMoments::zeros(var, false)?, previous_grad: var.zeros_like()? })
    }

    fn scalars(&self, p: &ParamsDiffGrad, t: u64) -> DiffGradStep {
        DiffGradStep {
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            weight_decay: p.weight_decay,
            step_size: adam_step_size(p.lr, p.beta1, p.beta2, t),
        }
    }

    fn update(&self, p: &ParamsDiffGrad, step: Step<'_, State, DiffGradStep>, _: &()) -> Result<()> {
        let Step { scalars, var, grad, state, .. } = step;
        let decay = WeightDecay::new(p.weight_decay, false);
        let (param, grad) = decay.apply(&value(var), &grad, p.lr)?;
        let denom = state.moments.update(&grad, p.beta1, p.beta2)?.sqrt()?.affine(1.0, p.eps)?;
        let friction = (&state.previous_grad - &grad)?.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.recip()?;
        state.previous_grad = grad;
        let update = ((&state.moments.m * friction)? / denom)?.affine(scalars.step_size, 0.0)?;
        var.set(&(param - update)?)
    }

    fn save(&self, _: &ParamsDiffGrad, state: &State, out: &mut SlotWriter<'_>) -> Result<()> {
        state.moments.save(out)?;
        out.put("previous_grad", &state.previous_grad)
    }

    fn load(&self, _: &ParamsDiffGrad, _: &Var, _: u64, input: &mut SlotReader<'_>) -> Result<State> {
        Ok(State { moments: AdamMoments::load(input, false)?, previous_grad: input.take_like_var("previous_grad")? })
    }

    fn fused_slots(&self, _: &ParamsDiffGrad) -> Option<&'static [&'static str]> {
        Some(&["m", "v", "previous_grad"])
    }

    fn fused_update(
        &self,
        _: &ParamsDiffGrad,
        s: &DiffGradStep,
        var: &Var,
        grad: &Tensor,
        host: &mut HostVecs,
    ) -> Result<()> {
        fused::apply("diffgrad", var, grad, s, host)
    }
}
