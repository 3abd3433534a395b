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
//! Fused CPU kernel: `fused::sgd` (bit-identical to the tensor ops below, every flag).

use candle::{Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::core::{value, Optim, Rule, Step};
use crate::fused::{self, sgd::SgdStep, HostVecs};
use crate::hyper::{check, Hyperparameters, Invalid};
use crate::parts::WeightDecay;
use crate::state::{SlotReader, SlotWriter};

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

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// SGD, see the module documentation.
pub type Sgd = Optim<SgdRule>;

/// The rule of [`Sgd`]. Its state is the momentum buffer, absent before the first step.
#[derive(Debug)]
pub struct SgdRule;

impl Rule for SgdRule {
    const NAME: &'static str = "sgd";
    type Params = ParamsSgd;
    type State = Option<Tensor>;
    type Scalars = SgdStep;
    type Global = ();

    fn new(_: &ParamsSgd) -> Self {
        Self
    }

    fn init(&self, _: &ParamsSgd, _: &Var) -> Result<Option<Tensor>> {
        Ok(None)
    }

    fn scalars(&self, p: &ParamsSgd, t: u64) -> SgdStep {
        SgdStep {
            lr: p.lr,
            momentum: p.momentum,
            dampening: p.dampening,
            nesterov: p.nesterov,
            weight_decay: p.weight_decay,
            first: t == 1,
        }
    }

    fn update(&self, p: &ParamsSgd, step: Step<'_, Option<Tensor>, SgdStep>, _: &()) -> Result<()> {
        let Step { var, grad, state, .. } = step;
        let decay = WeightDecay::new(p.weight_decay, false);
        let (param, grad) = decay.apply(&value(var), &grad, p.lr)?;
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
        var.set(&(param - direction.affine(p.lr, 0.0)?)?)
    }

    fn save(&self, _: &ParamsSgd, state: &Option<Tensor>, out: &mut SlotWriter<'_>) -> Result<()> {
        match state {
            Some(buf) => out.put("momentum_buffer", buf),
            None => Ok(()),
        }
    }

    fn load(&self, p: &ParamsSgd, _: &Var, _: u64, input: &mut SlotReader<'_>) -> Result<Option<Tensor>> {
        // After its first step a variable has a buffer exactly when there is momentum.
        if p.momentum != 0.0 {
            Ok(Some(input.take_like_var("momentum_buffer")?))
        } else {
            Ok(None)
        }
    }

    fn fused_slots(&self, p: &ParamsSgd) -> Option<&'static [&'static str]> {
        Some(if p.momentum != 0.0 { &["momentum_buffer"] } else { &[] })
    }

    fn fused_update(&self, _: &ParamsSgd, s: &SgdStep, var: &Var, grad: &Tensor, host: &mut HostVecs) -> Result<()> {
        fused::apply("sgd", var, grad, s, host)
    }
}
