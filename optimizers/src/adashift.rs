//! AdaShift (Zhou et al., "AdaShift: Decorrelation and Convergence of Adaptive Learning Rate
//! Methods", ICLR 2019): the second moment is an EMA of the squared gradient of `n = keep_num`
//! steps ago, reduced by `phi` over each tensor, so that it is independent of the current
//! gradient; the first moment is a `beta1`-weighted mean of the last `n` gradients. Two
//! variants, which differ only where old gradients were exactly 0.
//!
//! `variant = "tf"` (the default) matches the authors' TensorFlow code
//! (`author_code_base/optimizer_all.py` of `mknbv/adashift`, lines 330-416), used by every
//! experiment of the paper; everything in the parameter's precision (TF's slots are in the
//! variable's dtype, its hyperparameters cast to it), the weights computed once in f64:
//!
//! ```text
//! s_k = beta1^(n-1-k) / sum_j beta1^(n-1-j)       k = 0 .. n-1, k = 0 the oldest gradient
//! g_old = the gradient of step t-n (0 while t <= n), read before the window shifts
//! v <- v beta2 + phi(g_old²) (1 - beta2)          phi = identity ("none"), max / mean over the tensor
//! window <- the last n gradients (0 where there are fewer)
//! m = sum_k window_k s_k                          (the current gradient included once)
//! z <- (v > 0 or z > 0)                           activation flag, starts at 0
//! b2p <- z ? b2p beta2 : 1                        a running product, restarting at 1 while inactive
//! p <- p - lr (z m) / (sqrt(v / max(1e-8, 1 - b2p)) + eps)
//! ```
//! `v`, `z`, `b2p` are per element for `phi = none` and per tensor for `max` / `mean`. So an
//! element (tensor) whose old gradients were all exactly 0 does not move, and its bias
//! correction counts from its own first active step. `eps` must be > 0 (an inactive element's
//! step is `0 / eps`).
//!
//! `variant = "pytorch-optimizer"` matches `pytorch-optimizer` 4.1.0 `AdaShift`:
//!
//! ```text
//! S = sum_{i<n} beta1^i,   w_i = beta1^i / S                    (w_0 weighs the newest gradient)
//! m_t = sum_{i<n} w_i g_{t-i}      kept incrementally:  m <- beta1 (m - w_{n-1} g_{t-n}) + w_0 g_t
//! t <= n: the parameter does not move (only m accumulates)
//! t > n:  r = phi(g_{t-n}²)
//!         v <- beta2 v + (1 - beta2) r
//!         p <- p - lr m / (sqrt(v / bc) + eps),      bc = 1 - beta2^max(1, t - n)
//! ```
//! There an element whose old gradients were all 0 moves by `lr m / eps` (which makes
//! non-AdaShift diverge on MNIST, whose border pixels have zero gradients). Without exact zeros
//! the two agree up to rounding.
//!
//! "max-AdaShift" is `phi = max` (the authors used lr 1e-2), "non-AdaShift" is `phi = none`.
//! No weight decay. One deviation from both references, required by the suite's contract:
//! steps are counted per variable (pytorch-optimizer counts them per parameter group), so a
//! variable that had no gradient in some steps is not affected by them at all.
//!
//! The fused CPU kernel ([`fused::adashift`](crate::fused::adashift)) keeps the window as a ring
//! of host vectors and the per-tensor scalars of `phi = max / mean` as one-element vectors
//! ([`Rule::fused_layout`]), and computes the same bits as the tensor ops below, which other
//! devices run.

use std::collections::VecDeque;

use candle::{DType, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::core::{value, Optim, Rule, Step};
use crate::fused::adashift::AdaShiftKernel;
use crate::fused::{HostSlot, HostVecs};
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

/// Which AdaShift [`AdaShift`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdaShiftVariant {
    /// The authors' TensorFlow `optimizer_all.py`.
    #[serde(rename = "tf")]
    Tf,
    /// `pytorch-optimizer` 4.1.0 `AdaShift`.
    #[serde(rename = "pytorch-optimizer")]
    PytorchOptimizer,
}

/// Hyperparameters of [`AdaShift`]; the defaults are the references'.
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
    pub variant: AdaShiftVariant,
}

impl Default for ParamsAdaShift {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-10,
            keep_num: 10,
            phi: Phi::Max,
            variant: AdaShiftVariant::Tf,
        }
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
        if self.variant == AdaShiftVariant::Tf && self.eps <= 0.0 {
            return Err(Invalid {
                key: "eps",
                value: self.eps.to_string(),
                reason: "must be > 0 with variant = \"tf\": an inactive element's step is 0 / eps",
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

/// The state of one variable.
#[derive(Debug)]
pub struct State {
    /// The last `keep_num` gradients, oldest first (saved as `window.0`, `window.1`, ...).
    window: VecDeque<Tensor>,
    /// `pytorch-optimizer`: the first moment, kept incrementally (`tf` computes it afresh).
    m: Option<Tensor>,
    /// A scalar (0-dim) for `phi = max / mean`, the variable's shape for `none`; so are `z`
    /// and `b2p`.
    v: Tensor,
    /// `tf`: the activation flag (0 or 1) and the running product `b2p`.
    z: Option<Tensor>,
    b2p: Option<Tensor>,
}

/// AdaShift, see the module documentation.
pub type AdaShift = Optim<AdaShiftRule>;

/// The rule of [`AdaShift`].
#[derive(Debug)]
pub struct AdaShiftRule {
    /// `w_{n-1}` and `w_0`: the weights of the oldest and the newest gradient in the window.
    oldest_weight: f64,
    newest_weight: f64,
    /// `tf`: the weights `s_k` of the window, oldest first, as TF's NumPy computes them.
    weights: Vec<f64>,
}

/// The scalars of one step: the bias correction of the delayed second moment, and how many
/// gradients the window held before this step (`min(t - 1, keep_num)`, the fused kernel's).
#[derive(Clone, Copy, Debug)]
pub struct AdaShiftStep {
    pub bc: f64,
    pub filled: usize,
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
        // Lines 341-342: `s = [beta1**(n-i-1) for i in range(n)]; s / np.sum(s)`, in f64.
        let powers: Vec<f64> = (0..n).map(|k| p.beta1.powf((n - 1 - k) as f64)).collect();
        let sum: f64 = powers.iter().sum();
        Self {
            oldest_weight: p.beta1.powf((n - 1) as f64) / weight_sum,
            newest_weight: 1.0 / weight_sum,
            weights: powers.iter().map(|x| x / sum).collect(),
        }
    }

    fn init(&self, p: &ParamsAdaShift, var: &Var) -> Result<State> {
        let moment = || match p.phi {
            Phi::None => var.zeros_like(),
            Phi::Max | Phi::Mean => Tensor::zeros((), var.dtype(), var.device()),
        };
        let tf = p.variant == AdaShiftVariant::Tf;
        Ok(State {
            window: VecDeque::with_capacity(p.keep_num + 1),
            m: if tf { None } else { Some(var.zeros_like()?) },
            v: moment()?,
            z: if tf { Some(moment()?) } else { None },
            b2p: if tf { Some(moment()?) } else { None },
        })
    }

    fn scalars(&self, p: &ParamsAdaShift, t: u64) -> AdaShiftStep {
        AdaShiftStep {
            bc: bias_correction(p.beta2, t.saturating_sub(p.keep_num as u64).max(1)),
            filled: (t.saturating_sub(1)).min(p.keep_num as u64) as usize,
        }
    }

    fn update(&self, p: &ParamsAdaShift, step: Step<'_, State, AdaShiftStep>, _: &()) -> Result<()> {
        match p.variant {
            AdaShiftVariant::Tf => self.update_tf(p, step),
            AdaShiftVariant::PytorchOptimizer => self.update_pytorch_optimizer(p, step),
        }
    }

    fn save(&self, _: &ParamsAdaShift, state: &State, out: &mut SlotWriter<'_>) -> Result<()> {
        let slots = [("m", &state.m), ("z", &state.z), ("b2p", &state.b2p)];
        for (name, tensor) in slots.into_iter().filter_map(|(name, t)| t.as_ref().map(|t| (name, t))) {
            out.put(name, tensor)?;
        }
        out.put("v", &state.v)?;
        for (i, grad) in state.window.iter().enumerate() {
            out.put(&format!("window.{i}"), grad)?;
        }
        Ok(())
    }

    fn load(&self, p: &ParamsAdaShift, var: &Var, t: u64, input: &mut SlotReader<'_>) -> Result<State> {
        let mut state = self.init(p, var)?;
        if state.m.is_some() {
            state.m = Some(input.take_like_var("m")?);
        }
        let shape = state.v.shape().clone();
        state.v = input.take("v", shape.clone())?;
        if state.z.is_some() {
            state.z = Some(input.take("z", shape.clone())?);
            state.b2p = Some(input.take("b2p", shape)?);
        }
        // After step t the window holds the last min(t, keep_num) gradients.
        let len = (t as usize).min(p.keep_num);
        for i in 0..len {
            state.window.push_back(input.take_like_var(&format!("window.{i}"))?);
        }
        Ok(state)
    }

    /// The moments without the window (see [`fused_layout`](Rule::fused_layout)).
    fn fused_slots(&self, p: &ParamsAdaShift) -> Option<&'static [&'static str]> {
        Some(match p.variant {
            AdaShiftVariant::Tf => &["v", "z", "b2p"],
            AdaShiftVariant::PytorchOptimizer => &["v", "m"],
        })
    }

    /// `tf`: `[v, z, b2p, window.0 .. window.n-1]`, `pytorch-optimizer`: `[v, m, window..]`;
    /// `v`, `z`, `b2p` of shape `()` for `phi = max / mean`; after step `t` the first
    /// `min(t, keep_num)` window vectors are saved, oldest first, as the tensor path saves them.
    fn fused_layout(&self, p: &ParamsAdaShift, var: &Var, t: u64) -> Vec<HostSlot> {
        let moment = match p.phi {
            Phi::None => var.shape().clone(),
            Phi::Max | Phi::Mean => candle::Shape::from(()),
        };
        let mut layout: Vec<HostSlot> = match p.variant {
            AdaShiftVariant::Tf => ["v", "z", "b2p"].iter().map(|name| HostSlot::saved(name, moment.clone())).collect(),
            AdaShiftVariant::PytorchOptimizer => {
                vec![HostSlot::saved("v", moment), HostSlot::saved("m", var.shape().clone())]
            }
        };
        let filled = (t as usize).min(p.keep_num);
        layout.extend((0..p.keep_num).map(|i| match i < filled {
            true => HostSlot::saved(&format!("window.{i}"), var.shape().clone()),
            false => HostSlot::unsaved(var.shape().clone()),
        }));
        layout
    }

    fn fused_update(
        &self,
        p: &ParamsAdaShift,
        scalars: &AdaShiftStep,
        var: &Var,
        grad: &Tensor,
        host: &mut HostVecs,
    ) -> Result<()> {
        let kernel = AdaShiftKernel {
            params: p,
            weights: &self.weights,
            oldest_weight: self.oldest_weight,
            newest_weight: self.newest_weight,
            step: *scalars,
        };
        crate::fused::apply("adashift", var, grad, &kernel, host)?;
        if scalars.filled == p.keep_num {
            // This step's gradient went to the oldest's vector: it becomes the newest.
            let moments = host.len() - p.keep_num;
            host.rotate_left(moments..host.len());
        }
        Ok(())
    }
}

/// The value of each constant in `dtype` (what TF's `cast(.., var.dtype)` makes of it), as an
/// f64 that candle's `affine` rounds to exactly that value.
fn in_dtype(x: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F32 => x as f32 as f64,
        _ => x,
    }
}

/// `1 - x` computed in `dtype`, as TF's `1 - beta2_t` is.
fn one_minus_in(x: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F32 => (1.0f32 - x as f32) as f64,
        _ => 1.0 - x,
    }
}

impl AdaShiftRule {
    /// The step of `variant = "tf"`, line by line as `optimizer_all.py` (376-403) computes it.
    fn update_tf(&self, p: &ParamsAdaShift, step: Step<'_, State, AdaShiftStep>) -> Result<()> {
        let Step { var, grad, state, .. } = step;
        let dtype = var.dtype();
        let n = p.keep_num;
        let (Some(z), Some(b2p)) = (&state.z, &state.b2p) else {
            candle::bail!("adashift: a state without `z` and `b2p` given to variant \"tf\"")
        };
        // 376-381: v from the gradient of step t-n (slot g0, zeros while t <= n), before the shift.
        let beta2 = p.beta2;
        if state.window.len() == n {
            let squared = state.window[0].sqr()?;
            let reduced = match p.phi {
                Phi::Max => squared.max_all()?,
                Phi::Mean => squared.mean_all()?,
                Phi::None => squared,
            };
            state.v = (state.v.affine(beta2, 0.0)? + reduced.affine(one_minus_in(beta2, dtype), 0.0)?)?;
        } else {
            // g0 is zeros: `v * beta2 + 0 * (1 - beta2)`.
            state.v = state.v.affine(beta2, 0.0)?;
        }
        // 385-389: the shift; the window holds the gradients of steps t-n+1 .. t.
        state.window.push_back(grad);
        if state.window.len() > n {
            state.window.pop_front();
        }
        // 391-392: m = sum_k g_k s_k; a window not yet full is padded with zeros at the front.
        let first = n - state.window.len();
        let mut m: Option<Tensor> = None;
        for (g, &s) in state.window.iter().zip(&self.weights[first..]) {
            let term = g.affine(s, 0.0)?;
            m = Some(match m {
                None => term,
                Some(sum) => (sum + term)?,
            });
        }
        let m = m.expect("the window holds the current gradient");
        // 395-396: z = (v > 0 or z > 0).
        let z = state.v.gt(0.0)?.to_dtype(dtype)?.maximum(z)?;
        // 398: b2p = b2p * beta2 * sign(z) + (1 - sign(z)).
        let b2p = ((b2p.affine(beta2, 0.0)? * &z)? + z.affine(-1.0, 1.0)?)?;
        // 399-401: step = (z m) / (sqrt(v / max(1e-8, 1 - b2p)) + eps).
        let b2_fix = b2p.affine(-1.0, 1.0)?.maximum(1e-8)?;
        let denom = (&state.v / &b2_fix)?.sqrt()?.affine(1.0, in_dtype(p.eps, dtype))?;
        let update = m.broadcast_mul(&z)?.broadcast_div(&denom)?.affine(p.lr, 0.0)?;
        state.z = Some(z);
        state.b2p = Some(b2p);
        // 403: var = var - lr * step.
        var.set(&(value(var) - update)?)
    }

    /// The step of `variant = "pytorch-optimizer"`.
    fn update_pytorch_optimizer(&self, p: &ParamsAdaShift, step: Step<'_, State, AdaShiftStep>) -> Result<()> {
        let Step { scalars, var, grad, state, .. } = step;
        let Some(m) = &state.m else {
            candle::bail!("adashift: a state without `m` given to variant \"pytorch-optimizer\"")
        };
        let newest = grad.affine(self.newest_weight, 0.0)?;
        state.window.push_back(grad);
        let oldest = if state.window.len() > p.keep_num { state.window.pop_front() } else { None };
        let Some(oldest) = oldest else {
            state.m = Some((m.affine(p.beta1, 0.0)? + newest)?);
            return Ok(());
        };
        let shifted = (m - oldest.affine(self.oldest_weight, 0.0)?)?;
        let m = (shifted.affine(p.beta1, 0.0)? + newest)?;
        let squared = oldest.sqr()?;
        let reduced = match p.phi {
            Phi::Max => squared.max_all()?,
            Phi::Mean => squared.mean_all()?,
            Phi::None => squared,
        };
        state.v = moments::ema(&state.v, &reduced, p.beta2)?;
        let denom = state.v.affine(1.0 / scalars.bc, 0.0)?.sqrt()?.affine(1.0, p.eps)?;
        let update = m.broadcast_div(&denom)?.affine(p.lr, 0.0)?;
        state.m = Some(m);
        var.set(&(value(var) - update)?)
    }
}
