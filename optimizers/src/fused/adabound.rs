//! The fused CPU kernel of [`AdaBound`](crate::AdaBound) (and AMSBound): the operations of
//! `adabound.rs`'s tensor path, element by element (Adam's moments with the optional maximum,
//! the step sizes `step_size / (sqrt(v) + eps)` clamped into the bounds).

use super::{ema, Kernel, Real};

/// The per-step scalars of an AdaBound update (the rule's `Scalars`), computed once per
/// variable and step.
#[derive(Clone, Copy, Debug)]
pub struct AdaBoundStep {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// The L2 coefficient (`g <- g + wd p`); 0 for none.
    pub weight_decay: f64,
    /// Adam's step size `lr sqrt(bc2) / bc1`.
    pub step_size: f64,
    /// The bounds of the step sizes at this step.
    pub lower: f64,
    pub upper: f64,
}

#[derive(Clone, Copy)]
struct Consts<T> {
    zero: T,
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    eps: T,
    wd: T,
    step_size: T,
    lower: T,
    upper: T,
}

impl Kernel for AdaBoundStep {
    /// Updates `param` in place; `state` is `[m, v]` or `[m, v, vmax]` (AMSBound).
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let c = Consts {
            zero: T::of(0.0),
            beta1: T::of(self.beta1),
            one_minus_beta1: T::of(1.0 - self.beta1),
            beta2: T::of(self.beta2),
            one_minus_beta2: T::of(1.0 - self.beta2),
            eps: T::of(self.eps),
            wd: T::of(self.weight_decay),
            step_size: T::of(self.step_size),
            lower: T::of(self.lower),
            upper: T::of(self.upper),
        };
        let l2 = self.weight_decay != 0.0;
        match (state, l2) {
            ([m, v], false) => kernel::<T, false, false>(param, grad, m, v, &mut [], c),
            ([m, v], true) => kernel::<T, true, false>(param, grad, m, v, &mut [], c),
            ([m, v, vmax], false) => kernel::<T, false, true>(param, grad, m, v, vmax, c),
            ([m, v, vmax], true) => kernel::<T, true, true>(param, grad, m, v, vmax, c),
            _ => unreachable!("AdaBound keeps two or three state vectors"),
        }
    }
}

fn kernel<T: Real, const L2: bool, const AMSBOUND: bool>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    vmax: &mut [T],
    c: Consts<T>,
) {
    let n = param.len();
    let (grad, m, v) = (&grad[..n], &mut m[..n], &mut v[..n]);
    let vmax = if AMSBOUND { &mut vmax[..n] } else { vmax };
    for i in 0..n {
        let p = param[i];
        let g = if L2 { grad[i] + (p * c.wd + c.zero) } else { grad[i] };
        let mi = ema(m[i], g, c.beta1, c.one_minus_beta1);
        let vi = ema(v[i], g * g, c.beta2, c.one_minus_beta2);
        m[i] = mi;
        v[i] = vi;
        let vd = if AMSBOUND {
            let mx = vmax[i].maximum(vi);
            vmax[i] = mx;
            mx
        } else {
            vi
        };
        // `affine(1, eps)` is `x * 1 + eps`, and `x * 1` is `x`; `clamp` is `maximum` then `minimum`.
        let eta = (vd.sqrt() + c.eps).recip() * c.step_size + c.zero;
        param[i] = p - eta.maximum(c.lower).minimum(c.upper) * mi;
    }
}
