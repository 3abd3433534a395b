//! What the CPU custom ops ([`conv`](crate::conv), [`norm`](crate::norm), the max-pool of
//! [`layers`](crate::layers)) share: their element types, operand access, output buffers and
//! window bounds.

use candle::{Layout, Result};

/// The element types of the CPU ops: f32 and f64.
pub(crate) trait Float: candle::WithDType {}
impl Float for f32 {}
impl Float for f64 {}

/// The elements of a contiguous operand; `op` and `what` name it in the error.
pub(crate) fn contiguous<'a, T>(data: &'a [T], layout: &Layout, op: &str, what: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle::bail!("{op}: the {what} is not contiguous"),
    }
}

/// Where a [`matmul`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Threads {
    /// On the calling thread (its caller is parallel already: the convolution, per image).
    One,
    /// Over rayon's threads when the product is large (m n k at least 2^18).
    IfLarge,
}

/// `dst (m x n) = [dst +] lhs (m x k) . rhs (k x n)`, every operand given by its (row, column)
/// strides.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul<T: Float>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    lhs: &[T],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[T],
    (rhs_rs, rhs_cs): (usize, usize),
    threads: Threads,
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs;
    assert!(m == 0 || n == 0 || dst.len() > last(m, n, dst_rs, dst_cs), "gemm: dst too short");
    assert!(m == 0 || k == 0 || lhs.len() > last(m, k, lhs_rs, lhs_cs), "gemm: lhs too short");
    assert!(k == 0 || n == 0 || rhs.len() > last(k, n, rhs_rs, rhs_cs), "gemm: rhs too short");
    let parallelism = match threads {
        Threads::IfLarge if m * n * k >= 1 << 18 => gemm::Parallelism::Rayon(rayon::current_num_threads()),
        _ => gemm::Parallelism::None,
    };
    // SAFETY: the slices hold every element the strides address (asserted above).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// A vector of `len` elements that the caller overwrites entirely before reading.
pub(crate) fn output<T: Float>(len: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: f32 / f64 have no invalid bit patterns, and every caller writes all `len`
    // elements before any read.
    #[allow(clippy::uninit_vec)]
    unsafe {
        v.set_len(len)
    };
    v
}

/// For a window column `kx` over an input row of `w` elements padded by `pad` and read with
/// `stride` into `w_out` outputs: the output columns `lo..hi` whose input column
/// `ox * stride + kx - pad` is inside the row, and that input column for `lo`.
#[inline]
pub(crate) fn valid_columns(w: usize, w_out: usize, pad: usize, stride: usize, kx: usize) -> (usize, usize, usize) {
    let lo = pad.saturating_sub(kx).div_ceil(stride);
    let hi = ((w + pad).saturating_sub(kx)).div_ceil(stride).min(w_out);
    let lo = lo.min(hi);
    (lo, hi, lo * stride + kx - pad.min(lo * stride + kx))
}

/// Runs a function generic over [`Float`] on two f32 or two f64 operands (made contiguous
/// slices) and wraps its `(Vec, Shape)` result as candle's op output.
macro_rules! dispatch2 {
    ($name:expr, $s1:expr, $l1:expr, $s2:expr, $l2:expr, |$a:ident, $b:ident| $f:expr) => {{
        use candle::CpuStorage;
        use $crate::cpu::contiguous;
        match ($s1, $s2) {
            (CpuStorage::F32($a), CpuStorage::F32($b)) => {
                let ($a, $b) =
                    (contiguous($a, $l1, $name, "first operand")?, contiguous($b, $l2, $name, "second operand")?);
                let (out, shape) = $f;
                Ok((CpuStorage::F32(out), shape))
            }
            (CpuStorage::F64($a), CpuStorage::F64($b)) => {
                let ($a, $b) =
                    (contiguous($a, $l1, $name, "first operand")?, contiguous($b, $l2, $name, "second operand")?);
                let (out, shape) = $f;
                Ok((CpuStorage::F64(out), shape))
            }
            _ => candle::bail!("{}: f32 or f64 operands of one type", $name),
        }
    }};
}

pub(crate) use dispatch2;

#[cfg(test)]
pub(crate) mod testing {
    use candle::{DType, Device, Result, Tensor};

    use crate::rng::SeededRng;

    /// A seeded normal f64 tensor on the CPU.
    pub fn random(shape: &[usize], seed: u64, mean: f64, std: f64) -> Result<Tensor> {
        let n = shape.iter().product();
        Tensor::from_vec(SeededRng::new(seed).normal_vec(n, mean, std), shape, &Device::Cpu)?.to_dtype(DType::F64)
    }

    /// The largest absolute difference of two f64 tensors.
    pub fn max_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
        (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()
    }
}
