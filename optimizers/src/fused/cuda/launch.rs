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
use crate::fused::adai::AdaiStep;
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
    kernel_types().contains(&TypeId::of::<S>()) || supports_whole_model::<S>()
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

// ---- Adai / AdaiW (`adai.cu`): a whole-model step.

/// Threads per block of `adai.cu` (its `ADAI_THREADS`), and the most blocks of one variable's
/// partial sums.
const ADAI_THREADS: u32 = 256;
const ADAI_MAX_BLOCKS: u32 = 1024;

/// Whether a whole-model rule with scalars `S` has CUDA kernels (its variables then keep their
/// state on the GPU and go through [`whole_model_update`]).
pub fn supports_whole_model<S: Any>() -> bool {
    TypeId::of::<S>() == TypeId::of::<AdaiStep>()
}

/// One variable of a whole-model step on the GPU: its scalars, the variable, its gradient and
/// its state.
pub type WholeModelStep<'a, S> = (S, &'a Var, Tensor, &'a mut DeviceVecs);

/// Adai's step on the GPU over every variable with a gradient (all on one device): per variable
/// the partial sums of the new second moments and their fold into the running total (in visit
/// order, on the device's stream), then per variable the update with the mean.
pub fn whole_model_update<S: Any>(name: &'static str, steps: &mut [WholeModelStep<'_, S>]) -> Result<()> {
    let Some((_, _, _, first)) = steps.first() else { return Ok(()) };
    let device = first.device.clone();
    let total = RefCell::new(device.alloc_zeros::<f64>(1)?);
    let mut count = 0usize;
    for (k, (scalars, var, grad, state)) in steps.iter_mut().enumerate() {
        if state.device.id() != device.id() {
            candle::bail!("{name}: the CUDA kernels need every variable on one GPU")
        }
        *grad = grad.contiguous()?;
        let pass = AdaiPass::Partial { total: &total, first: k == 0 };
        let op = AdaiOp { name, pass, s: adai_scalars(scalars)?, state: RefCell::new(&mut **state) };
        var.as_tensor().inplace_op2(grad, &op)?;
        count += var.elem_count();
    }
    let inv_count = 1.0 / count as f64;
    for (scalars, var, grad, state) in steps.iter_mut() {
        let pass = AdaiPass::Update { total: &total, inv_count };
        let op = AdaiOp { name, pass, s: adai_scalars(scalars)?, state: RefCell::new(&mut **state) };
        var.as_tensor().inplace_op2(grad, &op)?;
    }
    Ok(())
}

fn adai_scalars<S: Any>(scalars: &S) -> Result<AdaiStep> {
    match (scalars as &dyn Any).downcast_ref::<AdaiStep>() {
        Some(s) => Ok(*s),
        None => candle::bail!("no whole-model CUDA kernel for scalars {}", std::any::type_name::<S>()),
    }
}

enum AdaiPass<'a> {
    /// The partial sums and their fold into `total` (set by the first variable).
    Partial { total: &'a RefCell<CudaSlice<f64>>, first: bool },
    /// The update with the mean `total / count`.
    Update { total: &'a RefCell<CudaSlice<f64>>, inv_count: f64 },
}

/// One pass over one variable, as a candle in-place op on the parameter's storage with the
/// gradient as operand (how the kernels reach the buffers of both).
struct AdaiOp<'a, 'b> {
    name: &'static str,
    pass: AdaiPass<'a>,
    s: AdaiStep,
    state: RefCell<&'b mut DeviceVecs>,
}

impl candle::InplaceOp2 for AdaiOp<'_, '_> {
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
                self.launch(device, s1.as_cuda_slice_mut::<f32>()?, param, s2.as_cuda_slice::<f32>()?, grad, s)
            }
            Buffers::F64(s) => {
                self.launch(device, s1.as_cuda_slice_mut::<f64>()?, param, s2.as_cuda_slice::<f64>()?, grad, s)
            }
        }
    }
}

impl AdaiOp<'_, '_> {
    fn launch<T: DeviceRepr + WithDType + Suffix>(
        &self,
        device: &CudaDevice,
        param: &mut CudaSlice<T>,
        param_range: std::ops::Range<usize>,
        grad: &CudaSlice<T>,
        grad_range: std::ops::Range<usize>,
        state: &mut [CudaSlice<T>],
    ) -> Result<()> {
        let n = param_range.len();
        let [m, v, prod] = state else { candle::bail!("CUDA kernel adai: {} state buffers, not 3", state.len()) };
        if grad_range.len() != n || [&*m, &*v, &*prod].iter().any(|s| s.len() != n) {
            candle::bail!(
                "CUDA kernel adai: parameter of {n} elements, gradient of {}, state of {}",
                grad_range.len(),
                m.len()
            )
        }
        if n == 0 {
            return Ok(());
        }
        let elements = u32::try_from(n)
            .map_err(|_| candle::Error::Msg(format!("CUDA kernel adai: {n} elements, at most 2^32 - 1")))?;
        let ptx = ptx(&super::ADAI)?;
        let func =
            |kernel: &str| device.get_or_load_custom_func(&format!("{kernel}_{}", T::SUFFIX), "optbench_adai", &ptx);
        let s = &self.s;
        let (mode, decay) = decay_mode(s.decay, s.lr);
        let real = T::from_f64;
        let (zero, beta2, omb2, decay) = (real(0.0), real(s.beta2), real(1.0 - s.beta2), real(decay));
        let n = n as u64;
        let grad = grad.slice(grad_range);
        let threads = |blocks: u32| LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (ADAI_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        match self.pass {
            AdaiPass::Partial { total, first } => {
                let blocks = elements.div_ceil(ADAI_THREADS).clamp(1, ADAI_MAX_BLOCKS);
                let mut partial = device.alloc_zeros::<f64>(blocks as usize)?;
                let param = param.slice(param_range);
                let partial_fn = func("adai_partial")?;
                let mut builder = partial_fn.builder();
                builder.arg(&n);
                builder.arg(&param);
                builder.arg(&grad);
                builder.arg(&*v);
                builder.arg(&mut partial);
                builder.arg(&mode);
                builder.arg(&zero);
                builder.arg(&beta2);
                builder.arg(&omb2);
                builder.arg(&decay);
                // SAFETY: `adai_partial`'s parameters are (u64 n, const T* param, const T* grad,
                // const T* v, double* partial, int mode, T zero, T beta2, T omb2, T wd), the
                // buffers hold n elements, `partial` one sum per block of ADAI_THREADS threads.
                unsafe { builder.launch(threads(blocks)) }.w()?;
                let mut total = total.borrow_mut();
                let (first, inv_bc2) = (i32::from(first), 1.0 / s.bc2);
                let fold_fn = func("adai_fold")?;
                let mut builder = fold_fn.builder();
                builder.arg(&partial);
                builder.arg(&blocks);
                builder.arg(&mut *total);
                builder.arg(&first);
                builder.arg(&inv_bc2);
                // SAFETY: `adai_fold`'s parameters are (const double* partial, unsigned blocks,
                // double* total, int first, double inv_bc2), `partial` holds `blocks` sums and
                // `total` one; one block of ADAI_THREADS threads.
                unsafe { builder.launch(threads(1)) }.w()?;
                LAUNCHES.fetch_add(2, Ordering::Relaxed);
            }
            AdaiPass::Update { total, inv_count } => {
                let total = total.borrow();
                let first = i32::from(s.first);
                let reals =
                    [zero, beta2, omb2, real(1.0 / s.bc2), real(-s.beta0), real(1.0 - s.eps), real(s.lr), decay];
                let mut param = param.slice_mut(param_range);
                let update_fn = func("adai")?;
                let mut builder = update_fn.builder();
                builder.arg(&n);
                builder.arg(&mut param);
                builder.arg(&grad);
                builder.arg(m);
                builder.arg(v);
                builder.arg(prod);
                builder.arg(&*total);
                builder.arg(&inv_count);
                builder.arg(&mode);
                builder.arg(&first);
                for r in &reals {
                    builder.arg(r);
                }
                // SAFETY: `adai`'s parameters are (u64 n, T* param, const T* grad, T* m, T* v,
                // T* prod, const double* total, double inv_count, int mode, int first, T zero,
                // T beta2, T omb2, T inv_bc2, T minus_beta0, T max_beta1, T lr, T decay), every
                // buffer holds n elements, `total` one.
                unsafe { builder.launch(LaunchConfig::for_num_elems(elements)) }.w()?;
                LAUNCHES.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}
