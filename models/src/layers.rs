//! Layers the models share that candle lacks or that must draw from the suite's generator.

use std::sync::{Arc, Mutex};

use candle::{DType, ModuleT, Result, Tensor, D};

use crate::cpu::{contiguous, valid_columns, Float};
use crate::rng::{philox4x32_10, SeededRng, PHILOX_LANES};

/// Dropout as PyTorch's `nn.Dropout(p)`: in training, each element is kept with probability
/// `1 - p`, independently of every other element and of every other call, and kept values are
/// scaled by `1 / (1 - p)` (computed in f32, as PyTorch's `noise.div_(1 - p)`); in evaluation
/// the identity.
///
/// The masks come from the counter-based generator [`philox4x32_10`] (candle's `ops::dropout`
/// draws from an unseeded generator), keyed by the layer's seed (drawn from the run's generator
/// when the model is built), with the counter `(block, call)`: `call` counts the layer's
/// training-mode calls (one layer used several times in a step, as DenseNet's, gets a new mask
/// at each use) and `block` is a function of the element's index. Elements go in groups of 32,
/// so that eight blocks are generated at once: element `i` is word `(i / 8) % 4` of block
/// `8 (i / 32) + i % 8`, and is kept when that word is below `(1 - p) 2^32` (the keep
/// probability is `1 - p` to within 2^-33). A mask is so a pure function of
/// `(seed, call, index)`: made in parallel over elements, never stored (the backward pass makes
/// it again), the same on every machine, and a checkpoint holds only the call counter
/// ([`DropoutState`]).
///
/// On the CPU in f32 / f64 the mask is made and applied in one pass (rayon over chunks of the
/// tensor). On other devices and dtypes the mask is made on the host and uploaded, so that the
/// masks are the same everywhere; a device kernel for it is issue 15's.
#[derive(Clone, Debug)]
pub struct Dropout {
    p: f64,
    state: Arc<Mutex<DropoutState>>,
}

/// Where a [`Dropout`] layer's masks are, for checkpoints: its Philox key and how many
/// training-mode calls it has made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DropoutState {
    pub key: u64,
    pub calls: u64,
}

impl Dropout {
    /// A dropout layer of rate `p` (in `[0, 1]`) keyed by the next number of `rng`.
    pub fn new(p: f64, mut rng: SeededRng) -> Self {
        let key = rng.next_u64();
        Self { p, state: Arc::new(Mutex::new(DropoutState { key, calls: 0 })) }
    }

    /// The rate.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The layer's key and call counter now.
    pub fn state(&self) -> DropoutState {
        *self.state.lock().expect("dropout lock")
    }

    /// Continues from a saved [`Dropout::state`]: the next masks are those the saved layer
    /// would have used.
    pub fn restore(&self, saved: &DropoutState) {
        *self.state.lock().expect("dropout lock") = *saved;
    }

    /// The mask of the next training-mode call, and that call's counter.
    fn next_mask(&self) -> MaskOp {
        let mut state = self.state.lock().expect("dropout lock");
        let mask = MaskOp { key: state.key, call: state.calls, p: self.p };
        state.calls += 1;
        mask
    }
}

/// One call's mask, a pure function of `(key, call, element)` laid out as [`Dropout`] says. As
/// a candle op it multiplies its operand by the scaled mask; its backward pass is the same op on
/// the gradient.
#[derive(Clone, Copy, Debug)]
struct MaskOp {
    key: u64,
    call: u64,
    p: f64,
}

/// Elements per rayon task (a multiple of the groups of 32).
const CHUNK: usize = 1 << 14;

/// Elements of one group (see [`MaskOp`]).
const GROUP: usize = 4 * PHILOX_LANES;

impl MaskOp {
    /// Keep when the 32-bit word is below this: `(1 - p) 2^32`, rounded (at most `2^32 - 1`, so
    /// that a rate below 2^-33 keeps with probability `1 - 2^-32`; a rate of 0 never gets here).
    fn threshold(&self) -> u32 {
        ((1.0 - self.p.clamp(0.0, 1.0)) * 4_294_967_296.0).round().min(u32::MAX as f64) as u32
    }

    /// The Philox counters of group `g`, word-major.
    #[inline(always)]
    fn counters(&self, g: u64) -> [[u32; PHILOX_LANES]; 4] {
        let b0 = g * PHILOX_LANES as u64;
        [
            std::array::from_fn(|l| (b0 + l as u64) as u32),
            std::array::from_fn(|l| ((b0 + l as u64) >> 32) as u32),
            [self.call as u32; PHILOX_LANES],
            [(self.call >> 32) as u32; PHILOX_LANES],
        ]
    }

    fn key_words(&self) -> [u32; 2] {
        [self.key as u32, (self.key >> 32) as u32]
    }

    /// The 32 words of group `g`, in element order, one block at a time.
    fn group_words(&self, g: u64) -> [u32; GROUP] {
        let c = self.counters(g);
        let mut words = [0u32; GROUP];
        for l in 0..PHILOX_LANES {
            let block = philox4x32_10([c[0][l], c[1][l], c[2][l], c[3][l]], self.key_words());
            for w in 0..4 {
                words[PHILOX_LANES * w + l] = block[w];
            }
        }
        words
    }

    /// `x * mask / (1 - p)` into `out` for elements starting at `first` (a multiple of 32), with
    /// AVX2 where the processor has it.
    fn apply_into<T: Float>(&self, first: usize, x: &[T], out: &mut [T], scale: T) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor has AVX2 (checked just above).
            return unsafe { self.apply_into_avx2(first, x, out, scale) };
        }
        self.apply_groups(first, x, out, scale, |g| self.group_words(g))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn apply_into_avx2<T: Float>(&self, first: usize, x: &[T], out: &mut [T], scale: T) {
        let key = self.key_words();
        self.apply_groups(first, x, out, scale, |g| {
            // SAFETY: this runs only where the processor has AVX2.
            let words = unsafe { crate::rng::philox4x32_10_lanes_avx2(self.counters(g), key) };
            let mut flat = [0u32; GROUP];
            for (w, lanes) in words.iter().enumerate() {
                flat[w * PHILOX_LANES..(w + 1) * PHILOX_LANES].copy_from_slice(lanes);
            }
            flat
        })
    }

    /// Applies the mask group by group, the words of group `g` from `words(g)`.
    #[inline(always)]
    fn apply_groups<T: Float>(
        &self,
        first: usize,
        x: &[T],
        out: &mut [T],
        scale: T,
        words: impl Fn(u64) -> [u32; GROUP],
    ) {
        debug_assert_eq!(first % GROUP, 0);
        let t = self.threshold();
        let zero = T::from_f64(0.0);
        for (g, (o, xs)) in out.chunks_mut(GROUP).zip(x.chunks(GROUP)).enumerate() {
            let w = words((first / GROUP + g) as u64);
            for ((o, &v), &w) in o.iter_mut().zip(xs).zip(&w) {
                *o = if w < t { v * scale } else { zero };
            }
        }
    }

    /// The mask of `n` elements, scaled, on the host (for the devices without the fused op).
    fn host_mask(&self, n: usize) -> Vec<f32> {
        self.run(&vec![1f32; n], self.scale_f32())
    }

    fn scale_f32(&self) -> f32 {
        if self.p >= 1.0 {
            0.0
        } else {
            1.0 / (1.0 - self.p) as f32
        }
    }

    fn scale_f64(&self) -> f64 {
        if self.p >= 1.0 {
            0.0
        } else {
            1.0 / (1.0 - self.p)
        }
    }

    fn run<T: Float>(&self, x: &[T], scale: T) -> Vec<T> {
        use rayon::prelude::*;
        let mut out = crate::cpu::output::<T>(x.len());
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .enumerate()
            .for_each(|(c, (o, xs))| self.apply_into(c * CHUNK, xs, o, scale));
        out
    }
}

impl candle::CustomOp1 for MaskOp {
    fn name(&self) -> &'static str {
        "optbench-dropout"
    }

    fn cpu_fwd(
        &self,
        storage: &candle::CpuStorage,
        layout: &candle::Layout,
    ) -> Result<(candle::CpuStorage, candle::Shape)> {
        use candle::CpuStorage;
        let out = match storage {
            CpuStorage::F32(data) => {
                CpuStorage::F32(self.run(contiguous(data, layout, "dropout", "input")?, self.scale_f32()))
            }
            CpuStorage::F64(data) => {
                CpuStorage::F64(self.run(contiguous(data, layout, "dropout", "input")?, self.scale_f64()))
            }
            _ => candle::bail!("dropout: the fused CPU op takes f32 or f64 (others use the uploaded mask)"),
        };
        Ok((out, layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(apply_mask(grad_res, *self)?))
    }
}

/// `xs` times the scaled mask of `op`: fused on the CPU in f32 / f64, else through a mask made on
/// the host.
fn apply_mask(xs: &Tensor, op: MaskOp) -> Result<Tensor> {
    if xs.device().is_cpu() && matches!(xs.dtype(), DType::F32 | DType::F64) {
        return xs.contiguous()?.apply_op1(op);
    }
    let mask = Tensor::from_vec(op.host_mask(xs.elem_count()), xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
    xs * mask
}

impl ModuleT for Dropout {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(xs.clone());
        }
        apply_mask(xs, self.next_mask())
    }
}

/// Channel dropout as PyTorch's `nn.Dropout2d(p)`: in training, each (sample, channel) plane of
/// an (N, C, ...) input is zeroed with probability `p` and otherwise scaled by `1 / (1 - p)`,
/// one draw per plane: draw `n C + c` of the same generator as [`Dropout`] (whose state, and so
/// checkpoints, it shares). The N C draws are made on the host and broadcast over the planes.
#[derive(Clone, Debug)]
pub struct Dropout2d(Dropout);

impl Dropout2d {
    pub fn new(p: f64, rng: SeededRng) -> Self {
        Self(Dropout::new(p, rng))
    }
}

/// A [`Dropout`] (for instance from [`ParamBuilder::dropout`](crate::ParamBuilder::dropout),
/// which registers it for checkpoints) drawing per channel instead.
impl From<Dropout> for Dropout2d {
    fn from(dropout: Dropout) -> Self {
        Self(dropout)
    }
}

impl ModuleT for Dropout2d {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.0.p == 0.0 {
            return Ok(xs.clone());
        }
        let dims = xs.dims();
        if dims.len() < 2 {
            candle::bail!("Dropout2d takes an (N, C, ...) input, not one of shape {dims:?}")
        }
        let mut plane = vec![1; dims.len()];
        plane[0] = dims[0];
        plane[1] = dims[1];
        let op = self.0.next_mask();
        let mask = Tensor::from_vec(op.host_mask(dims[0] * dims[1]), plane, xs.device())?.to_dtype(xs.dtype())?;
        xs.broadcast_mul(&mask)
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
    use candle::{Device, Var};

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

    /// The masks of `calls` training calls of `d` on ones of `dims`: 1 kept, 0 dropped.
    fn masks(d: &dyn ModuleT, dims: &[usize], calls: usize) -> Result<Vec<Vec<u8>>> {
        let x = Tensor::ones(dims, DType::F32, &Device::Cpu)?;
        (0..calls)
            .map(|_| {
                Ok(d.forward_t(&x, true)?.flatten_all()?.to_vec1::<f32>()?.iter().map(|&v| (v != 0.0) as u8).collect())
            })
            .collect()
    }

    /// Whether `observed` is within `k` binomial standard errors of `n p`.
    fn within(observed: usize, n: usize, p: f64, k: f64) -> bool {
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        (observed as f64 - n as f64 * p).abs() <= k * sd
    }

    #[test]
    fn dropout_keeps_each_element_with_probability_one_minus_p_and_scales_it() -> Result<()> {
        for p in [0.1, 0.2, 0.5, 0.8] {
            let d = Dropout::new(p, SeededRng::new(5));
            let x = Tensor::ones((8, 16, 10, 10), DType::F32, &Device::Cpu)?;
            let y = d.forward_t(&x, true)?.flatten_all()?.to_vec1::<f32>()?;
            let kept = y.iter().filter(|&&v| v != 0.0).count();
            assert!(within(kept, y.len(), 1.0 - p, 4.0), "p {p}: kept {kept} of {}", y.len());
            let scale = 1.0 / (1.0 - p) as f32;
            assert!(y.iter().all(|&v| v == 0.0 || v == scale), "kept values are 1 / (1 - p)");
        }
        // Evaluation, and p = 0, are the identity; p = 1 drops everything.
        let x = Tensor::arange(0f32, 12., &Device::Cpu)?.reshape((3, 4))?;
        let d = Dropout::new(0.5, SeededRng::new(1));
        assert_eq!(d.forward_t(&x, false)?.to_vec2::<f32>()?, x.to_vec2::<f32>()?);
        assert_eq!(d.state().calls, 0, "evaluation draws nothing");
        assert_eq!(Dropout::new(0.0, SeededRng::new(1)).forward_t(&x, true)?.to_vec2::<f32>()?, x.to_vec2::<f32>()?);
        assert_eq!(Dropout::new(1.0, SeededRng::new(1)).forward_t(&x, true)?.sum_all()?.to_scalar::<f32>()?, 0.0);
        Ok(())
    }

    #[test]
    fn masks_are_independent_across_calls() -> Result<()> {
        // Consecutive masks of one layer: the (kept, kept) pairs occur at the rate (1 - p)^2 and
        // the correlation of the masks is near 0 (within 4 standard errors, 1 / sqrt(n)).
        let p = 0.3;
        let d = Dropout::new(p, SeededRng::new(11));
        let all = masks(&d, &[64, 1000], 6)?;
        let n = all[0].len();
        for pair in all.windows(2) {
            let both = pair[0].iter().zip(&pair[1]).filter(|(a, b)| **a == 1 && **b == 1).count();
            assert!(within(both, n, (1.0 - p) * (1.0 - p), 4.0), "(kept, kept) pairs {both} of {n}");
            let mean = |m: &[u8]| m.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let (ma, mb) = (mean(&pair[0]), mean(&pair[1]));
            let cov = pair[0].iter().zip(&pair[1]).map(|(&a, &b)| (a as f64 - ma) * (b as f64 - mb)).sum::<f64>();
            let corr = cov / (n as f64 * (ma * (1.0 - ma) * mb * (1.0 - mb)).sqrt());
            assert!(corr.abs() < 4.0 / (n as f64).sqrt(), "correlation of consecutive masks {corr}");
        }
        // No mask is a cyclic shift of the one before (the former scheme's masks all were).
        let small = masks(&d, &[2, 50], 20)?;
        for pair in small.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let shifted = (0..a.len()).any(|s| (0..a.len()).all(|i| a[(i + s) % a.len()] == b[i]));
            assert!(!shifted, "one mask is a shift of the other");
        }
        Ok(())
    }

    #[test]
    fn masks_are_independent_across_elements() -> Result<()> {
        // Within one mask, neighbours (inside and across Philox blocks of 4) are kept together at
        // the rate (1 - p)^2, and runs of drops are as long as a geometric law says.
        let p = 0.5;
        let m = masks(&Dropout::new(p, SeededRng::new(3)), &[256 * 1024], 1)?.remove(0);
        for lag in [1usize, 2, 3, 4, 5, 8, 64] {
            let both = (0..m.len() - lag).filter(|&i| m[i] == 1 && m[i + lag] == 1).count();
            assert!(within(both, m.len() - lag, (1.0 - p) * (1.0 - p), 4.0), "lag {lag}: {both}");
        }
        for word in 0..4 {
            let kept = m.iter().skip(word).step_by(4).filter(|&&v| v == 1).count();
            assert!(within(kept, m.len() / 4, 1.0 - p, 4.0), "word {word} of the blocks: {kept}");
        }
        Ok(())
    }

    #[test]
    fn the_same_seed_gives_the_same_masks_and_other_seeds_other_ones() -> Result<()> {
        let a = masks(&Dropout::new(0.4, SeededRng::new(9)), &[4, 33], 3)?;
        assert_eq!(a, masks(&Dropout::new(0.4, SeededRng::new(9)), &[4, 33], 3)?);
        assert_ne!(a, masks(&Dropout::new(0.4, SeededRng::new(10)), &[4, 33], 3)?);
        // A mask is a function of (seed, call, index): a longer input starts with the same mask.
        let long = masks(&Dropout::new(0.4, SeededRng::new(9)), &[8, 33], 3)?;
        for (short, long) in a.iter().zip(&long) {
            assert_eq!(short[..], long[..short.len()]);
        }
        Ok(())
    }

    #[test]
    fn a_restored_dropout_continues_with_the_same_masks() -> Result<()> {
        let whole = Dropout::new(0.3, SeededRng::new(9));
        let all = masks(&whole, &[4, 6], 5)?;
        let first = Dropout::new(0.3, SeededRng::new(9));
        assert_eq!(masks(&first, &[4, 6], 2)?, all[..2]);
        let saved: DropoutState = serde_json::from_str(&serde_json::to_string(&first.state()).unwrap()).unwrap();
        let resumed = Dropout::new(0.3, SeededRng::new(1));
        resumed.restore(&saved);
        assert_eq!(masks(&resumed, &[4, 6], 3)?, all[2..]);
        Ok(())
    }

    #[test]
    fn the_gradient_goes_through_the_same_mask_and_every_path_agrees() -> Result<()> {
        let x = Tensor::from_vec(SeededRng::new(2).normal_vec(5 * 37, 0.0, 1.0), (5, 37), &Device::Cpu)?;
        let v = Var::from_tensor(&x)?;
        let d = Dropout::new(0.25, SeededRng::new(4));
        let y = d.forward_t(v.as_tensor(), true)?;
        let g = y.sum_all()?.backward()?;
        let g = g.get(v.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?;
        let (yv, xv) = (y.flatten_all()?.to_vec1::<f32>()?, x.flatten_all()?.to_vec1::<f32>()?);
        let scale = 1.0 / 0.75f32;
        for ((gi, yi), xi) in g.iter().zip(&yv).zip(&xv) {
            assert_eq!(*gi == 0.0, *yi == 0.0, "dropped in the forward pass, no gradient");
            if *gi != 0.0 {
                assert_eq!((*gi, *yi), (scale, xi * scale), "the gradient is the scaled mask");
            }
        }
        // The mask made on the host (other devices and dtypes) is the fused op's, in f64 too, and
        // the AVX2 generator's words are the portable ones (a length that ends in a part group).
        let op = MaskOp { key: 77, call: 3, p: 0.25 };
        let ones = vec![1f32; 1000];
        let mut portable = vec![0f32; ones.len()];
        op.apply_groups(0, &ones, &mut portable, 2.0, |g| op.group_words(g));
        assert_eq!(op.run(&ones, 2.0), portable);
        let fused = apply_mask(&x.ones_like()?, op)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(fused, op.host_mask(x.elem_count()));
        let fused64 = apply_mask(&x.ones_like()?.to_dtype(DType::F64)?, op)?.flatten_all()?.to_vec1::<f64>()?;
        assert_eq!(
            fused64.iter().map(|&v| v != 0.0).collect::<Vec<_>>(),
            fused.iter().map(|&v| v != 0.0).collect::<Vec<_>>()
        );
        let half = apply_mask(&x.ones_like()?.to_dtype(DType::BF16)?, op)?.to_dtype(DType::F32)?.flatten_all()?;
        assert_eq!(
            half.to_vec1::<f32>()?.iter().map(|&v| v != 0.0).collect::<Vec<_>>(),
            fused.iter().map(|&v| v != 0.0).collect::<Vec<_>>()
        );
        Ok(())
    }

    #[test]
    fn channel_dropout_draws_once_per_sample_and_channel() -> Result<()> {
        let p = 0.4;
        let d = Dropout2d::new(p, SeededRng::new(6));
        let (n, c, hw) = (32, 64, 9);
        let all = masks(&d, &[n, c, 3, 3], 4)?;
        for m in &all {
            let planes: Vec<&[u8]> = m.chunks(hw).collect();
            assert!(planes.iter().all(|pl| pl.iter().all(|&v| v == pl[0])), "a plane is kept or dropped whole");
            let kept = planes.iter().filter(|pl| pl[0] == 1).count();
            assert!(within(kept, n * c, 1.0 - p, 4.0), "planes kept {kept} of {}", n * c);
        }
        assert_ne!(all[0], all[1], "a new draw per call");
        // Restoring the shared state continues the draws.
        let resumed = Dropout2d::from(Dropout::new(p, SeededRng::new(0)));
        resumed.0.restore(&DropoutState { calls: 2, ..d.0.state() });
        assert_eq!(masks(&resumed, &[n, c, 3, 3], 2)?, all[2..]);
        Ok(())
    }
}
