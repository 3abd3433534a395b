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
//! Fused CPU kernel: `fused::adam` (bit-identical to the tensor ops below, every flag).

use candle::{Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::core::{value, Optim, Rule, Step};
use crate::fused::{self, adam::AdamStep, HostVecs};
use crate::hyper::{check, Hyperparameters, Invalid};
use crate::parts::{bias_correction, AdamMoments, WeightDecay};
use crate::state::{SlotReader, SlotWriter};

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

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// Adam / AdamW / AMSGrad, see the module documentation.
pub type Adam = Optim<AdamRule>;

/// The rule of [`Adam`]. Its scalars are those of the fused CPU kernel, which takes the
/// element-wise update on the CPU (`fused::adam`).
#[derive(Debug)]
pub struct AdamRule;

/// The slots of Adam's state, as saved and as the fused kernel keeps them.
const SLOTS: [&str; 3] = ["m", "v", "vmax"];

impl Rule for AdamRule {
    const NAME: &'static str = "adam";
    type Params = ParamsAdam;
    type State = AdamMoments;
    type Scalars = AdamStep;
    type Global = ();

    fn new(_: &ParamsAdam) -> Self {
        Self
    }

    fn init(&self, p: &ParamsAdam, var: &Var) -> Result<AdamMoments> {
        AdamMoments::zeros(var, p.amsgrad)
    }

    fn scalars(&self, p: &ParamsAdam, t: u64) -> AdamStep {
        AdamStep {
            decay: WeightDecay::new(p.weight_decay, p.decoupled),
            lr: p.lr,
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            bc1: bias_correction(p.beta1, t),
            bc2: bias_correction(p.beta2, t),
        }
    }

    fn update(&self, _: &ParamsAdam, step: Step<'_, AdamMoments, AdamStep>, _: &()) -> Result<()> {
        let Step { scalars: s, var, grad, state, .. } = step;
        let (param, grad) = s.decay.apply(&value(var), &grad, s.lr)?;
        let denom = state.update(&grad, s.beta1, s.beta2)?.sqrt()?.affine(1.0 / s.bc2.sqrt(), s.eps)?;
        let update = (&state.m / denom)?.affine(s.lr / s.bc1, 0.0)?;
        var.set(&(param - update)?)
    }

    fn save(&self, _: &ParamsAdam, state: &AdamMoments, out: &mut SlotWriter<'_>) -> Result<()> {
        state.save(out)
    }

    fn load(&self, p: &ParamsAdam, _: &Var, _: u64, input: &mut SlotReader<'_>) -> Result<AdamMoments> {
        AdamMoments::load(input, p.amsgrad)
    }

    fn fused_slots(&self, p: &ParamsAdam) -> Option<&'static [&'static str]> {
        Some(if p.amsgrad { &SLOTS } else { &SLOTS[..2] })
    }

    fn fused_update(&self, _: &ParamsAdam, s: &AdamStep, var: &Var, grad: &Tensor, host: &mut HostVecs) -> Result<()> {
        fused::apply("adam", var, grad, s, host)
    }
}
