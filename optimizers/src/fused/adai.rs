//! The fused CPU kernels of [`Adai`](crate::Adai) and [`AdaiW`](crate::AdaiW): the two passes
//! of `adai.rs`'s tensor path, element by element.
//!
//! Pass 1 ([`AdaiMoments`], over every variable with a gradient) computes the new second
//! moment and sums it as the tensor path does ([`blocked_sum`](crate::parts::moments::blocked_sum):
//! blocks of 2^16 elements, each in exactly candle's CPU summation order, [`candle_sum_f32`],
//! [`candle_sum_f64`], then the blocks in f64), so that the global mean, and with it every
//! parameter, is bit-identical to the tensor path's. The blocks are summed in parallel, and the
//! variables too. Pass 1 only reads: pass 2 ([`AdaiUpdate`]) computes the same second moment
//! again (the same operations, so the same bits) and writes it with the rest, which saves a
//! write and a read of `v`. candle's f32 sum keeps 32 running sums, one per element of each
//! block of 32; one thread keeps all 32 of a block (two threads with 16 each would both read
//! every cache line). Both loops run in the widest vectors
//! of the CPU (AVX-512 or AVX2, chosen at run time; the same operations, so the same bits).

use rayon::prelude::*;

use super::{ema, Kernel, Real};
use crate::parts::moments::SUM_BLOCK;
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

/// Pass 1: `g <- g + wd p` (L2), `v' = beta2 v + (1 - beta2) g²`, and the sum of `v'` (in
/// f64, from candle's order in the parameter's type); `state` is `[m, v, beta1_prod]`, read only.
pub(crate) struct AdaiMoments<'a> {
    pub step: &'a AdaiStep,
    pub sum: std::sync::Mutex<Option<f64>>,
}

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
        let c = MomentConsts {
            zero: T::of(0.0),
            beta2: T::of(self.step.beta2),
            one_minus_beta2: T::of(1.0 - self.step.beta2),
            wd: l2::<T>(self.step).unwrap_or(T::of(0.0)),
        };
        // The blocks of `blocked_sum`, in parallel, each in candle's order; then in f64, in order.
        let (param, v): (&[T], &[T]) = (param, v);
        let (n, l2) = (v.len(), l2::<T>(self.step).is_some());
        let block_sum = |b: usize| {
            let r = b * SUM_BLOCK..n.min((b + 1) * SUM_BLOCK);
            let x = Moment { param: &param[r.clone()], grad: &grad[r.clone()], v: &v[r], c };
            candle_order_sum(&x, l2)
        };
        let blocks: Vec<f64> = if n <= SUM_BLOCK {
            vec![block_sum(0)]
        } else {
            (0..n.div_ceil(SUM_BLOCK)).into_par_iter().map(block_sum).collect()
        };
        let sum = if blocks.len() == 1 { blocks[0] } else { blocks.iter().fold(0.0, |s, &b| s + b) };
        *self.sum.lock().unwrap_or_else(|e| e.into_inner()) = Some(sum);
    }

    fn chunked(&self) -> bool {
        false
    }
}

/// The sum of the new second moments of `x` in candle's `sum_all` order for `x`'s type, to f64.
fn candle_order_sum<T: Real>(x: &Moment<'_, T>, l2: bool) -> f64 {
    let zero = x.c.zero;
    match (T::candle_sum_lanes(), l2) {
        (Some(1), false) => (0..x.v.len()).fold(zero, |s, i| s + x.at::<false>(i)).to_f64(),
        (Some(1), true) => (0..x.v.len()).fold(zero, |s, i| s + x.at::<true>(i)).to_f64(),
        (Some(32), false) => lane_sum::<T, false>(x).to_f64(),
        (Some(32), true) => lane_sum::<T, true>(x).to_f64(),
        // An order this crate does not know (f32 off x86-64): candle sums a copy.
        _ => {
            let values: Vec<f64> = (0..x.v.len()).map(|i| x.at::<true>(i).to_f64()).collect();
            let sum = candle::Tensor::from_vec(values, x.v.len(), &candle::Device::Cpu)
                .and_then(|t| t.to_dtype(candle::DType::F32)?.sum_all()?.to_dtype(candle::DType::F64)?.to_scalar());
            sum.unwrap_or(f64::NAN)
        }
    }
}

#[derive(Clone, Copy)]
struct MomentConsts<T> {
    zero: T,
    beta2: T,
    one_minus_beta2: T,
    wd: T,
}

/// Pass 1's inputs: the new second moment of element `i` is [`Moment::at`].
struct Moment<'a, T> {
    param: &'a [T],
    grad: &'a [T],
    v: &'a [T],
    c: MomentConsts<T>,
}

impl<T: Real> Moment<'_, T> {
    #[inline(always)]
    fn at<const L2: bool>(&self, i: usize) -> T {
        let c = &self.c;
        let g = if L2 { self.grad[i] + (self.param[i] * c.wd + c.zero) } else { self.grad[i] };
        ema(self.v[i], g * g, c.beta2, c.one_minus_beta2)
    }
}

/// The sum of pass 1's second moments in the order of candle's AVX2 `vec_sum` (see
/// [`candle_sum_f32`]): 32 running sums over the blocks of 32, then candle's reduction and the
/// rest in order. On one thread: the 32 sums cover every 128 bytes, so that two threads with
/// 16 sums each would each read every cache line (the hardware fetches lines in pairs); a probe
/// of the two patterns on this project's 2-core machine (11 M f32, loaded) took 93 ms with two
/// threads and 43 ms with one. The blocks of one variable, and several variables, run in
/// parallel instead.
fn lane_sum<T: Real, const L2: bool>(x: &Moment<'_, T>) -> T {
    let n = x.v.len();
    let np = n & !31;
    let acc = match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: this CPU has AVX-512F.
        Isa::Avx512 => unsafe { lanes_avx512::<T, L2>(x, np) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: this CPU has AVX2.
        Isa::Avx2 => unsafe { lanes_avx2::<T, L2>(x, np) },
        _ => lanes::<T, L2>(x, np),
    };
    let r: [T; 8] = std::array::from_fn(|l| (acc[l] + acc[8 + l]) + (acc[16 + l] + acc[24 + l]));
    let t0: [T; 4] = std::array::from_fn(|l| r[l] + r[l + 4]);
    let mut sum = (t0[0] + t0[1]) + (t0[2] + t0[3]);
    for i in np..n {
        sum = sum + x.at::<L2>(i);
    }
    sum
}

/// candle's 32 running sums over the first `np` elements (a multiple of 32): each a chain of
/// adds in element order, the 32 chains side by side (two AVX-512 vectors, four AVX2 ones).
#[inline(always)]
fn lanes<T: Real, const L2: bool>(x: &Moment<'_, T>, np: usize) -> [T; 32] {
    let c = &x.c;
    let mut acc = [c.zero; 32];
    fn blocks<T>(s: &[T], np: usize) -> impl Iterator<Item = Option<&[T; 32]>> {
        s[..np].chunks_exact(32).map(|b| b.try_into().ok())
    }
    for ((p, g), v) in blocks(x.param, np).zip(blocks(x.grad, np)).zip(blocks(x.v, np)) {
        let (Some(p), Some(g), Some(v)) = (p, g, v) else { unreachable!("blocks of 32") };
        for l in 0..32 {
            let g = if L2 { g[l] + (p[l] * c.wd + c.zero) } else { g[l] };
            acc[l] = acc[l] + ema(v[l], g * g, c.beta2, c.one_minus_beta2);
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn lanes_avx512<T: Real, const L2: bool>(x: &Moment<'_, T>, np: usize) -> [T; 32] {
    lanes::<T, L2>(x, np)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lanes_avx2<T: Real, const L2: bool>(x: &Moment<'_, T>, np: usize) -> [T; 32] {
    lanes::<T, L2>(x, np)
}

/// The widest vector instructions of this CPU, for the loops of this module: the same IEEE
/// operations in any width (Rust never contracts a product and a sum into a fused
/// multiply-add, nor reorders a sum), so every width gives the same bits. Without them the
/// build's baseline (SSE2) runs 4 lanes of f32 and divides 4 at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
    Baseline,
}

impl Isa {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }
}

#[derive(Clone, Copy)]
struct Consts<T> {
    zero: T,
    one: T,
    minus_one: T,
    beta2: T,
    one_minus_beta2: T,
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
            beta2: T::of(s.beta2),
            one_minus_beta2: T::of(1.0 - s.beta2),
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
    v: &mut [T],
    prod: &mut [T],
    c: Consts<T>,
) {
    match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: this CPU has AVX-512F.
        Isa::Avx512 => unsafe { update_avx512::<T, DECAY, FIRST>(param, grad, m, v, prod, c) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: this CPU has AVX2.
        Isa::Avx2 => unsafe { update_avx2::<T, DECAY, FIRST>(param, grad, m, v, prod, c) },
        _ => update::<T, DECAY, FIRST>(param, grad, m, v, prod, c),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn update_avx512<T: Real, const DECAY: u8, const FIRST: bool>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    prod: &mut [T],
    c: Consts<T>,
) {
    update::<T, DECAY, FIRST>(param, grad, m, v, prod, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn update_avx2<T: Real, const DECAY: u8, const FIRST: bool>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    prod: &mut [T],
    c: Consts<T>,
) {
    update::<T, DECAY, FIRST>(param, grad, m, v, prod, c)
}

#[inline(always)]
fn update<T: Real, const DECAY: u8, const FIRST: bool>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    prod: &mut [T],
    c: Consts<T>,
) {
    let n = param.len();
    let (grad, m, v, prod) = (&grad[..n], &mut m[..n], &mut v[..n], &mut prod[..n]);
    for i in 0..n {
        let p = param[i];
        // The L2 term of pass 1, from the parameter before this step's (decoupled) shrink.
        let g = if DECAY == L2 { grad[i] + (p * c.wd + c.zero) } else { grad[i] };
        let p = if DECAY == SHRINK { p * c.shrink + c.zero } else { p };
        // Pass 1's second moment again.
        let vi = ema(v[i], g * g, c.beta2, c.one_minus_beta2);
        v[i] = vi;
        let v_hat = vi * c.inv_bc2 + c.zero;
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
    if candle_sum_f32_lanes()? == 1 {
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

/// The running sums of candle's f32 `sum_all` on this machine: 32 on x86-64 with AVX2, 1 on
/// x86-64 without, `None` (unknown here) elsewhere.
pub fn candle_sum_f32_lanes() -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        Some(if std::is_x86_feature_detected!("avx2") { 32 } else { 1 })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
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
            // Pass 1's sum (in the widest vectors of this CPU) against the tensor path's.
            for l2 in [false, true] {
                let step = AdaiStep {
                    lr: 0.1,
                    beta0: 0.1,
                    beta2: 0.99,
                    eps: 1e-3,
                    decay: if l2 { WeightDecay::L2(0.01) } else { WeightDecay::None },
                    bc2: 0.5,
                    first: false,
                };
                let g: Vec<f32> = x32.iter().rev().map(|v| v * 0.01).collect();
                let mut p = x32.clone();
                let v: Vec<f32> = x32.iter().map(|v| v.abs()).collect();
                let expected = {
                    let t = |x: &[f32]| Tensor::from_slice(x, len, &Device::Cpu);
                    let (p, v) = (t(&p)?, t(&v)?);
                    let g = if l2 { (t(&g)? + p.affine(0.01, 0.0)?)? } else { t(&g)? };
                    let v = crate::parts::moments::ema_sq(&v, &g, 0.99)?;
                    crate::parts::moments::blocked_sum(&v)?.to_scalar::<f64>()?
                };
                let moments = AdaiMoments { step: &step, sum: Default::default() };
                let (mut m, mut v, mut prod) = (vec![0.0; len], v, vec![0.0; len]);
                moments.run(&mut p, &g, &mut [&mut m, &mut v, &mut prod]);
                let ours = moments.sum.into_inner().unwrap().unwrap();
                assert_eq!(ours.to_bits(), expected.to_bits(), "pass 1, l2 {l2}, {len} elements");
            }
        }
        Ok(())
    }
}
