//! `nn.BatchNorm2d` (by default eps 1e-5, momentum 0.1; [`BnConfig`] sets both, for
//! TensorFlow's `batch_norm` and the papers' quirks) with a fused CPU implementation, optionally
//! followed by a ReLU.
//!
//! candle's `BatchNorm` in training mode is a dozen tensor ops (a transposed copy, means,
//! broadcast subtractions and divisions, the affine transform), each allocating a tensor of the
//! activation's size, and its backward pass goes through all of them again: on small networks
//! that was a third of a step. Here the forward pass is two passes over each channel and the
//! backward pass two more, in one op whose gradient is written out:
//!
//! ```text
//! mean_c = sum x / M,   var_c = sum (x - mean_c)^2 / M        (M = N H W, biased)
//! xhat = (x - mean_c) / sqrt(var_c + eps),   y = gamma_c xhat + beta_c   [y = max(y, 0)]
//! dy <- dy [y > 0];   dbeta_c = sum dy;   dgamma_c = sum dy xhat
//! dx = gamma_c / sqrt(var_c + eps) (dy - dbeta_c / M - xhat dgamma_c / M)
//! running_mean <- (1 - m) running_mean + m mean_c;   running_var <- (1 - m) running_var + m var_c M / (M - 1)
//! ```
//! Evaluation uses the running statistics. Other devices and dtypes use candle's `BatchNorm`.
//! `tests` below check values, gradients and running statistics against candle's.

use std::sync::{Arc, Mutex};

use candle::{CpuStorage, CustomOp3, DType, Layout, ModuleT, Result, Shape, Tensor, Var};
use rayon::prelude::*;

use crate::cpu::{contiguous, output, Float};

/// The two constants of a batch norm: `eps` added to the variance and the `momentum` m of the
/// running statistics (PyTorch's convention: the weight of the new batch; TensorFlow's `decay`
/// is `1 - m`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BnConfig {
    pub eps: f64,
    pub momentum: f64,
}

impl Default for BnConfig {
    /// PyTorch's `nn.BatchNorm2d`: eps 1e-5, momentum 0.1.
    fn default() -> Self {
        Self { eps: 1e-5, momentum: 0.1 }
    }
}

impl BnConfig {
    /// TensorFlow's `tf.contrib.layers.batch_norm` / `tf.layers.batch_normalization` with the
    /// given `decay` and `epsilon`.
    pub fn tensorflow(decay: f64, epsilon: f64) -> Self {
        Self { eps: epsilon, momentum: 1.0 - decay }
    }
}

/// The batch statistics of one training forward pass, per channel.
#[derive(Debug, Default)]
struct Saved {
    mean: Vec<f64>,
    invstd: Vec<f64>,
    /// `gamma invstd`, the scale of the normalised input.
    a: Vec<f64>,
    /// The unbiased batch variance, for the running statistics.
    unbiased_var: Vec<f64>,
    /// (dgamma, dbeta) of the backward pass, left by the op that computes dx.
    param_grads: Option<(Vec<f64>, Vec<f64>)>,
}

/// The training-mode op on (x, gamma, beta).
struct BnTrain {
    relu: bool,
    eps: f64,
    saved: Arc<Mutex<Saved>>,
}

/// Its gradient: dx from (x, dy, y), where `y > 0` is the ReLU's mask; dgamma and dbeta are
/// left in `saved`.
struct BnGrad {
    relu: bool,
    saved: Arc<Mutex<Saved>>,
}

/// (N, C, plane) of an activation's layout.
fn geometry(layout: &Layout) -> Result<(usize, usize, usize)> {
    let dims = layout.dims();
    if dims.len() < 2 {
        candle::bail!("batch norm: input of shape {dims:?}, expected (N, C, ...)")
    }
    Ok((dims[0], dims[1], dims[2..].iter().product()))
}

/// `sum f(v)` over a slice in f64, with eight independent accumulators so that the additions
/// do not wait on one another (a single running sum is bound by the adder's latency).
#[inline]
fn lane_sum<T: Copy>(xs: &[T], f: impl Fn(T) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for k in 0..8 {
            acc[k] += f(chunk[k]);
        }
    }
    acc.iter().sum::<f64>() + rest.iter().map(|&v| f(v)).sum::<f64>()
}

/// The planes (one per image) of channel `ch`.
fn planes<T>(x: &[T], (n, c, plane): (usize, usize, usize), ch: usize) -> impl Iterator<Item = &[T]> {
    (0..n).map(move |i| &x[(i * c + ch) * plane..(i * c + ch + 1) * plane])
}

fn train_forward<T: Float>(
    x: &[T],
    gamma: &[T],
    beta: &[T],
    g: (usize, usize, usize),
    relu: bool,
    eps: f64,
    saved: &mut Saved,
) -> Vec<T> {
    let (n, c, plane) = g;
    let m = (n * plane) as f64;
    let stats: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let mean = planes(x, g, ch).map(|p| lane_sum(p, |v| v.to_f64())).sum::<f64>() / m;
            let var = planes(x, g, ch)
                .map(|p| {
                    lane_sum(p, |v| {
                        let d = v.to_f64() - mean;
                        d * d
                    })
                })
                .sum::<f64>()
                / m;
            (mean, var)
        })
        .collect();
    saved.mean = stats.iter().map(|s| s.0).collect();
    saved.unbiased_var = stats.iter().map(|s| s.1 * m / (m - 1.0).max(1.0)).collect();
    saved.invstd = stats.iter().map(|s| 1.0 / (s.1 + eps).sqrt()).collect();
    saved.a = gamma.iter().zip(&saved.invstd).map(|(g, invstd)| g.to_f64() * invstd).collect();
    let scale_shift: Vec<(T, T)> = (0..c)
        .map(|ch| {
            let scale = T::from_f64(saved.invstd[ch]) * gamma[ch];
            (scale, beta[ch] - T::from_f64(saved.mean[ch]) * scale)
        })
        .collect();
    let mut y = output(x.len());
    y.par_chunks_mut(plane).zip(x.par_chunks(plane)).enumerate().for_each(|(k, (out, inp))| {
        let (scale, shift) = scale_shift[k % c];
        for (o, &v) in out.iter_mut().zip(inp) {
            let r = v * scale + shift;
            *o = if relu && r < T::zero() { T::zero() } else { r };
        }
    });
    y
}

/// (dx, dgamma, dbeta); with `RELU`, the gradient passes where the output `y` is positive
/// (without, `y` is never read: a constant, so that its loads compile away).
fn train_backward<T: Float, const RELU: bool>(
    (x, dy, y): (&[T], &[T], &[T]),
    g: (usize, usize, usize),
    saved: &Saved,
) -> (Vec<T>, Vec<f64>, Vec<f64>) {
    let relu = RELU;
    let (n, c, plane) = g;
    let m = (n * plane) as f64;
    // Per channel: sum dy and sum dy (x - mean), over the elements the ReLU let through.
    let sums: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let mean = saved.mean[ch];
            let (mut db, mut dxm) = (0.0f64, 0.0f64);
            let term = |xv: T, gv: T, yv: T| -> (f64, f64) {
                let live = !relu || yv > T::zero();
                let gv = if live { gv.to_f64() } else { 0.0 };
                (gv, gv * (xv.to_f64() - mean))
            };
            for ((xp, dp), yp) in planes(x, g, ch).zip(planes(dy, g, ch)).zip(planes(y, g, ch)) {
                let (mut acc_b, mut acc_x) = ([0.0f64; 8], [0.0f64; 8]);
                let (xs, ds, ys) = (xp.chunks_exact(8), dp.chunks_exact(8), yp.chunks_exact(8));
                let (x_rest, d_rest, y_rest) = (xs.remainder(), ds.remainder(), ys.remainder());
                for ((xc, dc), yc) in xs.zip(ds).zip(ys) {
                    for k in 0..8 {
                        let (b, xm) = term(xc[k], dc[k], yc[k]);
                        acc_b[k] += b;
                        acc_x[k] += xm;
                    }
                }
                for ((&xv, &gv), &yv) in x_rest.iter().zip(d_rest).zip(y_rest) {
                    let (b, xm) = term(xv, gv, yv);
                    acc_b[0] += b;
                    acc_x[0] += xm;
                }
                db += acc_b.iter().sum::<f64>();
                dxm += acc_x.iter().sum::<f64>();
            }
            (dxm * saved.invstd[ch], db)
        })
        .collect();
    // dx = a (dy - dbeta / M - xhat dgamma / M) = k1 dy + k2 x + k3 per channel, a = gamma invstd.
    let coefficients: Vec<(T, T, T)> = (0..c)
        .map(|ch| {
            let (dg, db) = sums[ch];
            let a = saved.a[ch];
            let k2 = -a * dg / m * saved.invstd[ch];
            let k3 = -a * db / m - k2 * saved.mean[ch];
            (T::from_f64(a), T::from_f64(k2), T::from_f64(k3))
        })
        .collect();
    let mut dx = output(x.len());
    dx.par_chunks_mut(plane).enumerate().for_each(|(k, out)| {
        let (k1, k2, k3) = coefficients[k % c];
        let o = k * plane;
        let inputs = x[o..o + plane].iter().zip(&dy[o..o + plane]).zip(&y[o..o + plane]);
        for (d, ((&xv, &gv), &yv)) in out.iter_mut().zip(inputs) {
            let live = !relu || yv > T::zero();
            let gv = if live { gv } else { T::zero() };
            *d = k1 * gv + k2 * xv + k3;
        }
    });
    (dx, sums.iter().map(|s| s.0).collect(), sums.iter().map(|s| s.1).collect())
}

impl CustomOp3 for BnTrain {
    fn name(&self) -> &'static str {
        "optbench-batch-norm"
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
        let g = geometry(l1)?;
        if l2.dims() != [g.1] || l3.dims() != [g.1] {
            candle::bail!("batch norm: weight {:?} and bias {:?} for {} channels", l2.dims(), l3.dims(), g.1)
        }
        let mut saved = self.saved.lock().expect("bn lock");
        let op = "batch norm";
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(x), CpuStorage::F32(w), CpuStorage::F32(b)) => CpuStorage::F32(train_forward(
                contiguous(x, l1, op, "input")?,
                contiguous(w, l2, op, "weight")?,
                contiguous(b, l3, op, "bias")?,
                g,
                self.relu,
                self.eps,
                &mut saved,
            )),
            (CpuStorage::F64(x), CpuStorage::F64(w), CpuStorage::F64(b)) => CpuStorage::F64(train_forward(
                contiguous(x, l1, op, "input")?,
                contiguous(w, l2, op, "weight")?,
                contiguous(b, l3, op, "bias")?,
                g,
                self.relu,
                self.eps,
                &mut saved,
            )),
            _ => candle::bail!("batch norm: f32 or f64 operands of one type"),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // One pass computes dx and leaves dgamma and dbeta in `saved`.
        let dx = x.apply_op3_no_bwd(&dy.contiguous()?, y, &BnGrad { relu: self.relu, saved: self.saved.clone() })?;
        let (dgamma, dbeta) = self.saved.lock().expect("bn lock").param_grads.take().expect("left by the dx pass");
        let param = |v: Vec<f64>| Tensor::from_vec(v, gamma.dims(), gamma.device())?.to_dtype(gamma.dtype());
        Ok((Some(dx), Some(param(dgamma)?), Some(param(dbeta)?)))
    }
}

impl CustomOp3 for BnGrad {
    fn name(&self) -> &'static str {
        "optbench-batch-norm-grad"
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
        let g = geometry(l1)?;
        let mut saved = self.saved.lock().expect("bn lock");
        let op = "batch norm gradient";
        let (dx, dgamma, dbeta) = match (s1, s2, s3) {
            (CpuStorage::F32(x), CpuStorage::F32(dy), CpuStorage::F32(y)) => {
                let operands = (
                    contiguous(x, l1, op, "input")?,
                    contiguous(dy, l2, op, "gradient")?,
                    contiguous(y, l3, op, "output")?,
                );
                let (dx, dg, db) = if self.relu {
                    train_backward::<_, true>(operands, g, &saved)
                } else {
                    train_backward::<_, false>(operands, g, &saved)
                };
                (CpuStorage::F32(dx), dg, db)
            }
            (CpuStorage::F64(x), CpuStorage::F64(dy), CpuStorage::F64(y)) => {
                let operands = (
                    contiguous(x, l1, op, "input")?,
                    contiguous(dy, l2, op, "gradient")?,
                    contiguous(y, l3, op, "output")?,
                );
                let (dx, dg, db) = if self.relu {
                    train_backward::<_, true>(operands, g, &saved)
                } else {
                    train_backward::<_, false>(operands, g, &saved)
                };
                (CpuStorage::F64(dx), dg, db)
            }
            _ => candle::bail!("batch norm gradient: f32 or f64 operands of one type"),
        };
        saved.param_grads = Some((dgamma, dbeta));
        Ok((dx, l1.shape().clone()))
    }
}

/// `nn.BatchNorm2d(channels)` (affine, tracking running statistics).
#[derive(Debug)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    config: BnConfig,
    /// candle's implementation, on the same tensors, for other devices and dtypes.
    fallback: candle_nn::BatchNorm,
}

impl BatchNorm2d {
    /// With PyTorch's constants ([`BnConfig::default`]).
    pub fn new(weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor) -> Result<Self> {
        Self::with_config(weight, bias, running_mean, running_var, BnConfig::default())
    }

    pub fn with_config(
        weight: Tensor,
        bias: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        config: BnConfig,
    ) -> Result<Self> {
        if !(config.eps >= 0.0 && (0.0..=1.0).contains(&config.momentum)) {
            candle::bail!("batch norm: eps {} must be >= 0 and momentum {} in [0, 1]", config.eps, config.momentum)
        }
        let channels = weight.dim(0)?;
        let fallback = candle_nn::BatchNorm::new_with_momentum(
            channels,
            running_mean.clone(),
            running_var.clone(),
            weight.clone(),
            bias.clone(),
            config.eps,
            config.momentum,
        )?;
        Ok(Self {
            weight,
            bias,
            running_mean: Var::from_tensor(&running_mean)?,
            running_var: Var::from_tensor(&running_var)?,
            config,
            fallback,
        })
    }

    pub fn config(&self) -> BnConfig {
        self.config
    }

    /// Batch norm, then ReLU when `relu`.
    pub fn forward_relu_t(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        let fused = x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) && x.rank() >= 2;
        if !fused {
            let y = self.fallback.forward_t(x, train)?;
            return if relu { y.relu() } else { Ok(y) };
        }
        if !train {
            let c = x.dim(1)?;
            let mut shape = vec![1; x.rank()];
            shape[1] = c;
            let invstd = self.running_var.as_tensor().detach().affine(1.0, self.config.eps)?.sqrt()?.recip()?;
            let scale = (&self.weight * &invstd)?;
            let shift = (&self.bias - (self.running_mean.as_tensor().detach() * &scale)?)?;
            let y =
                x.broadcast_mul(&scale.reshape(shape.as_slice())?)?.broadcast_add(&shift.reshape(shape.as_slice())?)?;
            return if relu { y.relu() } else { Ok(y) };
        }
        let saved = Arc::new(Mutex::new(Saved::default()));
        let y = x.contiguous()?.apply_op3(
            &self.weight,
            &self.bias,
            BnTrain { relu, eps: self.config.eps, saved: saved.clone() },
        )?;
        let (mean, var) = {
            let s = saved.lock().expect("bn lock");
            (s.mean.clone(), s.unbiased_var.clone())
        };
        let update = |running: &Var, batch: Vec<f64>| -> Result<()> {
            let batch = Tensor::from_vec(batch, running.dims(), running.device())?.to_dtype(running.dtype())?;
            let m = self.config.momentum;
            running.set(&(running.as_tensor().affine(1.0 - m, 0.0)? + batch.affine(m, 0.0)?)?)
        };
        update(&self.running_mean, mean)?;
        update(&self.running_var, var)?;
        Ok(y)
    }
}

impl ModuleT for BatchNorm2d {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_relu_t(x, train, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::max_diff;
    use candle::Device;

    fn random(shape: &[usize], seed: u64, mean: f64) -> Result<Tensor> {
        crate::cpu::testing::random(shape, seed, mean, 2.0)
    }

    #[test]
    fn fused_batch_norm_equals_candles_with_and_without_relu() -> Result<()> {
        check_against_candle(BnConfig::default())?;
        // TensorFlow's constants (AdaShift's DenseNets), and an eps far from the default.
        check_against_candle(BnConfig::tensorflow(0.999, 1e-3))?;
        check_against_candle(BnConfig { eps: 64.0, momentum: 0.3 })
    }

    fn check_against_candle(config: BnConfig) -> Result<()> {
        let eps = config.eps;
        for relu in [false, true] {
            let x = Var::from_tensor(&random(&[4, 3, 5, 6], 1, 0.7)?)?;
            let w = Var::from_tensor(&random(&[3], 2, 1.0)?)?;
            let b = Var::from_tensor(&random(&[3], 3, 0.0)?)?;
            let stats = || -> Result<(Tensor, Tensor)> {
                let zeros = Var::zeros(3, DType::F64, &Device::Cpu)?;
                let ones = Var::ones(3, DType::F64, &Device::Cpu)?;
                Ok((zeros.as_tensor().clone(), ones.as_tensor().clone()))
            };
            let (m1, v1) = stats()?;
            let ours = BatchNorm2d::with_config(w.as_tensor().clone(), b.as_tensor().clone(), m1, v1, config)?;
            let (m2, v2) = stats()?;
            let theirs = candle_nn::BatchNorm::new_with_momentum(
                3,
                m2,
                v2,
                w.as_tensor().clone(),
                b.as_tensor().clone(),
                eps,
                config.momentum,
            )?;
            let y1 = ours.forward_relu_t(x.as_tensor(), true, relu)?;
            let mut y2 = theirs.forward_t(x.as_tensor(), true)?;
            if relu {
                y2 = y2.relu()?;
            }
            assert!(max_diff(&y1, &y2)? < 1e-12, "forward (relu {relu})");
            let weights = random(&[4, 3, 5, 6], 4, 0.0)?;
            let g1 = (&y1 * &weights)?.sum_all()?.backward()?;
            let g2 = (&y2 * &weights)?.sum_all()?.backward()?;
            for (name, var) in [("x", &x), ("gamma", &w), ("beta", &b)] {
                let d = max_diff(g1.get(var.as_tensor()).unwrap(), g2.get(var.as_tensor()).unwrap())?;
                assert!(d < 1e-10, "gradient of {name} (relu {relu}): {d}");
            }
            // Running statistics, and evaluation with them.
            let (rm1, rv1) = (ours.running_mean.as_tensor().clone(), ours.running_var.as_tensor().clone());
            let e1 = ours.forward_relu_t(x.as_tensor(), false, relu)?;
            let mut e2 = theirs.forward_t(x.as_tensor(), false)?;
            if relu {
                e2 = e2.relu()?;
            }
            assert!(max_diff(&e1, &e2)? < 1e-12, "evaluation (relu {relu})");
            assert!(max_diff(&rm1, theirs.running_mean())? < 1e-14, "running mean");
            assert!(max_diff(&rv1, theirs.running_var())? < 1e-14, "running variance (unbiased)");
            assert!(rm1.to_vec1::<f64>()?.iter().any(|v| v.abs() > 0.1 * config.momentum), "the running mean moved");
            assert!(
                ours.fallback.running_mean().to_vec1::<f64>()? == rm1.to_vec1::<f64>()?,
                "one storage for both paths"
            );
        }
        Ok(())
    }
}
