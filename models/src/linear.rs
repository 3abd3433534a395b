//! A fused fully connected layer for the CPU: `y = act(x Wᵀ + b)` in one op, forward and
//! backward, for 2-D inputs (the MLPs of [`mlp`](crate::mlp)).
//!
//! candle's `Linear` runs a matmul over the transposed weight, then a broadcasting add, then the
//! activation; its backward computes the input's gradient even when the input is data, takes the
//! weight's gradient through a transpose (a strided add of the whole weight), the bias's through
//! a broadcast-sum, and ReLU's through four more tensor ops. At MNIST sizes (batch 64) those
//! per-op passes and allocations cost more than the products themselves. Here:
//!
//! - forward: one GEMM `x Wᵀ` (the weight read transposed in place), then one pass adding the
//!   bias and applying ReLU when asked;
//! - backward, from `g = dL/dy`: `g` masked where the output is 0 (ReLU), `dW = gᵀ x` (one GEMM,
//!   in the weight's own layout), `db` = column sums of `g`, and `dx = g W` only when the input
//!   needs a gradient (another layer's output, not the batch).
//!
//! ReLU's gradient is PyTorch's (`threshold_backward` on the output: zero where the output is
//! 0); candle's passes the gradient where the pre-activation is exactly 0, which differs only on
//! that measure-zero set. Other devices and dtypes keep candle's ops.

use candle::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor};

use crate::cpu::{contiguous, matmul, output, Float, Threads};

const NAME: &str = "linear";

/// `act(x Wᵀ + b)` for `x` (batch x inputs), `weight` (outputs x inputs), `bias` (outputs);
/// `relu` applies ReLU. Fused on the CPU for f32 / f64, else candle's ops.
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor, relu: bool) -> Result<Tensor> {
    let fused = x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) && x.rank() == 2;
    if !fused {
        let y = x.matmul(&weight.t()?)?.broadcast_add(bias)?;
        return if relu { y.relu() } else { Ok(y) };
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, FusedLinear { relu })
}

#[derive(Clone, Copy, Debug)]
struct FusedLinear {
    relu: bool,
}

/// The sizes of a product: (batch, outputs, inputs).
fn sizes(x: &Layout, w: &Layout, b: &Layout) -> Result<(usize, usize, usize)> {
    match (x.dims(), w.dims(), b.dims()) {
        (&[m, k], &[n, k2], &[n2]) if k == k2 && n == n2 => Ok((m, n, k)),
        (x, w, b) => candle::bail!("{NAME}: input {x:?}, weight {w:?} and bias {b:?} do not fit (m x k, n x k, n)"),
    }
}

fn forward<T: Float>(x: &[T], w: &[T], b: &[T], (m, n, k): (usize, usize, usize), relu: bool) -> Vec<T> {
    // y (m x n) = x (m x k) . Wᵀ (k x n), Wᵀ read in place: element (k, n) at n * k_len + k.
    // (Accumulating into rows preset to the bias ran slower in gemm than this plain product
    // followed by one pass for the bias and ReLU.)
    let mut y = output(m * n);
    matmul((m, n, k), &mut y, (n, 1), false, x, (k, 1), w, (1, k), Threads::IfLarge);
    for row in y.chunks_exact_mut(n) {
        for (v, &b) in row.iter_mut().zip(b) {
            let z = *v + b;
            *v = if relu && z <= T::zero() { T::zero() } else { z };
        }
    }
    y
}

/// `(dx, dW, db)` from the output gradient `g` (m x n); `dx` only when `need_dx`.
fn backward<T: Float>(
    (x, w, y, g): (&[T], &[T], &[T], &[T]),
    (m, n, k): (usize, usize, usize),
    relu: bool,
    need_dx: bool,
) -> (Option<Vec<T>>, Vec<T>, Vec<T>) {
    let masked: Vec<T>;
    let g = if relu {
        masked = g.iter().zip(y).map(|(&g, &y)| if y > T::zero() { g } else { T::zero() }).collect();
        &masked[..]
    } else {
        g
    };
    // dW (n x k) = gᵀ (n x m) . x (m x k); gᵀ read in place: element (n, m) at m * n_len + n.
    let mut dw = output(n * k);
    matmul((n, k, m), &mut dw, (k, 1), false, g, (1, n), x, (k, 1), Threads::IfLarge);
    let mut db = vec![T::zero(); n];
    for row in g.chunks_exact(n) {
        for (s, &v) in db.iter_mut().zip(row) {
            *s += v;
        }
    }
    let dx = need_dx.then(|| {
        // dx (m x k) = g (m x n) . W (n x k).
        let mut dx = output(m * k);
        matmul((m, k, n), &mut dx, (k, 1), false, g, (n, 1), w, (k, 1), Threads::IfLarge);
        dx
    });
    (dx, dw, db)
}

/// The contiguous elements of a CPU tensor's storage.
fn host<'a, T: Float>(storage: &'a Storage, layout: &Layout, what: &str) -> Result<&'a [T]> {
    match storage {
        Storage::Cpu(s) => contiguous(T::cpu_storage_as_slice(s)?, layout, NAME, what),
        _ => candle::bail!("{NAME}: the {what} is not on the CPU"),
    }
}

impl FusedLinear {
    fn grads<T: Float>(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = g.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (ys, yl) = y.storage_and_layout();
        let (gs, gl) = g.storage_and_layout();
        let (m, k) = xl.shape().dims2()?;
        let n = wl.dims()[0];
        let operands = (
            host::<T>(&xs, xl, "input")?,
            host::<T>(&ws, wl, "weight")?,
            host::<T>(&ys, yl, "output")?,
            host::<T>(&gs, gl, "output gradient")?,
        );
        let (dx, dw, db) = backward(operands, (m, n, k), self.relu, x.track_op());
        let device = x.device();
        let dx = dx.map(|dx| Tensor::from_vec(dx, (m, k), device)).transpose()?;
        Ok((dx, Some(Tensor::from_vec(dw, (n, k), device)?), Some(Tensor::from_vec(db, n, device)?)))
    }
}

impl CustomOp3 for FusedLinear {
    fn name(&self) -> &'static str {
        "optbench-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (m, n, k) = sizes(l1, l2, l3)?;
        let y = match (s1, s2, s3) {
            (CpuStorage::F32(x), CpuStorage::F32(w), CpuStorage::F32(b)) => CpuStorage::F32(forward(
                contiguous(x, l1, NAME, "input")?,
                contiguous(w, l2, NAME, "weight")?,
                contiguous(b, l3, NAME, "bias")?,
                (m, n, k),
                self.relu,
            )),
            (CpuStorage::F64(x), CpuStorage::F64(w), CpuStorage::F64(b)) => CpuStorage::F64(forward(
                contiguous(x, l1, NAME, "input")?,
                contiguous(w, l2, NAME, "weight")?,
                contiguous(b, l3, NAME, "bias")?,
                (m, n, k),
                self.relu,
            )),
            _ => candle::bail!("{NAME}: f32 or f64 operands of one type"),
        };
        Ok((y, (m, n).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        match x.dtype() {
            DType::F32 => self.grads::<f32>(x, w, y, g),
            DType::F64 => self.grads::<f64>(x, w, y, g),
            dtype => candle::bail!("{NAME}: no backward for {dtype:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{max_diff, random};
    use candle::Var;

    /// candle's ops on the same tensors.
    fn reference(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Result<Tensor> {
        let y = x.matmul(&w.t()?)?.broadcast_add(b)?;
        if relu {
            y.relu()
        } else {
            Ok(y)
        }
    }

    #[test]
    fn forward_and_gradients_equal_candles_ops() -> Result<()> {
        // (batch, outputs, inputs): the MNIST MLP's layers at batch 64 (fc1 runs threaded),
        // a partial last batch, and a single row.
        for (case, &(m, n, k)) in [(64, 256, 784), (64, 10, 256), (32, 7, 5), (1, 3, 4)].iter().enumerate() {
            for relu in [false, true] {
                let seed = 10 * case as u64 + relu as u64;
                let x = Var::from_tensor(&random(&[m, k], seed, 0.0, 1.0)?)?;
                let w = Var::from_tensor(&random(&[n, k], seed + 100, 0.0, 0.1)?)?;
                let b = Var::from_tensor(&random(&[n], seed + 200, 0.0, 0.1)?)?;
                // A weighted loss so that every output's gradient differs.
                let weights = random(&[m, n], seed + 300, 0.0, 1.0)?;
                let ours = linear(&x, &w, &b, relu)?;
                let theirs = reference(&x, &w, &b, relu)?;
                let at = format!("m {m} n {n} k {k} relu {relu}");
                assert!(max_diff(&ours, &theirs)? < 1e-12, "forward, {at}");
                let g_ours = (&ours * &weights)?.sum_all()?.backward()?;
                let g_theirs = (&theirs * &weights)?.sum_all()?.backward()?;
                for (name, v) in [("dx", &x), ("dW", &w), ("db", &b)] {
                    let (a, e) = (g_ours.get(v).expect("ours"), g_theirs.get(v).expect("candle's"));
                    let scale = e.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()?.max(1.0);
                    assert!(max_diff(a, e)? < 1e-12 * scale, "{name}, {at}");
                }
                if relu {
                    let dead = ours.eq(0.0)?.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
                    assert!(dead > 0.0 && dead < (m * n) as f64, "ReLU masks some outputs, {at}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn data_inputs_get_no_gradient_and_f32_matches_too() -> Result<()> {
        let x = random(&[8, 6], 1, 0.0, 1.0)?.to_dtype(DType::F32)?;
        let w = Var::from_tensor(&random(&[4, 6], 2, 0.0, 0.5)?.to_dtype(DType::F32)?)?;
        let b = Var::from_tensor(&random(&[4], 3, 0.0, 0.5)?.to_dtype(DType::F32)?)?;
        let ours = linear(&x, &w, &b, true)?;
        let theirs = reference(&x, &w, &b, true)?;
        let diff = (&ours - &theirs)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "f32 forward differs by {diff}");
        let grads = ours.sqr()?.sum_all()?.backward()?;
        assert!(grads.get(&x).is_none(), "the batch is data: no gradient");
        let expected = theirs.sqr()?.sum_all()?.backward()?;
        let diff = (grads.get(&w).unwrap() - expected.get(&w).unwrap())?.abs()?.flatten_all()?.max(0)?;
        assert!(diff.to_scalar::<f32>()? < 1e-5);
        Ok(())
    }
}
