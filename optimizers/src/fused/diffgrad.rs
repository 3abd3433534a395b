//! The fused CPU kernel of [`DiffGrad`](crate::DiffGrad): the operations of `diffgrad.rs`'s
//! tensor path, element by element (Adam's moments, the friction `1 / (1 + exp(-|g_prev - g|))`
//! with the same `exp` as candle's: `f32::exp`'s results from [`exp`](super::exp)'s vector code,
//! `f64::exp` per element).

use super::{ema, Kernel, Real};

/// The per-step scalars of a diffGrad update (the rule's `Scalars`), computed once per
/// variable and step.
#[derive(Clone, Copy, Debug)]
pub struct DiffGradStep {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// The L2 coefficient (`g <- g + wd p`); 0 for none.
    pub weight_decay: f64,
    /// Adam's step size `lr sqrt(bc2) / bc1`.
    pub step_size: f64,
}

#[derive(Clone, Copy)]
struct Consts<T> {
    zero: T,
    one: T,
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    eps: T,
    wd: T,
    step_size: T,
}

impl Kernel for DiffGradStep {
    /// Updates `param` in place; `state` is `[m, v, previous_grad]`.
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let c = Consts {
            zero: T::of(0.0),
            one: T::of(1.0),
            beta1: T::of(self.beta1),
            one_minus_beta1: T::of(1.0 - self.beta1),
            beta2: T::of(self.beta2),
            one_minus_beta2: T::of(1.0 - self.beta2),
            eps: T::of(self.eps),
            wd: T::of(self.weight_decay),
            step_size: T::of(self.step_size),
        };
        let [m, v, previous] = state else { unreachable!("diffGrad keeps three state vectors") };
        if self.weight_decay != 0.0 {
            kernel::<T, true>(param, grad, m, v, previous, c)
        } else {
            kernel::<T, false>(param, grad, m, v, previous, c)
        }
    }
}

fn kernel<T: Real, const L2: bool>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    previous: &mut [T],
    c: Consts<T>,
) {
    let n = param.len();
    let (grad, m, v, previous) = (&grad[..n], &mut m[..n], &mut v[..n], &mut previous[..n]);
    // In blocks, so that the moments and the update vectorise around the `exp` (vectorised for
    // f32, `exp.rs`; libm calls for f64): the same operations on each element as in one loop.
    let mut friction = [c.zero; BLOCK];
    for start in (0..n).step_by(BLOCK) {
        let len = BLOCK.min(n - start);
        let range = start..start + len;
        let (p, g, m, v, prev) = (
            &param[range.clone()],
            &grad[range.clone()],
            &mut m[range.clone()],
            &mut v[range.clone()],
            &mut previous[range.clone()],
        );
        let f = &mut friction[..len];
        for j in 0..len {
            let g = if L2 { g[j] + (p[j] * c.wd + c.zero) } else { g[j] };
            m[j] = ema(m[j], g, c.beta1, c.one_minus_beta1);
            v[j] = ema(v[j], g * g, c.beta2, c.one_minus_beta2);
            f[j] = (prev[j] - g).abs().neg();
            prev[j] = g;
        }
        T::exp_in_place(f);
        let p = &mut param[range];
        for j in 0..len {
            // `affine(1, 1)` is `x * 1 + 1`, and `x * 1` is `x`.
            let friction = (f[j] + c.one).recip();
            let denominator = v[j].sqrt() + c.eps;
            p[j] = p[j] - (((m[j] * friction) / denominator) * c.step_size + c.zero);
        }
    }
}

/// Elements per block of the kernel.
const BLOCK: usize = 512;
