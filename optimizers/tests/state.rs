//! Optimizer state save and restore: N steps, a save to files, a restore into a FRESH optimizer
//! over fresh variables set to the saved parameters, and M more steps give the same parameters,
//! to the last bit, as N + M uninterrupted steps. For every optimizer of the registry with each
//! of its flags, in f32 and f64, through both kernel paths (and from one path into the other),
//! with a variable that misses its gradient in some steps, one that has none before the save,
//! an integer variable among them, and learning-rate changes before and after the save; and for
//! every golden trajectory. Then one test per error a restore reports.

mod common;

use std::path::{Path, PathBuf};

use candle::backprop::GradStore;
use candle::{DType, Device, Result, Tensor, Var};
use optimizers::golden::GoldenFile;
use optimizers::{BoxedOptimizer, HyperValue, Kernels, OptimizerSpec, OptimizerState, REGISTRY};

/// A tiny deterministic generator (the tests of this crate do not depend on `models`).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// Every optimizer with its defaults (plus what it needs), and once with each of its boolean
/// flags flipped; weight decay on where there is one, AdaShift with each `phi` and a short
/// window in both variants, AMSGrad's TensorFlow variant, SGD with and without momentum,
/// AdaBound with bounds that bind.
fn specs() -> Vec<OptimizerSpec> {
    let mut specs = Vec::new();
    for info in REGISTRY {
        let hyper = info.hyperparameters();
        let has = |key: &str| hyper.iter().any(|(k, _)| k == key);
        let mut base = OptimizerSpec::new(info.name).with("lr", 0.01);
        if has("weight_decay") {
            base = base.with("weight_decay", 0.05);
        }
        match info.name {
            "sgd" => {
                specs.push(base.clone());
                base = base.with("momentum", 0.9).with("dampening", 0.0);
            }
            // Bounds that bind within the steps, so that they depend on the restored base_lr.
            "adabound" => base = base.with("gamma", 0.5).with("final_lr", 0.01),
            "adashift" => {
                base = base.with("keep_num", 3i64);
                for phi in ["mean", "none", "max"] {
                    specs.push(base.clone().with("phi", phi).with("variant", "pytorch-optimizer"));
                }
                for phi in ["mean", "none"] {
                    specs.push(base.clone().with("phi", phi));
                }
            }
            // The authors' TensorFlow AMSGrad has no weight decay.
            "amsgrad" => specs.push(OptimizerSpec::new("amsgrad").with("lr", 0.01).with("variant", "tf")),
            _ => {}
        }
        specs.push(base.clone());
        for (key, default) in &hyper {
            if let Some(HyperValue::Bool(b)) = default {
                specs.push(base.clone().with(key.as_str(), !b));
            }
        }
    }
    specs
}

const SHAPES: [&[usize]; 4] = [&[4, 3], &[2], &[5], &[2, 2, 2]];
/// Variable 1 is an integer one; 2 misses its gradient in some steps; 3 has none before step 6.
fn has_grad(var: usize, step: usize) -> bool {
    match var {
        1 => false,
        2 => step % 3 != 1,
        3 => step >= 6,
        _ => true,
    }
}

/// The learning rate set before step `step` (0-based), if any.
fn lr_change(step: usize) -> Option<f64> {
    match step {
        3 => Some(0.02),
        8 => Some(0.005),
        _ => None,
    }
}

struct Problem {
    dtype: DType,
    init: Vec<Vec<f64>>,
    /// grads[step][var]
    grads: Vec<Vec<Option<Vec<f64>>>>,
}

impl Problem {
    fn new(dtype: DType, steps: usize) -> Self {
        let mut rng = Rng::new(11);
        let numel = |s: &[usize]| s.iter().product::<usize>();
        let init = SHAPES.iter().map(|s| (0..numel(s)).map(|_| rng.next()).collect()).collect();
        let grads = (0..steps)
            .map(|t| {
                SHAPES
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        // Some exact zeros, which AdaShift's variants treat apart.
                        has_grad(i, t)
                            .then(|| (0..numel(s)).map(|k| if (k + t) % 7 == 0 { 0.0 } else { rng.next() }).collect())
                    })
                    .collect()
            })
            .collect();
        Self { dtype, init, grads }
    }

    fn vars(&self, values: &[Vec<f64>]) -> Result<Vec<Var>> {
        SHAPES
            .iter()
            .zip(values)
            .enumerate()
            .map(|(i, (shape, v))| {
                let t = Tensor::from_vec(v.clone(), *shape, &Device::Cpu)?;
                Var::from_tensor(&if i == 1 { t.to_dtype(DType::U32)? } else { t.to_dtype(self.dtype)? })
            })
            .collect()
    }

    fn run(&self, opt: &mut BoxedOptimizer, vars: &[Var], steps: std::ops::Range<usize>) -> Result<()> {
        for t in steps {
            if let Some(lr) = lr_change(t) {
                opt.set_learning_rate(lr);
            }
            let mut store = GradStore::default();
            for ((var, shape), g) in vars.iter().zip(SHAPES).zip(&self.grads[t]) {
                if let Some(g) = g {
                    store.insert(
                        var.as_tensor(),
                        Tensor::from_vec(g.clone(), shape, &Device::Cpu)?.to_dtype(self.dtype)?,
                    );
                }
            }
            opt.step(&store)?;
        }
        Ok(())
    }
}

/// The exact values of the variables (as f64, which holds f32 exactly).
fn values(vars: &[Var]) -> Result<Vec<Vec<f64>>> {
    vars.iter().map(|v| v.as_tensor().flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()).collect()
}

fn build(spec: &OptimizerSpec, vars: Vec<Var>, kernels: Kernels) -> BoxedOptimizer {
    spec.build_with_kernels(vars, kernels).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("optimizer.safetensors"), dir.join("optimizer.json"))
}

/// Saves, reads back, and restores into a fresh optimizer over fresh variables with the saved
/// values. The fresh optimizer is built with another learning rate: the state brings it back.
fn round_trip(
    spec: &OptimizerSpec,
    opt: &BoxedOptimizer,
    vars: Vec<Var>,
    kernels: Kernels,
    dir: &Path,
) -> Result<BoxedOptimizer> {
    let (tensors, meta) = files(dir);
    opt.state()?.save(&tensors, &meta)?;
    let state = OptimizerState::load(&tensors, &meta)?;
    let lr = spec.lr().unwrap_or(1e-3) * 3.0;
    let mut fresh = build(&spec.clone().with("lr", lr), vars, kernels);
    fresh.load_state(&state)?;
    assert_eq!(fresh.learning_rate(), opt.learning_rate(), "{spec}: the learning rate was not restored");
    Ok(fresh)
}

#[test]
fn every_optimizer_resumes_bit_identically() -> Result<()> {
    const N: usize = 9;
    const M: usize = 7;
    let dir = tempfile::tempdir()?;
    let paths = [Kernels::Auto, Kernels::TensorOps];
    let mut checked = 0;
    for dtype in [DType::F32, DType::F64] {
        let problem = Problem::new(dtype, N + M);
        for spec in specs() {
            for saved_with in paths {
                let vars = problem.vars(&problem.init)?;
                let mut straight = build(&spec, vars.clone(), saved_with);
                problem.run(&mut straight, &vars, 0..N + M)?;
                let expected = values(&vars)?;

                let vars = problem.vars(&problem.init)?;
                let mut first = build(&spec, vars.clone(), saved_with);
                problem.run(&mut first, &vars, 0..N)?;
                let meta = first.state()?.meta;
                assert_eq!(meta["optimizer"], spec.name.as_str());
                for loaded_with in paths {
                    let fresh_vars = problem.vars(&values(&vars)?)?;
                    let mut resumed = round_trip(&spec, &first, fresh_vars.clone(), loaded_with, dir.path())?;
                    problem.run(&mut resumed, &fresh_vars, N..N + M)?;
                    let got = values(&fresh_vars)?;
                    for (k, (a, b)) in got.iter().zip(&expected).enumerate() {
                        let diff = a.iter().zip(b).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
                        assert_eq!(
                            diff,
                            0,
                            "{spec} {dtype:?}, saved with {saved_with:?}, resumed with {loaded_with:?}: \
                             variable {k} differs in {diff} of {} elements",
                            a.len()
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} resumptions checked");
    Ok(())
}

#[test]
fn the_state_names_every_slot_by_variable_index() -> Result<()> {
    let problem = Problem::new(DType::F32, 4);
    for (spec, names) in [
        (OptimizerSpec::new("adam").with("amsgrad", true), vec!["0.m", "0.v", "0.vmax", "2.m", "2.v", "2.vmax"]),
        (
            OptimizerSpec::new("adashift").with("keep_num", 2i64).with("variant", "pytorch-optimizer"),
            vec!["0.m", "0.v", "0.window.0", "0.window.1", "2.m", "2.v", "2.window.0", "2.window.1"],
        ),
        (
            OptimizerSpec::new("adashift").with("keep_num", 2i64),
            vec!["0.b2p", "0.v", "0.window.0", "0.window.1", "0.z", "2.b2p", "2.v", "2.window.0", "2.window.1", "2.z"],
        ),
        (OptimizerSpec::new("amsgrad").with("variant", "tf"), vec!["0.m", "0.v", "2.m", "2.v"]),
    ] {
        for kernels in [Kernels::Auto, Kernels::TensorOps] {
            let vars = problem.vars(&problem.init)?;
            let mut opt = build(&spec, vars.clone(), kernels);
            problem.run(&mut opt, &vars, 0..4)?;
            let state = opt.state()?;
            assert_eq!(state.tensors.keys().collect::<Vec<_>>(), names, "{spec} {kernels:?}");
            assert!(state.tensors.values().all(|t| t.device().is_cpu()));
            let steps: Vec<u64> =
                state.meta["variables"].as_array().unwrap().iter().map(|v| v["step"].as_u64().unwrap()).collect();
            // Variable 1 is an integer one (not kept); 2 misses step 2; 3 has no gradient yet.
            assert_eq!(steps, [4, 3, 0], "{spec}");
            assert_eq!(state.meta["format"], "optbench-optimizer-state/1");
        }
    }
    Ok(())
}

/// Replays steps `range` of a golden file (the recorded gradients and learning rates).
fn replay(file: &GoldenFile, opt: &mut BoxedOptimizer, vars: &[Var], range: std::ops::Range<usize>) -> Result<()> {
    let dtype = vars[0].dtype();
    for step in &file.steps[range] {
        if let Some(lr) = step.lr {
            opt.set_learning_rate(lr);
        }
        let mut store = GradStore::default();
        for ((var, param), grad) in vars.iter().zip(&file.params).zip(&step.grads) {
            if let Some(grad) = grad {
                let g = Tensor::new(grad.as_slice(), &Device::Cpu)?.reshape(param.shape.as_slice())?;
                store.insert(var.as_tensor(), g.to_dtype(dtype)?);
            }
        }
        opt.step(&store)?;
    }
    Ok(())
}

fn golden_vars(file: &GoldenFile, values: Option<&[Vec<f64>]>) -> Result<Vec<Var>> {
    let dtype = file.dtype().map_err(candle::Error::Msg)?;
    file.params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let init = values.map_or(p.init.as_slice(), |v| v[i].as_slice());
            Var::from_tensor(&Tensor::new(init, &Device::Cpu)?.reshape(p.shape.as_slice())?.to_dtype(dtype)?)
        })
        .collect()
}

#[test]
fn every_golden_trajectory_resumes_bit_identically() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for path in common::golden_fixtures() {
        let file = GoldenFile::load(&path).unwrap();
        let total = file.steps.len();
        for kernels in [Kernels::Auto, Kernels::TensorOps] {
            let vars = golden_vars(&file, None)?;
            let mut straight = build(&file.optimizer, vars.clone(), kernels);
            replay(&file, &mut straight, &vars, 0..total)?;
            let expected = values(&vars)?;
            // Before and after the learning-rate change of the trajectories (at step 15).
            for split in [total / 3, total * 2 / 3] {
                let vars = golden_vars(&file, None)?;
                let mut first = build(&file.optimizer, vars.clone(), kernels);
                replay(&file, &mut first, &vars, 0..split)?;
                let fresh_vars = golden_vars(&file, Some(&values(&vars)?))?;
                let mut resumed = round_trip(&file.optimizer, &first, fresh_vars.clone(), kernels, dir.path())?;
                replay(&file, &mut resumed, &fresh_vars, split..total)?;
                assert_eq!(
                    values(&fresh_vars)?.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    expected.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "{} ({kernels:?}): resumed after step {split} differs from the uninterrupted replay",
                    file.case
                );
            }
        }
    }
    Ok(())
}

/// An Adam state after three steps over one variable of shape [3].
fn adam_state() -> Result<OptimizerState> {
    let x = Var::new(&[1.0f32, -2.0, 0.5], &Device::Cpu)?;
    let mut opt = build(&OptimizerSpec::new("adam"), vec![x.clone()], Kernels::Auto);
    for _ in 0..3 {
        let mut store = GradStore::default();
        store.insert(x.as_tensor(), Tensor::new(&[0.1f32, 0.2, -0.3], &Device::Cpu)?);
        opt.step(&store)?;
    }
    opt.state()
}

fn load_error(spec: &OptimizerSpec, vars: Vec<Var>, state: &OptimizerState) -> String {
    let mut opt = build(spec, vars, Kernels::Auto);
    opt.load_state(state).expect_err("the restore should fail").to_string()
}

#[test]
fn a_state_of_another_optimizer_is_refused() -> Result<()> {
    let x = Var::new(&[0.0f32; 3], &Device::Cpu)?;
    let err = load_error(&OptimizerSpec::new("adabelief"), vec![x], &adam_state()?);
    assert!(err.contains("saved by optimizer `adam`") && err.contains("`adabelief`"), "{err}");
    Ok(())
}

#[test]
fn a_state_for_other_shapes_is_refused() -> Result<()> {
    let x = Var::new(&[0.0f32; 4], &Device::Cpu)?;
    let err = load_error(&OptimizerSpec::new("adam"), vec![x], &adam_state()?);
    assert!(err.contains("variable 0") && err.contains("[3]") && err.contains("[4]"), "{err}");
    Ok(())
}

#[test]
fn a_state_with_a_missing_tensor_is_refused() -> Result<()> {
    let mut state = adam_state()?;
    state.tensors.remove("0.v");
    for kernels in [Kernels::Auto, Kernels::TensorOps] {
        let x = Var::new(&[0.0f32; 3], &Device::Cpu)?;
        let mut opt = build(&OptimizerSpec::new("adam"), vec![x], kernels);
        let err = opt.load_state(&state).unwrap_err().to_string();
        assert!(err.contains("missing tensor `0.v`") && err.contains("variable 0"), "{kernels:?}: {err}");
        // Nothing was restored.
        assert_eq!(opt.state()?.tensors.len(), 0);
    }
    Ok(())
}

#[test]
fn a_state_with_a_tensor_of_the_wrong_shape_is_refused() -> Result<()> {
    let mut state = adam_state()?;
    state.tensors.insert("0.m".to_string(), Tensor::zeros(5, DType::F32, &Device::Cpu)?);
    let x = Var::new(&[0.0f32; 3], &Device::Cpu)?;
    let err = load_error(&OptimizerSpec::new("adam"), vec![x], &state);
    assert!(err.contains("`0.m` has shape [5]") && err.contains("slot `m` of variable 0"), "{err}");
    Ok(())
}

#[test]
fn a_state_with_other_hyperparameters_or_extra_tensors_is_refused() -> Result<()> {
    let x = || Var::new(&[0.0f32; 3], &Device::Cpu);
    let err = load_error(&OptimizerSpec::new("adam").with("beta2", 0.99), vec![x()?], &adam_state()?);
    assert!(err.contains("beta2 = 0.999") && err.contains("beta2 = 0.99"), "{err}");
    let mut state = adam_state()?;
    state.tensors.insert("0.vmax".to_string(), Tensor::zeros(3, DType::F32, &Device::Cpu)?);
    let err = load_error(&OptimizerSpec::new("adam"), vec![x()?], &state);
    assert!(err.contains("unexpected tensor `0.vmax`"), "{err}");
    Ok(())
}

#[test]
fn a_state_of_another_format_version_is_refused() -> Result<()> {
    let mut state = adam_state()?;
    state.meta["format"] = "optbench-optimizer-state/0".into();
    let x = Var::new(&[0.0f32; 3], &Device::Cpu)?;
    let err = load_error(&OptimizerSpec::new("adam"), vec![x], &state);
    assert!(err.contains("optbench-optimizer-state/0") && err.contains("optbench-optimizer-state/1"), "{err}");
    Ok(())
}

#[test]
fn unreadable_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (tensors, meta) = files(dir.path());
    let err = OptimizerState::load(&tensors, &meta).unwrap_err().to_string();
    assert!(err.contains("optimizer.json"), "{err}");
}

/// A gradient that carries a graph (a GAN's penalty is built from gradients) must not make the
/// optimizer's state carry it: each step's state would hold the previous step's graph, and
/// memory would grow without end (AdaBelief's WGAN-GP run grew by 200 MB a second).
#[test]
fn state_never_holds_the_graph_of_a_gradient() -> Result<()> {
    for spec in specs() {
        let w = Var::from_tensor(&Tensor::new(&[0.5f32, -0.25, 1.0], &Device::Cpu)?)?;
        let mut opt = spec.build_with_kernels(vec![w.clone()], Kernels::TensorOps).unwrap();
        for _ in 0..3 {
            let source = Var::from_tensor(&Tensor::new(&[0.1f32, 0.2, -0.3], &Device::Cpu)?)?;
            let grad = (source.as_tensor() * 2.0)?;
            assert!(grad.track_op(), "the test's gradient carries a graph");
            let mut grads = GradStore::default();
            grads.insert(w.as_tensor(), grad);
            opt.step(&grads)?;
        }
        for (name, tensor) in opt.state()?.tensors {
            assert!(!tensor.track_op(), "{spec}: state `{name}` holds the graph of a gradient");
        }
        assert!(!w.as_tensor().track_op() || w.as_tensor().is_variable());
    }
    Ok(())
}
