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
    let spec = OptimizerSpec::new;
    vec![
        spec("adam").with("lr", 0.01),
        spec("adam").with("lr", 0.02).with("weight_decay", 0.1).with("eps", 1e-6),
        spec("adam").with("lr", 0.01).with("weight_decay", 0.1).with("decoupled", true),
        spec("adamw").with("lr", 0.003),
        spec("amsgrad").with("lr", 0.01).with("beta1", 0.5),
        spec("adam").with("lr", 0.01).with("amsgrad", true).with("weight_decay", 0.01).with("decoupled", true),
        // The AdaShift authors' TensorFlow AMSGrad (constants and beta powers in the
        // parameter's precision).
        spec("amsgrad").with("lr", 0.01).with("variant", "tf"),
        spec("amsgrad").with("lr", 0.005).with("variant", "tf").with("beta1", 0.0).with("eps", 1e-10),
        // SGD: every flag of torch.optim.SGD.
        spec("sgd").with("lr", 0.1),
        spec("sgd").with("lr", 0.1).with("weight_decay", 0.01),
        spec("sgd").with("lr", 0.05).with("momentum", 0.9),
        spec("sgd").with("lr", 0.05).with("momentum", 0.9).with("dampening", 0.3).with("weight_decay", 5e-4),
        spec("sgd").with("lr", 0.05).with("momentum", 0.9).with("nesterov", true),
        spec("sgd").with("lr", 0.05).with("momentum", 0.8).with("nesterov", true).with("weight_decay", 1e-3),
        // AdaBelief: the defaults (decoupled, rectify with SGD steps), and every other flag.
        spec("adabelief").with("lr", 0.01),
        spec("adabelief").with("lr", 0.01).with("weight_decay", 0.1),
        spec("adabelief").with("lr", 0.01).with("weight_decay", 0.1).with("fixed_decay", true),
        spec("adabelief").with("lr", 0.01).with("degenerated_to_sgd", false).with("weight_decay", 0.05),
        spec("adabelief").with("lr", 0.01).with("rectify", false).with("decoupled", false).with("weight_decay", 5e-4),
        spec("adabelief").with("lr", 0.01).with("rectify", false).with("amsgrad", true).with("eps", 1e-8),
        spec("adabelief").with("lr", 0.01).with("amsgrad", true).with("weight_decay", 0.01),
        // A small beta2 makes the rectified step adaptive within a few steps.
        spec("adabelief").with("lr", 0.01).with("beta2", 0.6).with("amsgrad", true),
        spec("adamod").with("lr", 0.01),
        spec("adamod").with("lr", 0.01).with("weight_decay", 0.1).with("beta3", 0.5),
        spec("adabound").with("lr", 0.01),
        spec("adabound").with("lr", 0.01).with("weight_decay", 0.01).with("gamma", 0.1).with("final_lr", 0.05),
        spec("adabound").with("lr", 0.01).with("amsbound", true).with("weight_decay", 0.01),
        spec("radam").with("lr", 0.01),
        spec("radam").with("lr", 0.01).with("degenerated_to_sgd", true).with("weight_decay", 0.1),
        spec("radam").with("lr", 0.01).with("beta2", 0.6).with("weight_decay", 0.1),
        spec("diffgrad").with("lr", 0.01),
        spec("diffgrad").with("lr", 0.01).with("weight_decay", 0.1),
        // Adai's global mean over every variable (a pre-pass), L2 and decoupled decay.
        spec("adai").with("lr", 0.1),
        spec("adai").with("lr", 0.1).with("weight_decay", 5e-4).with("beta0", 0.5),
        spec("adaiw").with("lr", 0.1).with("weight_decay", 5e-2),
        // AdaShift: both variants, every phi (max / mean: per-tensor reductions in candle's
        // order), windows that fill within the run (12 steps) or are saved half full (6), 1.
        spec("adashift").with("lr", 0.01),
        spec("adashift").with("lr", 0.01).with("keep_num", 3),
        spec("adashift").with("lr", 0.01).with("keep_num", 3).with("phi", "mean"),
        spec("adashift").with("lr", 0.01).with("keep_num", 3).with("phi", "none").with("beta1", 0.5),
        spec("adashift").with("lr", 0.01).with("keep_num", 6).with("phi", "none"),
        spec("adashift").with("lr", 0.01).with("keep_num", 1).with("phi", "mean").with("eps", 1e-6),
        spec("adashift").with("lr", 0.01).with("keep_num", 3).with("variant", "pytorch-optimizer"),
        spec("adashift").with("lr", 0.01).with("keep_num", 3).with("variant", "pytorch-optimizer").with("phi", "mean"),
        spec("adashift").with("lr", 0.01).with("keep_num", 6).with("variant", "pytorch-optimizer").with("phi", "none"),
        spec("adashift")
            .with("lr", 0.01)
            .with("keep_num", 1)
            .with("variant", "pytorch-optimizer")
            .with("phi", "none")
            .with("beta2", 0.9),
    ]
}

/// A saved state: every slot's name and values.
type Slots = Vec<(String, Vec<f64>)>;

fn run(
    spec: &OptimizerSpec,
    kernels: Kernels,
    dtype: DType,
    shapes: &[Vec<usize>],
    steps: usize,
) -> Result<(Vec<Vec<f64>>, Slots)> {
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
    assert_eq!(opt.fused_variables() > 0, kernels == Kernels::Auto, "{spec}: the kernel was (not) taken");
    let values = vars.iter().map(|v| flat(v.as_tensor())).collect::<Result<_>>()?;
    let state = opt.state()?.tensors.iter().map(|(k, t)| Ok((k.clone(), flat(t)?))).collect::<Result<_>>()?;
    Ok((values, state))
}

fn flat(t: &Tensor) -> Result<Vec<f64>> {
    t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()
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
fn every_fused_kernel_equals_the_tensor_path_bit_for_bit() -> Result<()> {
    let shapes = vec![vec![37, 29], vec![5], vec![260, 256]]; // the last is split across threads
    for dtype in [DType::F32, DType::F64] {
        for spec in specs() {
            let (fused, fused_state) = run(&spec, Kernels::Auto, dtype, &shapes, 12)?;
            let (tensors, tensors_state) = run(&spec, Kernels::TensorOps, dtype, &shapes, 12)?;
            for (k, (a, b)) in fused.iter().zip(&tensors).enumerate() {
                assert_eq!(bits(a), bits(b), "{spec} {dtype:?}: tensor {k} differs in {} elements", differ(a, b));
            }
            let names = |s: &[(String, Vec<f64>)]| s.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
            assert_eq!(names(&fused_state), names(&tensors_state), "{spec}: the saved slots differ");
            for ((name, a), (_, b)) in fused_state.iter().zip(&tensors_state) {
                assert_eq!(bits(a), bits(b), "{spec} {dtype:?}: state `{name}` differs in {} elements", differ(a, b));
            }
        }
    }
    Ok(())
}

/// The exact bits (so that -0.0 differs from 0.0, and a NaN equals itself).
fn bits(x: &[f64]) -> Vec<u64> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn differ(a: &[f64], b: &[f64]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x.to_bits() != y.to_bits()).count()
}

#[test]
fn states_move_between_the_paths_mid_run() -> Result<()> {
    // 4 steps on one path, the state saved and restored into an optimizer on the other path,
    // 4 more steps: the same bits as 8 steps on the tensor path.
    let shape = (66, 1000); // split across threads
    for dtype in [DType::F32, DType::F64] {
        for spec in specs() {
            let mut rng = Rng::new(3);
            let init: Vec<f64> = (0..66_000).map(|_| rng.next()).collect();
            let grads: Vec<Tensor> = (0..8)
                .map(|_| {
                    Tensor::from_vec((0..66_000).map(|_| rng.next()).collect::<Vec<f64>>(), shape, &Device::Cpu)?
                        .to_dtype(dtype)
                })
                .collect::<Result<_>>()?;
            let var = |init: &[f64]| Var::from_tensor(&Tensor::from_slice(init, shape, &Device::Cpu)?.to_dtype(dtype)?);
            let steps = |opt: &mut optimizers::BoxedOptimizer, var: &Var, grads: &[Tensor]| -> Result<()> {
                for g in grads {
                    let mut store = GradStore::default();
                    store.insert(var.as_tensor(), g.clone());
                    opt.step(&store)?;
                }
                Ok(())
            };
            let reference = var(&init)?;
            let mut opt =
                spec.build_with_kernels(vec![reference.clone()], Kernels::TensorOps).map_err(candle::Error::wrap)?;
            steps(&mut opt, &reference, &grads)?;
            for (first, second) in [(Kernels::Auto, Kernels::TensorOps), (Kernels::TensorOps, Kernels::Auto)] {
                let x = var(&init)?;
                let mut opt = spec.build_with_kernels(vec![x.clone()], first).map_err(candle::Error::wrap)?;
                steps(&mut opt, &x, &grads[..4])?;
                let saved = opt.state()?;
                let y = Var::from_tensor(x.as_tensor())?;
                let mut resumed = spec.build_with_kernels(vec![y.clone()], second).map_err(candle::Error::wrap)?;
                resumed.load_state(&saved)?;
                steps(&mut resumed, &y, &grads[4..])?;
                let (a, b) = (flat(y.as_tensor())?, flat(reference.as_tensor())?);
                assert_eq!(
                    bits(&a),
                    bits(&b),
                    "{spec} {dtype:?} {first:?} -> {second:?}: {} elements differ",
                    differ(&a, &b)
                );
            }
        }
    }
    Ok(())
}

#[test]
fn adai_sums_its_blocks_in_parallel_to_the_tensor_paths_bits() -> Result<()> {
    // Adai's global mean sums each variable by blocks of 2^16 elements (`blocked_sum`): one
    // block, several with a shorter last one, an exact multiple, and with L2 (the pass-1 term).
    let block = optimizers::parts::moments::SUM_BLOCK;
    let shapes = vec![vec![3, block], vec![2 * block + 17], vec![900], vec![block]];
    for dtype in [DType::F32, DType::F64] {
        for spec in [
            OptimizerSpec::new("adai").with("lr", 0.1),
            OptimizerSpec::new("adaiw").with("lr", 0.1).with("weight_decay", 5e-2),
            OptimizerSpec::new("adai").with("lr", 0.1).with("weight_decay", 5e-4),
        ] {
            let (fused, _) = run(&spec, Kernels::Auto, dtype, &shapes, 3)?;
            let (tensors, _) = run(&spec, Kernels::TensorOps, dtype, &shapes, 3)?;
            for (k, (a, b)) in fused.iter().zip(&tensors).enumerate() {
                assert_eq!(bits(a), bits(b), "{spec} {dtype:?}: tensor {k} differs in {} elements", differ(a, b));
            }
        }
    }
    Ok(())
}
