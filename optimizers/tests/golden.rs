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
