//! Two-dimensional test functions: AdaBelief's Fig. 3 (Zhuang et al., NeurIPS 2020; start
//! points as in the paper's animations and seiyab/adabelief-toy-examples-pytorch), plus
//! Rastrigin (start as in pytorch-optimizer's visualisation). The parameter is ONE tensor of
//! two elements, so that optimizers that reduce over a tensor (AdaShift's phi) see both.
//!
//! | task | f(x, y) | start | plotted domain |
//! |---|---|---|---|
//! | `toy2d-abs` (a) | \|x\| + \|y\| | (-2.5, 0) | ±3 |
//! | `toy2d-abs-rotated` (b) | \|x + y\| + \|x - y\| / 10 | (2.5, 0) | ±3 |
//! | `toy2d-quadratic` (c) | (x + y)² + (x - y)² / 10 | (2.5, 0) | ±3 |
//! | `toy2d-abs-scaled` (d) | \|x\| / 10 + \|y\| (the paper uses betas 0.3, 0.3) | (0.5, -1.5) | ±3 |
//! | `toy2d-beale` (e, f) | Beale, minimum (3, 0.5) | (-2.5, -2.5) | ±4 |
//! | `toy2d-rosenbrock` (g, h) | (1 - x)² + 100 (y - x²)², minimum (1, 1) | (-4, -4) | ±6 |
//! | `toy2d-rastrigin` | 20 + Σ (z² - 10 cos 2πz), minimum (0, 0) | (-2, 3.5) | ±4 |
//!
//! Metrics: `loss` (f at the iterate), and the iterate `x`, `y`: the history is the trajectory.

use candle::{DType, Result, Tensor, Var};
use optimizers::BoxedOptimizer;

use super::{
    Budget, Family, Goal, Losses, MetricInfo, Metrics, OptionSpec, Task, TaskContext, TaskInfo, TaskState, MAIN,
    MAIN_ONLY,
};
use crate::schedule::Schedule;

/// A test function, element-wise over tensors of x and y of the same shape.
pub struct ToyFunction {
    pub task: &'static str,
    pub formula: &'static str,
    pub start: (f64, f64),
    /// Half-width of the square the plot shows, centred on the origin.
    pub domain: f64,
    pub minimum: (f64, f64),
    pub f: fn(&Tensor, &Tensor) -> Result<Tensor>,
}

fn abs(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    x.abs()? + y.abs()?
}

fn abs_rotated(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    (x + y)?.abs()? + (x - y)?.abs()?.affine(0.1, 0.0)?
}

fn quadratic(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    (x + y)?.sqr()? + (x - y)?.sqr()?.affine(0.1, 0.0)?
}

fn abs_scaled(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    x.abs()?.affine(0.1, 0.0)? + y.abs()?
}

fn beale(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let xy = (x * y)?;
    let xy2 = (&xy * y)?;
    let xy3 = (&xy2 * y)?;
    let a = (xy - x)?.affine(1.0, 1.5)?.sqr()?;
    let b = (xy2 - x)?.affine(1.0, 2.25)?.sqr()?;
    let c = (xy3 - x)?.affine(1.0, 2.625)?.sqr()?;
    (a + b)? + c
}

fn rosenbrock(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    x.affine(-1.0, 1.0)?.sqr()? + (y - x.sqr()?)?.sqr()?.affine(100.0, 0.0)?
}

fn rastrigin(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let term = |z: &Tensor| -> Result<Tensor> {
        z.sqr()? - z.affine(2.0 * std::f64::consts::PI, 0.0)?.cos()?.affine(10.0, 0.0)?
    };
    (term(x)? + term(y)?)?.affine(1.0, 20.0)
}

/// Every test function.
pub const FUNCTIONS: &[ToyFunction] = &[
    ToyFunction {
        task: "toy2d-abs",
        formula: "|x| + |y|",
        start: (-2.5, 0.0),
        domain: 3.0,
        minimum: (0.0, 0.0),
        f: abs,
    },
    ToyFunction {
        task: "toy2d-abs-rotated",
        formula: "|x + y| + |x - y| / 10",
        start: (2.5, 0.0),
        domain: 3.0,
        minimum: (0.0, 0.0),
        f: abs_rotated,
    },
    ToyFunction {
        task: "toy2d-quadratic",
        formula: "(x + y)² + (x - y)² / 10",
        start: (2.5, 0.0),
        domain: 3.0,
        minimum: (0.0, 0.0),
        f: quadratic,
    },
    ToyFunction {
        task: "toy2d-abs-scaled",
        formula: "|x| / 10 + |y|",
        start: (0.5, -1.5),
        domain: 3.0,
        minimum: (0.0, 0.0),
        f: abs_scaled,
    },
    ToyFunction {
        task: "toy2d-beale",
        formula: "Beale",
        start: (-2.5, -2.5),
        domain: 4.0,
        minimum: (3.0, 0.5),
        f: beale,
    },
    ToyFunction {
        task: "toy2d-rosenbrock",
        formula: "(1 - x)² + 100 (y - x²)²",
        start: (-4.0, -4.0),
        domain: 6.0,
        minimum: (1.0, 1.0),
        f: rosenbrock,
    },
    ToyFunction {
        task: "toy2d-rastrigin",
        formula: "Rastrigin",
        start: (-2.0, 3.5),
        domain: 4.0,
        minimum: (0.0, 0.0),
        f: rastrigin,
    },
];

/// The test function of a `toy2d-*` task.
pub fn function(task: &str) -> Option<&'static ToyFunction> {
    FUNCTIONS.iter().find(|f| f.task == task)
}

pub fn tasks() -> Vec<TaskInfo> {
    FUNCTIONS
        .iter()
        .map(|f| TaskInfo {
            name: f.task.into(),
            family: Family::Toy2d,
            summary: format!("minimise {} from ({}, {}) (AdaBelief Fig. 3)", f.formula, f.start.0, f.start.1),
            options: vec![OptionSpec::new("x0", f.start.0, "start x"), OptionSpec::new("y0", f.start.1, "start y")],
            budget: Budget::Steps(5_000),
            batch_size: None,
            eval_every: Some(10),
            log_every: 10,
            schedule: Schedule::Constant,
            metrics: vec![
                MetricInfo::new("loss", Goal::Min),
                MetricInfo::new("x", Goal::Min),
                MetricInfo::new("y", Goal::Min),
            ],
            optimizers: MAIN_ONLY,
            clip_norm: None,
            build: Box::new(move |ctx| build(ctx, f)),
            parameters: None,
        })
        .collect()
}

struct Toy {
    xy: Var,
    f: fn(&Tensor, &Tensor) -> Result<Tensor>,
    optimizer: BoxedOptimizer,
}

fn build(ctx: &TaskContext, function: &'static ToyFunction) -> anyhow::Result<Box<dyn Task>> {
    let start = Tensor::new(&[ctx.f64("x0"), ctx.f64("y0")], ctx.device)?.to_dtype(DType::F64)?;
    let xy = Var::from_tensor(&start)?;
    let optimizer = ctx.build_optimizer(MAIN, vec![xy.clone()])?;
    Ok(Box::new(Toy { xy, f: function.f, optimizer }))
}

impl Toy {
    fn loss(&self) -> Result<Tensor> {
        let xy = self.xy.as_tensor();
        (self.f)(&xy.narrow(0, 0, 1)?, &xy.narrow(0, 1, 1)?)?.sum_all()
    }
}

impl Task for Toy {
    fn optimizers(&mut self) -> Vec<(&'static str, &mut BoxedOptimizer)> {
        vec![(MAIN, &mut self.optimizer)]
    }

    fn train_step(&mut self, _step: u64) -> anyhow::Result<Losses> {
        let loss = self.loss()?;
        self.optimizer.backward_step(&loss)?;
        Ok(vec![("loss", loss.to_scalar::<f64>()?)])
    }

    fn evaluate(&mut self) -> anyhow::Result<Metrics> {
        let xy = self.xy.as_tensor().to_vec1::<f64>()?;
        let loss = self.loss()?.to_scalar::<f64>()?;
        Ok(vec![("loss".into(), loss), ("x".into(), xy[0]), ("y".into(), xy[1])])
    }

    fn state(&self, _step: u64) -> anyhow::Result<TaskState> {
        Ok(TaskState { tensors: [("xy".to_string(), self.xy.as_tensor().clone())].into(), meta: Default::default() })
    }

    fn restore(&mut self, state: &TaskState, _step: u64) -> anyhow::Result<()> {
        super::restore_var(&self.xy, state, "xy")
    }

    fn data(&self) -> Vec<super::DataRecord> {
        Vec::new() // a function, no data set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    #[test]
    fn each_function_is_zero_at_its_minimum() -> Result<()> {
        for f in FUNCTIONS {
            let x = Tensor::new(&[f.minimum.0], &Device::Cpu)?;
            let y = Tensor::new(&[f.minimum.1], &Device::Cpu)?;
            let value = (f.f)(&x, &y)?.to_vec1::<f64>()?[0];
            assert!(value.abs() < 1e-12, "{}: f(minimum) = {value}", f.task);
            let start = (f.f)(&Tensor::new(&[f.start.0], &Device::Cpu)?, &Tensor::new(&[f.start.1], &Device::Cpu)?)?;
            assert!(start.to_vec1::<f64>()?[0] > 0.1, "{} starts at its minimum", f.task);
        }
        Ok(())
    }
}
