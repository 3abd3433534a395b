//! The fused CPU kernel of [`RAdam`](crate::RAdam): the operations of `radam.rs`'s tensor
//! path, element by element. Which rectified step a step takes (adaptive, SGD, none) is a
//! per-step scalar and a compile-time parameter of the inner loop.

use super::{ema, Kernel, Real};
use crate::parts::RectifiedStep;

/// The per-step scalars of a RAdam update (the rule's `Scalars`), computed once per variable
/// and step.
#[derive(Clone, Copy, Debug)]
pub struct RAdamStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// What the rectification says to do; its factor multiplies `lr`.
    pub rectified: RectifiedStep,
    /// The decoupled decay's factor `1 - lr wd` (applied only in steps that update), `None`
    /// without decay.
    pub shrink: Option<f64>,
}

const ADAPTIVE: u8 = 0;
const SGD: u8 = 1;
const SKIP: u8 = 2;

#[derive(Clone, Copy)]
struct Consts<T> {
    zero: T,
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    eps: T,
    step: T,
    shrink: T,
}

impl Kernel for RAdamStep {
    /// Updates `param` in place; `state` is `[m, v]`.
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let (mode, factor) = match self.rectified {
            RectifiedStep::Adaptive(factor) => (ADAPTIVE, factor),
            RectifiedStep::Sgd(factor) => (SGD, factor),
            RectifiedStep::Skip => (SKIP, 0.0),
        };
        let c = Consts {
            zero: T::of(0.0),
            beta1: T::of(self.beta1),
            one_minus_beta1: T::of(1.0 - self.beta1),
            beta2: T::of(self.beta2),
            one_minus_beta2: T::of(1.0 - self.beta2),
            eps: T::of(self.eps),
            step: T::of(self.lr * factor),
            shrink: T::of(self.shrink.unwrap_or(1.0)),
        };
        let [m, v] = state else { unreachable!("RAdam keeps two state vectors") };
        match (mode, self.shrink.is_some()) {
            (ADAPTIVE, false) => kernel::<T, ADAPTIVE, false>(param, grad, m, v, c),
            (ADAPTIVE, true) => kernel::<T, ADAPTIVE, true>(param, grad, m, v, c),
            (SGD, false) => kernel::<T, SGD, false>(param, grad, m, v, c),
            (SGD, true) => kernel::<T, SGD, true>(param, grad, m, v, c),
            _ => kernel::<T, SKIP, false>(param, grad, m, v, c),
        }
    }
}

fn kernel<T: Real, const MODE: u8, const SHRINK: bool>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    c: Consts<T>,
) {
    let n = param.len();
    let (grad, m, v) = (&grad[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let g = grad[i];
        let mi = ema(m[i], g, c.beta1, c.one_minus_beta1);
        let vi = ema(v[i], g * g, c.beta2, c.one_minus_beta2);
        m[i] = mi;
        v[i] = vi;
        if MODE == SKIP {
            continue;
        }
        let update = if MODE == ADAPTIVE { (mi / (vi.sqrt() + c.eps)) * c.step + c.zero } else { mi * c.step + c.zero };
        let p = if SHRINK { param[i] * c.shrink + c.zero } else { param[i] };
        param[i] = p - update;
    }
}
