//! Fused in-place updates on the CPU: one pass over each parameter, its gradient and its state,
//! instead of a dozen allocating tensor ops (candle computes each op into a new buffer).
//!
//! Each kernel performs the same floating-point operations, in the same order and precision,
//! as its optimizer's tensor path (`affine(x, a, b)` is `x * a + b` with `a`, `b` rounded to the
//! parameter's type, exactly as candle's `affine`), so the two paths agree to the last bit;
//! `tests/kernels.rs` checks it for every flag, and the golden trajectories are replayed
//! through both. The tensor path stays the reference, and the only path on other devices.
//!
//! A kernel runs as a candle in-place op on the parameter's storage, with the gradient as its
//! operand; the optimizer state lives in host vectors owned by the optimizer.
//!
//! The kernels, each with its per-step scalars (the rule's `Scalars`, computed once per
//! variable and step, exactly the values the kernel uses):
//!
//! | optimizer | module | scalars | state vectors |
//! |---|---|---|---|
//! | `sgd` (momentum, dampening, Nesterov, L2) | [`sgd`] | [`sgd::SgdStep`] | `momentum_buffer` (with momentum) |
//! | `adam`, `adamw`, `amsgrad` (`variant = "torch"`) | [`adam`] | [`adam::AdamStep`] | `m`, `v`, `vmax` (AMSGrad) |
//! | `amsgrad` (`variant = "tf"`) | [`adam`] | [`adam::TfAmsGradStep`] | `m`, `v` |
//! | `adabelief` (every flag) | [`adabelief`] | [`adabelief::AdaBeliefStep`] | `m`, `s`, `smax` (AMSGrad) |
//! | `adamod` | [`adamod`] | [`adamod::AdaModStep`] | `m`, `v`, `s` |
//! | `adabound` (and AMSBound) | [`adabound`] | [`adabound::AdaBoundStep`] | `m`, `v`, `vmax` (AMSBound) |
//! | `radam` | [`radam`] | [`radam::RAdamStep`] | `m`, `v` |
//! | `diffgrad` | [`diffgrad`] | [`diffgrad::DiffGradStep`] | `m`, `v`, `previous_grad` |
//! | `adai`, `adaiw` (two passes, a global mean) | [`adai`] | [`adai::AdaiStep`] (+ the mean, the rule's `Global`) | `m`, `v`, `beta1_prod` |
//! | `adashift` (both variants, every `phi`) | [`adashift`] | [`AdaShiftStep`](crate::adashift::AdaShiftStep) | `v`, `z`, `b2p` (`tf`) or `v`, `m`; a ring of `keep_num` gradients `window.i` |
//!
//! Most kernels keep one vector of the parameter's length per slot; a rule whose state is shaped
//! otherwise describes it with [`Rule::fused_layout`](crate::core::Rule::fused_layout): AdaShift's
//! per-tensor scalars (`phi = max / mean`) are one-element vectors saved with shape `()`, and its
//! window is saved only as far as it is filled, so that a state moves between the paths.
//!
//! Where a tensor-path op is a reduction (Adai's `sum_all`, AdaShift's `max_all` / `mean_all`),
//! the kernel reproduces candle's CPU order ([`adai::candle_sum_f32`]); `exp` (diffGrad) is the
//! same `f32::exp` / `f64::exp` candle calls (for f32 a vectorised copy of glibc's `expf` that
//! checks itself against `f32::exp` on first use, [`exp`]); candle's `maximum` / `minimum` / `clamp` are
//! `Real::maximum` / `Real::minimum` (the same comparison, so the same result for NaN).

pub mod adabelief;
pub mod adabound;
pub mod adai;
pub mod adam;
pub mod adamod;
pub mod adashift;
pub mod cuda;
pub mod diffgrad;
pub mod exp;
pub mod radam;
pub mod sgd;

use std::cell::RefCell;

use candle::{CpuStorage, DType, Device, Layout, Result, Shape, Tensor, Var};
use rayon::prelude::*;

/// Which implementation an optimizer uses for its element-wise update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kernels {
    /// The fused CPU kernel where there is one (contiguous f32/f64 parameters on the CPU),
    /// the tensor ops elsewhere.
    #[default]
    Auto,
    /// Candle tensor ops only (the reference path, any device).
    TensorOps,
}

impl Kernels {
    /// Whether a variable gets the fused kernel.
    pub(crate) fn fused_for(self, var: &Var) -> bool {
        self == Kernels::Auto
            && var.device().is_cpu()
            && matches!(var.dtype(), DType::F32 | DType::F64)
            && var.as_tensor().is_contiguous()
    }
}

/// The arithmetic the kernels need, for f32 and f64.
pub(crate) trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    fn of(x: f64) -> Self;
    /// `single` for f32, `double` for f64: a value computed in the parameter's precision.
    fn pick(single: f32, double: f64) -> Self;
    fn to_f64(self) -> f64;
    /// The number of running sums candle's CPU `sum_all` of a contiguous tensor of this type
    /// keeps (1: it adds the elements in order), or `None` where this crate does not know it;
    /// see [`adai::candle_sum_f32`].
    fn candle_sum_lanes() -> Option<usize>;
    fn sqrt(self) -> Self;
    fn exp(self) -> Self;
    /// `x <- exp(x)` for every element, equal to [`exp`](Self::exp) bit for bit (vectorised
    /// for f32, [`exp::exp_f32_in_place`]).
    fn exp_in_place(xs: &mut [Self]) {
        xs.iter_mut().for_each(|x| *x = x.exp());
    }
    /// The slice as f32 if `Self` is f32 (for kernels with an f32-only vector path).
    fn as_f32(_: &[Self]) -> Option<&[f32]> {
        None
    }
    /// The slice as f32 if `Self` is f32.
    fn as_f32_mut(_: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
    fn abs(self) -> Self;
    /// `-x`, as candle's `neg`.
    fn neg(self) -> Self;
    /// `1 / x`, as candle's `recip` (Rust's `recip` is that division).
    #[inline(always)]
    fn recip(self) -> Self {
        Self::of(1.0) / self
    }
    /// `min` as candle's `minimum` computes it: `if a > b { b } else { a }`.
    #[inline(always)]
    fn minimum(self, other: Self) -> Self {
        if self > other {
            other
        } else {
            self
        }
    }
    /// `max` as candle's `maximum` computes it: `if a < b { b } else { a }`.
    #[inline(always)]
    fn maximum(self, other: Self) -> Self {
        if self < other {
            other
        } else {
            self
        }
    }
}

impl Real for f32 {
    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn pick(single: f32, _: f64) -> Self {
        single
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn candle_sum_lanes() -> Option<usize> {
        adai::candle_sum_f32_lanes()
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn exp_in_place(xs: &mut [Self]) {
        exp::exp_f32_in_place(xs)
    }
    fn as_f32(xs: &[Self]) -> Option<&[f32]> {
        Some(xs)
    }
    fn as_f32_mut(xs: &mut [Self]) -> Option<&mut [f32]> {
        Some(xs)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    #[inline(always)]
    fn neg(self) -> Self {
        -self
    }
}

impl Real for f64 {
    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn pick(_: f32, double: f64) -> Self {
        double
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    fn candle_sum_lanes() -> Option<usize> {
        Some(1)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn neg(self) -> Self {
        -self
    }
}

/// A moment's update as the tensor path computes `beta s + (1 - beta) x`: two candle `affine`s
/// and an add, `(s * beta + 0) + (x * (1 - beta) + 0)` (the `+ 0` of each affine kept, so that the
/// kernels round as candle does). Every kernel's first and second moments go through it.
#[inline(always)]
pub(crate) fn ema<T: Real>(s: T, x: T, beta: T, one_minus_beta: T) -> T {
    let zero = T::of(0.0);
    (s * beta + zero) + (x * one_minus_beta + zero)
}

/// An optimizer that can be told which kernels to use. Optimizers without a fused kernel
/// ignore the choice.
pub trait WithKernels: candle_nn::optim::Optimizer {
    fn new_with_kernels(vars: Vec<Var>, config: Self::Config, kernels: Kernels) -> Result<Self>;
}

/// Host state vectors of a fused optimizer, in the parameter's type: one per slot of the
/// rule's [`fused_slots`](crate::core::Rule::fused_slots), each as long as the parameter.
#[derive(Debug)]
pub enum HostVecs {
    F32(Vec<Vec<f32>>),
    F64(Vec<Vec<f64>>),
}

/// One host vector of a fused kernel's state (see
/// [`Rule::fused_layout`](crate::core::Rule::fused_layout)): its shape, and the slot it is saved
/// as (`None`: not part of the saved state, restored as zeros).
#[derive(Clone, Debug, PartialEq)]
pub struct HostSlot {
    pub name: Option<String>,
    pub shape: Shape,
}

impl HostSlot {
    /// A vector saved as slot `name`.
    pub fn saved(name: &str, shape: Shape) -> Self {
        Self { name: Some(name.to_string()), shape }
    }

    /// A vector that the saved state does not hold (yet).
    pub fn unsaved(shape: Shape) -> Self {
        Self { name: None, shape }
    }
}

impl HostVecs {
    /// `count` vectors of `len` zeros.
    pub fn zeros(dtype: DType, count: usize, len: usize) -> Result<Self> {
        Self::zeros_of(dtype, &vec![len; count])
    }

    /// One vector of zeros per length of `lens`.
    pub fn zeros_of(dtype: DType, lens: &[usize]) -> Result<Self> {
        match dtype {
            DType::F32 => Ok(Self::F32(lens.iter().map(|&len| vec![0.0; len]).collect())),
            DType::F64 => Ok(Self::F64(lens.iter().map(|&len| vec![0.0; len]).collect())),
            other => candle::bail!("no fused kernel for {other:?}"),
        }
    }

    /// How many vectors there are.
    pub fn len(&self) -> usize {
        match self {
            Self::F32(vecs) => vecs.len(),
            Self::F64(vecs) => vecs.len(),
        }
    }

    /// Whether there are no vectors (SGD without momentum).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The vectors as CPU tensors of `shape` (copies), to save them.
    pub fn to_tensors(&self, shape: &Shape) -> Result<Vec<Tensor>> {
        match self {
            Self::F32(vecs) => vecs.iter().map(|v| Tensor::from_slice(v, shape, &Device::Cpu)).collect(),
            Self::F64(vecs) => vecs.iter().map(|v| Tensor::from_slice(v, shape, &Device::Cpu)).collect(),
        }
    }

    /// Rotates the vectors `range` by one to the left (the first becomes the last): a ring's
    /// oldest vector becomes its newest, without moving the data.
    pub fn rotate_left(&mut self, range: std::ops::Range<usize>) {
        match self {
            Self::F32(vecs) => vecs[range].rotate_left(1),
            Self::F64(vecs) => vecs[range].rotate_left(1),
        }
    }

    /// The vectors as CPU tensors, each of its own shape (copies), to save them.
    pub fn to_tensors_shaped(&self, shapes: &[Shape]) -> Result<Vec<Tensor>> {
        if shapes.len() != self.len() {
            candle::bail!("fused state: {} host vectors, {} shapes", self.len(), shapes.len())
        }
        match self {
            Self::F32(vecs) => vecs.iter().zip(shapes).map(|(v, s)| Tensor::from_slice(v, s, &Device::Cpu)).collect(),
            Self::F64(vecs) => vecs.iter().zip(shapes).map(|(v, s)| Tensor::from_slice(v, s, &Device::Cpu)).collect(),
        }
    }

    /// Vectors from tensors of one float type (what [`to_tensors`](Self::to_tensors) or the
    /// tensor path saved), to restore them.
    pub fn from_tensors(tensors: &[Tensor]) -> Result<Self> {
        let dtype = tensors.first().map_or(DType::F32, Tensor::dtype);
        let flat = |t: &Tensor| t.flatten_all()?.to_dtype(dtype);
        match dtype {
            DType::F32 => Ok(Self::F32(tensors.iter().map(|t| flat(t)?.to_vec1()).collect::<Result<_>>()?)),
            DType::F64 => Ok(Self::F64(tensors.iter().map(|t| flat(t)?.to_vec1()).collect::<Result<_>>()?)),
            other => candle::bail!("no fused kernel for {other:?}"),
        }
    }
}

/// An element-wise update over a parameter chunk, its gradient and its state chunks.
pub(crate) trait Kernel: Sync {
    fn run<T: Real>(&self, param: &mut [T], grad: &[T], state: &mut [&mut [T]]);
    /// Whether the kernel is run over chunks in parallel; `false`: once over whole vectors, on
    /// the calling thread (a kernel that parallelises itself, e.g. a reduction in a fixed order).
    fn chunked(&self) -> bool {
        true
    }
}

/// Elements below which a kernel runs on the calling thread.
pub(crate) const PARALLEL_FROM: usize = 1 << 16;
pub(crate) const CHUNK: usize = 1 << 14;

/// Runs a kernel over chunks of a parameter, in parallel for large ones; every state vector
/// is chunked the same way.
fn for_chunks<T: Real, K: Kernel>(param: &mut [T], grad: &[T], states: &mut [Vec<T>], kernel: &K) {
    let n = param.len();
    if n < PARALLEL_FROM || !kernel.chunked() {
        let mut views: Vec<&mut [T]> = states.iter_mut().map(|s| s.as_mut_slice()).collect();
        kernel.run(param, grad, &mut views);
        return;
    }
    let mut state_chunks: Vec<Vec<&mut [T]>> = (0..n.div_ceil(CHUNK)).map(|_| Vec::new()).collect();
    for s in states.iter_mut() {
        for (i, c) in s.chunks_mut(CHUNK).enumerate() {
            state_chunks[i].push(c);
        }
    }
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(state_chunks.into_par_iter())
        .for_each(|((p, g), mut s)| kernel.run(p, g, &mut s));
}

/// A candle in-place op on the parameter's storage, with the gradient as operand and the
/// state on the host.
struct FusedOp<'a, K> {
    name: &'static str,
    kernel: &'a K,
    state: RefCell<&'a mut HostVecs>,
}

/// The range of a contiguous operand's elements in its storage.
fn contiguous(layout: &Layout, what: &str) -> Result<std::ops::Range<usize>> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(start..end),
        None => candle::bail!("fused kernel: the {what} is not contiguous"),
    }
}

impl<K: Kernel> candle::InplaceOp2 for FusedOp<'_, K> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let (param, grad) = (contiguous(l1, "parameter")?, contiguous(l2, "gradient")?);
        let mut state = self.state.borrow_mut();
        match (s1, s2, &mut **state) {
            (CpuStorage::F32(p), CpuStorage::F32(g), HostVecs::F32(s)) => {
                for_chunks(&mut p[param], &g[grad], s, self.kernel)
            }
            (CpuStorage::F64(p), CpuStorage::F64(g), HostVecs::F64(s)) => {
                for_chunks(&mut p[param], &g[grad], s, self.kernel)
            }
            _ => candle::bail!("{}: the parameter, its gradient and its state must share one type", self.name),
        }
        Ok(())
    }
}

/// Updates `var` in place from `grad` (made contiguous if needed) with `kernel` and `state`.
pub(crate) fn apply<K: Kernel>(
    name: &'static str,
    var: &Var,
    grad: &Tensor,
    kernel: &K,
    state: &mut HostVecs,
) -> Result<()> {
    let grad = grad.contiguous()?;
    if state.is_empty() {
        // No vectors (restored from a state without any): nothing says their type.
        *state = HostVecs::zeros(var.dtype(), 0, 0)?;
    }
    let op = FusedOp { name, kernel, state: RefCell::new(state) };
    var.as_tensor().inplace_op2(&grad, &op)
}
