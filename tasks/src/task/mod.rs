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
pub mod mnist;
pub mod online;
pub mod toy2d;
pub mod vision;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use candle::Device;
use optimizers::{BoxedOptimizer, HyperValue, OptimizerSpec};
use serde::{Deserialize, Serialize};

pub use crate::data::DataSettings;
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

/// One option of a task, with its default.
#[derive(Clone, Debug)]
pub struct OptionSpec {
    pub name: &'static str,
    pub default: HyperValue,
    pub help: &'static str,
    /// The allowed values of a string option (empty: any).
    pub choices: &'static [&'static str],
}

impl OptionSpec {
    pub fn new(name: &'static str, default: impl Into<HyperValue>, help: &'static str) -> Self {
        Self { name, default: default.into(), help, choices: &[] }
    }

    pub fn choice(name: &'static str, default: &str, choices: &'static [&'static str], help: &'static str) -> Self {
        Self { name, default: default.into(), help, choices }
    }
}

/// What a task gets to build itself: its resolved options and everything about the run.
pub struct TaskContext<'a> {
    pub info: &'a TaskInfo,
    /// Every option, defaults filled in.
    pub options: &'a BTreeMap<String, HyperValue>,
    /// The optimizer to build for every set of parameters the task trains (resolved).
    pub optimizer: &'a OptimizerSpec,
    pub batch_size: Option<usize>,
    pub seed: u64,
    pub device: &'a Device,
    pub data: &'a DataSettings,
}

impl TaskContext<'_> {
    pub fn f64(&self, key: &str) -> f64 {
        self.options.get(key).and_then(HyperValue::as_f64).unwrap_or_else(|| panic!("option `{key}` is a number"))
    }

    pub fn int(&self, key: &str) -> i64 {
        match self.options.get(key) {
            Some(HyperValue::Int(i)) => *i,
            other => panic!("option `{key}` is a whole number, not {other:?}"),
        }
    }

    /// A whole-number option that must be at least `min`.
    pub fn count(&self, key: &str, min: i64) -> anyhow::Result<usize> {
        let v = self.int(key);
        anyhow::ensure!(v >= min, "option `{key}` must be at least {min}, not {v}");
        Ok(v as usize)
    }

    pub fn flag(&self, key: &str) -> bool {
        match self.options.get(key) {
            Some(HyperValue::Bool(b)) => *b,
            other => panic!("option `{key}` is a boolean, not {other:?}"),
        }
    }

    pub fn string(&self, key: &str) -> &str {
        match self.options.get(key) {
            Some(HyperValue::Str(s)) => s,
            other => panic!("option `{key}` is a string, not {other:?}"),
        }
    }

    /// Builds the optimizer of the run over `vars`.
    pub fn build_optimizer(&self, vars: Vec<candle::Var>) -> anyhow::Result<BoxedOptimizer> {
        Ok(self.optimizer.build(vars)?)
    }
}

/// A task being trained: what the runner calls.
pub trait Task: Send {
    /// Steps in one epoch, for tasks that go through a data set.
    fn steps_per_epoch(&self) -> Option<u64> {
        None
    }

    /// Sets the learning rate of every optimizer the task holds.
    fn set_learning_rate(&mut self, lr: f64);

    /// One training step (1-based `step`); returns the training loss of the step.
    fn train_step(&mut self, step: u64) -> anyhow::Result<f64>;

    /// The task's metrics now (test metrics for models, the iterate for problems).
    fn evaluate(&mut self) -> anyhow::Result<Metrics>;
}

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
    pub build: fn(&TaskContext) -> anyhow::Result<Box<dyn Task>>,
}

impl TaskInfo {
    /// The primary metric: the one reports rank by.
    pub fn primary(&self) -> &MetricInfo {
        &self.metrics[0]
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
            let value = optimizers::spec::coerce(&spec.default, value)
                .map_err(|expected| (key.clone(), format!("must be {expected}, not {}", value.describe())))?;
            if let HyperValue::Str(s) = &value {
                if !spec.choices.is_empty() && !spec.choices.contains(&s.as_str()) {
                    return Err((key.clone(), format!("must be one of {}, not \"{s}\"", spec.choices.join(", "))));
                }
            }
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
