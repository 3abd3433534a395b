//! The fused CPU kernels against the tensor path they replace: the same parameters, to the
//! last bit, for every flag, in f32 and f64, for tensors small and large (split across threads),
//! with gradients that are missing in some steps or not contiguous.

use candle::backprop::GradStore;
use candle::{DType, Device, Result, Tensor, Var};
use models_free_rng::Rng;
use optimizers::{Kernels, OptimizerSpec};

mod models_free_rng {
    /// A tiny deterministic generator (the tests of this crate do not depend on `models`).
    pub struct Rng(u64);
    impl Rng {
        pub fn new(seed: u64) -> Self {
            Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        pub fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        }
    }
}

fn specs() -> Vec<OptimizerSpec> {
    vec![
        OptimizerSpec::new("adam").with("lr", 0.01),
        OptimizerSpec::new("adam").with("lr", 0.02).with("weight_decay", 0.1).with("eps", 1e-6),
        OptimizerSpec::new("adam").with("lr", 0.01).with("weight_decay", 0.1).with("decoupled", true),
        OptimizerSpec::new("adamw").with("lr", 0.003),
        OptimizerSpec::new("amsgrad").with("lr", 0.01).with("beta1", 0.5),
        OptimizerSpec::new("adam")
            .with("lr", 0.01)
            .with("amsgrad", true)
            .with("weight_decay", 0.01)
            .with("decoupled", true),
        // The AdaShift authors' TensorFlow AMSGrad (constants and beta powers in the
        // parameter's precision).
        OptimizerSpec::new("amsgrad").with("lr", 0.01).with("variant", "tf"),
        OptimizerSpec::new("amsgrad").with("lr", 0.005).with("variant", "tf").with("beta1", 0.0).with("eps", 1e-10),
    ]
}

fn run(
    spec: &OptimizerSpec,
    kernels: Kernels,
    dtype: DType,
    shapes: &[Vec<usize>],
    steps: usize,
) -> Result<Vec<Vec<f64>>> {
    let mut rng = Rng::new(7);
    let vars: Vec<Var> = shapes
        .iter()
        .map(|s| {
            let n: usize = s.iter().product();
            let init: Vec<f64> = (0..n).map(|_| rng.next()).collect();
            Var::from_tensor(&Tensor::from_vec(init, s.as_slice(), &Device::Cpu)?.to_dtype(dtype)?)
        })
        .collect::<Result<_>>()?;
    let mut opt = spec.build_with_kernels(vars.clone(), kernels).map_err(candle::Error::wrap)?;
    for t in 0..steps {
        if t == steps / 2 {
            opt.set_learning_rate(opt.learning_rate() * 0.5);
        }
        let mut grads = GradStore::default();
        for (i, (var, shape)) in vars.iter().zip(shapes).enumerate() {
            if i == 1 && t % 4 == 3 {
                continue; // no gradient this step
            }
            let n: usize = shape.iter().product();
            let values: Vec<f64> =
                (0..n).map(|k| if k % 11 == 0 { 0.0 } else { rng.next() * (i + 1) as f64 }).collect();
            let g = if i == 0 {
                // A transposed (non-contiguous) gradient of the right shape.
                let g = Tensor::from_vec(values, (shape[1], shape[0]), &Device::Cpu)?.t()?;
                assert!(!g.is_contiguous());
                g
            } else {
                Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?
            };
            grads.insert(var.as_tensor(), g.to_dtype(dtype)?);
        }
        opt.step(&grads)?;
    }
    vars.iter().map(|v| v.as_tensor().flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()).collect()
}

#[test]
fn cpu_f32_and_f64_variables_take_the_fused_kernel() -> Result<()> {
    use candle_nn::optim::Optimizer;
    use optimizers::WithKernels;
    for dtype in [DType::F32, DType::F64] {
        let a = Var::from_tensor(&Tensor::ones((3, 4), dtype, &Device::Cpu)?)?;
        let b = Var::from_tensor(&Tensor::ones(7, dtype, &Device::Cpu)?)?;
        let mut grads = GradStore::default();
        grads.insert(a.as_tensor(), Tensor::ones((3, 4), dtype, &Device::Cpu)?);
        grads.insert(b.as_tensor(), Tensor::ones(7, dtype, &Device::Cpu)?);
        let mut fused = optimizers::Adam::new(vec![a.clone(), b.clone()], Default::default())?;
        fused.step(&grads)?;
        assert_eq!(fused.fused_variables(), 2);
        let mut reference = optimizers::Adam::new_with_kernels(vec![a, b], Default::default(), Kernels::TensorOps)?;
        reference.step(&grads)?;
        assert_eq!(reference.fused_variables(), 0);
    }
    Ok(())
}

#[test]
fn fused_adam_and_amsgrad_kernels_equal_the_tensor_path_bit_for_bit() -> Result<()> {
    let shapes = vec![vec![37, 29], vec![5], vec![300, 400]]; // the last is split across threads
    for dtype in [DType::F32, DType::F64] {
        for spec in specs() {
            let fused = run(&spec, Kernels::Auto, dtype, &shapes, 12)?;
            let tensors = run(&spec, Kernels::TensorOps, dtype, &shapes, 12)?;
            for (k, (a, b)) in fused.iter().zip(&tensors).enumerate() {
                let diff = a.iter().zip(b).filter(|(x, y)| x != y).count();
                assert_eq!(diff, 0, "{spec} {dtype:?}: tensor {k} differs in {diff} of {} elements", a.len());
            }
        }
    }
    Ok(())
}
