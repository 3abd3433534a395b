//! The fused CPU kernel of [`AdaShift`](crate::AdaShift), both variants and every `phi`: the
//! operations of `adashift.rs`'s tensor path, element by element, in the same order and
//! rounding.
//!
//! The host state is the rule's per-tensor or per-element moments followed by a ring of
//! `n = keep_num` gradient vectors, kept oldest first: `tf` `[v, z, b2p, window.0 .. window.n-1]`,
//! `pytorch-optimizer` `[m, v, window.0 .. window.n-1]`, where `v`, `z` and `b2p` have one element
//! for `phi = max / mean` (shape `()`, as the tensor path's) and the variable's length for
//! `none`. While the window fills, this step's gradient goes to `window.<filled>`; once it is
//! full, to `window.0` (the oldest, read first), and the vectors are rotated afterwards (the
//! pointers, not the data), so that the saved slots are the tensor path's `window.i`.
//!
//! `tf`'s first moment `sum_k window_k s_k` reads the whole window, in blocks, adding the terms
//! oldest first as the tensor path's chain of `add`s does; the per-tensor reductions
//! of `phi = max / mean` run before the element pass, in candle's CPU order: `max_all` folds
//! `if acc < x { x }` from element 0 (order-free for squares, which are never -0: only a NaN
//! at element 0 survives, so it runs in parallel), `mean_all` is `sum_all` (candle's summation
//! order, see [`super::adai::candle_sum_f32`]) times `1 / len`.

use rayon::prelude::*;

use super::{ema, Kernel, Real, CHUNK, PARALLEL_FROM};
use crate::adashift::{AdaShiftStep, AdaShiftVariant, ParamsAdaShift, Phi};

/// One step of one variable: the hyperparameters, the window's weights and the step's scalars.
pub(crate) struct AdaShiftKernel<'a> {
    pub params: &'a ParamsAdaShift,
    /// `tf`: the weights `s_k` of the window, oldest first (f64, as the rule keeps them).
    pub weights: &'a [f64],
    /// `pytorch-optimizer`: `w_{n-1}` and `w_0`.
    pub oldest_weight: f64,
    pub newest_weight: f64,
    pub step: AdaShiftStep,
}

/// Elements of a block of `tf`'s first moment (kept on the stack, summed a window vector at a
/// time).
const BLOCK: usize = 1024;

impl Kernel for AdaShiftKernel<'_> {
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        if param.is_empty() {
            return; // nothing to reduce or update (the tensor path's max_all would fail)
        }
        match self.params.variant {
            AdaShiftVariant::Tf => self.tf(param, grad, state),
            AdaShiftVariant::PytorchOptimizer => self.pytorch_optimizer(param, grad, state),
        }
    }

    /// Whole vectors: the per-tensor reductions run first, then [`par_chunks`] splits the
    /// element pass.
    fn chunked(&self) -> bool {
        false
    }
}

/// `phi(x²)` over the whole tensor `x` (`max` or `mean`), as candle's CPU `max_all` / `mean_all`
/// of `x.sqr()` computes it.
fn reduce_squares<T: Real>(phi: Phi, x: &[T]) -> T {
    let zero = T::of(0.0);
    match phi {
        Phi::Max => {
            let first = x[0] * x[0];
            #[allow(clippy::eq_op)]
            if first != first {
                return first; // a NaN at element 0 stays, as candle's fold keeps it
            }
            // Every square is +0 or more (or a NaN, which `acc < NaN` never takes): any order,
            // so 16 running maxima (which vectorise) per chunk.
            let fold = |c: &[T]| {
                let mut acc = [zero; 16];
                let blocks = c.chunks_exact(16);
                let rest = blocks.remainder().iter().fold(zero, |acc, &v| acc.maximum(v * v));
                for block in blocks {
                    for (a, &v) in acc.iter_mut().zip(block) {
                        *a = a.maximum(v * v);
                    }
                }
                acc.iter().fold(rest, |a, &b| a.maximum(b))
            };
            let rest = if x.len() >= PARALLEL_FROM {
                x.par_chunks(CHUNK).map(fold).reduce(|| zero, |a, b| a.maximum(b))
            } else {
                fold(x)
            };
            first.maximum(rest)
        }
        Phi::Mean => {
            let sum = candle_sum_of_squares(x);
            sum * T::of(1.0 / x.len() as f64) + zero
        }
        Phi::None => unreachable!("phi = none does not reduce"),
    }
}

/// `sum_all(x.sqr())` in candle's CPU order for this type (see [`super::adai::candle_sum_f32`]).
fn candle_sum_of_squares<T: Real>(x: &[T]) -> T {
    let zero = T::of(0.0);
    match T::candle_sum_lanes() {
        Some(1) => x.iter().fold(zero, |s, &v| s + v * v),
        Some(32) => {
            let np = x.len() & !31;
            let mut acc = [zero; 32];
            for block in x[..np].chunks_exact(32) {
                for (a, &v) in acc.iter_mut().zip(block) {
                    *a = *a + v * v;
                }
            }
            let r: [T; 8] = std::array::from_fn(|l| (acc[l] + acc[8 + l]) + (acc[16 + l] + acc[24 + l]));
            let t0: [T; 4] = std::array::from_fn(|l| r[l] + r[l + 4]);
            let mut sum = (t0[0] + t0[1]) + (t0[2] + t0[3]);
            for &v in &x[np..] {
                sum = sum + v * v;
            }
            sum
        }
        // An order this crate does not know (f32 off x86-64): candle sums a copy.
        _ => {
            let squares: Vec<f32> = x.iter().map(|&v| (v * v).to_f64() as f32).collect();
            let sum = candle::Tensor::from_vec(squares, x.len(), &candle::Device::Cpu)
                .and_then(|t| t.sum_all()?.to_scalar::<f32>());
            T::of(f64::from(sum.unwrap_or(f32::NAN)))
        }
    }
}

/// Runs `f` over chunks of the parameter, its gradient and every vector of `vecs` (each as
/// long as the parameter), in parallel for large parameters.
fn par_chunks<T: Real, F>(param: &mut [T], grad: &[T], vecs: &mut [&mut [T]], f: F)
where
    F: Fn(&mut [T], &[T], &mut [&mut [T]]) + Sync,
{
    let n = param.len();
    if n < PARALLEL_FROM {
        f(param, grad, vecs);
        return;
    }
    let mut chunks: Vec<Vec<&mut [T]>> = (0..n.div_ceil(CHUNK)).map(|_| Vec::with_capacity(vecs.len())).collect();
    for v in vecs.iter_mut() {
        for (i, c) in v.chunks_mut(CHUNK).enumerate() {
            chunks[i].push(c);
        }
    }
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(chunks.into_par_iter())
        .for_each(|((p, g), mut s)| f(p, g, &mut s));
}

/// `tf`'s constants in the parameter's type (TF's casts to the variable's dtype).
#[derive(Clone, Copy)]
struct TfConsts<T> {
    zero: T,
    one: T,
    minus_one: T,
    beta2: T,
    one_minus_beta2: T,
    floor: T,
    eps: T,
    lr: T,
}

/// `tf`'s per-element (or per-tensor) scalars after `v` is updated: `z`, `b2p` and the
/// denominator, as lines 395-400 compute them.
#[inline(always)]
fn tf_tail<T: Real>(v: T, z: T, b2p: T, c: &TfConsts<T>) -> (T, T, T) {
    let active = if v > c.zero { c.one } else { c.zero };
    let z = active.maximum(z);
    let b2p = ((b2p * c.beta2 + c.zero) * z) + (z * c.minus_one + c.one);
    let b2_fix = (b2p * c.minus_one + c.one).maximum(c.floor);
    let denom = (v / b2_fix).sqrt() * c.one + c.eps;
    (z, b2p, denom)
}

/// `m = sum_k (terms_k s_k + 0)`, added oldest first: `tf`'s first moment over a block, 16
/// elements at a time reading every term (so that the window's vectors stream side by side),
/// eight f32 lanes at a time where the CPU has AVX (the same IEEE operations in wider
/// registers: the same bits).
fn first_moment<T: Real>(terms: &[&[T]], weights: &[T], zero: T, m: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX.
        return unsafe { first_moment_avx(terms, weights, zero, m) };
    }
    first_moment_in(terms, weights, zero, m)
}

#[inline(always)]
fn first_moment_in<T: Real>(terms: &[&[T]], weights: &[T], zero: T, m: &mut [T]) {
    const GROUP: usize = 16;
    let len = m.len();
    let groups = len - len % GROUP;
    for i in (0..groups).step_by(GROUP) {
        let first = &terms[0][i..i + GROUP];
        let mut acc: [T; GROUP] = std::array::from_fn(|l| first[l] * weights[0] + zero);
        for (term, &s) in terms[1..].iter().zip(&weights[1..]) {
            let x = &term[i..i + GROUP];
            for l in 0..GROUP {
                acc[l] = acc[l] + (x[l] * s + zero);
            }
        }
        m[i..i + GROUP].copy_from_slice(&acc);
    }
    for (i, m) in m.iter_mut().enumerate().skip(groups) {
        let mut acc = terms[0][i] * weights[0] + zero;
        for (term, &s) in terms[1..].iter().zip(&weights[1..]) {
            acc = acc + (term[i] * s + zero);
        }
        *m = acc;
    }
}

/// # Safety
/// Only on a CPU with AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn first_moment_avx<T: Real>(terms: &[&[T]], weights: &[T], zero: T, m: &mut [T]) {
    first_moment_in(terms, weights, zero, m)
}

/// [`tf_elements_in`], with AVX where the CPU has it.
#[allow(clippy::too_many_arguments)]
fn tf_elements<T: Real>(
    full: bool,
    param: &mut [T],
    v: &mut [T],
    z: &mut [T],
    b2p: &mut [T],
    old: &[T],
    m: &[T],
    c: &TfConsts<T>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX.
        return unsafe { tf_elements_avx(full, param, v, z, b2p, old, m, c) };
    }
    match full {
        true => tf_elements_in::<T, true>(param, v, z, b2p, old, m, c),
        false => tf_elements_in::<T, false>(param, v, z, b2p, old, m, c),
    }
}

/// # Safety
/// Only on a CPU with AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[allow(clippy::too_many_arguments)]
unsafe fn tf_elements_avx<T: Real>(
    full: bool,
    param: &mut [T],
    v: &mut [T],
    z: &mut [T],
    b2p: &mut [T],
    old: &[T],
    m: &[T],
    c: &TfConsts<T>,
) {
    match full {
        true => tf_elements_in::<T, true>(param, v, z, b2p, old, m, c),
        false => tf_elements_in::<T, false>(param, v, z, b2p, old, m, c),
    }
}

/// `tf`'s element-wise tail for `phi = none`: `v` from the oldest gradient (`FULL`) or decayed
/// only, then `z`, `b2p` and the step. Called through a function boundary, so that its slices
/// are known not to alias (which lets it vectorise); so are the loops of `pytorch-optimizer`.
#[inline(always)]
fn tf_elements_in<T: Real, const FULL: bool>(
    param: &mut [T],
    v: &mut [T],
    z: &mut [T],
    b2p: &mut [T],
    old: &[T],
    m: &[T],
    c: &TfConsts<T>,
) {
    let elements = param.iter_mut().zip(v.iter_mut()).zip(z.iter_mut()).zip(b2p.iter_mut()).zip(old).zip(m);
    for (((((p, v), z), b2p), &old), &m) in elements {
        let vj = if FULL { ema(*v, old * old, c.beta2, c.one_minus_beta2) } else { *v * c.beta2 + c.zero };
        let (zj, bj, denom) = tf_tail(vj, *z, *b2p, c);
        (*v, *z, *b2p) = (vj, zj, bj);
        *p = *p - (((m * zj) / denom) * c.lr + c.zero);
    }
}

impl AdaShiftKernel<'_> {
    /// `variant = "tf"`, as `AdaShiftRule::update_tf` computes it; `state` is
    /// `[v, z, b2p, window.0 .. window.n-1]`.
    fn tf<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let p = self.params;
        let n = p.keep_num;
        let filled = self.step.filled;
        let full = filled == n;
        let c = TfConsts {
            zero: T::of(0.0),
            one: T::of(1.0),
            minus_one: T::of(-1.0),
            beta2: T::of(p.beta2),
            one_minus_beta2: T::pick(1.0f32 - p.beta2 as f32, 1.0 - p.beta2),
            floor: T::of(1e-8),
            eps: T::of(p.eps),
            lr: T::of(p.lr),
        };
        // The terms of m after the shift, oldest first: the window's old gradients (all but
        // the oldest when it is full), then this step's.
        let olds = if full { 1..n } else { 0..filled };
        let weights: Vec<T> = self.weights[n - olds.len() - 1..].iter().map(|&s| T::of(s)).collect();
        let write_at = if full { 0 } else { filled };
        // m of the elements `from .. from + m.len()` of a chunk.
        let first_moment = |grad: &[T], window: &[&mut [T]], from: usize, m: &mut [T]| {
            let to = from + m.len();
            let terms: Vec<&[T]> =
                olds.clone().map(|k| &window[k][from..to]).chain(std::iter::once(&grad[from..to])).collect();
            first_moment(&terms, &weights, c.zero, m);
        };
        match p.phi {
            Phi::None => par_chunks(param, grad, state, |param, grad, vecs| {
                let (moments, window) = vecs.split_at_mut(3);
                let [v, z, b2p] = moments else { unreachable!("tf keeps v, z and b2p") };
                let mut m = [c.zero; BLOCK];
                for from in (0..param.len()).step_by(BLOCK) {
                    let len = BLOCK.min(param.len() - from);
                    let m = &mut m[..len];
                    first_moment(grad, window, from, m);
                    let to = from + len;
                    let (p, v, z, b2p) = (&mut param[from..to], &mut v[from..to], &mut z[from..to], &mut b2p[from..to]);
                    let old = &window[0][from..to];
                    tf_elements(full, p, v, z, b2p, old, m, &c);
                    window[write_at][from..to].copy_from_slice(&grad[from..to]);
                }
            }),
            Phi::Max | Phi::Mean => {
                let (moments, window) = state.split_at_mut(3);
                let (v, z, b2p) = (moments[0][0], moments[1][0], moments[2][0]);
                let v = if full {
                    ema(v, reduce_squares(p.phi, window[0]), c.beta2, c.one_minus_beta2)
                } else {
                    v * c.beta2 + c.zero
                };
                let (z, b2p, denom) = tf_tail(v, z, b2p, &c);
                (moments[0][0], moments[1][0], moments[2][0]) = (v, z, b2p);
                par_chunks(param, grad, window, |param, grad, window| {
                    let mut m = [c.zero; BLOCK];
                    for from in (0..param.len()).step_by(BLOCK) {
                        let len = BLOCK.min(param.len() - from);
                        let m = &mut m[..len];
                        first_moment(grad, window, from, m);
                        for (p, &m) in param[from..from + len].iter_mut().zip(m.iter()) {
                            *p = *p - (((m * z) / denom) * c.lr + c.zero);
                        }
                        window[write_at][from..from + len].copy_from_slice(&grad[from..from + len]);
                    }
                });
            }
        }
    }

    /// `variant = "pytorch-optimizer"`, as `AdaShiftRule::update_pytorch_optimizer` computes
    /// it; `state` is `[v, m, window.0 .. window.n-1]`. Only the oldest gradient is read.
    fn pytorch_optimizer<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let p = self.params;
        let filled = self.step.filled;
        let full = filled == p.keep_num;
        let c = PytorchConsts {
            zero: T::of(0.0),
            one: T::of(1.0),
            beta1: T::of(p.beta1),
            beta2: T::of(p.beta2),
            one_minus_beta2: T::of(1.0 - p.beta2),
            oldest_weight: T::of(self.oldest_weight),
            newest_weight: T::of(self.newest_weight),
            inv_bc: T::of(1.0 / self.step.bc),
            eps: T::of(p.eps),
            lr: T::of(p.lr),
        };
        let PytorchConsts { zero, one, beta1, beta2, one_minus_beta2, newest_weight, inv_bc, eps, .. } = c;
        if !full {
            // t <= n: only m accumulates, and the window fills.
            let vecs = &mut state[1..];
            return par_chunks(param, grad, vecs, |_, grad, vecs| {
                let (m, window) = vecs.split_at_mut(1);
                for (m, &g) in m[0].iter_mut().zip(grad) {
                    *m = (*m * beta1 + zero) + (g * newest_weight + zero);
                }
                window[filled].copy_from_slice(grad);
            });
        }
        match p.phi {
            Phi::None => par_chunks(param, grad, state, |param, grad, vecs| {
                let [v, m, old, ..] = vecs else { unreachable!("pytorch-optimizer keeps v, m and the window") };
                pytorch_optimizer_elements(param, grad, v, m, old, &c);
            }),
            Phi::Max | Phi::Mean => {
                let (v, vecs) = state.split_at_mut(1);
                let vi = ema(v[0][0], reduce_squares(p.phi, vecs[1]), beta2, one_minus_beta2);
                v[0][0] = vi;
                let denom = (vi * inv_bc + zero).sqrt() * one + eps;
                par_chunks(param, grad, vecs, |param, grad, vecs| {
                    let [m, old, ..] = vecs else { unreachable!("pytorch-optimizer keeps m and the window") };
                    pytorch_optimizer_per_tensor(param, grad, m, old, denom, &c);
                });
            }
        }
    }
}

/// `pytorch-optimizer`'s constants in the parameter's type.
#[derive(Clone, Copy)]
struct PytorchConsts<T> {
    zero: T,
    one: T,
    beta1: T,
    beta2: T,
    one_minus_beta2: T,
    oldest_weight: T,
    newest_weight: T,
    inv_bc: T,
    eps: T,
    lr: T,
}

/// `m <- beta1 (m - w_{n-1} g_old) + w_0 g`.
#[inline(always)]
fn shifted_moment<T: Real>(m: T, old: T, g: T, c: &PytorchConsts<T>) -> T {
    let shifted = m - (old * c.oldest_weight + c.zero);
    (shifted * c.beta1 + c.zero) + (g * c.newest_weight + c.zero)
}

/// `pytorch-optimizer` with a full window, `phi = none`; the oldest gradient's vector takes
/// this step's.
#[inline(never)]
fn pytorch_optimizer_elements<T: Real>(
    param: &mut [T],
    grad: &[T],
    v: &mut [T],
    m: &mut [T],
    old: &mut [T],
    c: &PytorchConsts<T>,
) {
    let elements = param.iter_mut().zip(grad).zip(v.iter_mut()).zip(m.iter_mut()).zip(old.iter_mut());
    for ((((p, &g), v), m), old) in elements {
        let o = *old;
        let mi = shifted_moment(*m, o, g, c);
        let vi = ema(*v, o * o, c.beta2, c.one_minus_beta2);
        let denom = (vi * c.inv_bc + c.zero).sqrt() * c.one + c.eps;
        *p = *p - ((mi / denom) * c.lr + c.zero);
        (*m, *v, *old) = (mi, vi, g);
    }
}

/// The same for `phi = max / mean`, with the tensor's denominator.
#[inline(never)]
fn pytorch_optimizer_per_tensor<T: Real>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    old: &mut [T],
    denom: T,
    c: &PytorchConsts<T>,
) {
    for (((p, &g), m), old) in param.iter_mut().zip(grad).zip(m.iter_mut()).zip(old.iter_mut()) {
        let mi = shifted_moment(*m, *old, g, c);
        *p = *p - ((mi / denom) * c.lr + c.zero);
        (*m, *old) = (mi, g);
    }
}
