//! The fused CPU kernel of [`AdaMod`](crate::AdaMod): the operations of `adamod.rs`'s tensor
//! path, element by element (Adam's moments, the step sizes `step_size / (sqrt(v) + eps)`, their
//! EMA and the minimum of the two).

use super::{ema, Kernel, Real};

/// The per-step scalars of an AdaMod update (the rule's `Scalars`), computed once per variable
/// and step.
#[derive(Clone, Copy, Debug)]
pub struct AdaModStep {
    pub beta1: f64,
    pub beta2: f64,
    pub beta3: f64,
    pub eps: f64,
    /// Adam's step size `lr sqrt(bc2) / bc1`.
    pub step_size: f64,
    /// The decoupled decay's factor `1 - lr wd`, `None` without decay.
    pub shrink: Option<f64>,
}

#[derive(Clone, Copy)]
struct Consts<T> {
    zero: T,
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    beta3: T,
    one_minus_beta3: T,
    eps: T,
    step_size: T,
    shrink: T,
}

impl Kernel for AdaModStep {
    /// Updates `param` in place; `state` is `[m, v, s]`.
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let c = Consts {
            zero: T::of(0.0),
            beta1: T::of(self.beta1),
            one_minus_beta1: T::of(1.0 - self.beta1),
            beta2: T::of(self.beta2),
            one_minus_beta2: T::of(1.0 - self.beta2),
            beta3: T::of(self.beta3),
            one_minus_beta3: T::of(1.0 - self.beta3),
            eps: T::of(self.eps),
            step_size: T::of(self.step_size),
            shrink: T::of(self.shrink.unwrap_or(1.0)),
        };
        let [m, v, s] = state else { unreachable!("AdaMod keeps three state vectors") };
        match self.shrink {
            Some(_) => kernel::<T, true>(param, grad, m, v, s, c),
            None => kernel::<T, false>(param, grad, m, v, s, c),
        }
    }
}

fn kernel<T: Real, const SHRINK: bool>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    s: &mut [T],
    c: Consts<T>,
) {
    let n = param.len();
    let (grad, m, v, s) = (&grad[..n], &mut m[..n], &mut v[..n], &mut s[..n]);
    for i in 0..n {
        let g = grad[i];
        let mi = ema(m[i], g, c.beta1, c.one_minus_beta1);
        let vi = ema(v[i], g * g, c.beta2, c.one_minus_beta2);
        let p = if SHRINK { param[i] * c.shrink + c.zero } else { param[i] };
        let eta = (vi.sqrt() + c.eps).recip() * c.step_size + c.zero;
        let si = (s[i] * c.beta3 + c.zero) + (eta * c.one_minus_beta3 + c.zero);
        m[i] = mi;
        v[i] = vi;
        s[i] = si;
        param[i] = p - eta.minimum(si) * mi;
    }
}
