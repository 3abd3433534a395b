//! One table-driven convergence test (in the manner of optax's): EVERY optimizer, with its
//! default hyperparameters, reaches the minimum of a parabola and of Rosenbrock's function
//! from a fixed start. A new optimizer adds a row, not a test.

use candle::{DType, Device, Result, Tensor, Var};
use optimizers::{OptimizerSpec, REGISTRY};

/// A row: the optimizer and the hyperparameters it needs besides its defaults, with why.
struct Row {
    name: &'static str,
    parabola: &'static [(&'static str, f64)],
    rosenbrock: &'static [(&'static str, f64)],
}

const ROWS: &[Row] = &[
    // The reference has no default learning rate for SGD and Adai: SGD-like steps need one
    // below 2 / curvature (about 1000 in Rosenbrock's valley), and momentum to move along it.
    Row { name: "sgd", parabola: &[("lr", 0.02)], rosenbrock: &[("lr", 1e-3), ("momentum", 0.9)] },
    Row { name: "adam", parabola: &[], rosenbrock: &[] },
    Row { name: "adamw", parabola: &[], rosenbrock: &[] },
    // AMSGrad normalises by the largest second moment seen, which comes from the steep start
    // (gradients of about 200): with lr 1e-3 the walk along the valley takes far more steps.
    Row { name: "amsgrad", parabola: &[], rosenbrock: &[("lr", 1e-2)] },
    Row { name: "adashift", parabola: &[], rosenbrock: &[] },
    Row { name: "adai", parabola: &[("lr", 0.02)], rosenbrock: &[("lr", 1e-3)] },
    Row { name: "adaiw", parabola: &[("lr", 0.02)], rosenbrock: &[("lr", 1e-3)] },
    Row { name: "adabelief", parabola: &[], rosenbrock: &[] },
    Row { name: "adamod", parabola: &[], rosenbrock: &[] },
    // AdaBound's bounds close in on an SGD step of final_lr = 0.1, which is unstable where
    // Rosenbrock's curvature is 1000: the final SGD rate must suit the problem.
    Row { name: "adabound", parabola: &[], rosenbrock: &[("final_lr", 1e-3)] },
    Row { name: "radam", parabola: &[], rosenbrock: &[] },
    Row { name: "diffgrad", parabola: &[], rosenbrock: &[] },
];

/// `f(x, y) = (x - 1)² + 10 (y + 2)²`, minimum at (1, -2).
fn parabola(xy: &Tensor) -> Result<Tensor> {
    let target = Tensor::new(&[1.0f64, -2.0], xy.device())?;
    let weights = Tensor::new(&[1.0f64, 10.0], xy.device())?;
    ((xy - target)?.sqr()? * weights)?.sum_all()
}

/// `f(x, y) = (1 - x)² + 100 (y - x²)²`, minimum at (1, 1).
fn rosenbrock(xy: &Tensor) -> Result<Tensor> {
    let x = xy.narrow(0, 0, 1)?;
    let y = xy.narrow(0, 1, 1)?;
    let a = x.affine(-1.0, 1.0)?.sqr()?;
    let b = (y - x.sqr()?)?.sqr()?.affine(100.0, 0.0)?;
    (a + b)?.sum_all()
}

fn minimise(spec: &OptimizerSpec, f: fn(&Tensor) -> Result<Tensor>, start: [f64; 2], steps: usize) -> Result<[f64; 2]> {
    let xy = Var::from_tensor(&Tensor::new(&start, &Device::Cpu)?.to_dtype(DType::F64)?)?;
    let mut opt = spec.build(vec![xy.clone()]).map_err(candle::Error::wrap)?;
    for _ in 0..steps {
        let loss = f(xy.as_tensor())?;
        opt.backward_step(&loss)?;
    }
    let v = xy.as_tensor().to_vec1::<f64>()?;
    Ok([v[0], v[1]])
}

fn spec(name: &str, overrides: &[(&str, f64)]) -> OptimizerSpec {
    overrides.iter().fold(OptimizerSpec::new(name), |spec, (k, v)| spec.with(*k, *v))
}

fn distance(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

#[test]
fn the_table_has_a_row_for_every_optimizer() {
    for info in REGISTRY {
        assert!(ROWS.iter().any(|row| row.name == info.name), "no convergence row for `{}`", info.name);
    }
}

#[test]
fn every_optimizer_minimises_a_parabola() -> Result<()> {
    let mut failures = Vec::new();
    for row in ROWS {
        let end = minimise(&spec(row.name, row.parabola), parabola, [-2.0, 1.0], 30_000)?;
        let d = distance(end, [1.0, -2.0]);
        println!("{:10} parabola   -> ({:+.4}, {:+.4}), {d:.2e} from the minimum", row.name, end[0], end[1]);
        if d.is_nan() || d > 2e-2 {
            failures.push(format!("{} ended at {end:?}", row.name));
        }
    }
    assert!(failures.is_empty(), "did not reach (1, -2): {failures:?}");
    Ok(())
}

#[test]
fn every_optimizer_minimises_rosenbrock() -> Result<()> {
    let mut failures = Vec::new();
    for row in ROWS {
        let end = minimise(&spec(row.name, row.rosenbrock), rosenbrock, [-1.2, 1.0], 60_000)?;
        let d = distance(end, [1.0, 1.0]);
        println!("{:10} rosenbrock -> ({:+.4}, {:+.4}), {d:.2e} from the minimum", row.name, end[0], end[1]);
        if d.is_nan() || d > 5e-2 {
            failures.push(format!("{} ended at {end:?}", row.name));
        }
    }
    assert!(failures.is_empty(), "did not reach (1, 1): {failures:?}");
    Ok(())
}
