//! The fused CPU kernel of [`AdaBelief`](crate::AdaBelief): the operations of `adabelief.rs`'s
//! tensor path, element by element, for every flag. The weight-decay style, the AMSGrad
//! maximum and the kind of step (plain, rectified adaptive, rectified SGD, none) are
//! compile-time parameters; which rectified step a step takes is a per-step scalar.

use super::{ema, Kernel, Real};
use crate::parts::{RectifiedStep, WeightDecay};

/// The per-step scalars of an AdaBelief update (the rule's `Scalars`), computed once per
/// variable and step.
#[derive(Clone, Copy, Debug)]
pub struct AdaBeliefStep {
    pub decay: WeightDecay,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// The bias corrections `1 - beta^t` (f64, as the reference's Python floats).
    pub bc1: f64,
    pub bc2: f64,
    /// With `rectify`: what the rectification says to do (its factor multiplies `lr`).
    pub rectified: Option<RectifiedStep>,
}

const NO_DECAY: u8 = 0;
const L2: u8 = 1;
const SHRINK: u8 = 2;

const PLAIN: u8 = 0;
const ADAPTIVE: u8 = 1;
const SGD: u8 = 2;
const SKIP: u8 = 3;

#[derive(Clone, Copy)]
struct Consts<T> {
    zero: T,
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    eps: T,
    /// PLAIN: `1 / sqrt(bc2)`.
    inv_sqrt_bc2: T,
    /// PLAIN: `lr / bc1`; ADAPTIVE, SGD: `lr * factor`.
    step: T,
    /// L2: the coefficient; decoupled: the shrink factor.
    decay: T,
}

impl Kernel for AdaBeliefStep {
    /// Updates `param` in place; `state` is `[m, s]` or `[m, s, smax]`.
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let (decay_mode, decay) = match (self.decay, self.decay.shrink_factor(self.lr)) {
            (_, Some(factor)) => (SHRINK, factor),
            (WeightDecay::L2(wd), None) => (L2, wd),
            _ => (NO_DECAY, 0.0),
        };
        let (step_mode, step) = match self.rectified {
            None => (PLAIN, self.lr / self.bc1),
            Some(RectifiedStep::Adaptive(factor)) => (ADAPTIVE, self.lr * factor),
            Some(RectifiedStep::Sgd(factor)) => (SGD, self.lr * factor),
            Some(RectifiedStep::Skip) => (SKIP, 0.0),
        };
        let c = Consts {
            zero: T::of(0.0),
            beta1: T::of(self.beta1),
            one_minus_beta1: T::of(1.0 - self.beta1),
            beta2: T::of(self.beta2),
            one_minus_beta2: T::of(1.0 - self.beta2),
            eps: T::of(self.eps),
            inv_sqrt_bc2: T::of(1.0 / self.bc2.sqrt()),
            step: T::of(step),
            decay: T::of(decay),
        };
        let (m, s, smax) = match state {
            [m, s] => (m, s, None),
            [m, s, smax] => (m, s, Some(&mut **smax)),
            _ => unreachable!("AdaBelief keeps two or three state vectors"),
        };
        macro_rules! go {
            ($($d:ident),*; $($k:ident),*) => {
                go!(@ [$($d),*] [$($k),*])
            };
            (@ [$($d:ident),*] $ks:tt) => {
                match decay_mode {
                    $($d => go!(@@ $d $ks),)*
                    _ => unreachable!(),
                }
            };
            (@@ $d:ident [$($k:ident),*]) => {
                match (step_mode, smax) {
                    $(($k, None) => kernel::<T, $d, $k, false>(param, grad, m, s, &mut [], c),)*
                    $(($k, Some(smax)) => kernel::<T, $d, $k, true>(param, grad, m, s, smax, c),)*
                    _ => unreachable!(),
                }
            };
        }
        go!(NO_DECAY, L2, SHRINK; PLAIN, ADAPTIVE, SGD, SKIP)
    }
}

fn kernel<T: Real, const DECAY: u8, const STEP: u8, const AMSGRAD: bool>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    s: &mut [T],
    smax: &mut [T],
    c: Consts<T>,
) {
    let n = param.len();
    let (grad, m, s) = (&grad[..n], &mut m[..n], &mut s[..n]);
    let smax = if AMSGRAD { &mut smax[..n] } else { smax };
    for i in 0..n {
        let p = param[i];
        let (p, g) = match DECAY {
            L2 => (p, grad[i] + (p * c.decay + c.zero)),
            SHRINK => (p * c.decay + c.zero, grad[i]),
            _ => (p, grad[i]),
        };
        let mi = ema(m[i], g, c.beta1, c.one_minus_beta1);
        let r = g - mi;
        // `affine(1, eps)`: `x * 1 + eps`, and `x * 1` is `x`.
        let si = ema(s[i], r * r, c.beta2, c.one_minus_beta2) + c.eps;
        m[i] = mi;
        s[i] = si;
        let denominator = if AMSGRAD {
            let mx = smax[i].maximum(si);
            smax[i] = mx;
            mx
        } else {
            si
        };
        param[i] = match STEP {
            PLAIN => p - ((mi / (denominator.sqrt() * c.inv_sqrt_bc2 + c.eps)) * c.step + c.zero),
            ADAPTIVE => p - ((mi / (si.sqrt() + c.eps)) * c.step + c.zero),
            SGD => p - (mi * c.step + c.zero),
            _ => p,
        };
    }
}
