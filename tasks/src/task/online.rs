//! The online convex problems on which Adam provably fails to converge (Reddi et al., "On the
//! Convergence of Adam and Beyond", ICLR 2018), as AdaShift (Zhou et al., ICLR 2019, Sec. 3)
//! uses them. One scalar `x`, linear losses `f_t(x) = c_t x`:
//!
//! - `online-sequential`: `c_t = C1` when `t mod d == 1`, else `-C2`; `x` is projected onto
//!   `[-1, 1]` after each step. With `C1 = 1010, C2 = 10, d = 101` the sum over a period is
//!   `+10`, so the optimum is `x = -1`; Adam with `beta2 = 0.99` drifts to `+1`.
//! - `online-stochastic`: `c_t = C` with probability `p = (1 + delta) / (C + 1)`, else `-1`;
//!   the expected gradient is `delta > 0`, so `x` should go down. Unconstrained unless
//!   `bounded`.
//!
//! Metrics: the iterate `x` and the average regret `R_t / t`, where
//! `R_t = sum_i f_i(x_i) - min_{x in [-1, 1]} sum_i f_i(x) = sum_i c_i x_i + |sum_i c_i|`
//! (for the unconstrained problem: regret against the best point of `[-1, 1]`).

use candle::backprop::GradStore;
use candle::{DType, Device, Tensor, Var};
use models::SeededRng;
use optimizers::BoxedOptimizer;

use super::{
    Budget, Family, Goal, Losses, MetricInfo, Metrics, OptionSpec, Task, TaskContext, TaskInfo, TaskState, MAIN,
    MAIN_ONLY,
};
use crate::schedule::Schedule;

pub fn tasks() -> Vec<TaskInfo> {
    let metrics = vec![MetricInfo::new("avg_regret", Goal::Min), MetricInfo::new("x", Goal::Min)];
    vec![
        TaskInfo {
            name: "online-sequential".into(),
            family: Family::Online,
            summary: "f_t(x) = C1 x if t mod d == 1 else -C2 x on [-1, 1] (Reddi et al.; AdaShift Sec. 3)".into(),
            options: vec![
                OptionSpec::new("c1", 1010.0, "gradient of the rare step"),
                OptionSpec::new("c2", 10.0, "minus the gradient of the other steps"),
                OptionSpec::new("d", 101i64, "period: the rare step is t mod d == 1").at_least(1.0),
                OptionSpec::new("x0", 1.0, "start"),
            ],
            budget: Budget::Steps(200_000),
            batch_size: None,
            eval_every: Some(1_000),
            log_every: 1_000,
            schedule: Schedule::InverseSqrt,
            metrics: metrics.clone(),
            optimizers: MAIN_ONLY,
            clip_norm: None,
            build: Box::new(build_sequential),
            parameters: None,
        },
        TaskInfo {
            name: "online-stochastic".into(),
            family: Family::Online,
            summary: "f_t(x) = C x with probability (1 + delta) / (C + 1), else -x (AdaShift Sec. 3)".into(),
            options: vec![
                OptionSpec::new("c", 101.0, "gradient of the rare outcome").at_least(0.0),
                OptionSpec::new("delta", 0.02, "the expected gradient"),
                OptionSpec::new("bounded", false, "project x onto [-1, 1] after each step"),
                OptionSpec::new("x0", 0.0, "start"),
            ],
            budget: Budget::Steps(1_000_000),
            batch_size: None,
            eval_every: Some(10_000),
            log_every: 10_000,
            schedule: Schedule::Constant,
            metrics,
            optimizers: MAIN_ONLY,
            clip_norm: None,
            build: Box::new(build_stochastic),
            parameters: None,
        },
    ]
}

/// Where the gradients come from.
enum Problem {
    Sequential { c1: f64, c2: f64, d: u64 },
    Stochastic { c: f64, p: f64, rng: SeededRng },
}

impl Problem {
    fn coefficient(&mut self, t: u64) -> f64 {
        match self {
            Problem::Sequential { c1, c2, d } => {
                if t % *d == 1 % *d {
                    *c1
                } else {
                    -*c2
                }
            }
            Problem::Stochastic { c, p, rng } => {
                if rng.bernoulli(*p) {
                    *c
                } else {
                    -1.0
                }
            }
        }
    }
}

struct Online {
    problem: Problem,
    x: Var,
    /// The current iterate, kept on the host.
    value: f64,
    bounded: bool,
    optimizer: BoxedOptimizer,
    device: Device,
    steps: u64,
    loss_sum: f64,
    coefficient_sum: f64,
}

fn build(ctx: &TaskContext, problem: Problem, x0: f64, bounded: bool) -> anyhow::Result<Box<dyn Task>> {
    let x = Var::from_tensor(&Tensor::new(&[x0], ctx.device)?.to_dtype(DType::F64)?)?;
    let optimizer = ctx.build_optimizer(MAIN, vec![x.clone()])?;
    Ok(Box::new(Online {
        problem,
        x,
        value: x0,
        bounded,
        optimizer,
        device: ctx.device.clone(),
        steps: 0,
        loss_sum: 0.0,
        coefficient_sum: 0.0,
    }))
}

fn build_sequential(ctx: &TaskContext) -> anyhow::Result<Box<dyn Task>> {
    let d = ctx.count("d") as u64;
    let problem = Problem::Sequential { c1: ctx.f64("c1"), c2: ctx.f64("c2"), d };
    build(ctx, problem, ctx.f64("x0"), true)
}

fn build_stochastic(ctx: &TaskContext) -> anyhow::Result<Box<dyn Task>> {
    let (c, delta) = (ctx.f64("c"), ctx.f64("delta"));
    let p = (1.0 + delta) / (c + 1.0);
    anyhow::ensure!((0.0..=1.0).contains(&p), "(1 + delta) / (C + 1) = {p} is not a probability");
    let problem = Problem::Stochastic { c, p, rng: SeededRng::new(ctx.seed).fork("online-stochastic") };
    build(ctx, problem, ctx.f64("x0"), ctx.flag("bounded"))
}

impl Task for Online {
    fn optimizers(&mut self) -> Vec<(&'static str, &mut BoxedOptimizer)> {
        vec![(MAIN, &mut self.optimizer)]
    }

    fn train_step(&mut self, step: u64) -> anyhow::Result<Losses> {
        let c = self.problem.coefficient(step);
        let loss = c * self.value;
        self.steps = step;
        self.loss_sum += loss;
        self.coefficient_sum += c;
        let mut grads = GradStore::default();
        grads.insert(self.x.as_tensor(), Tensor::from_vec(vec![c], 1, &self.device)?);
        self.optimizer.step(&grads)?;
        let mut value = self.x.as_tensor().to_vec1::<f64>()?[0];
        if self.bounded && value.abs() > 1.0 {
            value = value.clamp(-1.0, 1.0);
            self.x.set(&Tensor::from_vec(vec![value], 1, &self.device)?)?;
        }
        self.value = value;
        Ok(vec![("loss", loss)])
    }

    fn evaluate(&mut self) -> anyhow::Result<Metrics> {
        let regret = (self.loss_sum + self.coefficient_sum.abs()) / self.steps.max(1) as f64;
        Ok(vec![("avg_regret".into(), regret), ("x".into(), self.value)])
    }

    fn state(&self, _step: u64) -> anyhow::Result<TaskState> {
        let rng = match &self.problem {
            Problem::Stochastic { rng, .. } => Some(rng.state()),
            Problem::Sequential { .. } => None,
        };
        let meta = serde_json::json!({
            "x": self.value, "loss_sum": self.loss_sum, "coefficient_sum": self.coefficient_sum, "rng": rng,
        });
        Ok(TaskState { tensors: Default::default(), meta })
    }

    fn restore(&mut self, state: &TaskState, step: u64) -> anyhow::Result<()> {
        #[derive(serde::Deserialize)]
        struct Saved {
            x: f64,
            loss_sum: f64,
            coefficient_sum: f64,
            rng: Option<models::RngState>,
        }
        let saved: Saved = serde_json::from_value(state.meta.clone())?;
        if let (Problem::Stochastic { rng, .. }, Some(saved)) = (&mut self.problem, saved.rng) {
            *rng = SeededRng::from_state(saved);
        }
        self.value = saved.x;
        self.x.set(&Tensor::from_vec(vec![saved.x], 1, &self.device)?)?;
        (self.loss_sum, self.coefficient_sum, self.steps) = (saved.loss_sum, saved.coefficient_sum, step);
        Ok(())
    }

    fn data(&self) -> Vec<super::DataRecord> {
        Vec::new() // a synthetic problem, no data set
    }
}
