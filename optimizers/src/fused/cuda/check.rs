//! The fused kernels of one device against the tensor path on the same device: every optimizer
//! and flag, f32 and f64, a few steps over variables small and large, with a non-contiguous
//! gradient, a variable that misses its gradient in some steps and a learning-rate change.
//! `tests/cuda.rs` runs it on a GPU, and `optbench optimizers --check-kernels --device cuda`
//! runs it from the built binary (a GPU machine has no Rust toolchain); on the CPU it checks
//! the CPU kernels the same way.

use candle::backprop::GradStore;
use candle::{DType, Device, Result, Tensor, Var};

use crate::{Kernels, OptimizerSpec};

/// Every optimizer with each of its flags (the kernels' branches).
pub fn specs() -> Vec<OptimizerSpec> {
    let s = OptimizerSpec::new;
    vec![
        s("adam").with("lr", 0.01),
        s("adam").with("lr", 0.02).with("weight_decay", 0.1).with("eps", 1e-6),
        s("adam").with("lr", 0.01).with("weight_decay", 0.1).with("decoupled", true),
        s("adamw").with("lr", 0.003),
        s("amsgrad").with("lr", 0.01).with("beta1", 0.5),
        s("adam").with("lr", 0.01).with("amsgrad", true).with("weight_decay", 0.01).with("decoupled", true),
        s("amsgrad").with("lr", 0.01).with("variant", "tf"),
        s("amsgrad").with("lr", 0.005).with("variant", "tf").with("beta1", 0.0).with("eps", 1e-10),
        s("sgd").with("lr", 0.1),
        s("sgd").with("lr", 0.1).with("momentum", 0.9).with("weight_decay", 0.01),
        s("sgd").with("lr", 0.1).with("momentum", 0.9).with("dampening", 0.1),
        s("sgd").with("lr", 0.1).with("momentum", 0.9).with("nesterov", true),
        s("adabelief").with("lr", 0.01),
        s("adabelief").with("lr", 0.01).with("rectify", false).with("amsgrad", true),
        s("adabelief").with("lr", 0.01).with("decoupled", false).with("weight_decay", 0.01),
        s("adabelief").with("lr", 0.01).with("fixed_decay", true).with("weight_decay", 0.01),
        s("adabelief").with("lr", 0.01).with("degenerated_to_sgd", false),
        s("adamod").with("lr", 0.01),
        s("adamod").with("lr", 0.01).with("weight_decay", 0.01),
        s("adabound").with("lr", 0.01),
        s("adabound").with("lr", 0.01).with("amsbound", true).with("weight_decay", 0.01),
        s("radam").with("lr", 0.01),
        s("radam").with("lr", 0.01).with("degenerated_to_sgd", true).with("weight_decay", 0.01),
        s("diffgrad").with("lr", 0.01),
        s("diffgrad").with("lr", 0.01).with("weight_decay", 0.01),
        s("adai").with("lr", 0.1),
        s("adai").with("lr", 0.1).with("weight_decay", 0.01),
        s("adaiw").with("lr", 0.1).with("weight_decay", 0.01),
        s("adashift").with("lr", 0.01).with("keep_num", 3),
        s("adashift").with("lr", 0.01).with("keep_num", 3).with("phi", "mean"),
        s("adashift").with("lr", 0.01).with("keep_num", 3).with("phi", "none"),
        s("adashift").with("lr", 0.01).with("keep_num", 1).with("variant", "pytorch-optimizer"),
        s("adashift").with("lr", 0.01).with("keep_num", 3).with("variant", "pytorch-optimizer").with("phi", "mean"),
        s("adashift").with("lr", 0.01).with("keep_num", 3).with("variant", "pytorch-optimizer").with("phi", "none"),
    ]
}

/// Whether a spec's update reduces over elements (Adai's global mean, AdaShift's mean): a
/// kernel's reduction adds in another order than candle's, so the two paths agree to rounding,
/// not to the last bit. Adai's CUDA kernels (`adai.cu`) sum each variable's second moments in
/// double, in blocks of 256 threads, where candle sums them in the parameter's type in its own
/// order: the mean differs by about one rounding of the parameter's type, every element-wise
/// operation after it is candle's, and the check compares the final parameters of the three
/// variables after 12 steps to a relative 1e-4 (f32) or 1e-10 (f64) (on the CPU the fused path
/// is bit-identical, `tests/kernels.rs`).
pub fn reduces(spec: &OptimizerSpec) -> bool {
    let phi = spec.hyperparameters.get("phi").map(|v| v.to_string());
    matches!(spec.name.as_str(), "adai" | "adaiw") || (spec.name == "adashift" && phi.as_deref() == Some("mean"))
}

/// One spec in one type on one device: how far the fused path ends from the tensor path.
#[derive(Clone, Debug)]
pub struct KernelCheck {
    pub spec: OptimizerSpec,
    pub dtype: DType,
    pub elements: usize,
    /// Elements whose final values differ at all.
    pub differing: usize,
    pub max_abs_diff: f64,
    /// The largest `|a - b| / max(|a|, |b|)`.
    pub max_rel_diff: f64,
    /// CUDA kernel launches of the fused run (0 on the CPU, and where a rule has no CUDA
    /// kernel yet: then both runs took the tensor path).
    pub cuda_launches: u64,
}

impl KernelCheck {
    /// Whether the paths agree: to the last bit, or to rounding for reductions.
    pub fn ok(&self) -> bool {
        if reduces(&self.spec) {
            let tolerance = if self.dtype == DType::F32 { 1e-4 } else { 1e-10 };
            self.max_rel_diff <= tolerance
        } else {
            self.differing == 0
        }
    }
}

/// The shapes of the check's variables: a matrix with a transposed gradient, a small vector
/// that misses its gradient every fourth step, a large matrix.
const SHAPES: [&[usize]; 3] = [&[37, 29], &[5], &[300, 400]];
const STEPS: usize = 12;

/// A small deterministic generator in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// The final values of `SHAPES`' variables after `STEPS` steps of `spec` with `kernels`.
fn run(spec: &OptimizerSpec, kernels: Kernels, dtype: DType, device: &Device) -> Result<Vec<f64>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let vars: Vec<Var> = SHAPES
        .iter()
        .map(|s| {
            let init: Vec<f64> = (0..s.iter().product()).map(|_| rng.next()).collect();
            Var::from_tensor(&Tensor::from_vec(init, *s, device)?.to_dtype(dtype)?)
        })
        .collect::<Result<_>>()?;
    let mut opt = spec.build_with_kernels(vars.clone(), kernels).map_err(candle::Error::wrap)?;
    for t in 0..STEPS {
        if t == STEPS / 2 {
            opt.set_learning_rate(opt.learning_rate() * 0.5);
        }
        let mut grads = GradStore::default();
        for (i, (var, shape)) in vars.iter().zip(SHAPES).enumerate() {
            if i == 1 && t % 4 == 3 {
                continue;
            }
            let n: usize = shape.iter().product();
            // Exact zeros on some elements (AdaShift's activation, Adam's sqrt(0)).
            let values: Vec<f64> =
                (0..n).map(|k| if k % 11 == 0 { 0.0 } else { rng.next() * (i + 1) as f64 }).collect();
            let g = if i == 0 {
                Tensor::from_vec(values, (shape[1], shape[0]), device)?.t()?
            } else {
                Tensor::from_vec(values, shape, device)?
            };
            grads.insert(var.as_tensor(), g.to_dtype(dtype)?);
        }
        opt.step(&grads)?;
    }
    let mut out = Vec::new();
    for var in &vars {
        out.extend(var.as_tensor().flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
    }
    Ok(out)
}

/// CUDA kernel launches so far in this process.
fn launches() -> u64 {
    #[cfg(feature = "cuda")]
    {
        super::launch::launches()
    }
    #[cfg(not(feature = "cuda"))]
    0
}

/// Checks `spec` in `dtype` on `device`.
pub fn check(spec: &OptimizerSpec, dtype: DType, device: &Device) -> Result<KernelCheck> {
    let before = launches();
    let fused = run(spec, Kernels::Auto, dtype, device)?;
    let cuda_launches = launches() - before;
    let tensors = run(spec, Kernels::TensorOps, dtype, device)?;
    let (mut differing, mut max_abs_diff, mut max_rel_diff) = (0, 0.0f64, 0.0f64);
    for (a, b) in fused.iter().zip(&tensors) {
        if a.is_nan() != b.is_nan() {
            differing += 1;
            (max_abs_diff, max_rel_diff) = (f64::INFINITY, f64::INFINITY);
        } else if a != b && !a.is_nan() {
            differing += 1;
            let d = (a - b).abs();
            max_abs_diff = max_abs_diff.max(d);
            max_rel_diff = max_rel_diff.max(d / a.abs().max(b.abs()));
        }
    }
    Ok(KernelCheck {
        spec: spec.clone(),
        dtype,
        elements: fused.len(),
        differing,
        max_abs_diff,
        max_rel_diff,
        cuda_launches,
    })
}

/// Checks every spec of [`specs`] in f32 and f64 on `device`.
pub fn check_all(device: &Device) -> Result<Vec<KernelCheck>> {
    let mut out = Vec::new();
    for spec in specs() {
        for dtype in [DType::F32, DType::F64] {
            out.push(check(&spec, dtype, device)?);
        }
    }
    Ok(out)
}
