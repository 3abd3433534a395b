//! Experiment configs: one TOML or YAML file (chosen by extension) per paper table or figure.
//! Plain data: which tasks, which optimizers with which hyperparameter grids, which seeds.
//!
//! ```toml
//! name = "adashift-online"          # the experiment; results go to <out>/<name>/...
//! description = "..."
//! out = "results"                   # default "results" (relative to the working directory)
//! seeds = [0, 1, 2]                 # or a count: seeds = 3
//! device = "cpu"                    # cpu | cuda | cuda:N | metal
//! checkpoint_interval = 60          # at least this many seconds between checkpoints (default 0)
//!
//! [[tasks]]
//! name = "online-sequential"        # see `optbench tasks`
//! steps = 200000                    # or epochs = N; default: the task's budget
//! eval_every = 1000                 # steps between evaluations
//! log_every = 1000                  # steps between lines of the training-loss stream
//! schedule = { kind = "inverse-sqrt" }
//! options = { c1 = 1010, c2 = 10, d = 101 }
//! optimizer_overrides = { beta2 = 0.99 }   # applied to every arm that has the key
//! roles = { critic = { lr = 1e-4 } }        # per optimizer of the task (a GAN's critic, generator)
//! clip_norm = 0.25                  # clip gradients to this global norm before every step (0: off)
//! checkpoint = true                 # save a checkpoint at every evaluation (default), to resume
//!
//! [[optimizers]]                     # an arm: an optimizer spec; a list is a grid
//! name = "adashift"
//! label = "max-adashift"             # default: the name
//! lr = [1e-3, 1e-2]                  # a grid
//! keep_num = 10
//! phi = "max"
//!
//! [[optimizers]]
//! name = "adam"
//! lr = { log = [1e-4, 1e-1], num = 4 }   # 1e-4, 1e-3, 1e-2, 1e-1
//!
//! [[reported]]                       # a paper's number, shown beside the measured one
//! task = "cifar10-resnet18"
//! optimizer = "adabelief"
//! metric = "test_accuracy"
//! value = 0.952
//! kind = "final"                     # the paper's number is the last epoch's; "best": the best epoch's
//! source = "juntang-zhuang/Adabelief-Optimizer: curve/..."
//!
//! [[claims]]                         # a paper's claim, judged by the report (see [`claims`])
//! kind = "beats"                     # or "above" / "below" a `value`
//! task = "cifar10-resnet18"
//! optimizer = "adabelief"
//! other = "adam"
//! metric = "test_accuracy"
//! statistic = "final"
//! source = "AdaBelief (NeurIPS 2020) Fig. 4"
//! ```
//!
//! A task entry may also set `target`: the primary metric's value whose first reaching the
//! report times.
//!
//! Loading checks everything and expands the config into a [`Plan`](crate::plan::Plan): an
//! error names the file, the key path (`optimizers[1].keep_num`) and what is expected.

pub mod claims;
pub mod grid;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use optimizers::HyperValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::claims::{Claim, ClaimKind};
use crate::schedule::Schedule;

/// A config error: which file, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// The key path, e.g. `tasks[0].options.c1`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Seeds as a list, or a count `n` meaning `0..n`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

impl Seeds {
    /// How many seeds, without listing them.
    pub fn count(&self) -> u64 {
        match self {
            Seeds::Count(n) => *n,
            Seeds::List(v) => v.len() as u64,
        }
    }

    pub fn list(&self) -> Vec<u64> {
        match self {
            Seeds::Count(n) => (0..*n).collect(),
            Seeds::List(v) => v.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for Seeds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let expected = "a list of seeds (`seeds = [0, 1, 2]`) or a count (`seeds = 3`)";
        match Value::deserialize(deserializer)? {
            Value::Number(n) => n.as_u64().map(Seeds::Count).ok_or_else(|| serde::de::Error::custom(expected)),
            Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_u64()
                        .ok_or_else(|| serde::de::Error::custom(format!("seeds are whole numbers >= 0; {expected}")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Seeds::List),
            other => Err(serde::de::Error::custom(format!("not {other}: {expected}"))),
        }
    }
}

impl Default for Seeds {
    fn default() -> Self {
        Seeds::List(vec![0])
    }
}

/// One data folder or a list of them.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum DataDirs {
    #[default]
    None,
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl<'de> Deserialize<'de> for DataDirs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let expected = "a folder (`data_dir = \"../data\"`) or a list of folders (`data_dir = [\"a\", \"b\"]`)";
        match Value::deserialize(deserializer)? {
            Value::String(path) => Ok(DataDirs::One(path.into())),
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::String(path) => Ok(PathBuf::from(path)),
                    other => Err(serde::de::Error::custom(format!("must be {expected}; `{other}` is not a folder"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(DataDirs::Many),
            other => Err(serde::de::Error::custom(format!("must be {expected}, not `{other}`"))),
        }
    }
}

impl DataDirs {
    pub fn list(&self) -> Vec<PathBuf> {
        match self {
            DataDirs::None => Vec::new(),
            DataDirs::One(p) => vec![p.clone()],
            DataDirs::Many(v) => v.clone(),
        }
    }
}

/// A whole experiment config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub out: Option<PathBuf>,
    #[serde(default)]
    pub seeds: Seeds,
    #[serde(default)]
    pub device: Option<String>,
    /// Folders with local copies of data sets: one path or a list.
    #[serde(default)]
    pub data_dir: DataDirs,
    pub tasks: Vec<TaskEntry>,
    pub optimizers: Vec<ArmEntry>,
    #[serde(default)]
    pub reported: Vec<Reported>,
    /// The papers' claims, judged by the report (see [`claims`]).
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// The least number of seconds between two checkpoints of a run (0: at every evaluation).
    #[serde(default)]
    pub checkpoint_interval: Option<f64>,
}

/// A task of the experiment, with overrides of its defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskEntry {
    pub name: String,
    /// How results and reports name this entry (default: the task name).
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub steps: Option<u64>,
    #[serde(default)]
    pub epochs: Option<u64>,
    #[serde(default)]
    pub batch_size: Option<usize>,
    #[serde(default)]
    pub eval_every: Option<u64>,
    #[serde(default)]
    pub log_every: Option<u64>,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(default)]
    pub options: BTreeMap<String, HyperValue>,
    #[serde(default)]
    pub optimizer_overrides: BTreeMap<String, HyperValue>,
    /// Hyperparameters for one optimizer of the task, by role (`critic`, `generator`).
    #[serde(default)]
    pub roles: BTreeMap<String, BTreeMap<String, HyperValue>>,
    /// Clip the gradients to this global norm before every optimizer step (0: no clipping).
    #[serde(default)]
    pub clip_norm: Option<f64>,
    /// Save checkpoints to resume from (default true).
    #[serde(default)]
    pub checkpoint: Option<bool>,
    /// The value of the primary metric whose first reaching the report times (steps and
    /// seconds); default: within 10% of the best final mean of any optimizer.
    #[serde(default)]
    pub target: Option<f64>,
}

/// An optimizer arm: `name`, an optional `label`, and hyperparameters whose values may be
/// grids. Kept as raw values here; [`grid`] interprets them with precise errors.
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct ArmEntry(pub BTreeMap<String, Value>);

/// Which evaluation of a run a paper's number is: the last one, or the best one over training.
/// A report compares it with the same statistic of the suite's runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportedKind {
    /// The metric after the last epoch (or step) of training.
    Final,
    /// The best value of the metric over the evaluations of a run (a mean over runs is the
    /// mean of each run's best, as Adai's "best test error over three runs").
    Best,
}

impl ReportedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportedKind::Final => "final",
            ReportedKind::Best => "best",
        }
    }
}

/// A number a paper reports, to show beside the measured one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reported {
    /// The task label.
    pub task: String,
    /// The optimizer arm label.
    pub optimizer: String,
    pub metric: String,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// Whether `value` is the final or the best evaluation. A config must say (plan checks
    /// it); `None` only in result files written before the key existed, which a report shows
    /// without comparing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ReportedKind>,
    #[serde(default)]
    pub source: String,
}

/// Reads a config file (TOML or YAML by extension); syntax and schema errors name the key.
pub fn load(file: &Path) -> Result<Experiment, ConfigError> {
    let error = |path: String, message: String| ConfigError { file: file.to_path_buf(), path, message };
    let text = std::fs::read_to_string(file).map_err(|e| error(String::new(), format!("cannot read: {e}")))?;
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "toml" => {
            let de = toml::Deserializer::parse(&text).map_err(|e| error(String::new(), e.to_string()))?;
            serde_path_to_error::deserialize(de).map_err(|e| error(e.path().to_string(), e.inner().to_string()))
        }
        "yaml" | "yml" => {
            let de = serde_yaml::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                // serde_yaml's own message repeats the path: keep it once.
                let path = e.path().to_string();
                let message = e.inner().to_string();
                let message = message.strip_prefix(&format!("{path}: ")).unwrap_or(&message).to_string();
                error(path, message)
            })
        }
        _ => Err(error(String::new(), "a config file ends in .toml, .yaml or .yml".into())),
    }
    .map_err(|mut e: ConfigError| {
        if e.path == "." {
            e.path.clear();
        }
        e
    })
}
