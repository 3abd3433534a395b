//! A variable without a gradient in a step is left completely untouched by every optimizer
//! (no decay, no state change, no step count): BatchNorm's running statistics are such
//! variables, and must never move.

use candle::backprop::GradStore;
use candle::{DType, Device, Result, Tensor, Var};
use optimizers::{BoxedOptimizer, OptimizerSpec, REGISTRY};

/// Every optimizer with every kind of weight decay it has switched on, so that decay cannot
/// sneak into a variable without a gradient.
fn specs() -> Vec<OptimizerSpec> {
    let mut specs = Vec::new();
    for info in REGISTRY {
        let keys: Vec<String> = info.hyperparameters().into_iter().map(|(k, _)| k).collect();
        let mut spec = OptimizerSpec::new(info.name).with("lr", 0.05);
        if keys.iter().any(|k| k == "weight_decay") {
            spec = spec.with("weight_decay", 0.1);
        }
        specs.push(spec.clone());
        for flag in ["decoupled", "fixed_decay"] {
            if keys.iter().any(|k| k == flag) {
                specs.push(spec.clone().with("decoupled", true).with(flag, true));
            }
        }
    }
    specs
}

fn var(values: &[f64], dtype: DType) -> Result<Var> {
    Var::from_tensor(&Tensor::new(values, &Device::Cpu)?.to_dtype(dtype)?)
}

fn grads(pairs: &[(&Var, &[f64])]) -> Result<GradStore> {
    let mut store = GradStore::default();
    for (var, g) in pairs {
        store.insert(var.as_tensor(), Tensor::new(*g, &Device::Cpu)?.to_dtype(var.dtype())?);
    }
    Ok(store)
}

fn build(spec: &OptimizerSpec, vars: Vec<Var>) -> BoxedOptimizer {
    spec.build(vars).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn values(var: &Var) -> Result<Vec<f64>> {
    var.as_tensor().to_dtype(DType::F64)?.to_vec1::<f64>()
}

#[test]
fn a_variable_without_gradient_never_moves() -> Result<()> {
    for dtype in [DType::F64, DType::F32] {
        for spec in specs() {
            let trained = var(&[1.0, -2.0, 0.5], dtype)?;
            let frozen = var(&[0.3, 4.0], dtype)?;
            let before = values(&frozen)?;
            let mut opt = build(&spec, vec![trained.clone(), frozen.clone()]);
            for step in 0..30 {
                let g = [0.1 * step as f64 - 1.0, 2.0, -0.5];
                opt.step(&grads(&[(&trained, &g)])?)?;
            }
            assert_eq!(values(&frozen)?, before, "{spec} ({dtype:?}) moved a variable that had no gradient");
            assert_ne!(values(&trained)?, [1.0, -2.0, 0.5], "{spec} did not move the trained variable");
        }
    }
    Ok(())
}

#[test]
fn a_step_without_gradient_changes_nothing_later() -> Result<()> {
    // Steps 1..=12 with the gradient missing in steps 4 and 9 must give the same trajectory
    // as the ten steps that have one, fed to a fresh optimizer: no state, no step counter, no
    // decay advanced in the missing steps.
    let schedule: Vec<Option<[f64; 2]>> = (1..=12)
        .map(|t| if t == 4 || t == 9 { None } else { Some([(t as f64).sin(), 0.3 * (t as f64).cos() - 0.1]) })
        .collect();
    for spec in specs() {
        let with_gaps = var(&[1.0, -1.0], DType::F64)?;
        let mut opt = build(&spec, vec![with_gaps.clone()]);
        for g in &schedule {
            let store = match g {
                Some(g) => grads(&[(&with_gaps, g)])?,
                None => GradStore::default(),
            };
            opt.step(&store)?;
        }
        let dense = var(&[1.0, -1.0], DType::F64)?;
        let mut opt = build(&spec, vec![dense.clone()]);
        for g in schedule.iter().flatten() {
            opt.step(&grads(&[(&dense, g)])?)?;
        }
        assert_eq!(values(&with_gaps)?, values(&dense)?, "{spec}: a step without gradient left a trace");
    }
    Ok(())
}

#[test]
fn integer_variables_are_ignored() -> Result<()> {
    for info in REGISTRY {
        let counter = Var::from_tensor(&Tensor::new(&[3u32, 4], &Device::Cpu)?)?;
        let x = var(&[1.0], DType::F32)?;
        let mut opt = build(&OptimizerSpec::new(info.name).with("lr", 0.1), vec![counter.clone(), x.clone()]);
        opt.step(&grads(&[(&x, &[1.0])])?)?;
        assert_eq!(counter.as_tensor().to_vec1::<u32>()?, [3, 4]);
    }
    Ok(())
}

#[test]
fn a_gradient_of_the_wrong_shape_is_an_error() -> Result<()> {
    let x = var(&[1.0, 2.0], DType::F32)?;
    let mut opt = build(&OptimizerSpec::new("adam"), vec![x.clone()]);
    let mut store = GradStore::default();
    store.insert(x.as_tensor(), Tensor::new(&[1.0f32, 2.0, 3.0], &Device::Cpu)?);
    let err = opt.step(&store).unwrap_err().to_string();
    assert!(err.contains("gradient of shape [3]") && err.contains("shape [2]"), "{err}");
    Ok(())
}
