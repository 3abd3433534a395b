//! Replays the golden trajectories recorded from the reference implementations
//! (`scripts/golden/generate.py`): every optimizer, every flag, f64 and f32, three tensors of
//! different shapes, 25 steps (more than AdaShift's default window), a learning-rate change at
//! step 15 and, except for AdaShift, steps in which a parameter has no gradient.

mod common;

use std::collections::BTreeSet;

use candle::Device;
use optimizers::golden::GoldenFile;
use optimizers::REGISTRY;

#[test]
fn every_golden_trajectory_replays_within_tolerance() {
    let mut failures = Vec::new();
    for path in common::golden_fixtures() {
        let file = GoldenFile::load(&path).unwrap();
        let report = file.replay(&Device::Cpu, None).unwrap();
        println!("{report}");
        if !report.passed() {
            failures.push(report.to_string());
        }
    }
    assert!(failures.is_empty(), "{} trajectories failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_tensor_path_replays_them_too() {
    // Optimizers with a fused CPU kernel take it by default; their tensor-op path (the one other
    // devices use) must match the references as well.
    for path in common::golden_fixtures() {
        let report =
            GoldenFile::load(&path).unwrap().replay_with(&Device::Cpu, None, optimizers::Kernels::TensorOps).unwrap();
        assert!(report.passed(), "{report}");
    }
}

#[test]
fn f64_trajectories_agree_to_1e_10_relative() {
    // Stricter than the format's default tolerance: f64 must agree to about 1e-10 relative.
    let strict = optimizers::golden::Tolerance { atol: 1e-13, rtol: 1e-10 };
    for path in common::golden_fixtures().into_iter().filter(|p| p.to_string_lossy().ends_with(".f64.json")) {
        let report = GoldenFile::load(&path).unwrap().replay(&Device::Cpu, Some(strict)).unwrap();
        assert!(report.passed(), "{report}");
    }
}

#[test]
fn fixtures_cover_every_optimizer_in_both_precisions() {
    let mut covered = BTreeSet::new();
    for path in common::golden_fixtures() {
        let file = GoldenFile::load(&path).unwrap();
        assert!(file.steps.iter().any(|s| s.lr.is_some()), "{}: no learning-rate change", file.case);
        covered.insert((file.optimizer.name.clone(), file.dtype.clone()));
    }
    for info in REGISTRY {
        for dtype in ["f64", "f32"] {
            assert!(
                covered.contains(&(info.name.to_string(), dtype.to_string())),
                "no {dtype} fixture for {}",
                info.name
            );
        }
    }
}

/// Every parameter after every step of `file`'s trajectory with `kernels`, as bits, and the
/// number of variables the fused kernel took.
fn trajectory(file: &GoldenFile, kernels: optimizers::Kernels) -> candle::Result<(Vec<Vec<u64>>, usize)> {
    use candle::{backprop::GradStore, DType, Tensor, Var};
    let dtype = file.dtype().map_err(candle::Error::Msg)?;
    let vars = file
        .params
        .iter()
        .map(|p| {
            Var::from_tensor(
                &Tensor::new(p.init.as_slice(), &Device::Cpu)?.reshape(p.shape.as_slice())?.to_dtype(dtype)?,
            )
        })
        .collect::<candle::Result<Vec<_>>>()?;
    let mut optimizer = file.optimizer.build_with_kernels(vars.clone(), kernels).map_err(candle::Error::wrap)?;
    let mut bits = Vec::new();
    for step in &file.steps {
        if let Some(lr) = step.lr {
            optimizer.set_learning_rate(lr);
        }
        let mut grads = GradStore::default();
        for ((var, param), grad) in vars.iter().zip(&file.params).zip(&step.grads) {
            if let Some(grad) = grad {
                let grad =
                    Tensor::new(grad.as_slice(), &Device::Cpu)?.reshape(param.shape.as_slice())?.to_dtype(dtype)?;
                grads.insert(var.as_tensor(), grad);
            }
        }
        optimizer.step(&grads)?;
        for var in &vars {
            let values = var.as_tensor().flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            bits.push(values.iter().map(|v| v.to_bits()).collect());
        }
    }
    Ok((bits, optimizer.fused_variables()))
}

#[test]
fn both_paths_replay_every_trajectory_to_the_same_bits() {
    // The kernel and the tensor ops, on the recorded gradients of every golden case: the same
    // parameters after every step, to the last bit; and every optimizer takes its kernel.
    for path in common::golden_fixtures() {
        let file = GoldenFile::load(&path).unwrap();
        let (fused, taken) = trajectory(&file, optimizers::Kernels::Auto).unwrap();
        let (tensors, none) = trajectory(&file, optimizers::Kernels::TensorOps).unwrap();
        assert_eq!(none, 0, "{}", file.case);
        assert_eq!(taken, file.params.len(), "{}: the fused kernel was not taken", file.case);
        for (i, (a, b)) in fused.iter().zip(&tensors).enumerate() {
            let (step, param) = (i / file.params.len() + 1, i % file.params.len());
            assert!(a == b, "{} ({}): parameter {param} differs after step {step}", file.case, file.dtype);
        }
    }
}
