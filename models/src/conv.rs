//! 2-D convolution with a CPU implementation whose backward pass is as fast as its forward.
//!
//! candle 0.11's CPU `conv2d` is fine forward, but its backward computes the input gradient
//! with `conv_transpose2d` (direct loops) and the kernel gradient as a convolution whose
//! "kernel" is the whole output gradient: on ResNet-18 at batch 128 the backward took 12.8 s
//! where PyTorch takes 2.0 s. Here forward and backward are im2col + GEMM per image, images
//! in parallel, nothing kept between the passes but the input and the kernel (as PyTorch):
//!
//! ```text
//! forward:      out_n (Cout x L)   = W (Cout x CKK) . cols(x_n) (CKK x L)
//! input grad:   dx_n = col2im(W^T (CKK x Cout) . dout_n (Cout x L))
//! kernel grad:  dW   = sum_n dout_n (Cout x L) . cols(x_n)^T (L x CKK)
//! ```
//! with `L = Hout Wout` and `CKK = Cin k k`. When a plane is small (ResNet-18's last stages at
//! CIFAR size: L = 64 and 16), one image per GEMM packs the kernel or streams the kernel
//! gradient for too little work, so `G` images go side by side into one (CKK x G L) matrix
//! (`group_size`): for the kernel gradient the sum over images then runs inside the GEMM, in
//! a different order than one GEMM per image (equal at the rounding level; the tests' tolerances
//! hold). Other devices and dtypes use candle's `conv2d`.
//! The tests below check values and gradients against candle's.

use candle::{CpuStorage, CustomOp2, DType, Layout, Module, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu::{contiguous, dispatch2, matmul, output, valid_columns, Float, Threads};

/// The geometry of one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    h_out: usize,
    w_out: usize,
}

impl Geometry {
    fn l(&self) -> usize {
        self.h_out * self.w_out
    }

    fn ckk(&self) -> usize {
        self.c_in * self.k * self.k
    }

    /// The output columns whose input column is inside the image for kernel column `kx`.
    fn columns(&self, kx: usize) -> (usize, usize, usize) {
        valid_columns(self.w, self.w_out, self.pad, self.stride, kx)
    }

    /// A 1x1, stride-1, unpadded convolution: the image is its own im2col matrix.
    fn pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }
}

/// A per-thread scratch buffer for im2col matrices, grown as needed and kept between calls:
/// fresh large allocations page-fault and zero their pages on every step.
fn with_scratch<T: Float, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    use std::any::Any;
    use std::cell::RefCell;
    thread_local! {
        static SCRATCH: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|cell| {
        let mut buffers = cell.borrow_mut();
        let index = match buffers.iter().position(|b| b.is::<Vec<T>>()) {
            Some(i) => i,
            None => {
                buffers.push(Box::new(Vec::<T>::new()));
                buffers.len() - 1
            }
        };
        let buffer = buffers[index].downcast_mut::<Vec<T>>().expect("typed above");
        if buffer.len() < len {
            buffer.resize(len, T::zero());
        }
        f(&mut buffer[..len])
    })
}

/// Lays image `x` (Cin x H x W) out as its (CKK x L) im2col matrix into `cols`, whose rows are
/// `ld` apart: `ld = L` for one image, `G L` for the `j`-th of `G` images side by side (`cols`
/// then starts at column `j L`).
fn im2col<T: Float>(x: &[T], g: &Geometry, cols: &mut [T], ld: usize) {
    let l = g.l();
    for c in 0..g.c_in {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..g.k {
            for kx in 0..g.k {
                let row = &mut cols[((c * g.k + ky) * g.k + kx) * ld..][..l];
                if let Some(shift) = g.shift(ky, kx) {
                    shifted_copy(plane, row, g, shift);
                    continue;
                }
                let (lo, hi, first) = g.columns(kx);
                for oy in 0..g.h_out {
                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                    let out = &mut row[oy * g.w_out..(oy + 1) * g.w_out];
                    if iy < 0 || iy >= g.h as isize || lo >= hi {
                        out.fill(T::zero());
                        continue;
                    }
                    let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    out[..lo].fill(T::zero());
                    out[hi..].fill(T::zero());
                    if g.stride == 1 {
                        out[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
                    } else {
                        for (o, ix) in out[lo..hi].iter_mut().zip((first..).step_by(g.stride)) {
                            *o = src[ix];
                        }
                    }
                }
            }
        }
    }
}

/// Where the im2col row of kernel position (ky, kx) is one shifted copy of the input plane: with
/// stride 1 and `Wout = W` (ResNet's 3x3 convolutions with padding 1), output `(oy, ox)` reads
/// input `(oy + ky - pad, ox + kx - pad)`, a constant offset in the flattened plane. Then the
/// output rows `oy0..oy1` whose input row exists are one contiguous copy, apart from the
/// columns `lo..hi` of each row that fall inside the image: the copy wraps into the next row
/// there, and those few elements are zeroed after it.
#[derive(Clone, Copy, Debug)]
struct Shift {
    /// Output rows with an input row.
    oy0: usize,
    oy1: usize,
    /// Output columns with an input column.
    lo: usize,
    hi: usize,
    /// `input index - output index`, the same for every valid output.
    delta: isize,
}

impl Geometry {
    fn shift(&self, ky: usize, kx: usize) -> Option<Shift> {
        if self.stride != 1 || self.w_out != self.w {
            return None;
        }
        let (lo, hi, first) = self.columns(kx);
        let oy0 = self.pad.saturating_sub(ky).min(self.h_out);
        let oy1 = (self.h + self.pad).saturating_sub(ky).min(self.h_out).max(oy0);
        let delta = (ky as isize - self.pad as isize) * self.w as isize + first as isize - lo as isize;
        (lo < hi && oy0 < oy1).then_some(Shift { oy0, oy1, lo, hi, delta })
    }
}

impl Shift {
    /// The row's run `a..b` from its first valid output to its last (rows `w` apart), and where
    /// the run starts in the plane.
    fn run(&self, w: usize) -> (std::ops::Range<usize>, usize) {
        let (a, b) = (self.oy0 * w + self.lo, (self.oy1 - 1) * w + self.hi);
        (a..b, (a as isize + self.delta) as usize)
    }

    /// Zeroes the elements inside the run that wrapped: the columns past `hi` of each valid
    /// row and before `lo` of the next.
    fn zero_wrapped<T: Float>(&self, row: &mut [T], w: usize) {
        for oy in self.oy0..self.oy1 - 1 {
            row[oy * w + self.hi..(oy + 1) * w + self.lo].fill(T::zero());
        }
    }
}

/// [`im2col`]'s row for a [`Shift`]: zeros outside the valid rows and columns, the plane's
/// shifted elements inside.
fn shifted_copy<T: Float>(plane: &[T], row: &mut [T], g: &Geometry, s: Shift) {
    let (run, start) = s.run(g.w_out);
    row[..run.start].fill(T::zero());
    row[run.end..].fill(T::zero());
    row[run.clone()].copy_from_slice(&plane[start..start + run.len()]);
    s.zero_wrapped(row, g.w_out);
}

/// The adjoint of [`im2col`]: sums the (CKK x L) matrix `cols` (rows `ld` apart) into image `x`.
/// Where a row is a [`Shift`], its wrapped elements are zeroed in `cols` first and the row is
/// added in one contiguous run (each element of `x` gets the same terms in the same order,
/// plus zeros).
fn col2im<T: Float>(cols: &mut [T], g: &Geometry, x: &mut [T], ld: usize) {
    x.fill(T::zero());
    let l = g.l();
    for c in 0..g.c_in {
        let plane = &mut x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..g.k {
            for kx in 0..g.k {
                let row = &mut cols[((c * g.k + ky) * g.k + kx) * ld..][..l];
                if let Some(s) = g.shift(ky, kx) {
                    s.zero_wrapped(row, g.w_out);
                    let (run, start) = s.run(g.w_out);
                    for (d, &v) in plane[start..start + run.len()].iter_mut().zip(&row[run]) {
                        *d += v;
                    }
                    continue;
                }
                let (lo, hi, first) = g.columns(kx);
                if lo >= hi {
                    continue;
                }
                for oy in 0..g.h_out {
                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let dst = &mut plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    let src = &row[oy * g.w_out + lo..oy * g.w_out + hi];
                    if g.stride == 1 {
                        for (d, &v) in dst[first..first + hi - lo].iter_mut().zip(src) {
                            *d += v;
                        }
                    } else {
                        for (&v, ix) in src.iter().zip((first..).step_by(g.stride)) {
                            dst[ix] += v;
                        }
                    }
                }
            }
        }
    }
}

/// GEMM columns wanted per product. Below this a product packs the kernel (Cout x CKK) or
/// streams the kernel gradient for too little work: ResNet-18's last stage has L = 16 columns
/// per image for a 512 x 4608 kernel, so one image per GEMM moved 9.4 MB for 75 MFLOP.
/// `OPTBENCH_CONV_GROUP_COLUMNS` (read once) overrides the 512, for timing programs: 1 gives
/// one image per GEMM, the layout before grouping.
fn group_columns() -> usize {
    static COLUMNS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COLUMNS
        .get_or_init(|| std::env::var("OPTBENCH_CONV_GROUP_COLUMNS").ok().and_then(|v| v.parse().ok()).unwrap_or(512))
}

/// Images per GEMM: enough for [`group_columns`] columns, but at least one group per thread.
fn group_size(g: &Geometry) -> usize {
    let threads = rayon::current_num_threads().max(1);
    group_columns().div_ceil(g.l().max(1)).min(g.n.div_ceil(threads)).max(1)
}

/// Copies the `imgs` (rows x L) planes of `per_image` (image-major) into the (rows x imgs L)
/// matrix `wide`, image `j` at columns `j L..`.
fn to_wide<T: Float>(per_image: &[T], wide: &mut [T], (rows, l, imgs): (usize, usize, usize)) {
    for j in 0..imgs {
        for r in 0..rows {
            wide[r * imgs * l + j * l..][..l].copy_from_slice(&per_image[(j * rows + r) * l..][..l]);
        }
    }
}

/// The inverse of [`to_wide`].
fn from_wide<T: Float>(wide: &[T], per_image: &mut [T], (rows, l, imgs): (usize, usize, usize)) {
    for j in 0..imgs {
        for r in 0..rows {
            per_image[(j * rows + r) * l..][..l].copy_from_slice(&wide[r * imgs * l + j * l..][..l]);
        }
    }
}

/// `cols` (CKK x imgs L): the im2col matrices of `imgs` images of `x` side by side.
fn im2col_wide<T: Float>(x: &[T], g: &Geometry, cols: &mut [T], imgs: usize) {
    let image = g.c_in * g.h * g.w;
    for j in 0..imgs {
        im2col(&x[j * image..(j + 1) * image], g, &mut cols[j * g.l()..], imgs * g.l());
    }
}

fn forward<T: Float>(x: &[T], w: &[T], g: &Geometry) -> (Vec<T>, Shape) {
    let (l, ckk, image) = (g.l(), g.ckk(), g.c_in * g.h * g.w);
    let group = group_size(g);
    let mut out = output(g.n * g.c_out * l);
    out.par_chunks_mut(group * g.c_out * l).enumerate().for_each(|(gi, out_g)| {
        let imgs = out_g.len() / (g.c_out * l);
        let x_g = &x[gi * group * image..][..imgs * image];
        let wide = imgs * l;
        if imgs == 1 && g.pointwise() {
            matmul((g.c_out, l, ckk), out_g, (l, 1), false, w, (ckk, 1), x_g, (l, 1), Threads::One);
        } else if imgs == 1 {
            with_scratch(ckk * l, |cols: &mut [T]| {
                im2col(x_g, g, cols, l);
                matmul((g.c_out, l, ckk), out_g, (l, 1), false, w, (ckk, 1), cols, (l, 1), Threads::One);
            });
        } else {
            // (Cout x G L) = W . [cols(x_1) .. cols(x_G)], then back to image-major.
            with_scratch((ckk + g.c_out) * wide, |buf: &mut [T]| {
                let (cols, prod) = buf.split_at_mut(ckk * wide);
                im2col_wide(x_g, g, cols, imgs);
                matmul((g.c_out, wide, ckk), prod, (wide, 1), false, w, (ckk, 1), cols, (wide, 1), Threads::One);
                from_wide(prod, out_g, (g.c_out, l, imgs));
            });
        }
    });
    (out, Shape::from((g.n, g.c_out, g.h_out, g.w_out)))
}

fn grad_input<T: Float>(dout: &[T], w: &[T], g: &Geometry) -> (Vec<T>, Shape) {
    let (l, ckk, image) = (g.l(), g.ckk(), g.c_in * g.h * g.w);
    let group = group_size(g);
    let mut dx = output(g.n * image);
    dx.par_chunks_mut(group * image).enumerate().for_each(|(gi, dx_g)| {
        let imgs = dx_g.len() / image;
        let dout_g = &dout[gi * group * g.c_out * l..][..imgs * g.c_out * l];
        let wide = imgs * l;
        // W^T: element (r, o) of the (CKK x Cout) matrix is W[o * CKK + r].
        if imgs == 1 && g.pointwise() {
            matmul((ckk, l, g.c_out), dx_g, (l, 1), false, w, (1, ckk), dout_g, (l, 1), Threads::One);
        } else if imgs == 1 {
            with_scratch(ckk * l, |cols: &mut [T]| {
                matmul((ckk, l, g.c_out), cols, (l, 1), false, w, (1, ckk), dout_g, (l, 1), Threads::One);
                col2im(cols, g, dx_g, l);
            });
        } else {
            // [dcols_1 .. dcols_G] (CKK x G L) = W^T . [dout_1 .. dout_G], each col2im'ed.
            with_scratch((ckk + g.c_out) * wide, |buf: &mut [T]| {
                let (cols, d_wide) = buf.split_at_mut(ckk * wide);
                to_wide(dout_g, d_wide, (g.c_out, l, imgs));
                matmul((ckk, wide, g.c_out), cols, (wide, 1), false, w, (1, ckk), d_wide, (wide, 1), Threads::One);
                for (j, dx_n) in dx_g.chunks_mut(image).enumerate() {
                    col2im(&mut cols[j * l..], g, dx_n, wide);
                }
            });
        }
    });
    (dx, Shape::from((g.n, g.c_in, g.h, g.w)))
}

/// `dW = sum_n dout_n cols(x_n)^T`: each thread sums one contiguous run of image groups (the
/// groups of [`group_size`], one GEMM each, whose inner dimension runs over the group's images),
/// then the threads' sums are added in thread order. The summation order thus depends on the
/// group size and the thread count (not on scheduling), and differs from a per-image sum at
/// the rounding level.
fn grad_kernel<T: Float>(x: &[T], dout: &[T], g: &Geometry) -> (Vec<T>, Shape) {
    let (l, ckk, image) = (g.l(), g.ckk(), g.c_in * g.h * g.w);
    let group = group_size(g);
    let groups = g.n.div_ceil(group);
    let threads = rayon::current_num_threads().max(1);
    let per_thread = groups.div_ceil(threads).max(1);
    let size = g.c_out * ckk;
    let partial: Vec<Vec<T>> = (0..groups.div_ceil(per_thread))
        .into_par_iter()
        .map(|t| {
            let mut acc = output(size);
            for (k, gi) in (t * per_thread..((t + 1) * per_thread).min(groups)).enumerate() {
                let (lo, hi) = (gi * group, ((gi + 1) * group).min(g.n));
                let imgs = hi - lo;
                let (x_g, dout_g) = (&x[lo * image..hi * image], &dout[lo * g.c_out * l..hi * g.c_out * l]);
                let accumulate = k > 0;
                // cols^T: element (l, r) of the (L x CKK) matrix is cols[r * L + l].
                if imgs == 1 && g.pointwise() {
                    let dims = (g.c_out, ckk, l);
                    matmul(dims, &mut acc, (ckk, 1), accumulate, dout_g, (l, 1), x_g, (1, l), Threads::One);
                } else if imgs == 1 {
                    with_scratch(ckk * l, |cols: &mut [T]| {
                        im2col(x_g, g, cols, l);
                        let dims = (g.c_out, ckk, l);
                        matmul(dims, &mut acc, (ckk, 1), accumulate, dout_g, (l, 1), cols, (1, l), Threads::One);
                    });
                } else {
                    // dW += [dout_lo .. dout_hi] (Cout x G L) . [cols(x_lo) .. cols(x_hi)]^T.
                    let wide = imgs * l;
                    with_scratch((ckk + g.c_out) * wide, |buf: &mut [T]| {
                        let (cols, d_wide) = buf.split_at_mut(ckk * wide);
                        im2col_wide(x_g, g, cols, imgs);
                        to_wide(dout_g, d_wide, (g.c_out, l, imgs));
                        let dims = (g.c_out, ckk, wide);
                        matmul(dims, &mut acc, (ckk, 1), accumulate, d_wide, (wide, 1), cols, (1, wide), Threads::One);
                    });
                }
            }
            acc
        })
        .collect();
    let mut partial = partial.into_iter();
    let mut dw = partial.next().unwrap_or_else(|| vec![T::zero(); size]);
    for p in partial {
        dw.par_iter_mut().zip(p.par_iter()).for_each(|(a, &b)| *a += b);
    }
    (dw, Shape::from((g.c_out, g.c_in, g.k, g.k)))
}

/// The convolution as a candle op on (input, kernel).
struct ConvOp(Geometry);
/// The input gradient as a candle op on (output gradient, kernel).
struct GradInputOp(Geometry);
/// The kernel gradient as a candle op on (input, output gradient).
struct GradKernelOp(Geometry);

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "optbench-conv2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        dispatch2!("conv2d", s1, l1, s2, l2, |a, b| forward(a, b, &self.0))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, dout: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dout = dout.contiguous()?;
        // Recorded ops (not `_no_bwd`): with `CANDLE_GRAD_DO_NOT_DETACH=1` the gradients are
        // themselves differentiable (WGAN-GP's penalty); otherwise candle detaches them. An
        // operand that is neither a variable nor computed from one (a network's input) gets
        // no gradient: candle would drop it.
        let dx = if x.track_op() { Some(dout.apply_op2(w, GradInputOp(self.0))?) } else { None };
        let dw = if w.track_op() { Some(x.apply_op2(&dout, GradKernelOp(self.0))?) } else { None };
        Ok((dx, dw))
    }
}

impl CustomOp2 for GradInputOp {
    fn name(&self) -> &'static str {
        "optbench-conv2d-grad-input"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        dispatch2!("conv2d input gradient", s1, l1, s2, l2, |a, b| grad_input(a, b, &self.0))
    }

    /// `dx` is bilinear in (dout, w): for an upstream `G` (x-shaped), `d/d dout = conv(G, w)`
    /// and `d/dw = kernel gradient of (G, dout)`.
    fn bwd(&self, dout: &Tensor, w: &Tensor, _res: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = g.contiguous()?;
        let d_dout = g.apply_op2(w, ConvOp(self.0))?;
        let d_w = g.apply_op2(dout, GradKernelOp(self.0))?;
        Ok((Some(d_dout), Some(d_w)))
    }
}

impl CustomOp2 for GradKernelOp {
    fn name(&self) -> &'static str {
        "optbench-conv2d-grad-kernel"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        dispatch2!("conv2d kernel gradient", s1, l1, s2, l2, |a, b| grad_kernel(a, b, &self.0))
    }

    /// `dw` is bilinear in (x, dout): for an upstream `H` (kernel-shaped), `d/dx = input
    /// gradient of (dout, H)` and `d/d dout = conv(x, H)`.
    fn bwd(&self, x: &Tensor, dout: &Tensor, _res: &Tensor, h: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let h = h.contiguous()?;
        let d_x = dout.apply_op2(&h, GradInputOp(self.0))?;
        let d_dout = x.apply_op2(&h, ConvOp(self.0))?;
        Ok((Some(d_x), Some(d_dout)))
    }
}

/// `nn.ConvTranspose2d(.., stride, padding, bias=False)` of `x` (N, Cin, H, W) by `w` (Cin,
/// Cout, k, k), output (N, Cout, (H - 1) stride - 2 padding + k, ..): the input gradient of
/// the convolution by `w` from that output size down to `x`'s ([`conv2d_input_gradient`]).
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (_, _, h, wd) = x.dims4()?;
    let k = w.dim(2)?;
    let (h_big, w_big) = ((h - 1) * stride + k, (wd - 1) * stride + k);
    if h_big <= 2 * padding || w_big <= 2 * padding {
        candle::bail!("conv_transpose2d: padding {padding} leaves no output for input {:?}", x.dims())
    }
    conv2d_input_gradient(x, w, stride, padding, (h_big - 2 * padding, w_big - 2 * padding))
}

/// The gradient with respect to the input (N, Cin, H, W), `(H, W) = input`, of the convolution
/// by `w` (Cout, Cin, k, k) whose output gradient is `dout` (N, Cout, Hout, Wout): the op
/// above on the CPU in f32 / f64, recorded so that it is itself differentiable (with respect to
/// `dout` and `w`, to any order); candle's `conv_transpose2d` elsewhere.
pub fn conv2d_input_gradient(
    dout: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    input: (usize, usize),
) -> Result<Tensor> {
    let (n, c_out, h_out, w_out) = dout.dims4()?;
    let (c_out_w, c_in, k, k2) = w.dims4()?;
    let (h, wd) = input;
    let fits = |size: usize, out: usize| size + 2 * padding >= k && (size + 2 * padding - k) / stride + 1 == out;
    if c_out != c_out_w || k != k2 || !fits(h, h_out) || !fits(wd, w_out) {
        candle::bail!(
            "conv2d input gradient: output gradient {:?}, kernel {:?}, input {h}x{wd}, stride {stride}, padding \
             {padding} do not fit",
            dout.dims(),
            w.dims()
        )
    }
    let cpu_float = dout.device().is_cpu() && matches!(dout.dtype(), DType::F32 | DType::F64);
    if !cpu_float {
        let out_padding = h - ((h_out - 1) * stride + k - 2 * padding);
        return dout.conv_transpose2d(w, padding, out_padding, stride, 1);
    }
    let g = Geometry { n, c_in, h, w: wd, c_out, k, stride, pad: padding, h_out, w_out };
    dout.contiguous()?.apply_op2(&w.contiguous()?, GradInputOp(g))
}

/// The gradient with respect to the kernel (Cout, Cin, k, k) of the convolution of `x` (N, Cin,
/// H, W) at `stride` and `padding` whose output gradient is `dout` (N, Cout, Hout, Wout): the op
/// above on the CPU in f32 / f64 (recorded, differentiable), candle's autograd of its `conv2d`
/// elsewhere. For timing programs and second-order uses.
pub fn conv2d_kernel_gradient(x: &Tensor, dout: &Tensor, k: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let (n, c_in, h, wd) = x.dims4()?;
    let (n_out, c_out, h_out, w_out) = dout.dims4()?;
    let fits = |size: usize, out: usize| size + 2 * padding >= k && (size + 2 * padding - k) / stride + 1 == out;
    if n != n_out || !fits(h, h_out) || !fits(wd, w_out) {
        candle::bail!(
            "conv2d kernel gradient: input {:?}, output gradient {:?}, kernel {k}, stride {stride}, padding {padding} \
             do not fit",
            x.dims(),
            dout.dims()
        )
    }
    let cpu_float = x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64);
    if !cpu_float {
        let w = candle::Var::zeros((c_out, c_in, k, k), x.dtype(), x.device())?;
        let y = x.detach().conv2d(w.as_tensor(), padding, stride, 1, 1)?;
        let grads = (y * dout.detach())?.sum_all()?.backward()?;
        return grads.get(w.as_tensor()).cloned().ok_or_else(|| candle::Error::Msg("no kernel gradient".into()));
    }
    let g = Geometry { n, c_in, h, w: wd, c_out, k, stride, pad: padding, h_out, w_out };
    x.contiguous()?.apply_op2(&dout.contiguous()?, GradKernelOp(g))
}

/// `nn.Conv2d` without groups or dilation: weight (Cout, Cin, k, k), optional bias.
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
    /// TensorFlow's `padding='SAME'` instead of `padding` (see [`tf_same_padding`]).
    tf_same: bool,
}

impl Conv2d {
    pub fn new(weight: Tensor, bias: Option<Tensor>, stride: usize, padding: usize) -> Self {
        Self { weight, bias, stride, padding, tf_same: false }
    }

    /// The same layer with TensorFlow's `padding='SAME'` in place of its symmetric padding:
    /// the padding is worked out from each input's size, asymmetric where TensorFlow's is.
    pub fn tf_same(self) -> Self {
        Self { tf_same: true, ..self }
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

/// The convolution of `x` (N, Cin, H, W) by `w` (Cout, Cin, k, k): the op above on the CPU in
/// f32 / f64, candle's `conv2d` elsewhere.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (n, c_in, h, wd) = x.dims4()?;
    let (c_out, c_in_w, k, k2) = w.dims4()?;
    if c_in != c_in_w || k != k2 {
        candle::bail!("conv2d: input {:?} and kernel {:?} do not fit", x.dims(), w.dims())
    }
    let cpu_float = x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64);
    if !cpu_float || h + 2 * padding < k || wd + 2 * padding < k {
        return x.conv2d(w, padding, stride, 1, 1);
    }
    let g = Geometry {
        n,
        c_in,
        h,
        w: wd,
        c_out,
        k,
        stride,
        pad: padding,
        h_out: (h + 2 * padding - k) / stride + 1,
        w_out: (wd + 2 * padding - k) / stride + 1,
    };
    x.contiguous()?.apply_op2(&w.contiguous()?, ConvOp(g))
}

/// TensorFlow's `SAME` padding of one spatial dimension of `size` for a `kernel` at `stride`,
/// as (before, after): the output has `ceil(size / stride)` elements and the padding
/// `max((out - 1) stride + kernel - size, 0)` is split with the odd element after (bottom,
/// right). A 3x3 stride-2 convolution of an even size pads (0, 1) where PyTorch's `padding=1`
/// pads (1, 1); a 1x1 stride-2 one pads nothing.
pub fn tf_same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out.max(1) - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// The convolution of `x` with TensorFlow's `SAME` padding: the op above when the padding is
/// symmetric, after an explicit zero padding otherwise.
pub fn conv2d_tf_same(x: &Tensor, w: &Tensor, stride: usize) -> Result<Tensor> {
    let (_, _, h, wd) = x.dims4()?;
    let k = w.dim(2)?;
    let (top, bottom) = tf_same_padding(h, k, stride);
    let (left, right) = tf_same_padding(wd, k, stride);
    if top == bottom && left == right && top == left {
        return conv2d(x, w, stride, top);
    }
    conv2d(&x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?, w, stride, 0)
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out = if self.tf_same {
            conv2d_tf_same(x, &self.weight, self.stride)?
        } else {
            conv2d(x, &self.weight, self.stride, self.padding)?
        };
        match &self.bias {
            Some(b) => add_channel_bias(&out, b),
            None => Ok(out),
        }
    }
}

/// `x + b` with `b` (C) broadcast over (N, C, H, W). On the CPU in f32 / f64 the gradient of
/// `b` is a direct per-channel sum: candle's `broadcast_add` backward reduces over dimensions
/// 0, 2 and 3 with a division per element, which was a sixth of a small GoogLeNet's step.
pub fn add_channel_bias(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) && x.rank() == 4 {
        x.contiguous()?.apply_op2(b, ChannelBias)
    } else {
        x.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)
    }
}

struct ChannelBias;
struct ChannelSum;

fn add_bias<T: Float>(x: &[T], b: &[T], planes: usize) -> Vec<T> {
    let plane = x.len() / planes;
    let c = b.len();
    let mut out = output(x.len());
    out.par_chunks_mut(plane).zip(x.par_chunks(plane)).enumerate().for_each(|(k, (o, i))| {
        let bias = b[k % c];
        for (o, &v) in o.iter_mut().zip(i) {
            *o = v + bias;
        }
    });
    out
}

fn channel_sum<T: Float>(dy: &[T], (n, c, plane): (usize, usize, usize)) -> Vec<T> {
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let mut acc = T::zero();
            for i in 0..n {
                for &v in &dy[(i * c + ch) * plane..(i * c + ch + 1) * plane] {
                    acc += v;
                }
            }
            acc
        })
        .collect()
}

impl CustomOp2 for ChannelBias {
    fn name(&self) -> &'static str {
        "optbench-channel-bias"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, _, _) = l1.shape().dims4()?;
        if l2.dims() != [c] {
            candle::bail!("channel bias of shape {:?} for {c} channels", l2.dims())
        }
        dispatch2!("channel bias", s1, l1, s2, l2, |x, b| (add_bias(x, b, n * c), l1.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _b: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let db = dy.contiguous()?.apply_op1_no_bwd(&ChannelSum)?;
        Ok((Some(dy.clone()), Some(db)))
    }
}

impl candle::CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "optbench-channel-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l.shape().dims4()?;
        let out = match s {
            CpuStorage::F32(x) => {
                CpuStorage::F32(channel_sum(contiguous(x, l, "channel sum", "gradient")?, (n, c, h * w)))
            }
            CpuStorage::F64(x) => {
                CpuStorage::F64(channel_sum(contiguous(x, l, "channel sum", "gradient")?, (n, c, h * w)))
            }
            _ => candle::bail!("channel sum: f32 or f64"),
        };
        Ok((out, Shape::from(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{max_diff, random};

    fn normal(shape: &[usize], seed: u64) -> Result<Tensor> {
        random(shape, seed, 0.0, 1.0)
    }

    #[test]
    fn channel_bias_and_its_gradient() -> Result<()> {
        let x = candle::Var::from_tensor(&normal(&[2, 3, 4, 5], 1)?)?;
        let b = candle::Var::from_tensor(&normal(&[1, 1, 1, 3], 2)?.flatten_all()?)?;
        let ours = add_channel_bias(x.as_tensor(), b.as_tensor())?;
        let theirs = x.as_tensor().broadcast_add(&b.as_tensor().reshape((1, 3, 1, 1))?)?;
        assert!(max_diff(&ours, &theirs)? < 1e-15);
        let w = normal(&[2, 3, 4, 5], 3)?;
        let g1 = (ours * &w)?.sum_all()?.backward()?;
        let g2 = (theirs * &w)?.sum_all()?.backward()?;
        for v in [&x, &b] {
            assert!(max_diff(g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap())? < 1e-12);
        }
        Ok(())
    }

    #[test]
    fn tensorflow_same_padding() -> Result<()> {
        assert_eq!(tf_same_padding(32, 3, 1), (1, 1));
        assert_eq!(tf_same_padding(32, 3, 2), (0, 1));
        assert_eq!(tf_same_padding(32, 1, 2), (0, 0));
        assert_eq!(tf_same_padding(32, 7, 2), (2, 3));
        assert_eq!(tf_same_padding(5, 3, 2), (1, 1));
        // 3x3 stride 2 on a 4x4 image 0..15 with a kernel of ones: windows rows / columns
        // 0-2 and 2-4, the 4th (zero) added after; symmetric padding would start at -1.
        let x = Tensor::arange(0f32, 16.0, &candle::Device::Cpu)?.reshape((1, 1, 4, 4))?;
        let w = Tensor::ones((1, 1, 3, 3), DType::F32, &candle::Device::Cpu)?;
        let y = Conv2d::new(w.clone(), None, 2, 1).tf_same().forward(&x)?;
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, [45.0, 39.0, 66.0, 50.0]);
        let symmetric = Conv2d::new(w, None, 2, 1).forward(&x)?;
        assert_eq!(symmetric.flatten_all()?.to_vec1::<f32>()?[0], 10.0);
        Ok(())
    }

    #[test]
    fn a_constant_input_gets_no_gradient_and_the_kernel_still_does() -> Result<()> {
        let x = normal(&[3, 2, 5, 5], 1)?;
        let kernel = candle::Var::from_tensor(&normal(&[4, 2, 3, 3], 2)?)?;
        let weights = normal(&[3, 4, 5, 5], 3)?;
        let g1 = (conv2d(&x, kernel.as_tensor(), 1, 1)? * &weights)?.sum_all()?.backward()?;
        let g2 = (x.conv2d(kernel.as_tensor(), 1, 1, 1, 1)? * &weights)?.sum_all()?.backward()?;
        assert!(g1.get(&x).is_none());
        let reference = g2.get(kernel.as_tensor()).unwrap();
        assert!(max_diff(g1.get(kernel.as_tensor()).unwrap(), reference)? < 1e-9);
        assert!(max_diff(&conv2d_kernel_gradient(&x, &weights, 3, 1, 1)?, reference)? < 1e-9);
        Ok(())
    }

    #[test]
    fn values_and_gradients_equal_candles_conv2d() -> Result<()> {
        // (batch, cin, h, w, cout, k, stride, padding)
        for &(n, ci, h, w, co, k, s, p) in &[
            (2, 3, 9, 7, 4, 3, 1, 1),
            (3, 4, 8, 8, 5, 3, 2, 1),
            (2, 6, 5, 5, 3, 1, 1, 0),
            (2, 6, 6, 6, 3, 1, 2, 0),
            (1, 3, 12, 12, 4, 7, 2, 3),
            (2, 2, 4, 4, 2, 3, 1, 0),
            // Small planes over many images: several images per GEMM (`group_size`), the
            // last group partial, pointwise included.
            (8, 4, 4, 4, 6, 3, 1, 1),
            (9, 5, 4, 4, 3, 1, 2, 0),
            (7, 3, 3, 3, 4, 1, 1, 0),
        ] {
            let x = candle::Var::from_tensor(&normal(&[n, ci, h, w], 1)?)?;
            let kernel = candle::Var::from_tensor(&normal(&[co, ci, k, k], 2)?)?;
            let ours = conv2d(x.as_tensor(), kernel.as_tensor(), s, p)?;
            let theirs = x.as_tensor().conv2d(kernel.as_tensor(), p, s, 1, 1)?;
            assert_eq!(ours.dims(), theirs.dims());
            assert!(max_diff(&ours, &theirs)? < 1e-10, "values for {:?}", (n, ci, h, w, co, k, s, p));
            let weights = normal(theirs.dims(), 3)?;
            let g1 = (ours * &weights)?.sum_all()?.backward()?;
            let g2 = (theirs * &weights)?.sum_all()?.backward()?;
            for var in [&x, &kernel] {
                let (a, b) = (g1.get(var.as_tensor()).unwrap(), g2.get(var.as_tensor()).unwrap());
                assert!(max_diff(a, b)? < 1e-9, "gradients for {:?}", (n, ci, h, w, co, k, s, p));
            }
        }
        Ok(())
    }
}
