//! The fused CPU kernel of [`Adam`](crate::Adam) (with AdamW's decoupled decay and AMSGrad's
//! maximum): the operations of `adam.rs`'s tensor path, element by element. The weight-decay
//! style and the maximum are compile-time parameters, so that each inner loop is branch-free
//! and vectorises.

use super::{ema, Kernel, Real};
use crate::parts::WeightDecay;

/// The per-step scalars of an Adam update (the rule's `Scalars`), computed once for all
/// elements of a variable.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub decay: WeightDecay,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub bc1: f64,
    pub bc2: f64,
}

/// The step's constants in the parameters' type, as candle's `affine` rounds them.
#[derive(Clone, Copy)]
struct Consts<T> {
    zero: T,
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    inv_sqrt_bc2: T,
    eps: T,
    step: T,
    /// L2: the decay coefficient; decoupled: the shrink factor.
    decay: T,
}

const NO_DECAY: u8 = 0;
const L2: u8 = 1;
const SHRINK: u8 = 2;

impl Kernel for AdamStep {
    /// Updates `param` in place; `state` is `[m, v]` or `[m, v, vmax]`.
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let (mode, decay) = match (self.decay, self.decay.shrink_factor(self.lr)) {
            (_, Some(factor)) => (SHRINK, factor),
            (WeightDecay::L2(wd), None) => (L2, wd),
            _ => (NO_DECAY, 0.0),
        };
        let c = Consts {
            zero: T::of(0.0),
            beta1: T::of(self.beta1),
            one_minus_beta1: T::of(1.0 - self.beta1),
            beta2: T::of(self.beta2),
            one_minus_beta2: T::of(1.0 - self.beta2),
            inv_sqrt_bc2: T::of(1.0 / self.bc2.sqrt()),
            eps: T::of(self.eps),
            step: T::of(self.lr / self.bc1),
            decay: T::of(decay),
        };
        let (m, v, vmax) = match state {
            [m, v] => (m, v, None),
            [m, v, vmax] => (m, v, Some(&mut **vmax)),
            _ => unreachable!("Adam keeps two or three state vectors"),
        };
        match mode {
            NO_DECAY => kernel::<T, NO_DECAY>(param, grad, m, v, vmax, c),
            L2 => kernel::<T, L2>(param, grad, m, v, vmax, c),
            _ => kernel::<T, SHRINK>(param, grad, m, v, vmax, c),
        }
    }
}

#[inline(always)]
/// Decays and updates the moments; returns the (decayed) parameter.
fn moments<T: Real, const MODE: u8>(p: T, g: T, m: &mut T, v: &mut T, c: &Consts<T>) -> T {
    let (p, g) = match MODE {
        L2 => (p, g + (p * c.decay + c.zero)),
        SHRINK => (p * c.decay + c.zero, g),
        _ => (p, g),
    };
    *m = ema(*m, g, c.beta1, c.one_minus_beta1);
    *v = ema(*v, g * g, c.beta2, c.one_minus_beta2);
    p
}

#[inline(always)]
fn update<T: Real>(p: T, m: T, v: T, c: &Consts<T>) -> T {
    let denom = v.sqrt() * c.inv_sqrt_bc2 + c.eps;
    p - ((m / denom) * c.step + c.zero)
}

fn kernel<T: Real, const MODE: u8>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    vmax: Option<&mut [T]>,
    c: Consts<T>,
) {
    match vmax {
        None => {
            for (((p, &g), m), v) in param.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
                let pd = moments::<T, MODE>(*p, g, m, v, &c);
                *p = update(pd, *m, *v, &c);
            }
        }
        Some(vmax) => {
            for ((((p, &g), m), v), vmax) in
                param.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()).zip(vmax.iter_mut())
            {
                let pd = moments::<T, MODE>(*p, g, m, v, &c);
                *vmax = vmax.maximum(*v);
                *p = update(pd, *m, *vmax, &c);
            }
        }
    }
}

/// The per-step scalars of the AdaShift authors' TensorFlow AMSGrad (`amsgrad` with
/// `variant = "tf"`), whose kernel this is: every constant in the parameter's precision, as TF
/// casts its hyperparameters to the variable's dtype, and the bias corrections from the
/// beta-power running products of that precision (`bc1 = 1 - beta1_power`).
#[derive(Clone, Copy, Debug)]
pub struct TfAmsGradStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// `beta1^t` and `beta2^t` as running products in f32 and in f64.
    pub beta1_power: (f32, f64),
    pub beta2_power: (f32, f64),
}

impl TfAmsGradStep {
    /// The constants in `T`, computed in `T` as TF does (`1 - beta1_t` is a `T` subtraction).
    fn consts<T: Real>(&self) -> [T; 8] {
        let one = T::of(1.0);
        let (beta1, beta2) = (T::of(self.beta1), T::of(self.beta2));
        let bc1 = one - T::pick(self.beta1_power.0, self.beta1_power.1);
        let bc2 = one - T::pick(self.beta2_power.0, self.beta2_power.1);
        [beta1, one - beta1, beta2, one - beta2, bc1, bc2, T::of(self.lr), T::of(self.eps)]
    }

    /// The same constants as f64 values that round exactly to them in `dtype`, for candle's
    /// `affine` and scalar tensors on the tensor path.
    pub fn consts_for(&self, dtype: candle::DType) -> [f64; 8] {
        match dtype {
            candle::DType::F32 => self.consts::<f32>().map(f64::from),
            _ => self.consts::<f64>(),
        }
    }
}

impl Kernel for TfAmsGradStep {
    /// Updates `param` in place; `state` is `[m, v]`, `v` holding the maximum (fed back).
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let [beta1, one_minus_beta1, beta2, one_minus_beta2, bc1, bc2, lr, eps] = self.consts::<T>();
        let (zero, one) = (T::of(0.0), T::of(1.0));
        let [m, v] = state else { unreachable!("TF AMSGrad keeps two state vectors") };
        for (((p, &g), m), v) in param.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = ema(*m, g, beta1, one_minus_beta1);
            let candidate = ema(*v, g * g, beta2, one_minus_beta2);
            *v = candidate.maximum(*v);
            let numerator = (*m / bc1) * lr + zero;
            let denominator = (*v / bc2).sqrt() * one + eps;
            *p = *p - numerator / denominator;
        }
    }
}
