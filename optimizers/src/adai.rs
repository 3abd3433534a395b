//! Adai, adaptive inertia (Xie et al., "Adaptive Inertia: Disentangling the Effects of Adaptive
//! Learning Rate and Momentum", ICML 2022). Matches the official `adai_optim.Adai`
//! (zeke-xie/adaptive-inertia-adai), equal to `pytorch-optimizer` 4.1.0 `Adai`.
//!
//! The momentum factor `beta1` is chosen per element from the second moment relative to its
//! mean over ALL elements of ALL parameters that have a gradient, so the step couples them:
//!
//! ```text
//! pass 1, every parameter with a gradient:
//!     L2: g <- g + wd p        or decoupled (AdaiW): p <- p (1 - lr wd)
//!     v <- beta2 v + (1 - beta2) g²
//! vbar = sum over all of (sum(v) / bc2) / (number of elements)           one scalar
//!        (each sum(v) by blocks of 2^16 elements: `parts::moments::blocked_sum`)
//! pass 2:
//!     beta1 = clamp(1 - beta0 (v / bc2) / vbar, 0, 1 - eps)                element-wise
//!     beta1_prod <- beta1_prod beta1                                     (starts at ones)
//!     m <- beta1 m + (1 - beta1) g
//!     p <- p - lr m / (1 - beta1_prod)
//! ```
//! `eps` is the inertia bound, not a denominator guard: there is no denominator.
//!
//! The official code sums each parameter with `exp_avg_sq.sum()`, in PyTorch's order; candle's
//! order differs at the rounding level, and the blocks of `blocked_sum` differ from candle's
//! whole-tensor `sum_all` at the same level for parameters over 2^16 elements: the golden replays
//! hold either way (their tolerance is far above one rounding of the mean).
//!
//! Fused CPU kernel: `fused::adai` (both passes; each block summed in candle's CPU order and the
//! blocks in parallel, so the mean and every parameter are bit-identical to the tensor ops below). It takes every variable or
//! none: a model with one variable it cannot take (not contiguous, not f32/f64, not on the
//! CPU) runs on the tensor ops.

use candle::{Result, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::core::{value, FusedStep, Optim, Rule, Step};
pub use crate::fused::adai::AdaiStep;
use crate::fused::adai::{AdaiMoments, AdaiUpdate};
use crate::fused::{self, HostVecs};
use crate::hyper::{check, Hyperparameters, Invalid};
use crate::parts::{bias_correction, moments, WeightDecay};
use crate::state::{SlotReader, SlotWriter};

/// Hyperparameters of [`Adai`]; the defaults are the official ones. Specs must give `lr` (the
/// official Adai has no default); this struct uses `pytorch-optimizer`'s `1e-3`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamsAdai {
    pub lr: f64,
    pub beta0: f64,
    pub beta2: f64,
    /// The inertia bound: `beta1 <= 1 - eps`.
    pub eps: f64,
    pub weight_decay: f64,
    /// Decoupled weight decay (AdaiW) instead of an L2 term.
    pub decoupled: bool,
}

impl Default for ParamsAdai {
    fn default() -> Self {
        Self { lr: 1e-3, beta0: 0.1, beta2: 0.99, eps: 1e-3, weight_decay: 0.0, decoupled: false }
    }
}

impl Hyperparameters for ParamsAdai {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        check::non_negative("lr", self.lr)?;
        check::non_negative("beta0", self.beta0)?;
        check::beta("beta2", self.beta2)?;
        check::non_negative("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)
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
    m: Tensor,
    v: Tensor,
    beta1_prod: Tensor,
}

/// Adai / AdaiW, see the module documentation.
pub type Adai = Optim<AdaiRule>;

/// The rule of [`Adai`]: its pre-pass updates the second moments and takes their mean.
#[derive(Debug)]
pub struct AdaiRule;

impl Rule for AdaiRule {
    const NAME: &'static str = "adai";
    const WHOLE_MODEL: bool = true;
    type Params = ParamsAdai;
    type State = State;
    type Scalars = AdaiStep;
    /// `vbar`, the mean of the bias-corrected second moments over everything (f64, on the
    /// device, so that no step waits for a device-to-host copy per tensor).
    type Global = Option<Tensor>;

    fn new(_: &ParamsAdai) -> Self {
        Self
    }

    fn init(&self, _: &ParamsAdai, var: &Var) -> Result<State> {
        Ok(State { m: var.zeros_like()?, v: var.zeros_like()?, beta1_prod: var.ones_like()? })
    }

    fn scalars(&self, p: &ParamsAdai, t: u64) -> AdaiStep {
        AdaiStep {
            lr: p.lr,
            beta0: p.beta0,
            beta2: p.beta2,
            eps: p.eps,
            decay: WeightDecay::new(p.weight_decay, p.decoupled),
            bc2: bias_correction(p.beta2, t),
            first: t == 1,
        }
    }

    /// Pass 1: the L2 term, the second moments, and their bias-corrected mean.
    fn pre_pass(&self, p: &ParamsAdai, steps: &mut [Step<'_, State, AdaiStep>]) -> Result<Option<Tensor>> {
        let decay = WeightDecay::new(p.weight_decay, p.decoupled);
        let mut total: Option<Tensor> = None;
        let mut count = 0usize;
        for step in steps.iter_mut() {
            step.grad = decay.grad(&value(step.var), &step.grad)?;
            step.state.v = moments::ema_sq(&step.state.v, &step.grad, p.beta2)?;
            let sum = moments::blocked_sum(&step.state.v)?.affine(1.0 / step.scalars.bc2, 0.0)?;
            total = Some(match total {
                None => sum,
                Some(total) => (total + sum)?,
            });
            count += step.grad.elem_count();
        }
        total.map(|total| total.affine(1.0 / count as f64, 0.0)).transpose()
    }

    /// Pass 2: the decoupled decay, the adaptive inertia and the update.
    fn update(&self, p: &ParamsAdai, step: Step<'_, State, AdaiStep>, mean: &Option<Tensor>) -> Result<()> {
        let Step { scalars, var, grad, state, .. } = step;
        let Some(mean) = mean else { candle::bail!("adai: an update without the pre-pass") };
        let param = WeightDecay::new(p.weight_decay, p.decoupled).param(&value(var), p.lr)?;
        let mean = mean.to_dtype(var.dtype())?;
        let v_hat = state.v.affine(1.0 / scalars.bc2, 0.0)?;
        let beta1 = v_hat.broadcast_div(&mean)?.affine(-p.beta0, 1.0)?.clamp(0.0, 1.0 - p.eps)?;
        state.beta1_prod = (&state.beta1_prod * &beta1)?;
        state.m = ((&state.m * &beta1)? + (beta1.affine(-1.0, 1.0)? * grad)?)?;
        let m_hat = (&state.m / state.beta1_prod.affine(-1.0, 1.0)?)?;
        var.set(&(param - m_hat.affine(p.lr, 0.0)?)?)
    }

    fn save(&self, _: &ParamsAdai, state: &State, out: &mut SlotWriter<'_>) -> Result<()> {
        out.put("m", &state.m)?;
        out.put("v", &state.v)?;
        out.put("beta1_prod", &state.beta1_prod)
    }

    fn load(&self, _: &ParamsAdai, _: &Var, _: u64, input: &mut SlotReader<'_>) -> Result<State> {
        Ok(State {
            m: input.take_like_var("m")?,
            v: input.take_like_var("v")?,
            beta1_prod: input.take_like_var("beta1_prod")?,
        })
    }

    fn fused_slots(&self, _: &ParamsAdai) -> Option<&'static [&'static str]> {
        Some(&["m", "v", "beta1_prod"])
    }

    /// Pass 1 of the kernel: the second moments, and their bias-corrected mean, summed as the
    /// tensor path sums them (each variable's sum in candle's order, to f64, in visit order).
    fn fused_pre_pass(&self, _: &ParamsAdai, steps: &mut [FusedStep<'_, AdaiStep>]) -> Result<Option<Tensor>> {
        // Each variable's sum on one thread, the variables in parallel, then added in visit order.
        let sums = steps
            .par_iter_mut()
            .map(|step| {
                step.grad = step.grad.contiguous()?;
                let moments = AdaiMoments { step: &step.scalars, sum: Default::default() };
                fused::apply("adai", step.var, &step.grad, &moments, step.host)?;
                let Some(sum) = moments.sum.into_inner().unwrap_or_else(|e| e.into_inner()) else {
                    candle::bail!("adai: the fused pre-pass left no sum")
                };
                Ok((sum * (1.0 / step.scalars.bc2) + 0.0, step.grad.elem_count()))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut total: Option<f64> = None;
        let mut count = 0usize;
        for (sum, elements) in sums {
            total = Some(match total {
                None => sum,
                Some(total) => total + sum,
            });
            count += elements;
        }
        total.map(|total| Tensor::new(total * (1.0 / count as f64) + 0.0, &candle::Device::Cpu)).transpose()
    }

    fn fused_update(&self, _: &ParamsAdai, _: &AdaiStep, _: &Var, _: &Tensor, _: &mut HostVecs) -> Result<()> {
        candle::bail!("adai: a fused update without the pre-pass")
    }

    /// Pass 2 of the kernel.
    fn fused_update_with(
        &self,
        _: &ParamsAdai,
        s: &AdaiStep,
        var: &Var,
        grad: &Tensor,
        host: &mut HostVecs,
        mean: &Option<Tensor>,
    ) -> Result<()> {
        let Some(mean) = mean else { candle::bail!("adai: an update without the pre-pass") };
        let kernel = AdaiUpdate { step: s, mean: mean.to_scalar::<f64>()? };
        fused::apply("adai", var, grad, &kernel, host)
    }
}
