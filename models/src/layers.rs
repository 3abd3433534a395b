//! Layers the models share that candle lacks or that must draw from the suite's generator.

use std::sync::{Arc, Mutex};

use candle::{DType, ModuleT, Result, Tensor, D};

use crate::cpu::{contiguous, valid_columns};
use crate::rng::{RngState, SeededRng};

/// Dropout with seeded masks. candle's `ops::dropout` draws from an unseeded generator; here a
/// random keep-mask (scaled by `1 / (1 - p)`) is drawn once per layer from the run's generator,
/// uploaded, and every training step reads it at a random offset from that generator: the
/// same seed gives the same masks, each element is kept with probability `1 - p`, and no host
/// random numbers are made per step (which would dominate a step on a GPU). Masks of
/// consecutive steps are shifts of one another rather than independent.
///
/// Its generators are state of the run: [`Dropout::state`] and [`Dropout::restore`] (through
/// [`Params`](crate::Params) for the layers a model registers) continue the same masks after a
/// checkpoint.
#[derive(Clone, Debug)]
pub struct Dropout {
    p: f64,
    state: Arc<Mutex<DropState>>,
}

#[derive(Debug)]
struct DropState {
    /// Draws each step's offset into the mask.
    rng: SeededRng,
    /// Draws the masks.
    mask_rng: SeededRng,
    /// The mask generator before the current mask was drawn, and the mask's length: what it
    /// takes to draw the same mask again after a restore.
    drawn: Option<(RngState, usize)>,
    /// The mask twice over, so that any window of `len / 2` elements is contiguous.
    doubled: Option<Tensor>,
}

/// Where a [`Dropout`] layer's generators are, for checkpoints.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DropoutState {
    pub rng: RngState,
    pub mask_rng: RngState,
    pub drawn: Option<(RngState, usize)>,
}

impl Dropout {
    pub fn new(p: f64, rng: SeededRng) -> Self {
        let mask_rng = rng.fork("mask");
        Self { p, state: Arc::new(Mutex::new(DropState { rng, mask_rng, drawn: None, doubled: None })) }
    }

    /// The layer's generators now.
    pub fn state(&self) -> DropoutState {
        let s = self.state.lock().expect("dropout lock");
        DropoutState { rng: s.rng.state(), mask_rng: s.mask_rng.state(), drawn: s.drawn.clone() }
    }

    /// Continues from a saved [`Dropout::state`]: the next masks are those the saved layer
    /// would have used.
    pub fn restore(&self, saved: &DropoutState) {
        let mut s = self.state.lock().expect("dropout lock");
        s.rng = SeededRng::from_state(saved.rng.clone());
        s.mask_rng = SeededRng::from_state(saved.mask_rng.clone());
        s.drawn = saved.drawn.clone();
        s.doubled = None;
    }
}

fn keep_mask(rng: &mut SeededRng, n: usize, p: f64) -> Vec<f32> {
    let scale = 1.0 / (1.0 - p) as f32;
    (0..n).map(|_| if rng.bernoulli(p) { 0.0 } else { scale }).collect()
}

impl ModuleT for Dropout {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(xs.clone());
        }
        let n = xs.elem_count();
        let mut state = self.state.lock().expect("dropout lock");
        let on_device = |d: &Tensor| d.device().location() == xs.device().location();
        if state.doubled.as_ref().is_none_or(|d| !on_device(d)) {
            // After a restore (or on another device): the current mask, drawn again.
            if let Some((before, len)) = state.drawn.clone().filter(|&(_, len)| len >= n) {
                let keep = keep_mask(&mut SeededRng::from_state(before), len, self.p);
                let mask = Tensor::from_vec(keep, len, xs.device())?;
                state.doubled = Some(Tensor::cat(&[&mask, &mask], 0)?);
            }
        }
        if state.doubled.as_ref().is_none_or(|d| d.elem_count() < 2 * n) {
            let before = state.mask_rng.state();
            let keep = keep_mask(&mut state.mask_rng, n, self.p);
            state.drawn = Some((before, n));
            let mask = Tensor::from_vec(keep, n, xs.device())?;
            state.doubled = Some(Tensor::cat(&[&mask, &mask], 0)?);
        }
        let doubled = state.doubled.clone().expect("made above");
        let offset = state.rng.below(doubled.elem_count() / 2);
        let mask = doubled.narrow(0, offset, n)?.reshape(xs.shape())?.to_dtype(xs.dtype())?;
        xs * mask
    }
}

/// Mean over the spatial dimensions: (N, C, H, W) -> (N, C).
pub fn global_avg_pool(xs: &Tensor) -> Result<Tensor> {
    xs.flatten_from(2)?.mean(D::Minus1)
}

/// Max pooling with a `kernel` x `kernel` window, `stride` and `padding` (candle's pooling has no
/// padding, and its backward pass is right only when the kernel equals the stride). On the CPU
/// in f32, one pass with the argmax kept for the gradient, as PyTorch. Elsewhere the maximum of
/// the window's shifted, subsampled views over a padding of the lowest finite value (which
/// never wins), differentiable on any device; there, elements that tie for a window's maximum
/// each receive its gradient.
pub fn max_pool2d(xs: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    if xs.device().is_cpu() && xs.dtype() == DType::F32 {
        let (_, _, h, w) = xs.dims4()?;
        if h + 2 * padding >= kernel && w + 2 * padding >= kernel {
            return xs.contiguous()?.apply_op1(MaxPool { kernel, stride, padding, argmax: Mutex::new(None) });
        }
    }
    max_pool2d_composed(xs, kernel, stride, padding)
}

/// Max pooling on the CPU in one pass, keeping each output's argmax for the backward pass
/// (which routes each gradient to that one element, as PyTorch does).
struct MaxPool {
    kernel: usize,
    stride: usize,
    padding: usize,
    /// The argmax of the forward pass, taken by the backward pass.
    argmax: Mutex<Option<Vec<u32>>>,
}

impl MaxPool {
    fn out_size(&self, size: usize) -> usize {
        (size + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// The maxima, and for each the flat index of its element within its (n, c) plane. The inner
    /// loop runs over the output columns whose input column is inside the image, branch-free.
    fn pool(&self, x: &[f32], (n, c, h, w): (usize, usize, usize, usize)) -> (Vec<f32>, Vec<u32>) {
        use rayon::prelude::*;
        let (ho, wo) = (self.out_size(h), self.out_size(w));
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let mut out = vec![f32::NEG_INFINITY; n * c * ho * wo];
        let mut arg = vec![u32::MAX; n * c * ho * wo];
        out.par_chunks_mut(ho * wo).zip(arg.par_chunks_mut(ho * wo)).enumerate().for_each(|(plane_index, (o, a))| {
            let plane = &x[plane_index * h * w..(plane_index + 1) * h * w];
            for oy in 0..ho {
                let best = &mut o[oy * wo..(oy + 1) * wo];
                let at = &mut a[oy * wo..(oy + 1) * wo];
                for ky in 0..k {
                    let iy = (oy * s + ky) as isize - p as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let row = &plane[iy as usize * w..(iy as usize + 1) * w];
                    let base = iy as u32 * w as u32;
                    for kx in 0..k {
                        let (lo, hi, start) = valid_columns(w, wo, p, s, kx);
                        if lo >= hi {
                            continue;
                        }
                        let src = row[start..].iter().step_by(s);
                        let cells = best[lo..hi].iter_mut().zip(at[lo..hi].iter_mut());
                        for (j, ((b, t), &v)) in cells.zip(src).enumerate() {
                            let better = v > *b;
                            *b = if better { v } else { *b };
                            *t = if better { base + (start + j * s) as u32 } else { *t };
                        }
                    }
                }
            }
        });
        (out, arg)
    }
}

impl candle::CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "optbench-max-pool2d"
    }

    fn cpu_fwd(
        &self,
        storage: &candle::CpuStorage,
        layout: &candle::Layout,
    ) -> Result<(candle::CpuStorage, candle::Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        let candle::CpuStorage::F32(data) = storage else { candle::bail!("max_pool2d: f32 only") };
        let (out, argmax) = self.pool(contiguous(data, layout, "max_pool2d", "input")?, (n, c, h, w));
        *self.argmax.lock().expect("pool lock") = Some(argmax);
        Ok((candle::CpuStorage::F32(out), (n, c, self.out_size(h), self.out_size(w)).into()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = arg.dims4()?;
        let at = match self.argmax.lock().expect("pool lock").take() {
            Some(at) => at,
            None => self.pool(&arg.contiguous()?.flatten_all()?.to_vec1::<f32>()?, (n, c, h, w)).1,
        };
        let grads = grad_res.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let per_plane = self.out_size(h) * self.out_size(w);
        let mut dx = vec![0f32; n * c * h * w];
        use rayon::prelude::*;
        dx.par_chunks_mut(h * w).zip(at.par_chunks(per_plane).zip(grads.par_chunks(per_plane))).for_each(
            |(dxp, (atp, gp))| {
                for (&i, &g) in atp.iter().zip(gp) {
                    if i != u32::MAX {
                        dxp[i as usize] += g;
                    }
                }
            },
        );
        Ok(Some(Tensor::from_vec(dx, (n, c, h, w), arg.device())?))
    }
}

/// [`max_pool2d`] from differentiable tensor ops, for other devices and dtypes.
fn max_pool2d_composed(xs: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let (n, c, h, w) = xs.dims4()?;
    let padded = if padding > 0 {
        let low = match xs.dtype() {
            DType::F64 => f64::MIN,
            _ => f32::MIN as f64,
        };
        let rows = Tensor::full(low, (n, c, padding, w), xs.device())?.to_dtype(xs.dtype())?;
        let x = Tensor::cat(&[&rows, xs, &rows], 2)?;
        let cols = Tensor::full(low, (n, c, h + 2 * padding, padding), xs.device())?.to_dtype(xs.dtype())?;
        Tensor::cat(&[&cols, &x, &cols], 3)?
    } else {
        xs.clone()
    };
    let (hp, wp) = (h + 2 * padding, w + 2 * padding);
    if hp < kernel || wp < kernel {
        candle::bail!("max_pool2d: a {kernel}x{kernel} window does not fit a {h}x{w} input padded by {padding}")
    }
    let (ho, wo) = ((hp - kernel) / stride + 1, (wp - kernel) / stride + 1);
    // Every (dy, dx) offset of the window: the input at rows dy, dy + stride, ... and likewise
    // for columns.
    let subsample = |t: Tensor, dim: usize, count: usize| -> Result<Tensor> {
        if stride == 1 {
            return Ok(t);
        }
        // Take `count * stride` elements (padding with the last rows if needed), view them as
        // (count, stride) and keep the first of each pair.
        let len = t.dim(dim)?;
        let need = count * stride;
        let t = if len < need {
            let mut times = vec![1; t.rank()];
            times[dim] = need - len;
            let extra = t.narrow(dim, len - 1, 1)?.repeat(times)?;
            Tensor::cat(&[&t, &extra], dim)?
        } else {
            t.narrow(dim, 0, need)?
        };
        let mut dims = t.dims().to_vec();
        dims[dim] = count;
        dims.insert(dim + 1, stride);
        t.reshape(dims)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
    };
    let mut out: Option<Tensor> = None;
    for dy in 0..kernel {
        let rows = subsample(padded.narrow(2, dy, (ho - 1) * stride + 1)?, 2, ho)?;
        for dx in 0..kernel {
            let view = subsample(rows.narrow(3, dx, (wo - 1) * stride + 1)?, 3, wo)?;
            out = Some(match out {
                None => view,
                Some(m) => m.maximum(&view)?,
            });
        }
    }
    Ok(out.expect("the window has at least one element"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    /// Counts the elements of a tensor equal to zero.
    fn zeros(xs: &Tensor) -> Result<usize> {
        Ok(xs.eq(0.0)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()? as usize)
    }

    #[test]
    fn the_cpu_op_and_the_composition_agree() -> Result<()> {
        let x = Tensor::from_vec(SeededRng::new(3).normal_vec(2 * 3 * 9 * 7, 0.0, 1.0), (2, 3, 9, 7), &Device::Cpu)?;
        for (k, s, p) in [(3, 2, 1), (3, 1, 1), (2, 2, 0), (3, 2, 0)] {
            let a = max_pool2d(&x, k, s, p)?.flatten_all()?.to_vec1::<f32>()?;
            let b = max_pool2d_composed(&x, k, s, p)?.flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(a, b, "{k} {s} {p}");
            let va = candle::Var::from_tensor(&x)?;
            let ga = max_pool2d(va.as_tensor(), k, s, p)?.sum_all()?.backward()?;
            let gb = max_pool2d_composed(va.as_tensor(), k, s, p)?.sum_all()?.backward()?;
            let ga = ga.get(va.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?;
            let gb = gb.get(va.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(ga, gb, "gradients {k} {s} {p} (no ties in random data)");
        }
        Ok(())
    }

    #[test]
    fn padded_strided_max_pooling() -> Result<()> {
        // A 1x1x4x4 input 0..16: 3x3 windows, stride 2, padding 1 -> 2x2.
        let x = Tensor::arange(0f32, 16., &Device::Cpu)?.reshape((1, 1, 4, 4))?;
        let y = max_pool2d(&x, 3, 2, 1)?;
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, [5., 7., 13., 15.]);
        // Stride 1, padding 1 keeps the size; negative inputs are not beaten by the padding.
        let neg = x.affine(-1.0, 0.0)?;
        let y = max_pool2d(&neg, 3, 1, 1)?;
        assert_eq!(y.dims(), &[1, 1, 4, 4]);
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?[0], 0.0);
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?[15], -10.0);
        // The gradient reaches each window's maximum.
        let v = candle::Var::from_tensor(&x)?;
        let g = max_pool2d(v.as_tensor(), 3, 2, 1)?.sum_all()?.backward()?;
        let g = g.get(v.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(g.iter().sum::<f32>(), 4.0);
        assert_eq!((g[5], g[7], g[13], g[15]), (1.0, 1.0, 1.0, 1.0));
        // Odd sizes with stride 2 (the subsampling pads internally).
        let odd = Tensor::arange(0f32, 25., &Device::Cpu)?.reshape((1, 1, 5, 5))?;
        assert_eq!(
            max_pool2d(&odd, 3, 2, 1)?.flatten_all()?.to_vec1::<f32>()?,
            [6., 8., 9., 16., 18., 19., 21., 23., 24.]
        );
        Ok(())
    }

    #[test]
    fn seeded_dropout_keeps_the_rate_and_repeats_with_the_seed() -> Result<()> {
        let x = Tensor::ones((8, 16, 10, 10), DType::F32, &Device::Cpu)?;
        let d = Dropout::new(0.2, SeededRng::new(5));
        let a = d.forward_t(&x, true)?;
        let dropped = zeros(&a)? as f64 / x.elem_count() as f64;
        assert!((dropped - 0.2).abs() < 0.02, "{dropped}");
        let mean = a.mean_all()?.to_scalar::<f32>()?;
        assert!((mean - 1.0).abs() < 0.05, "inverted scaling keeps the mean: {mean}");
        let b = d.forward_t(&x, true)?;
        assert_ne!(a.flatten_all()?.to_vec1::<f32>()?, b.flatten_all()?.to_vec1::<f32>()?, "a new mask per step");
        let d2 = Dropout::new(0.2, SeededRng::new(5));
        assert_eq!(d2.forward_t(&x, true)?.flatten_all()?.to_vec1::<f32>()?, a.flatten_all()?.to_vec1::<f32>()?);
        assert_eq!(d.forward_t(&x, false)?.flatten_all()?.to_vec1::<f32>()?, x.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }

    #[test]
    fn a_restored_dropout_continues_with_the_same_masks() -> Result<()> {
        let x = Tensor::ones((4, 6), DType::F32, &Device::Cpu)?;
        let masks = |d: &Dropout, k: usize| -> Result<Vec<Vec<f32>>> {
            (0..k).map(|_| d.forward_t(&x, true)?.flatten_all()?.to_vec1::<f32>()).collect()
        };
        let whole = Dropout::new(0.3, SeededRng::new(9));
        let all = masks(&whole, 5)?;
        let first = Dropout::new(0.3, SeededRng::new(9));
        assert_eq!(masks(&first, 2)?, all[..2]);
        let resumed = Dropout::new(0.3, SeededRng::new(1));
        resumed.restore(&first.state());
        assert_eq!(masks(&resumed, 3)?, all[2..]);
        Ok(())
    }
}
