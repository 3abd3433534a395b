//! Compiling, loading and launching the CUDA kernels of [`super::SOURCES`], and the optimizer
//! state they keep on the GPU.
//!
//! A rule's per-step scalars (its [`Rule::Scalars`](crate::core::Rule::Scalars), shared with
//! its CPU kernel) become a [`Call`]: the kernel, then its integer and real arguments after the
//! parameter, the gradient and the state buffers. The reals are rounded to the parameter's type
//! as candle's `affine` rounds its `mul` and `add`. Which scalars types have a kernel is the
//! table of [`call_for`]; a rule whose scalars are not there keeps its tensor path on CUDA.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use candle::cuda_backend::cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};
use candle::cuda_backend::cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
use candle::cuda_backend::WrapErr;
use candle::{CpuStorage, CudaDevice, CudaStorage, DType, Device, Layout, Result, Shape, Tensor, Var, WithDType};

use super::Source;
use crate::amsgrad::AmsGradStep;
use crate::fused::adabelief::AdaBeliefStep;
use crate::fused::adabound::AdaBoundStep;
use crate::fused::adam::{AdamStep, TfAmsGradStep};
use crate::fused::adamod::AdaModStep;
use crate::fused::diffgrad::DiffGradStep;
use crate::fused::radam::RAdamStep;
use crate::fused::sgd::SgdStep;
use crate::fused::Kernels;
use crate::parts::{RectifiedStep, WeightDecay};

/// One launch: the kernel (without its `_f32` / `_f64` suffix) and its arguments after the
/// parameter, the gradient and the state buffers.
#[derive(Clone, Debug)]
pub struct Call {
    pub source: &'static Source,
    pub kernel: &'static str,
    pub ints: Vec<i32>,
    /// Rounded to the parameter's type at launch.
    pub reals: Vec<f64>,
}

/// The scalars types with a CUDA kernel (a rule is known by its scalars, or by its
/// hyperparameters where its scalars say too little, as `()`).
fn kernel_types() -> [TypeId; 9] {
    [
        TypeId::of::<AdamStep>(),
        TypeId::of::<TfAmsGradStep>(),
        TypeId::of::<AmsGradStep>(),
        TypeId::of::<SgdStep>(),
        TypeId::of::<AdaBeliefStep>(),
        TypeId::of::<AdaModStep>(),
        TypeId::of::<AdaBoundStep>(),
        TypeId::of::<RAdamStep>(),
        TypeId::of::<DiffGradStep>(),
    ]
}

/// Whether a rule with hyperparameters `P` and scalars `S` has a CUDA kernel.
pub fn supports<P: Any, S: Any>() -> bool {
    kernel_types().contains(&TypeId::of::<S>())
}

/// Whether `var` gets the CUDA kernel of a rule that has one: a contiguous f32 or f64
/// variable on a CUDA device, unless the tensor path is asked for.
pub fn takes(kernels: Kernels, var: &Var) -> bool {
    kernels == Kernels::Auto
        && var.device().is_cuda()
        && matches!(var.dtype(), DType::F32 | DType::F64)
        && var.as_tensor().is_contiguous()
}

/// The launch of the kernel of a rule with hyperparameters `params` and `scalars` in step `t`
/// on a variable of `dtype` with `slots` state buffers.
pub fn call_for(params: &dyn Any, scalars: &dyn Any, t: u64, dtype: DType, slots: usize) -> Result<Call> {
    let _ = (params, t);
    let tf = |s: &TfAmsGradStep| Call {
        source: &super::ADAM,
        kernel: "tf_amsgrad",
        ints: vec![],
        reals: s.consts_for(dtype).to_vec(),
    };
    if let Some(s) = scalars.downcast_ref::<AdamStep>() {
        return Ok(adam_call(s, slots));
    }
    if let Some(s) = scalars.downcast_ref::<TfAmsGradStep>() {
        return Ok(tf(s));
    }
    match scalars.downcast_ref::<AmsGradStep>() {
        Some(AmsGradStep::Torch(s)) => return Ok(adam_call(s, slots)),
        Some(AmsGradStep::Tf(s)) => return Ok(tf(s)),
        None => {}
    }
    if let Some(s) = scalars.downcast_ref::<SgdStep>() {
        return Ok(sgd_call(s, slots));
    }
    if let Some(s) = scalars.downcast_ref::<AdaBeliefStep>() {
        return Ok(adabelief_call(s, slots));
    }
    if let Some(s) = scalars.downcast_ref::<AdaModStep>() {
        let reals = vec![
            0.0,
            s.beta1,
            1.0 - s.beta1,
            s.beta2,
            1.0 - s.beta2,
            s.beta3,
            1.0 - s.beta3,
            s.eps,
            s.step_size,
            s.shrink.unwrap_or(1.0),
        ];
        return Ok(Call { source: &super::ADAMOD, kernel: "adamod", ints: vec![s.shrink.is_some() as i32], reals });
    }
    if let Some(s) = scalars.downcast_ref::<AdaBoundStep>() {
        let reals = vec![
            0.0,
            s.beta1,
            1.0 - s.beta1,
            s.beta2,
            1.0 - s.beta2,
            s.eps,
            s.step_size,
            s.lower,
            s.upper,
            s.weight_decay,
        ];
        let kernel = if slots == 3 { "adabound_amsbound" } else { "adabound" };
        return Ok(Call { source: &super::ADABOUND, kernel, ints: vec![(s.weight_decay != 0.0) as i32], reals });
    }
    if let Some(s) = scalars.downcast_ref::<RAdamStep>() {
        let (kind, factor) = match s.rectified {
            RectifiedStep::Adaptive(factor) => (0, factor),
            RectifiedStep::Sgd(factor) => (1, factor),
            RectifiedStep::Skip => (2, 0.0),
        };
        let reals =
            vec![0.0, s.beta1, 1.0 - s.beta1, s.beta2, 1.0 - s.beta2, s.eps, s.lr * factor, s.shrink.unwrap_or(1.0)];
        let ints = vec![kind, (s.shrink.is_some() && kind != 2) as i32];
        return Ok(Call { source: &super::RADAM, kernel: "radam", ints, reals });
    }
    if let Some(s) = scalars.downcast_ref::<DiffGradStep>() {
        let reals = vec![0.0, s.beta1, 1.0 - s.beta1, s.beta2, 1.0 - s.beta2, s.eps, s.step_size, s.weight_decay];
        let ints = vec![(s.weight_decay != 0.0) as i32];
        return Ok(Call { source: &super::DIFFGRAD, kernel: "diffgrad", ints, reals });
    }
    candle::bail!("no CUDA kernel for scalars {scalars:?}")
}

/// SGD's constants, as `fused/sgd.rs` computes them.
fn sgd_call(s: &SgdStep, slots: usize) -> Call {
    let l2 = (s.weight_decay != 0.0) as i32;
    if slots == 0 {
        return Call { source: &super::SGD, kernel: "sgd", ints: vec![l2], reals: vec![0.0, s.lr, s.weight_decay] };
    }
    Call {
        source: &super::SGD,
        kernel: "sgd_momentum",
        ints: vec![l2, s.first as i32, s.nesterov as i32],
        reals: vec![0.0, s.lr, s.weight_decay, s.momentum, 1.0 - s.dampening],
    }
}

/// AdaBelief's constants, as `fused/adabelief.rs` computes them.
fn adabelief_call(s: &AdaBeliefStep, slots: usize) -> Call {
    let (mode, decay) = decay_mode(s.decay, s.lr);
    let (kind, scale, step) = match s.rectified {
        None => (0, 1.0 / s.bc2.sqrt(), s.lr / s.bc1),
        Some(RectifiedStep::Adaptive(factor)) => (1, 1.0, s.lr * factor),
        Some(RectifiedStep::Sgd(factor)) => (2, 1.0, s.lr * factor),
        Some(RectifiedStep::Skip) => (3, 1.0, 0.0),
    };
    let reals = vec![0.0, s.beta1, 1.0 - s.beta1, s.beta2, 1.0 - s.beta2, s.eps, decay, scale, step];
    let kernel = if slots == 3 { "adabelief_amsgrad" } else { "adabelief" };
    Call { source: &super::ADABELIEF, kernel, ints: vec![mode, kind], reals }
}

/// The decay mode of the kernels (`DECAY_NONE`, `DECAY_L2`, `DECAY_SHRINK` of `common.cuh`)
/// and its coefficient: the L2 weight or the shrink factor.
fn decay_mode(decay: WeightDecay, lr: f64) -> (i32, f64) {
    match (decay, decay.shrink_factor(lr)) {
        (_, Some(factor)) => (2, factor),
        (WeightDecay::L2(wd), None) => (1, wd),
        _ => (0, 0.0),
    }
}

/// Adam's constants, as `fused/adam.rs` computes them for its CPU kernel.
fn adam_call(s: &AdamStep, slots: usize) -> Call {
    let (mode, decay) = decay_mode(s.decay, s.lr);
    let reals =
        vec![0.0, s.beta1, 1.0 - s.beta1, s.beta2, 1.0 - s.beta2, 1.0 / s.bc2.sqrt(), s.eps, s.lr / s.bc1, decay];
    let kernel = if slots == 3 { "adam_amsgrad" } else { "adam" };
    Call { source: &super::ADAM, kernel, ints: vec![mode], reals }
}

static LAUNCHES: AtomicU64 = AtomicU64::new(0);

/// Kernel launches so far in this process (how a check tells that the kernels ran).
pub fn launches() -> u64 {
    LAUNCHES.load(Ordering::Relaxed)
}

/// The PTX of each source, compiled once per process.
fn ptx(source: &'static Source) -> Result<String> {
    static CACHE: Mutex<BTreeMap<&'static str, String>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().map_err(|_| candle::Error::Msg("CUDA kernel cache poisoned".into()))?;
    if let Some(ptx) = cache.get(source.name) {
        return Ok(ptx.clone());
    }
    let options = CompileOptions {
        options: super::NVRTC_OPTIONS.iter().map(|o| o.to_string()).collect(),
        name: Some(format!("{}.cu", source.name)),
        ..Default::default()
    };
    let ptx = compile_ptx_with_opts(source.program(), options)
        .map_err(|e| candle::Error::Msg(format!("NVRTC cannot compile the CUDA kernels `{}.cu`: {e}", source.name)))?
        .to_src();
    cache.insert(source.name, ptx.clone());
    Ok(ptx)
}

/// The optimizer state of one variable on its GPU: one buffer per slot of the rule's
/// [`fused_slots`](crate::core::Rule::fused_slots), each as long as the variable.
#[derive(Debug)]
pub struct DeviceVecs {
    device: CudaDevice,
    vecs: Buffers,
}

#[derive(Debug)]
enum Buffers {
    F32(Vec<CudaSlice<f32>>),
    F64(Vec<CudaSlice<f64>>),
}

impl DeviceVecs {
    /// `count` buffers of zeros for `var`.
    pub fn zeros(var: &Var, count: usize) -> Result<Self> {
        let device = var.device().as_cuda_device()?.clone();
        let n = var.elem_count();
        let vecs = match var.dtype() {
            DType::F32 => Buffers::F32((0..count).map(|_| device.alloc_zeros::<f32>(n)).collect::<Result<_>>()?),
            DType::F64 => Buffers::F64((0..count).map(|_| device.alloc_zeros::<f64>(n)).collect::<Result<_>>()?),
            other => candle::bail!("no CUDA kernel for {other:?}"),
        };
        Ok(Self { device, vecs })
    }

    /// The buffers as CPU tensors of `shape` (copies), to save them.
    pub fn to_tensors(&self, shape: &Shape) -> Result<Vec<Tensor>> {
        match &self.vecs {
            Buffers::F32(vecs) => {
                vecs.iter().map(|v| Tensor::from_vec(self.device.clone_dtoh(v)?, shape, &Device::Cpu)).collect()
            }
            Buffers::F64(vecs) => {
                vecs.iter().map(|v| Tensor::from_vec(self.device.clone_dtoh(v)?, shape, &Device::Cpu)).collect()
            }
        }
    }

    /// Buffers on `var`'s GPU from saved tensors (either path's), to restore them.
    pub fn from_tensors(var: &Var, tensors: &[Tensor]) -> Result<Self> {
        let device = var.device().as_cuda_device()?.clone();
        let host = |t: &Tensor| t.flatten_all()?.to_dtype(var.dtype())?.to_device(&Device::Cpu);
        let vecs = match var.dtype() {
            DType::F32 => Buffers::F32(
                tensors.iter().map(|t| device.clone_htod(&host(t)?.to_vec1::<f32>()?)).collect::<Result<_>>()?,
            ),
            DType::F64 => Buffers::F64(
                tensors.iter().map(|t| device.clone_htod(&host(t)?.to_vec1::<f64>()?)).collect::<Result<_>>()?,
            ),
            other => candle::bail!("no CUDA kernel for {other:?}"),
        };
        Ok(Self { device, vecs })
    }

    fn count(&self) -> usize {
        match &self.vecs {
            Buffers::F32(v) => v.len(),
            Buffers::F64(v) => v.len(),
        }
    }
}

/// Updates `var` in place on its GPU from `grad` in step `t` with the kernel of the rule with
/// `params` and `scalars`, and `state`.
pub fn update(
    name: &'static str,
    params: &dyn Any,
    scalars: &dyn Any,
    t: u64,
    var: &Var,
    grad: &Tensor,
    state: &mut DeviceVecs,
) -> Result<()> {
    let call = call_for(params, scalars, t, var.dtype(), state.count())?;
    let grad = grad.contiguous()?;
    let op = CudaOp { name, call, state: RefCell::new(state) };
    var.as_tensor().inplace_op2(&grad, &op)
}

/// A candle in-place op on the parameter's storage, with the gradient as operand and the
/// state in [`DeviceVecs`].
struct CudaOp<'a> {
    name: &'static str,
    call: Call,
    state: RefCell<&'a mut DeviceVecs>,
}

fn contiguous(layout: &Layout, what: &str) -> Result<std::ops::Range<usize>> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(start..end),
        None => candle::bail!("CUDA kernel: the {what} is not contiguous"),
    }
}

impl candle::InplaceOp2 for CudaOp<'_> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, _: &mut CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<()> {
        candle::bail!("{}: the CUDA kernel was given a CPU variable", self.name)
    }

    fn cuda_fwd(&self, s1: &mut CudaStorage, l1: &Layout, s2: &CudaStorage, l2: &Layout) -> Result<()> {
        let (param, grad) = (contiguous(l1, "parameter")?, contiguous(l2, "gradient")?);
        let mut state = self.state.borrow_mut();
        let DeviceVecs { device, vecs } = &mut **state;
        match vecs {
            Buffers::F32(s) => {
                launch(device, s1.as_cuda_slice_mut::<f32>()?, param, s2.as_cuda_slice::<f32>()?, grad, s, &self.call)
            }
            Buffers::F64(s) => {
                launch(device, s1.as_cuda_slice_mut::<f64>()?, param, s2.as_cuda_slice::<f64>()?, grad, s, &self.call)
            }
        }
    }
}

/// The type suffix of a kernel's name.
trait Suffix {
    const SUFFIX: &'static str;
}
impl Suffix for f32 {
    const SUFFIX: &'static str = "f32";
}
impl Suffix for f64 {
    const SUFFIX: &'static str = "f64";
}

fn launch<T: DeviceRepr + WithDType + Suffix>(
    device: &CudaDevice,
    param: &mut CudaSlice<T>,
    param_range: std::ops::Range<usize>,
    grad: &CudaSlice<T>,
    grad_range: std::ops::Range<usize>,
    state: &mut [CudaSlice<T>],
    call: &Call,
) -> Result<()> {
    let n = param_range.len();
    if grad_range.len() != n || state.iter().any(|s| s.len() != n) {
        candle::bail!(
            "CUDA kernel {}: parameter of {n} elements, gradient of {}, state of {:?}",
            call.kernel,
            grad_range.len(),
            state.iter().map(|s| s.len()).collect::<Vec<_>>()
        )
    }
    if n == 0 {
        return Ok(());
    }
    let elements = u32::try_from(n)
        .map_err(|_| candle::Error::Msg(format!("CUDA kernel {}: {n} elements, at most 2^32 - 1", call.kernel)))?;
    let ptx = ptx(call.source)?;
    let func = device.get_or_load_custom_func(
        &format!("{}_{}", call.kernel, T::SUFFIX),
        &format!("optbench_{}", call.source.name),
        &ptx,
    )?;
    let reals: Vec<T> = call.reals.iter().map(|&x| T::from_f64(x)).collect();
    let n = n as u64;
    let mut param = param.slice_mut(param_range);
    let grad = grad.slice(grad_range);
    let mut builder = func.builder();
    builder.arg(&n);
    builder.arg(&mut param);
    builder.arg(&grad);
    for s in state.iter_mut() {
        builder.arg(s);
    }
    for i in &call.ints {
        builder.arg(i);
    }
    for r in &reals {
        builder.arg(r);
    }
    // SAFETY: the kernel's parameters are (u64 n, T* param, const T* grad, T* state..., int...,
    // T...) in this order (`*.cu`), every buffer holds n elements (checked above).
    unsafe { builder.launch(LaunchConfig::for_num_elems(elements)) }.w()?;
    LAUNCHES.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
