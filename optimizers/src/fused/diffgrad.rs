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

impl DiffGradStep {
    fn consts<T: Real>(&self) -> Consts<T> {
        Consts {
            zero: T::of(0.0),
            one: T::of(1.0),
            beta1: T::of(self.beta1),
            one_minus_beta1: T::of(1.0 - self.beta1),
            beta2: T::of(self.beta2),
            one_minus_beta2: T::of(1.0 - self.beta2),
            eps: T::of(self.eps),
            wd: T::of(self.weight_decay),
            step_size: T::of(self.step_size),
        }
    }
}

impl Kernel for DiffGradStep {
    /// Updates `param` in place; `state` is `[m, v, previous_grad]`.
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]) {
        let [m, v, previous] = state else { unreachable!("diffGrad keeps three state vectors") };
        let l2 = self.weight_decay != 0.0;
        #[cfg(target_arch = "x86_64")]
        if super::exp::path() == super::exp::ExpPath::Avx512 {
            if let (Some(param), Some(grad), Some(m), Some(v), Some(previous)) =
                (T::as_f32_mut(param), T::as_f32(grad), T::as_f32_mut(m), T::as_f32_mut(v), T::as_f32_mut(previous))
            {
                let n = param.len();
                let (grad, m, v, previous) = (&grad[..n], &mut m[..n], &mut v[..n], &mut previous[..n]);
                let vector = n - n % 16;
                let c = self.consts::<f32>();
                // SAFETY: the exp path is AVX-512 only where the CPU has AVX-512F; the slices
                // are as long as the parameter.
                unsafe {
                    if l2 {
                        avx512::kernel::<true>(&mut param[..vector], grad, m, v, previous, c)
                    } else {
                        avx512::kernel::<false>(&mut param[..vector], grad, m, v, previous, c)
                    }
                }
                let (p, g, m, v, prev) = (
                    &mut param[vector..],
                    &grad[vector..],
                    &mut m[vector..],
                    &mut v[vector..],
                    &mut previous[vector..],
                );
                return if l2 {
                    kernel::<f32, true>(p, g, m, v, prev, c)
                } else {
                    kernel::<f32, false>(p, g, m, v, prev, c)
                };
            }
        }
        #[cfg(target_arch = "x86_64")]
        if super::exp::path() == super::exp::ExpPath::Avx2Fma {
            if let (Some(param), Some(grad), Some(m), Some(v), Some(previous)) =
                (T::as_f32_mut(param), T::as_f32(grad), T::as_f32_mut(m), T::as_f32_mut(v), T::as_f32_mut(previous))
            {
                let n = param.len();
                let (grad, m, v, previous) = (&grad[..n], &mut m[..n], &mut v[..n], &mut previous[..n]);
                let vector = n - n % 8;
                let c = self.consts::<f32>();
                // SAFETY: the exp path is AVX2+FMA only where the CPU has both; the slices are
                // as long as the parameter.
                unsafe {
                    if l2 {
                        avx2::kernel::<true>(&mut param[..vector], grad, m, v, previous, c)
                    } else {
                        avx2::kernel::<false>(&mut param[..vector], grad, m, v, previous, c)
                    }
                }
                let (p, g, m, v, prev) = (
                    &mut param[vector..],
                    &grad[vector..],
                    &mut m[vector..],
                    &mut v[vector..],
                    &mut previous[vector..],
                );
                return if l2 {
                    kernel::<f32, true>(p, g, m, v, prev, c)
                } else {
                    kernel::<f32, false>(p, g, m, v, prev, c)
                };
            }
        }
        let c = self.consts::<T>();
        if l2 {
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

/// The f32 kernel with AVX-512F: the same operations on 16 elements at a time in registers,
/// one pass (the exp in the middle, `exp::x86::exp16_avx512`), so that the arithmetic overlaps
/// the memory traffic.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::Consts;
    use crate::fused::exp::x86::exp16_avx512;

    /// `ema` of `fused/mod.rs`: `(s * beta + 0) + (x * (1 - beta) + 0)`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn ema(s: __m512, x: __m512, beta: __m512, one_minus_beta: __m512, zero: __m512) -> __m512 {
        _mm512_add_ps(
            _mm512_add_ps(_mm512_mul_ps(s, beta), zero),
            _mm512_add_ps(_mm512_mul_ps(x, one_minus_beta), zero),
        )
    }

    /// # Safety
    /// The CPU must support AVX-512F, `param.len()` must be a multiple of 16 and the other
    /// slices at least as long.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn kernel<const L2: bool>(
        param: &mut [f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        previous: &mut [f32],
        c: Consts<f32>,
    ) {
        let n = param.len();
        assert!(n.is_multiple_of(16) && grad.len() >= n && m.len() >= n && v.len() >= n && previous.len() >= n);
        let set = _mm512_set1_ps;
        let (zero, one, eps, wd, step_size) = (set(c.zero), set(c.one), set(c.eps), set(c.wd), set(c.step_size));
        let (beta1, one_minus_beta1) = (set(c.beta1), set(c.one_minus_beta1));
        let (beta2, one_minus_beta2) = (set(c.beta2), set(c.one_minus_beta2));
        let sign = _mm512_set1_epi32(i32::MIN);
        for i in (0..n).step_by(16) {
            // SAFETY: i + 16 <= n, and every slice holds n elements.
            unsafe {
                let (pp, gp) = (param.as_mut_ptr().add(i), grad.as_ptr().add(i));
                let (mp, vp, prevp) = (m.as_mut_ptr().add(i), v.as_mut_ptr().add(i), previous.as_mut_ptr().add(i));
                let p = _mm512_loadu_ps(pp);
                let mut g = _mm512_loadu_ps(gp);
                if L2 {
                    g = _mm512_add_ps(g, _mm512_add_ps(_mm512_mul_ps(p, wd), zero));
                }
                let m = ema(_mm512_loadu_ps(mp), g, beta1, one_minus_beta1, zero);
                let v = ema(_mm512_loadu_ps(vp), _mm512_mul_ps(g, g), beta2, one_minus_beta2, zero);
                // -|prev - g|: the sign bit set.
                let d = _mm512_sub_ps(_mm512_loadu_ps(prevp), g);
                let f = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(d), sign));
                _mm512_storeu_ps(mp, m);
                _mm512_storeu_ps(vp, v);
                _mm512_storeu_ps(prevp, g);
                let friction = _mm512_div_ps(one, _mm512_add_ps(exp16_avx512(f), one));
                let denominator = _mm512_add_ps(_mm512_sqrt_ps(v), eps);
                let update = _mm512_div_ps(_mm512_mul_ps(m, friction), denominator);
                let update = _mm512_add_ps(_mm512_mul_ps(update, step_size), zero);
                _mm512_storeu_ps(pp, _mm512_sub_ps(p, update));
            }
        }
    }
}

/// The f32 kernel with AVX2 and FMA: as [`avx512`], 8 elements at a time.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Consts;
    use crate::fused::exp::x86::exp8_avx2;

    /// `ema` of `fused/mod.rs`: `(s * beta + 0) + (x * (1 - beta) + 0)`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn ema(s: __m256, x: __m256, beta: __m256, one_minus_beta: __m256, zero: __m256) -> __m256 {
        _mm256_add_ps(
            _mm256_add_ps(_mm256_mul_ps(s, beta), zero),
            _mm256_add_ps(_mm256_mul_ps(x, one_minus_beta), zero),
        )
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA, `param.len()` must be a multiple of 8 and the other
    /// slices at least as long.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel<const L2: bool>(
        param: &mut [f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        previous: &mut [f32],
        c: Consts<f32>,
    ) {
        let n = param.len();
        assert!(n.is_multiple_of(8) && grad.len() >= n && m.len() >= n && v.len() >= n && previous.len() >= n);
        let set = _mm256_set1_ps;
        let (zero, one, eps, wd, step_size) = (set(c.zero), set(c.one), set(c.eps), set(c.wd), set(c.step_size));
        let (beta1, one_minus_beta1) = (set(c.beta1), set(c.one_minus_beta1));
        let (beta2, one_minus_beta2) = (set(c.beta2), set(c.one_minus_beta2));
        let sign = _mm256_set1_epi32(i32::MIN);
        for i in (0..n).step_by(8) {
            // SAFETY: i + 8 <= n, and every slice holds n elements.
            unsafe {
                let (pp, gp) = (param.as_mut_ptr().add(i), grad.as_ptr().add(i));
                let (mp, vp, prevp) = (m.as_mut_ptr().add(i), v.as_mut_ptr().add(i), previous.as_mut_ptr().add(i));
                let p = _mm256_loadu_ps(pp);
                let mut g = _mm256_loadu_ps(gp);
                if L2 {
                    g = _mm256_add_ps(g, _mm256_add_ps(_mm256_mul_ps(p, wd), zero));
                }
                let m = ema(_mm256_loadu_ps(mp), g, beta1, one_minus_beta1, zero);
                let v = ema(_mm256_loadu_ps(vp), _mm256_mul_ps(g, g), beta2, one_minus_beta2, zero);
                // -|prev - g|: the sign bit set.
                let d = _mm256_sub_ps(_mm256_loadu_ps(prevp), g);
                let f = _mm256_castsi256_ps(_mm256_or_si256(_mm256_castps_si256(d), sign));
                _mm256_storeu_ps(mp, m);
                _mm256_storeu_ps(vp, v);
                _mm256_storeu_ps(prevp, g);
                let friction = _mm256_div_ps(one, _mm256_add_ps(exp8_avx2(f), one));
                let denominator = _mm256_add_ps(_mm256_sqrt_ps(v), eps);
                let update = _mm256_div_ps(_mm256_mul_ps(m, friction), denominator);
                let update = _mm256_add_ps(_mm256_mul_ps(update, step_size), zero);
                _mm256_storeu_ps(pp, _mm256_sub_ps(p, update));
            }
        }
    }
}
