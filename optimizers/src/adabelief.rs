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
//! Fused CPU kernel: `fused::adabelief` (bit-identical to the tensor ops below, every flag).

use candle::{Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::core::{value, Optim, Rule, Step};
pub use crate::fused::adabelief::AdaBeliefStep;
use crate::fused::{self, HostVecs};
use crate::hyper::{check, Hyperparameters, Invalid};
use crate::parts::{bias_correction, moments, Rectification, RectifiedStep, WeightDecay};
use crate::state::{SlotReader, SlotWriter};

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

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
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

/// The state of one variable.
#[derive(Debug)]
pub struct State {
    m: Tensor,
    s: Tensor,
    smax: Option<Tensor>,
}

/// AdaBelief, see the module documentation.
pub type AdaBelief = Optim<AdaBeliefRule>;

/// The rule of [`AdaBelief`].
#[derive(Debug)]
pub struct AdaBeliefRule;

impl Rule for AdaBeliefRule {
    const NAME: &'static str = "adabelief";
    type Params = ParamsAdaBelief;
    type State = State;
    type Scalars = AdaBeliefStep;
    type Global = ();

    fn new(_: &ParamsAdaBelief) -> Self {
        Self
    }

    fn init(&self, p: &ParamsAdaBelief, var: &Var) -> Result<State> {
        Ok(State {
            m: var.zeros_like()?,
            s: var.zeros_like()?,
            smax: if p.amsgrad { Some(var.zeros_like()?) } else { None },
        })
    }

    fn scalars(&self, p: &ParamsAdaBelief, t: u64) -> AdaBeliefStep {
        AdaBeliefStep {
            decay: p.weight_decay(),
            lr: p.lr,
            beta1: p.beta1,
            beta2: p.beta2,
            eps: p.eps,
            bc1: bias_correction(p.beta1, t),
            bc2: bias_correction(p.beta2, t),
            rectified: p.rectify.then(|| Rectification::step(p.beta1, p.beta2, t, p.degenerated_to_sgd)),
        }
    }

    fn update(&self, p: &ParamsAdaBelief, step: Step<'_, State, AdaBeliefStep>, _: &()) -> Result<()> {
        let Step { scalars: sc, var, grad, state, .. } = step;
        let (param, grad) = sc.decay.apply(&value(var), &grad, p.lr)?;
        state.m = moments::ema(&state.m, &grad, p.beta1)?;
        let residual = (&grad - &state.m)?;
        state.s = moments::ema_sq(&state.s, &residual, p.beta2)?.affine(1.0, p.eps)?;
        if let Some(smax) = &mut state.smax {
            *smax = moments::running_max(smax, &state.s)?;
        }
        let update = match sc.rectified {
            None => {
                let s = state.smax.as_ref().unwrap_or(&state.s);
                let denom = s.sqrt()?.affine(1.0 / sc.bc2.sqrt(), p.eps)?;
                Some((&state.m / denom)?.affine(p.lr / sc.bc1, 0.0)?)
            }
            Some(RectifiedStep::Adaptive(factor)) => {
                let denom = state.s.sqrt()?.affine(1.0, p.eps)?;
                Some((&state.m / denom)?.affine(p.lr * factor, 0.0)?)
            }
            Some(RectifiedStep::Sgd(factor)) => Some(state.m.affine(p.lr * factor, 0.0)?),
            Some(RectifiedStep::Skip) => None,
        };
        match update {
            Some(update) => var.set(&(param - update)?),
            None if sc.decay.shrinks_param() => var.set(&param),
            None => Ok(()),
        }
    }

    fn save(&self, _: &ParamsAdaBelief, state: &State, out: &mut SlotWriter<'_>) -> Result<()> {
        out.put("m", &state.m)?;
        out.put("s", &state.s)?;
        match &state.smax {
            Some(smax) => out.put("smax", smax),
            None => Ok(()),
        }
    }

    fn load(&self, p: &ParamsAdaBelief, _: &Var, _: u64, input: &mut SlotReader<'_>) -> Result<State> {
        Ok(State {
            m: input.take_like_var("m")?,
            s: input.take_like_var("s")?,
            smax: if p.amsgrad { Some(input.take_like_var("smax")?) } else { None },
        })
    }

    fn fused_slots(&self, p: &ParamsAdaBelief) -> Option<&'static [&'static str]> {
        const SLOTS: [&str; 3] = ["m", "s", "smax"];
        Some(if p.amsgrad { &SLOTS } else { &SLOTS[..2] })
    }

    fn fused_update(
        &self,
        _: &ParamsAdaBelief,
        s: &AdaBeliefStep,
        var: &Var,
        grad: &Tensor,
        host: &mut HostVecs,
    ) -> Result<()> {
        fused::apply("adabelief", var, grad, s, host)
    }
}
