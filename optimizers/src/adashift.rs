//! AdaShift (Zhou et al., "AdaShift: Decorrelation and Convergence of Adaptive Learning Rate
//! Methods", ICLR 2019). Matches `pytorch-optimizer` 4.1.0 `AdaShift`, the authors' definition
//! (the second moment is an EMA of the squared gradient of `n = keep_num` steps ago, reduced by
//! `phi` over each tensor, so that it is independent of the current gradient).
//!
//! ```text
//! S = sum_{i<n} beta1^i,   w_i = beta1^i / S                    (w_0 weighs the newest gradient)
//! m_t = sum_{i<n} w_i g_{t-i}      kept incrementally:  m <- beta1 (m - w_{n-1} g_{t-n}) + w_0 g_t
//! t <= n: the parameter does not move (only m accumulates)
//! t > n:  r = phi(g_{t-n}²)          phi = identity ("none"), or max / mean over the tensor
//!         v <- beta2 v + (1 - beta2) r
//!         p <- p - lr m / (sqrt(v / bc) + eps),      bc = 1 - beta2^max(1, t - n)
//! ```
//! "max-AdaShift" is `phi = max` (the authors used lr 1e-2), "non-AdaShift" is `phi = none`.
//! No weight decay. One deviation from the reference, required by the suite's contract: the
//! reference counts `t` per parameter group, this implementation per variable, so a variable
//! that had no gradient in some steps is not affected by them at all (identical otherwise).

use std::collections::VecDeque;

use candle::{Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::core::{value, Optim, Rule, Step};
use crate::hyper::{check, Hyperparameters, Invalid};
use crate::parts::{bias_correction, moments};
use crate::state::{SlotReader, SlotWriter};

/// The reduction `phi` of AdaShift's delayed squared gradient over each tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phi {
    /// The largest element ("max-AdaShift").
    Max,
    /// The mean of the elements.
    Mean,
    /// Element-wise, no reduction ("non-AdaShift").
    None,
}

/// Hyperparameters of [`AdaShift`]; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamsAdaShift {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// The window `n`: how many gradients the first moment averages, and how far back the
    /// second moment looks.
    pub keep_num: usize,
    pub phi: Phi,
}

impl Default for ParamsAdaShift {
    fn default() -> Self {
        Self { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-10, keep_num: 10, phi: Phi::Max }
    }
}

impl Hyperparameters for ParamsAdaShift {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        check::non_negative("lr", self.lr)?;
        check::beta("beta1", self.beta1)?;
        check::beta("beta2", self.beta2)?;
        check::non_negative("eps", self.eps)?;
        if self.keep_num == 0 {
            return Err(Invalid { key: "keep_num", value: "0".to_string(), reason: "must be at least 1" });
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

/// The state of one variable.
#[derive(Debug)]
pub struct State {
    /// The last `keep_num` gradients, oldest first (saved as `window.0`, `window.1`, ...).
    window: VecDeque<Tensor>,
    m: Tensor,
    /// A scalar (0-dim) for `phi = max / mean`, the variable's shape for `none`.
    v: Tensor,
}

/// AdaShift, see the module documentation.
pub type AdaShift = Optim<AdaShiftRule>;

/// The rule of [`AdaShift`].
#[derive(Debug)]
pub struct AdaShiftRule {
    /// `w_{n-1}` and `w_0`: the weights of the oldest and the newest gradient in the window.
    oldest_weight: f64,
    newest_weight: f64,
}

/// The scalars of one step: the bias correction of the delayed second moment.
#[derive(Clone, Copy, Debug)]
pub struct AdaShiftStep {
    bc: f64,
}

impl Rule for AdaShiftRule {
    const NAME: &'static str = "adashift";
    type Params = ParamsAdaShift;
    type State = State;
    type Scalars = AdaShiftStep;
    type Global = ();

    fn new(p: &ParamsAdaShift) -> Self {
        let n = p.keep_num;
        let weight_sum: f64 = (0..n).map(|i| p.beta1.powf(i as f64)).sum();
        Self { oldest_weight: p.beta1.powf((n - 1) as f64) / weight_sum, newest_weight: 1.0 / weight_sum }
    }

    fn init(&self, p: &ParamsAdaShift, var: &Var) -> Result<State> {
        let v = match p.phi {
            Phi::None => var.zeros_like()?,
            Phi::Max | Phi::Mean => Tensor::zeros((), var.dtype(), var.device())?,
        };
        Ok(State { window: VecDeque::with_capacity(p.keep_num + 1), m: var.zeros_like()?, v })
    }

    fn scalars(&self, p: &ParamsAdaShift, t: u64) -> AdaShiftStep {
        AdaShiftStep { bc: bias_correction(p.beta2, t.saturating_sub(p.keep_num as u64).max(1)) }
    }

    fn update(&self, p: &ParamsAdaShift, step: Step<'_, State, AdaShiftStep>, _: &()) -> Result<()> {
        let Step { scalars, var, grad, state, .. } = step;
        let newest = grad.affine(self.newest_weight, 0.0)?;
        state.window.push_back(grad);
        let oldest = if state.window.len() > p.keep_num { state.window.pop_front() } else { None };
        let Some(oldest) = oldest else {
            state.m = (state.m.affine(p.beta1, 0.0)? + newest)?;
            return Ok(());
        };
        let shifted = (&state.m - oldest.affine(self.oldest_weight, 0.0)?)?;
        state.m = (shifted.affine(p.beta1, 0.0)? + newest)?;
        let squared = oldest.sqr()?;
        let reduced = match p.phi {
            Phi::Max => squared.max_all()?,
            Phi::Mean => squared.mean_all()?,
            Phi::None => squared,
        };
        state.v = moments::ema(&state.v, &reduced, p.beta2)?;
        let denom = state.v.affine(1.0 / scalars.bc, 0.0)?.sqrt()?.affine(1.0, p.eps)?;
        let update = state.m.broadcast_div(&denom)?.affine(p.lr, 0.0)?;
        var.set(&(value(var) - update)?)
    }

    fn save(&self, _: &ParamsAdaShift, state: &State, out: &mut SlotWriter<'_>) -> Result<()> {
        out.put("m", &state.m)?;
        out.put("v", &state.v)?;
        for (i, grad) in state.window.iter().enumerate() {
            out.put(&format!("window.{i}"), grad)?;
        }
        Ok(())
    }

    fn load(&self, p: &ParamsAdaShift, var: &Var, t: u64, input: &mut SlotReader<'_>) -> Result<State> {
        let mut state = self.init(p, var)?;
        state.m = input.take_like_var("m")?;
        state.v = input.take("v", state.v.shape().clone())?;
        // After step t the window holds the last min(t, keep_num) gradients.
        let len = (t as usize).min(p.keep_num);
        for i in 0..len {
            state.window.push_back(input.take_like_var(&format!("window.{i}"))?);
        }
        Ok(state)
    }
}
