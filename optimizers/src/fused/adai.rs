//! The fused CPU kernels of [`Adai`](crate::Adai) and [`AdaiW`](crate::AdaiW): the two passes
//! of `adai.rs`'s tensor path, element by element.
//!
//! Pass 1 ([`AdaiMoments`], over every variable with a gradient) updates the second moment;
//! the sum of each variable's second moment is then taken in exactly candle's CPU summation
//! order ([`candle_sum_f32`], [`candle_sum_f64`]), so that the global mean, and with it every
//! parameter, is bit-identical to the tensor path's. Pass 2 ([`AdaiUpdate`]) takes the mean.

use super::{Kernel, Real};
use crate::parts::WeightDecay;

/// The per-step scalars of an Adai update (the rule's `Scalars`), computed once per variable
/// and step. The global mean `vbar` of the bias-corrected second moments comes from the
/// pre-pass (the rule's `Global`).
#[derive(Clone, Copy, Debug)]
pub struct AdaiStep {
    pub lr: f64,
    pub beta0: f64,
    pub beta2: f64,
    /// The inertia bound: `beta1 <= 1 - eps`.
    pub eps: f64,
    /// `L2` (Adai) or `Decoupled` (AdaiW), or none.
    pub decay: WeightDecay,
    /// The bias correction `1 - beta2^t` of the second moment.
    pub bc2: f64,
    /// Whether this is the variable's first step, where `beta1_prod` starts at ones (the host
    /// state starts at zeros).
    pub first: bool,
}

/// Pass 1: `g <- g + wd p` (L2), `v <- beta2 v + (1 - beta2) g²`; `state` is `[m, v, beta1_prod]`.
pub(crate) struct AdaiMoments<'a>(pub &'a AdaiStep);

/// Pass 2 with the global mean `vbar` (in f64, as the tensor path holds it).
pub(crate) struct AdaiUpdate<'a> {
    pub step: &'a AdaiStep,
    pub mean: f64,
}

fn l2<T: Real>(step: &AdaiStep) -> Option<T> {
    match step.decay {
        WeightDecay::L2(wd) => Some(T::of(wd)),
        _ => None,
    }
}

impl Kernel for AdaiMoments<'_> {
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let [_, v, _] = state else { unreachable!("Adai keeps three state vectors") };
        let (zero, beta2, one_minus_beta2) = (T::of(0.0), T::of(self.0.beta2), T::of(1.0 - self.0.beta2));
        let n = param.len();
        let (grad, v) = (&grad[..n], &mut v[..n]);
        match l2::<T>(self.0) {
            Some(wd) => {
                for i in 0..n {
                    let g = grad[i] + (param[i] * wd + zero);
                    v[i] = (v[i] * beta2 + zero) + ((g * g) * one_minus_beta2 + zero);
                }
            }
            None => {
                for i in 0..n {
                    let g = grad[i];
                    v[i] = (v[i] * beta2 + zero) + ((g * g) * one_minus_beta2 + zero);
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Consts<T> {
    zero: T,
    one: T,
    minus_one: T,
    lr: T,
    minus_beta0: T,
    inv_bc2: T,
    mean: T,
    max_beta1: T,
    wd: T,
    shrink: T,
}

impl Kernel for AdaiUpdate<'_> {
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let s = self.step;
        let c = Consts {
            zero: T::of(0.0),
            one: T::of(1.0),
            minus_one: T::of(-1.0),
            lr: T::of(s.lr),
            minus_beta0: T::of(-s.beta0),
            inv_bc2: T::of(1.0 / s.bc2),
            mean: T::of(self.mean),
            max_beta1: T::of(1.0 - s.eps),
            wd: l2::<T>(s).unwrap_or(T::of(0.0)),
            shrink: T::of(s.decay.shrink_factor(s.lr).unwrap_or(1.0)),
        };
        let [m, v, prod] = state else { unreachable!("Adai keeps three state vectors") };
        match (s.decay, s.first) {
            (WeightDecay::L2(_), false) => kernel::<T, L2, false>(param, grad, m, v, prod, c),
            (WeightDecay::L2(_), true) => kernel::<T, L2, true>(param, grad, m, v, prod, c),
            (WeightDecay::None, false) => kernel::<T, NO_DECAY, false>(param, grad, m, v, prod, c),
            (WeightDecay::None, true) => kernel::<T, NO_DECAY, true>(param, grad, m, v, prod, c),
            (_, false) => kernel::<T, SHRINK, false>(param, grad, m, v, prod, c),
            (_, true) => kernel::<T, SHRINK, true>(param, grad, m, v, prod, c),
        }
    }
}

const NO_DECAY: u8 = 0;
const L2: u8 = 1;
const SHRINK: u8 = 2;

fn kernel<T: Real, const DECAY: u8, const FIRST: bool>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &[T],
    prod: &mut [T],
    c: Consts<T>,
) {
    let n = param.len();
    let (grad, m, v, prod) = (&grad[..n], &mut m[..n], &v[..n], &mut prod[..n]);
    for i in 0..n {
        let p = param[i];
        // The L2 term of pass 1, from the parameter before this step's (decoupled) shrink.
        let g = if DECAY == L2 { grad[i] + (p * c.wd + c.zero) } else { grad[i] };
        let p = if DECAY == SHRINK { p * c.shrink + c.zero } else { p };
        let v_hat = v[i] * c.inv_bc2 + c.zero;
        let beta1 = ((v_hat / c.mean) * c.minus_beta0 + c.one).maximum(c.zero).minimum(c.max_beta1);
        let pr = if FIRST { c.one * beta1 } else { prod[i] * beta1 };
        let mi = m[i] * beta1 + (beta1 * c.minus_one + c.one) * g;
        prod[i] = pr;
        m[i] = mi;
        param[i] = p - ((mi / (pr * c.minus_one + c.one)) * c.lr + c.zero);
    }
}

/// The sum of `x` as candle's CPU `sum_all` of a contiguous f32 tensor computes it, or `None`
/// where this module does not know candle's order (the caller then asks candle). On x86-64 with
/// AVX2 (`candle::cpu::vec_sum`): 32 running sums (four 8-lane vectors) over the first
/// `len - len % 32` elements, reduced as `(s[l] + s[8+l]) + (s[16+l] + s[24+l])`, then lanes
/// `l + 4`, then two horizontal adds, then the rest added one by one. Without AVX2: in order.
pub fn candle_sum_f32(x: &[f32]) -> Option<f32> {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::is_x86_feature_detected!("avx2") {
            return Some(x.iter().fold(0.0, |s, &v| s + v));
        }
        let np = x.len() & !31;
        let mut acc = [0.0f32; 32];
        for block in x[..np].chunks_exact(32) {
            for (a, &v) in acc.iter_mut().zip(block) {
                *a += v;
            }
        }
        let r: [f32; 8] = std::array::from_fn(|l| (acc[l] + acc[8 + l]) + (acc[16 + l] + acc[24 + l]));
        let t0: [f32; 4] = std::array::from_fn(|l| r[l] + r[l + 4]);
        let mut sum = (t0[0] + t0[1]) + (t0[2] + t0[3]);
        for &v in &x[np..] {
            sum += v;
        }
        Some(sum)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = x;
        None
    }
}

/// The sum of `x` as candle's CPU `sum_all` of a contiguous f64 tensor computes it: in order.
pub fn candle_sum_f64(x: &[f64]) -> f64 {
    x.iter().fold(0.0, |s, &v| s + v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::{Device, Tensor};

    #[test]
    fn sums_are_candles_to_the_bit() -> candle::Result<()> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 1e3 - 1.0
        };
        for len in [0, 1, 5, 31, 32, 33, 64, 100, 1000, 4099, 100_003] {
            let x64: Vec<f64> = (0..len).map(|_| next()).collect();
            let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
            let candle32 = Tensor::from_slice(&x32, len, &Device::Cpu)?.sum_all()?.to_scalar::<f32>()?;
            let candle64 = Tensor::from_slice(&x64, len, &Device::Cpu)?.sum_all()?.to_scalar::<f64>()?;
            if let Some(ours) = candle_sum_f32(&x32) {
                assert_eq!(ours.to_bits(), candle32.to_bits(), "f32, {len} elements");
            }
            assert_eq!(candle_sum_f64(&x64).to_bits(), candle64.to_bits(), "f64, {len} elements");
        }
        Ok(())
    }
}
