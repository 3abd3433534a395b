//! A vectorised `exp` for f32 that returns exactly what the process's `f32::exp` returns, so that
//! diffGrad's fused kernel stays bit-identical to its tensor path (candle's CPU `exp` is
//! `f32::exp`, i.e. the C library's `expf`) without one library call per element.
//!
//! The algorithm is glibc's `expf` (glibc 2.28 and later, from ARM's optimized-routines:
//! `sysdeps/ieee754/flt-32/e_expf.c`, its table and constants `sysdeps/ieee754/flt-32/e_exp2f_data.c`),
//! evaluated in double:
//!
//! ```text
//! z = x 32/ln2 = k + r,  |r| <= 1/2,  k an integer (rounded by adding 1.5 2^52)
//! exp(x) = 2^(k/32) 2^(r/32) ~= s (C0 r³ + C1 r² + C2 r + 1),  s = 2^(k/32) from a 32-entry table
//! ```
//!
//! On x86_64 glibc picks, by ifunc, a build of that file with `-mfma -mavx2`
//! (`sysdeps/x86_64/fpu/multiarch/e_expf-fma.c`) where the compiler contracted five operations
//! into fused multiply-adds. Its disassembly (Debian 12's glibc 2.36) shows which:
//! `kd + SHIFT = fma(InvLn2N, x, SHIFT)`, `r = fma(InvLn2N, x, -kd)` (the product is never
//! rounded), `C0 r + C1`, `C2 r + 1` and `z r² + y` are fmas, `r²` and `y s` plain products.
//! The vector kernels below perform exactly these operations. Arguments with `|x| >= 88` or NaN
//! (glibc's slow path: overflow, underflow, infinities, NaN) are recomputed with `f32::exp`
//! itself, lane by lane.
//!
//! Because the result must equal the `expf` this process actually calls (another libc, another
//! glibc, the non-FMA build on an older CPU), the vector path checks itself on first use against
//! `f32::exp` over a fixed set of about 380 000 arguments (every table entry, both ends of the
//! range, the slow-path thresholds, subnormal results) and is only used if every result is
//! identical; otherwise [`exp_f32_in_place`] stays the scalar loop. [`path`] says which one runs
//! (`optbench optimizers --check-kernels` prints it); the environment variable
//! `OPTBENCH_EXP=avx2+fma` or `=scalar` makes it skip the faster paths.
//! The sample catches a wrong table or constant, but not every rounding slip: a copy with one of
//! the five contractions undone (`r` as a product and a subtraction) passed it, and
//! `tests/exp.rs`, which runs every non-positive float, failed (at x = -63.09946, one ulp).

use std::sync::OnceLock;

/// An implementation of [`exp_f32_in_place`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpPath {
    /// AVX-512F: 16 floats at a time (as two vectors of 8 doubles).
    Avx512,
    /// AVX2 + FMA: 8 floats at a time (as two vectors of 4 doubles).
    Avx2Fma,
    /// `f32::exp` per element.
    Scalar,
}

impl ExpPath {
    /// Every path, fastest first.
    pub const ALL: [ExpPath; 3] = [ExpPath::Avx512, ExpPath::Avx2Fma, ExpPath::Scalar];

    /// A short name (`avx512`, `avx2+fma`, `scalar`).
    pub fn name(self) -> &'static str {
        match self {
            ExpPath::Avx512 => "avx512",
            ExpPath::Avx2Fma => "avx2+fma",
            ExpPath::Scalar => "scalar",
        }
    }

    /// Whether this CPU can run the path.
    pub fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            ExpPath::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            ExpPath::Avx2Fma => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            ExpPath::Scalar => true,
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// Which path [`exp_f32_in_place`] uses in this process, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpChoice {
    pub path: ExpPath,
    /// The vector paths this CPU supports that were rejected by the self-check, each with the
    /// first argument where it differed from `f32::exp` (as bits) and the two results.
    pub rejected: Vec<(ExpPath, u32, u32, u32)>,
}

impl std::fmt::Display for ExpChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.name())?;
        for (path, x, ours, libm) in &self.rejected {
            write!(
                f,
                " ({} rejected: exp({:e}) = {:e} here, {:e} from f32::exp)",
                path.name(),
                f32::from_bits(*x),
                f32::from_bits(*ours),
                f32::from_bits(*libm)
            )?;
        }
        Ok(())
    }
}

/// The path in use, chosen (and self-checked) on first call.
pub fn choice() -> &'static ExpChoice {
    static CHOICE: OnceLock<ExpChoice> = OnceLock::new();
    CHOICE.get_or_init(|| {
        let inputs = self_check_inputs();
        let mut expected = inputs.clone();
        exp_f32_with(ExpPath::Scalar, &mut expected);
        let mut rejected = Vec::new();
        // `OPTBENCH_EXP=avx2+fma` (or `scalar`) skips the faster paths: to test and time the
        // others on a CPU that has them all.
        let wanted = std::env::var("OPTBENCH_EXP").ok();
        let start = ExpPath::ALL.iter().position(|p| Some(p.name()) == wanted.as_deref()).unwrap_or(0);
        for path in ExpPath::ALL.into_iter().skip(start) {
            if path == ExpPath::Scalar || !path.supported() {
                continue;
            }
            let mut ours = inputs.clone();
            exp_f32_with(path, &mut ours);
            match first_difference(&inputs, &ours, &expected) {
                None => return ExpChoice { path, rejected },
                Some(d) => rejected.push((path, d.0, d.1, d.2)),
            }
        }
        ExpChoice { path: ExpPath::Scalar, rejected }
    })
}

/// The path in use (see [`choice`]).
pub fn path() -> ExpPath {
    choice().path
}

/// The first argument (bits) where `ours` and `expected` differ, with both results (bits).
fn first_difference(inputs: &[f32], ours: &[f32], expected: &[f32]) -> Option<(u32, u32, u32)> {
    let i = ours.iter().zip(expected).position(|(a, b)| a.to_bits() != b.to_bits())?;
    Some((inputs[i].to_bits(), ours[i].to_bits(), expected[i].to_bits()))
}

/// `x <- exp(x)` for every element, equal to `f32::exp` bit for bit.
pub fn exp_f32_in_place(xs: &mut [f32]) {
    exp_f32_with(path(), xs);
}

/// `x <- exp(x)` with a given path (no self-check; for tests and benchmarks). Returns `false`
/// and leaves `xs` alone if this CPU lacks the path's instructions.
pub fn exp_f32_with(path: ExpPath, xs: &mut [f32]) -> bool {
    if !path.supported() {
        return false;
    }
    match path {
        // SAFETY: the CPU supports the instructions (checked above).
        #[cfg(target_arch = "x86_64")]
        ExpPath::Avx512 => unsafe { x86::exp_avx512(xs) },
        #[cfg(target_arch = "x86_64")]
        ExpPath::Avx2Fma => unsafe { x86::exp_avx2(xs) },
        _ => xs.iter_mut().for_each(|x| *x = x.exp()),
    }
    true
}

/// The arguments of the self-check: a stride over every float up to the overflow threshold,
/// dense runs around the thresholds of glibc's slow path and of subnormal results, and every
/// table entry (k/32 ln2 for many k) with its neighbours.
pub fn self_check_inputs() -> Vec<f32> {
    let mut xs = Vec::with_capacity(320_000);
    // Every 2^15-th float of each sign: 131 072 values, zeros, subnormals, infinities, NaNs.
    for bits in (0..=u32::MAX).step_by(1 << 15) {
        xs.push(f32::from_bits(bits));
        xs.push(f32::from_bits(bits | 0x7fff));
    }
    // Dense around the edges: |x| = 88 (the slow path), glibc's overflow and underflow
    // thresholds, the start of subnormal results (x ~ -87.34), 0.
    // (0x1.62e42ep6, -0x1.9fe368p6, -0x1.9d1d9ep6 as bits.)
    let thresholds = [0x42b17217, 0xc2cff1b4, 0xc2ce8ecf].map(f32::from_bits);
    for edge in [88.0f32, -88.0, -87.33655, 0.0, -0.0].into_iter().chain(thresholds) {
        let bits = edge.to_bits() as i64;
        for d in -2000..=2000i64 {
            let b = bits + d;
            if (0..=u32::MAX as i64).contains(&b) {
                xs.push(f32::from_bits(b as u32));
            }
        }
    }
    // Every table entry: x = (k + j / 32) ln 2 for k in [-150, 128], and one ulp around it.
    for k in -150i32..=128 {
        for j in 0..32 {
            let x = ((f64::from(k) + f64::from(j) / 32.0) * std::f64::consts::LN_2) as f32;
            xs.extend([x, f32::from_bits(x.to_bits().wrapping_sub(1)), f32::from_bits(x.to_bits() + 1)]);
        }
    }
    // Dense in [-1, 0]: every 64th float of the last few binades (where diffGrad's arguments
    // mostly fall).
    for bits in ((-1.0f32).to_bits() - (1 << 22)..=(-1.0f32).to_bits()).step_by(64) {
        xs.push(f32::from_bits(bits));
    }
    xs
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    /// glibc's `__exp2f_data.tab` (`e_exp2f_data.c`): `bits(2^(i/32)) - (i << 47)`.
    static TABLE: [u64; 32] = [
        0x3ff0000000000000,
        0x3fefd9b0d3158574,
        0x3fefb5586cf9890f,
        0x3fef9301d0125b51,
        0x3fef72b83c7d517b,
        0x3fef54873168b9aa,
        0x3fef387a6e756238,
        0x3fef1e9df51fdee1,
        0x3fef06fe0a31b715,
        0x3feef1a7373aa9cb,
        0x3feedea64c123422,
        0x3feece086061892d,
        0x3feebfdad5362a27,
        0x3feeb42b569d4f82,
        0x3feeab07dd485429,
        0x3feea47eb03a5585,
        0x3feea09e667f3bcd,
        0x3fee9f75e8ec5f74,
        0x3feea11473eb0187,
        0x3feea589994cce13,
        0x3feeace5422aa0db,
        0x3feeb737b0cdc5e5,
        0x3feec49182a3f090,
        0x3feed503b23e255d,
        0x3feee89f995ad3ad,
        0x3feeff76f2fb5e47,
        0x3fef199bdd85529c,
        0x3fef3720dcef9069,
        0x3fef5818dcfba487,
        0x3fef7c97337b9b5f,
        0x3fefa4afa2a490da,
        0x3fefd0765b6e4540,
    ];
    /// `InvLn2N`: 32 / ln 2.
    const INV_LN2_N: f64 = f64::from_bits(0x40471547652b82fe); // 0x1.71547652b82fep+0 * 32
    /// 1.5 2^52: adding it rounds to an integer (ties to even) in the low mantissa bits.
    const SHIFT: f64 = f64::from_bits(0x4338000000000000); // 0x1.8p+52
    /// `poly_scaled`: the polynomial's coefficients C0, C1, C2 for r = z - k.
    const C0: f64 = f64::from_bits(0x3ebc6af84b912394); // 0x1.c6af84b912394p-5 / 32^3
    const C1: f64 = f64::from_bits(0x3f2ebfce50fac4f3); // 0x1.ebfce50fac4f3p-3 / 32^2
    const C2: f64 = f64::from_bits(0x3f962e42ff0c52d6); // 0x1.62e42ff0c52d6p-1 / 32
    /// Lanes whose `top12(x) & 0x7ff` exceeds this take glibc's slow path (`|x| >= 88`, NaN).
    const SLOW_ABSTOP: i32 = 0x42a;

    /// The lanes of `mask` (those glibc sends down its slow path) recomputed with `f32::exp`
    /// from their arguments `original`.
    #[inline(always)]
    fn fix_slow_lanes(out: &mut [f32], original: &[f32], mut mask: u32) {
        while mask != 0 {
            let lane = mask.trailing_zeros() as usize;
            out[lane] = original[lane].exp();
            mask &= mask - 1;
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn exp8_avx512(x: __m512d) -> __m256 {
        let shifted = _mm512_fmadd_pd(_mm512_set1_pd(INV_LN2_N), x, _mm512_set1_pd(SHIFT));
        let ki = _mm512_castpd_si512(shifted);
        let kd = _mm512_sub_pd(shifted, _mm512_set1_pd(SHIFT));
        let r = _mm512_fmsub_pd(_mm512_set1_pd(INV_LN2_N), x, kd);
        // SAFETY: TABLE has 32 entries; each load reads 8 of them.
        let (t0, t1, t2, t3) = unsafe {
            let t = TABLE.as_ptr() as *const __m512i;
            (
                _mm512_loadu_si512(t),
                _mm512_loadu_si512(t.add(1)),
                _mm512_loadu_si512(t.add(2)),
                _mm512_loadu_si512(t.add(3)),
            )
        };
        // T[ki % 32]: bits 0-3 pick among 16 entries of (t0, t1) or (t2, t3), bit 4 which pair.
        let low = _mm512_permutex2var_epi64(t0, ki, t1);
        let high = _mm512_permutex2var_epi64(t2, ki, t3);
        let upper_half = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
        let t = _mm512_mask_blend_epi64(upper_half, low, high);
        let s = _mm512_castsi512_pd(_mm512_add_epi64(t, _mm512_slli_epi64::<47>(ki)));
        let z = _mm512_fmadd_pd(_mm512_set1_pd(C0), r, _mm512_set1_pd(C1));
        let r2 = _mm512_mul_pd(r, r);
        let y = _mm512_fmadd_pd(r, _mm512_set1_pd(C2), _mm512_set1_pd(1.0));
        let y = _mm512_fmadd_pd(z, r2, y);
        _mm512_cvtpd_ps(_mm512_mul_pd(y, s))
    }

    /// `exp` of 16 floats, equal to `f32::exp` lane by lane (the vector form of
    /// [`exp_f32_in_place`](super::exp_f32_in_place), for kernels that keep their data in
    /// registers).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn exp16_avx512(x: __m512) -> __m512 {
        let bits = _mm512_castps_si512(x);
        let abstop = _mm512_and_si512(_mm512_srli_epi32::<20>(bits), _mm512_set1_epi32(0x7ff));
        let slow = _mm512_cmpgt_epi32_mask(abstop, _mm512_set1_epi32(SLOW_ABSTOP));
        let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
        let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(x))));
        let (lo, hi) = (exp8_avx512(lo), exp8_avx512(hi));
        let y = _mm512_castpd_ps(_mm512_insertf64x4::<1>(
            _mm512_castpd256_pd512(_mm256_castps_pd(lo)),
            _mm256_castps_pd(hi),
        ));
        if slow == 0 {
            return y;
        }
        let (mut original, mut out) = ([0f32; 16], [0f32; 16]);
        // SAFETY: 16 floats each.
        unsafe {
            _mm512_storeu_ps(original.as_mut_ptr(), x);
            _mm512_storeu_ps(out.as_mut_ptr(), y);
        }
        fix_slow_lanes(&mut out, &original, u32::from(slow));
        // SAFETY: as the stores.
        unsafe { _mm512_loadu_ps(out.as_ptr()) }
    }

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn exp_avx512(xs: &mut [f32]) {
        let mut chunks = xs.chunks_exact_mut(16);
        for chunk in &mut chunks {
            // SAFETY: the chunk holds 16 floats.
            unsafe { _mm512_storeu_ps(chunk.as_mut_ptr(), exp16_avx512(_mm512_loadu_ps(chunk.as_ptr()))) };
        }
        tail(chunks.into_remainder(), |v| unsafe { exp_avx512(v) }, 16);
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn exp4_avx2(x: __m256d) -> __m128 {
        let shifted = _mm256_fmadd_pd(_mm256_set1_pd(INV_LN2_N), x, _mm256_set1_pd(SHIFT));
        let ki = _mm256_castpd_si256(shifted);
        let kd = _mm256_sub_pd(shifted, _mm256_set1_pd(SHIFT));
        let r = _mm256_fmsub_pd(_mm256_set1_pd(INV_LN2_N), x, kd);
        let index = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
        // SAFETY: every index is in 0..32.
        let t = unsafe { _mm256_i64gather_epi64::<8>(TABLE.as_ptr() as *const i64, index) };
        let s = _mm256_castsi256_pd(_mm256_add_epi64(t, _mm256_slli_epi64::<47>(ki)));
        let z = _mm256_fmadd_pd(_mm256_set1_pd(C0), r, _mm256_set1_pd(C1));
        let r2 = _mm256_mul_pd(r, r);
        let y = _mm256_fmadd_pd(r, _mm256_set1_pd(C2), _mm256_set1_pd(1.0));
        let y = _mm256_fmadd_pd(z, r2, y);
        _mm256_cvtpd_ps(_mm256_mul_pd(y, s))
    }

    /// `exp` of 8 floats, equal to `f32::exp` lane by lane (as [`exp16_avx512`]).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn exp8_avx2(x: __m256) -> __m256 {
        let abstop = _mm256_and_si256(_mm256_srli_epi32::<20>(_mm256_castps_si256(x)), _mm256_set1_epi32(0x7ff));
        let slow = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(abstop, _mm256_set1_epi32(SLOW_ABSTOP))));
        let lo = exp4_avx2(_mm256_cvtps_pd(_mm256_castps256_ps128(x)));
        let hi = exp4_avx2(_mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x)));
        let y = _mm256_set_m128(hi, lo);
        if slow == 0 {
            return y;
        }
        let (mut original, mut out) = ([0f32; 8], [0f32; 8]);
        // SAFETY: 8 floats each.
        unsafe {
            _mm256_storeu_ps(original.as_mut_ptr(), x);
            _mm256_storeu_ps(out.as_mut_ptr(), y);
        }
        fix_slow_lanes(&mut out, &original, slow as u32);
        // SAFETY: as the stores.
        unsafe { _mm256_loadu_ps(out.as_ptr()) }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_avx2(xs: &mut [f32]) {
        let mut chunks = xs.chunks_exact_mut(8);
        for chunk in &mut chunks {
            // SAFETY: the chunk holds 8 floats.
            unsafe { _mm256_storeu_ps(chunk.as_mut_ptr(), exp8_avx2(_mm256_loadu_ps(chunk.as_ptr()))) };
        }
        tail(chunks.into_remainder(), |v| unsafe { exp_avx2(v) }, 8);
    }

    /// The last `len < width` elements: copied into a full vector (padded with zeros), run, and
    /// copied back.
    #[inline(always)]
    fn tail(rest: &mut [f32], run: impl Fn(&mut [f32]), width: usize) {
        if rest.is_empty() {
            return;
        }
        let mut buffer = [0f32; 16];
        let buffer = &mut buffer[..width];
        buffer[..rest.len()].copy_from_slice(rest);
        run(buffer);
        rest.copy_from_slice(&buffer[..rest.len()]);
    }
}
