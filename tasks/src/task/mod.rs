//! Tasks: small named units in the manner of DeepOBS's test problems. A task is a model (or a
//! synthetic problem) with its data, loss, metrics, and default batch size, budget and
//! schedule. The runner drives every task through the same [`Task`] trait, whatever it holds:
//!
//! - classifiers: one model, one optimizer, epochs over a data set;
//! - GANs: a critic and a generator, two optimizer instances built from the same spec, one
//!   `train_step` being a round of critic and generator updates;
//! - translation: a sequence-to-sequence model whose evaluation decodes;
//! - language models: truncated backpropagation through time, the hidden state carried from one
//!   `train_step` to the next;
//! - online problems: one scalar, a gradient per step, a projection after each step.
//!
//! A task never reads a config file: it gets its resolved options through a [`TaskContext`].

pub mod classify;
pub mod clip;
pub mod gan;
pub mod language;
pub mod mnist;
pub mod online;
pub mod toy2d;
pub mod translation;
pub mod vision;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use candle::Device;
use optimizers::{BoxedOptimizer, HyperValue, OptimizerSpec};
use serde::{Deserialize, Serialize};

pub use crate::data::{DataRecord, DataSettings};
use crate::schedule::Schedule;

/// Metric values by name, in the order the task declares them.
pub type Metrics = Vec<(String, f64)>;

/// Whether a metric is better small or large.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    Min,
    Max,
}

impl Goal {
    /// Whether `a` is better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Goal::Min => a < b,
            Goal::Max => a > b,
        }
    }
}

/// A metric a task reports. Names are snake_case and shared across tasks (`train_loss`,
/// `test_loss`, `test_accuracy` as a fraction, `x`, `avg_regret`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricInfo {
    pub name: String,
    pub goal: Goal,
}

impl MetricInfo {
    pub fn new(name: &str, goal: Goal) -> Self {
        Self { name: name.to_string(), goal }
    }
}

/// What kind of task it is (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Online,
    Toy2d,
    Classifier,
    Gan,
    Translation,
    LanguageModel,
}

/// How long a run trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Budget {
    Steps(u64),
    Epochs(u64),
}

/// One option of a task: its default (whose type is the option's type), its allowed range or
/// choices, and one line of help. Options are declared once, here, and checked when a config
/// is planned, like every other key.
#[derive(Clone, Debug)]
pub struct OptionSpec {
    pub name: &'static str,
    pub default: HyperValue,
    pub help: &'static str,
    /// The allowed values of a string option (empty: any).
    pub choices: &'static [&'static str],
    /// The smallest allowed value of a number.
    pub min: Option<f64>,
    /// The largest allowed value of a number.
    pub max: Option<f64>,
    /// Whether `max` itself is excluded (a dropout rate is below 1).
    pub max_exclusive: bool,
}

impl OptionSpec {
    /// An option of the default's type, any value of that type (whole numbers: `>= 0`).
    pub fn new(name: &'static str, default: impl Into<HyperValue>, help: &'static str) -> Self {
        Self { name, default: default.into(), help, choices: &[], min: None, max: None, max_exclusive: false }
    }

    /// A string option with a fixed set of values.
    pub fn choice(name: &'static str, default: &str, choices: &'static [&'static str], help: &'static str) -> Self {
        Self { choices, ..Self::new(name, default, help) }
    }

    /// Values below `min` are rejected.
    pub fn at_least(mut self, min: f64) -> Self {
        self.min = Some(min);
        self
    }

    /// Values above `max` are rejected.
    pub fn at_most(mut self, max: f64) -> Self {
        self.max = Some(max);
        self
    }

    /// Values at or above `max` are rejected.
    pub fn below(mut self, max: f64) -> Self {
        self.max = Some(max);
        self.max_exclusive = true;
        self
    }

    /// Checks a configured value; the message says what is expected.
    pub fn check(&self, value: &HyperValue) -> Result<HyperValue, String> {
        let value = optimizers::spec::coerce(&self.default, value)
            .map_err(|expected| format!("must be {expected}, not {}", value.describe()))?;
        if let HyperValue::Str(s) = &value {
            if !self.choices.is_empty() && !self.choices.contains(&s.as_str()) {
                return Err(format!("must be one of {}, not \"{s}\"", self.choices.join(", ")));
            }
        }
        if let Some(x) = value.as_f64() {
            if !x.is_finite() {
                return Err(format!("must be a finite number, not {value}"));
            }
            if let Some(min) = self.min.filter(|&min| x < min) {
                return Err(format!("must be at least {}, not {value}", HyperValue::Float(min)));
            }
            if let Some(max) = self.max {
                if x > max || (self.max_exclusive && x == max) {
                    let relation = if self.max_exclusive { "below" } else { "at most" };
                    return Err(format!("must be {relation} {}, not {value}", HyperValue::Float(max)));
                }
            }
        }
        Ok(value)
    }

    /// The range or choices, for `optbench tasks` (empty when any value of the type goes).
    pub fn describe_range(&self) -> String {
        if !self.choices.is_empty() {
            return format!("one of {}", self.choices.join(", "));
        }
        let low = self.min.map(|m| format!(">= {}", HyperValue::Float(m)));
        let high =
            self.max.map(|m| format!("{} {}", if self.max_exclusive { "<" } else { "<=" }, HyperValue::Float(m)));
        [low, high].into_iter().flatten().collect::<Vec<_>>().join(", ")
    }
}

/// The role of a task's only optimizer.
pub const MAIN: &str = "main";

/// The optimizer roles of a task with one optimizer.
pub const MAIN_ONLY: &[&str] = &[MAIN];

/// What a task gets to build itself: its resolved options and everything about the run.
pub struct TaskContext<'a> {
    pub info: &'a TaskInfo,
    /// Every option, defaults filled in and checked against the declared ranges.
    pub options: &'a BTreeMap<String, HyperValue>,
    /// The run's optimizer (resolved), for every role without an override of its own.
    pub optimizer: &'a OptimizerSpec,
    /// The resolved optimizer of each role that the config overrides (`roles`).
    pub roles: &'a BTreeMap<String, OptimizerSpec>,
    /// Gradient clipping by global norm before every optimizer step (`None`: none).
    pub clip_norm: Option<f64>,
    pub batch_size: Option<usize>,
    pub seed: u64,
    pub device: &'a Device,
    pub data: &'a DataSettings,
}

impl TaskContext<'_> {
    fn option(&self, key: &str) -> &HyperValue {
        self.options.get(key).unwrap_or_else(|| panic!("task `{}` declares no option `{key}`", self.info.name))
    }

    /// A number option.
    pub fn f64(&self, key: &str) -> f64 {
        self.option(key).as_f64().unwrap_or_else(|| panic!("option `{key}` is a number"))
    }

    /// A whole-number option (checked `>= 0` and against its declared range at plan time).
    pub fn count(&self, key: &str) -> usize {
        match self.option(key) {
            HyperValue::Int(i) => usize::try_from(*i).expect("whole-number options are >= 0"),
            other => panic!("option `{key}` is a whole number, not {other:?}"),
        }
    }

    pub fn flag(&self, key: &str) -> bool {
        match self.option(key) {
            HyperValue::Bool(b) => *b,
            other => panic!("option `{key}` is a boolean, not {other:?}"),
        }
    }

    pub fn string(&self, key: &str) -> &str {
        match self.option(key) {
            HyperValue::Str(s) => s,
            other => panic!("option `{key}` is a string, not {other:?}"),
        }
    }

    /// The resolved optimizer spec of a role.
    pub fn spec_for(&self, role: &str) -> &OptimizerSpec {
        self.roles.get(role).unwrap_or(self.optimizer)
    }

    /// Builds the optimizer of `role` (one of the task's declared roles) over `vars`, with the
    /// run's gradient clipping in front of it.
    pub fn build_optimizer(&self, role: &str, vars: Vec<candle::Var>) -> anyhow::Result<BoxedOptimizer> {
        anyhow::ensure!(
            self.info.optimizers.contains(&role),
            "task `{}` builds an optimizer for role `{role}`, which it does not declare ({})",
            self.info.name,
            self.info.optimizers.join(", ")
        );
        let optimizer = self.spec_for(role).build(vars.clone())?;
        Ok(match self.clip_norm {
            Some(max_norm) => Box::new(clip::Clipped::new(optimizer, vars, max_norm)),
            None => optimizer,
        })
    }
}

/// The losses of one training step, by name; the first is the task's training loss (the one
/// whose divergence ends a run and whose mean is `train_loss`), the others (a GAN's second
/// loss) are streamed and averaged beside it.
pub type Losses = Vec<(&'static str, f64)>;

/// A task's state for a checkpoint, apart from its optimizers (which the runner saves): the
/// model's variables and buffers, random generators, the position in the data.
#[derive(Debug, Default)]
pub struct TaskState {
    /// Tensors by name.
    pub tensors: BTreeMap<String, candle::Tensor>,
    /// Everything else, as JSON.
    pub meta: serde_json::Value,
}

/// A task being trained: what the runner calls.
pub trait Task: Send {
    /// Steps in one epoch, for tasks that go through a data set.
    fn steps_per_epoch(&self) -> Option<u64> {
        None
    }

    /// Every optimizer the task holds, by role, in the order of [`TaskInfo::optimizers`]: the
    /// runner sets their learning rates from the schedule and saves their state.
    fn optimizers(&mut self) -> Vec<(&'static str, &mut BoxedOptimizer)>;

    /// One training step (1-based `step`); returns the step's losses.
    fn train_step(&mut self, step: u64) -> anyhow::Result<Losses>;

    /// The task's metrics now (test metrics for models, the iterate for problems).
    fn evaluate(&mut self) -> anyhow::Result<Metrics>;

    /// Everything but the optimizers that a run continued from this point needs to go on
    /// exactly as it would have (after `step` steps).
    fn state(&self, step: u64) -> anyhow::Result<TaskState>;

    /// Restores a state saved by [`Task::state`] of a task built for the same run; the next
    /// `train_step` is `step + 1`.
    fn restore(&mut self, state: &TaskState, step: u64) -> anyhow::Result<()>;

    /// Files to write beside the run's result after the evaluation at `step`, as (name, bytes):
    /// a GAN's sample grid, a translation task's test hypotheses. The runner writes
    /// `<result stem>.<name>` atomically (`seed-0.samples-000100.png`, `seed-0.test.hyp.txt`).
    /// None by default.
    fn artifacts(&mut self, _step: u64) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        Ok(vec![])
    }

    /// The data sets the task trains and evaluates on, as loaded (none for the synthetic
    /// problems): every result records them, and a run whose data changed is run again.
    fn data(&self) -> Vec<DataRecord>;
}

/// Sets `var` from the tensor `name` of a saved state, which must have its shape and type.
pub fn restore_var(var: &candle::Var, state: &TaskState, name: &str) -> anyhow::Result<()> {
    let saved = state.tensors.get(name).ok_or_else(|| anyhow::anyhow!("the checkpoint has no tensor `{name}`"))?;
    anyhow::ensure!(
        saved.shape() == var.shape() && saved.dtype() == var.dtype(),
        "the checkpoint's `{name}` is {:?} {:?}, the run's {:?} {:?}",
        saved.dims(),
        saved.dtype(),
        var.dims(),
        var.dtype()
    );
    var.set(&saved.to_device(var.device())?)?;
    Ok(())
}

/// A model's trainable variables (`param.<name>`), buffers (`buffer.<name>`: BatchNorm's
/// running statistics) and random layers (in `meta`), for a [`TaskState`].
pub fn model_state(params: &models::Params) -> TaskState {
    let mut tensors = BTreeMap::new();
    for (name, var) in params.named_trainable() {
        tensors.insert(format!("param.{name}"), var.as_tensor().clone());
    }
    for (name, var) in params.buffers() {
        tensors.insert(format!("buffer.{name}"), var.as_tensor().clone());
    }
    let meta = serde_json::json!({ "random": params.random_state() });
    TaskState { tensors, meta }
}

/// Restores a [`model_state`] into the same model.
pub fn restore_model(params: &models::Params, state: &TaskState) -> anyhow::Result<()> {
    for (name, var) in params.named_trainable() {
        restore_var(&var, state, &format!("param.{name}"))?;
    }
    for (name, var) in params.buffers() {
        restore_var(&var, state, &format!("buffer.{name}"))?;
    }
    let random = serde_json::from_value(state.meta["random"].clone())
        .map_err(|e| anyhow::anyhow!("the checkpoint's random layers: {e}"))?;
    params.restore_random_state(&random)?;
    Ok(())
}

/// Builds a task for a run: a closure that carries what the task is made of (its data set and
/// model), so that no task recovers them from its own name.
pub type Factory = Box<dyn Fn(&TaskContext) -> anyhow::Result<Box<dyn Task>> + Send + Sync>;

/// Counts the trainable scalars of a task's model for a run's options: the model built on the
/// CPU from a fixed seed, without data (for `optbench plan`, which shows what will train).
pub type CountParameters = Box<dyn Fn(&TaskContext) -> anyhow::Result<usize> + Send + Sync>;

/// Everything the suite knows about a task name.
pub struct TaskInfo {
    pub name: String,
    pub family: Family,
    pub summary: String,
    pub options: Vec<OptionSpec>,
    pub budget: Budget,
    /// The default batch size; `None` for tasks without batches.
    pub batch_size: Option<usize>,
    /// Evaluate every this many steps; `None`: at the end of every epoch.
    pub eval_every: Option<u64>,
    /// Stream the training loss every this many steps.
    pub log_every: u64,
    pub schedule: Schedule,
    /// The metrics `evaluate` reports; the first one is the task's primary metric.
    pub metrics: Vec<MetricInfo>,
    /// The roles of the optimizers the task holds (`main`; a GAN's `critic`, `generator`).
    pub optimizers: &'static [&'static str],
    /// The gradient clipping the task's reference uses (a config's `clip_norm` overrides it).
    pub clip_norm: Option<f64>,
    pub build: Factory,
    /// The model's parameter count; `None` for problems without a model (online, 2-D).
    pub parameters: Option<CountParameters>,
}

impl TaskInfo {
    /// The primary metric: the one reports rank by.
    pub fn primary(&self) -> &MetricInfo {
        &self.metrics[0]
    }

    /// Whether the task reports `metric` (`train_loss` always).
    pub fn has_metric(&self, metric: &str) -> bool {
        metric == "train_loss" || self.metrics.iter().any(|m| m.name == metric)
    }

    /// Checks a task's configured options and fills in the defaults; an error names the key
    /// and says what is expected.
    pub fn resolve_options(
        &self,
        given: &BTreeMap<String, HyperValue>,
    ) -> Result<BTreeMap<String, HyperValue>, (String, String)> {
        let mut options: BTreeMap<String, HyperValue> =
            self.options.iter().map(|o| (o.name.to_string(), o.default.clone())).collect();
        for (key, value) in given {
            let Some(spec) = self.options.iter().find(|o| o.name == key) else {
                let valid: Vec<&str> = self.options.iter().map(|o| o.name).collect();
                let valid = if valid.is_empty() { "none".to_string() } else { valid.join(", ") };
                return Err((key.clone(), format!("unknown option of task `{}`; valid options: {valid}", self.name)));
            };
            let value = spec.check(value).map_err(|message| (key.clone(), message))?;
            options.insert(key.clone(), value);
        }
        Ok(options)
    }
}

/// Every task of the suite.
pub fn registry() -> &'static [TaskInfo] {
    static REGISTRY: OnceLock<Vec<TaskInfo>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut tasks = online::tasks();
        tasks.extend(toy2d::tasks());
        tasks.extend(mnist::tasks());
        tasks.extend(vision::tasks());
        tasks.extend(language::tasks());
        tasks.extend(translation::tasks());
        tasks.extend(gan::tasks());
        tasks
    })
}

/// The task of that name.
pub fn find(name: &str) -> Option<&'static TaskInfo> {
    registry().iter().find(|t| t.name == name)
}

/// Every task name, for error messages.
pub fn names() -> Vec<&'static str> {
    registry().iter().map(|t| t.name.as_str()).collect()
}
