//! The resolved run plan: a config expanded into runs (task x optimizer arm x grid setting x
//! seed), each fully resolved (defaults filled in) and checked. Data flows one way:
//! config -> plan -> runs -> result files -> reports.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use optimizers::{HyperValue, OptimizerSpec};
use serde::{Deserialize, Serialize};

use crate::config::{self, grid, ConfigError, Reported};
use crate::schedule::Schedule;
use crate::task::{self, Budget};

/// A task as one run trains it: every option and default resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSetup {
    /// The task (see `optbench tasks`).
    pub name: String,
    /// How results name this entry of the config.
    pub label: String,
    pub options: BTreeMap<String, HyperValue>,
    pub budget: Budget,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Steps between evaluations; `None`: every epoch.
    pub eval_every: Option<u64>,
    pub log_every: u64,
    pub schedule: Schedule,
}

/// One run: everything that determines its result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub experiment: String,
    pub task: TaskSetup,
    pub optimizer_label: String,
    /// The optimizer with every hyperparameter (defaults filled in).
    pub optimizer: OptimizerSpec,
    /// The hyperparameters the config set for this run, as a file-name-safe slug.
    pub setting: String,
    pub seed: u64,
    pub device: String,
    /// The papers' numbers for this task and optimizer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reported: Vec<Reported>,
}

impl RunSpec {
    /// `<task>/<optimizer>/<setting>/seed-<n>`: what the run is, and where its result goes.
    pub fn id(&self) -> String {
        format!("{}/{}/{}/seed-{}", self.task.label, self.optimizer_label, self.setting, self.seed)
    }

    /// `<out>/<experiment>/<id>.json`.
    pub fn result_path(&self, out: &Path) -> PathBuf {
        out.join(&self.experiment).join(format!("{}.json", self.id()))
    }

    /// A hash of everything that determines the run's numbers (not the papers' numbers): a
    /// result whose fingerprint differs was made with another setup.
    pub fn fingerprint(&self) -> String {
        let key = serde_json::json!({
            "task": self.task, "optimizer": self.optimizer, "seed": self.seed, "device": self.device,
        });
        crate::util::hash::sha256_bytes(key.to_string().as_bytes())[..16].to_string()
    }
}

/// A config, expanded.
#[derive(Clone, Debug)]
pub struct Plan {
    pub file: PathBuf,
    pub experiment: String,
    pub description: String,
    pub out: PathBuf,
    /// Folders with local data sets: the command line's, then the config's (relative paths in
    /// the config are relative to the config file's folder).
    pub data_dirs: Vec<PathBuf>,
    pub runs: Vec<RunSpec>,
}

/// What the command line overrides in a config.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub out: Option<PathBuf>,
    pub device: Option<String>,
    pub data_dirs: Vec<PathBuf>,
}

/// A device a run can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceName {
    Cpu,
    /// A CUDA GPU by ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
    Metal,
}

impl DeviceName {
    /// Parses `cpu`, `cuda`, `cuda:N` or `metal`.
    pub fn parse(device: &str) -> Result<Self, String> {
        match device {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            "metal" => Ok(Self::Metal),
            _ => device
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("unknown device `{device}`: use cpu, cuda, cuda:N or metal")),
        }
    }
}

/// Checks a device name: `cpu`, `cuda`, `cuda:N` or `metal`.
pub fn check_device(device: &str) -> Result<(), String> {
    DeviceName::parse(device).map(drop)
}

fn check_label(label: &str) -> Result<(), String> {
    let ok = !label.is_empty()
        && !label.starts_with('.')
        && label.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("`{label}` cannot name a folder: use letters, digits, '-', '_', '.' and '+'"))
    }
}

/// Loads a config file and expands it into a plan.
pub fn load(file: &Path, overrides: &Overrides) -> Result<Plan, ConfigError> {
    let experiment = config::load(file)?;
    expand(file, experiment, overrides)
}

/// Expands a parsed config; every semantic error names its key path.
pub fn expand(file: &Path, exp: config::Experiment, overrides: &Overrides) -> Result<Plan, ConfigError> {
    let error = |path: String, message: String| ConfigError { file: file.to_path_buf(), path, message };
    check_label(&exp.name).map_err(|m| error("name".into(), m))?;
    let device = overrides.device.clone().or(exp.device.clone()).unwrap_or_else(|| "cpu".into());
    check_device(&device).map_err(|m| error("device".into(), m))?;
    let seeds = exp.seeds.list();
    if seeds.is_empty() {
        return Err(error("seeds".into(), "no seeds: give a list of seeds or a count >= 1".into()));
    }
    if let Some(seed) = seeds.iter().enumerate().find_map(|(i, s)| seeds[..i].contains(s).then_some(s)) {
        return Err(error("seeds".into(), format!("seed {seed} is listed twice")));
    }
    if exp.tasks.is_empty() {
        return Err(error("tasks".into(), "no tasks: add a [[tasks]] entry (see `optbench tasks`)".into()));
    }
    if exp.optimizers.is_empty() {
        return Err(error("optimizers".into(), "no optimizers: add an [[optimizers]] entry".into()));
    }

    let mut tasks = Vec::new();
    for (i, entry) in exp.tasks.iter().enumerate() {
        let at = |key: &str| format!("tasks[{i}]{}{key}", if key.is_empty() { "" } else { "." });
        let info = task::find(&entry.name).ok_or_else(|| {
            error(at("name"), format!("unknown task `{}`; valid tasks: {}", entry.name, task::names().join(", ")))
        })?;
        let label = entry.label.clone().unwrap_or_else(|| entry.name.clone());
        check_label(&label).map_err(|m| error(at("label"), m))?;
        let options = info.resolve_options(&entry.options).map_err(|(k, m)| error(at(&format!("options.{k}")), m))?;
        let has_epochs = matches!(info.budget, Budget::Epochs(_));
        let budget = match (entry.steps, entry.epochs) {
            (Some(_), Some(_)) => return Err(error(at(""), "give `steps` or `epochs`, not both".into())),
            (Some(0), _) => return Err(error(at("steps"), "the budget must be at least 1".into())),
            (_, Some(0)) => return Err(error(at("epochs"), "the budget must be at least 1".into())),
            (Some(s), None) => Budget::Steps(s),
            (None, Some(e)) if has_epochs => Budget::Epochs(e),
            (None, Some(_)) => {
                return Err(error(at("epochs"), format!("task `{}` has no epochs: give `steps`", info.name)))
            }
            (None, None) => info.budget,
        };
        let batch_size = match (entry.batch_size, info.batch_size) {
            (Some(_), None) => return Err(error(at("batch_size"), format!("task `{}` has no batches", info.name))),
            (Some(0), _) => return Err(error(at("batch_size"), "must be at least 1".into())),
            (given, default) => given.or(default),
        };
        for (key, value) in [("eval_every", entry.eval_every), ("log_every", entry.log_every)] {
            if value == Some(0) {
                return Err(error(at(key), "must be at least 1".into()));
            }
        }
        let schedule = entry.schedule.clone().unwrap_or_else(|| info.schedule.clone());
        schedule.validate(has_epochs).map_err(|m| error(at("schedule"), m))?;
        let setup = TaskSetup {
            name: info.name.clone(),
            label,
            options,
            budget,
            batch_size,
            eval_every: entry.eval_every.or(info.eval_every),
            log_every: entry.log_every.unwrap_or(info.log_every),
            schedule,
        };
        tasks.push((setup, &entry.optimizer_overrides));
    }

    // Each arm with the hyperparameters its optimizer has.
    let mut arms = Vec::new();
    for (j, entry) in exp.optimizers.iter().enumerate() {
        let arm = grid::read_arm(entry).map_err(|(k, m)| error(format!("optimizers[{j}].{k}"), m))?;
        check_label(&arm.label).map_err(|m| error(format!("optimizers[{j}].label"), m))?;
        let info = optimizers::registry::find(&arm.name).ok_or_else(|| {
            error(
                format!("optimizers[{j}].name"),
                format!("unknown optimizer `{}`; valid names: {}", arm.name, optimizers::registry::names().join(", ")),
            )
        })?;
        let known: Vec<String> = info.hyperparameters().into_iter().map(|(k, _)| k).collect();
        arms.push((j, arm, known));
    }

    for (i, (_, overrides)) in tasks.iter().enumerate() {
        if let Some(key) = overrides.keys().find(|key| !arms.iter().any(|(_, _, known)| known.contains(key))) {
            return Err(error(
                format!("tasks[{i}].optimizer_overrides.{key}"),
                "no optimizer arm has this hyperparameter".into(),
            ));
        }
    }

    for (k, reported) in exp.reported.iter().enumerate() {
        if !tasks.iter().any(|(t, _)| t.label == reported.task) {
            return Err(error(
                format!("reported[{k}].task"),
                format!("no task labelled `{}` in this config", reported.task),
            ));
        }
        if !arms.iter().any(|(_, a, _)| a.label == reported.optimizer) {
            return Err(error(
                format!("reported[{k}].optimizer"),
                format!("no optimizer labelled `{}` in this config", reported.optimizer),
            ));
        }
    }

    let mut runs = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (setup, task_overrides) in &tasks {
        for (j, arm, known) in &arms {
            for setting in arm.settings() {
                let mut given = setting.clone();
                for (key, value) in task_overrides.iter() {
                    if known.contains(key) {
                        given.insert(key.clone(), value.clone());
                    }
                }
                let spec = OptimizerSpec { name: arm.name.clone(), hyperparameters: given };
                let resolved = spec.resolve().map_err(|e| {
                    let key = spec_error_key(&e);
                    error(format!("optimizers[{j}]{}", key.map(|k| format!(".{k}")).unwrap_or_default()), e.to_string())
                })?;
                let reported: Vec<Reported> = exp
                    .reported
                    .iter()
                    .filter(|r| r.task == setup.label && r.optimizer == arm.label)
                    .cloned()
                    .collect();
                for &seed in &seeds {
                    let run = RunSpec {
                        experiment: exp.name.clone(),
                        task: setup.clone(),
                        optimizer_label: arm.label.clone(),
                        optimizer: resolved.clone(),
                        setting: spec.slug(),
                        seed,
                        device: device.clone(),
                        reported: reported.clone(),
                    };
                    let id = run.id();
                    if let Some(other) = seen.insert(id.clone(), format!("optimizers[{j}]")) {
                        return Err(error(
                            format!("optimizers[{j}]"),
                            format!("run `{id}` is also made by {other}: give one of the arms a different `label`"),
                        ));
                    }
                    runs.push(run);
                }
            }
        }
    }
    Ok(Plan {
        file: file.to_path_buf(),
        experiment: exp.name,
        description: exp.description,
        out: overrides.out.clone().or(exp.out).unwrap_or_else(|| PathBuf::from("results")),
        data_dirs: {
            let base = file.parent().unwrap_or(Path::new("."));
            let mut dirs = overrides.data_dirs.clone();
            dirs.extend(exp.data_dir.list().into_iter().map(|d| if d.is_relative() { base.join(d) } else { d }));
            dirs
        },
        runs,
    })
}

/// The hyperparameter an optimizer-spec error is about, for its key path.
fn spec_error_key(e: &optimizers::SpecError) -> Option<String> {
    use optimizers::SpecError::*;
    match e {
        UnknownKey { key, .. } | Missing { key, .. } | WrongType { key, .. } | OutOfRange { key, .. } => {
            Some(key.clone())
        }
        UnknownOptimizer { .. } => Some("name".into()),
        _ => None,
    }
}
