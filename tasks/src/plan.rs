//! The resolved run plan: a config expanded into runs (task x optimizer arm x grid setting x
//! seed), each fully resolved (defaults filled in) and checked. Data flows one way:
//! config -> plan -> runs -> result files -> reports.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use optimizers::{HyperValue, OptimizerSpec};
use serde::{Deserialize, Serialize};

use crate::config::{self, grid, Claim, ConfigError, Reported};
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
    /// Gradient clipping by global norm before every optimizer step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_norm: Option<f64>,
}

/// When a run saves checkpoints. It does not change the run's numbers (so it is not part of
/// the fingerprint).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointPolicy {
    pub enabled: bool,
    /// The least number of seconds between two checkpoints.
    pub min_interval_s: f64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self { enabled: true, min_interval_s: 0.0 }
    }
}

/// One run: everything that determines its result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub experiment: String,
    pub task: TaskSetup,
    pub optimizer_label: String,
    /// The optimizer with every hyperparameter (defaults filled in).
    pub optimizer: OptimizerSpec,
    /// The optimizer of each role that the config overrides (`roles`), resolved; the other
    /// roles use `optimizer`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, OptimizerSpec>,
    /// The hyperparameters the config set for this run, as a file-name-safe slug.
    pub setting: String,
    pub seed: u64,
    pub device: String,
    /// The papers' numbers for this task and optimizer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reported: Vec<Reported>,
    /// The papers' claims about this run's task (not part of the fingerprint).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Claim>,
    /// The primary metric's target the report times (the task's `target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    #[serde(default)]
    pub checkpoint: CheckpointPolicy,
}

impl RunSpec {
    /// What the task of this run is built from: its options, optimizer, roles, budget, seed,
    /// on `device`, with data from `data`.
    pub fn context<'a>(
        &'a self,
        info: &'static task::TaskInfo,
        device: &'a candle::Device,
        data: &'a task::DataSettings,
    ) -> task::TaskContext<'a> {
        task::TaskContext {
            info,
            options: &self.task.options,
            optimizer: &self.optimizer,
            roles: &self.roles,
            clip_norm: self.task.clip_norm,
            batch_size: self.task.batch_size,
            seed: self.seed,
            device,
            data,
        }
    }

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
        let mut key = serde_json::json!({
            "task": self.task, "optimizer": self.optimizer, "seed": self.seed, "device": self.device,
        });
        // No validation split trains on what runs did before the option existed: the same
        // fingerprint, so their results still count.
        if self.task.options.get("valid_size") == Some(&HyperValue::Int(0)) {
            if let Some(options) = key["task"]["options"].as_object_mut() {
                options.remove("valid_size");
            }
        }
        if !self.roles.is_empty() {
            key["roles"] = serde_json::json!(self.roles);
        }
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
    /// Expand sweeps of more than [`max_runs`] runs (`--allow-large`).
    pub allow_large: bool,
}

/// The most runs a sweep may have without `--allow-large` (`OPTBENCH_MAX_RUNS` sets it): a
/// larger one is more often a typo (`seeds = 1000000000000`) than a plan.
pub const DEFAULT_MAX_RUNS: u64 = 20_000;

/// The most runs a sweep may have at all: their specs are held in memory.
pub const HARD_MAX_RUNS: u64 = 2_000_000;

/// [`DEFAULT_MAX_RUNS`], or `OPTBENCH_MAX_RUNS`.
pub fn max_runs() -> Result<u64, String> {
    match std::env::var("OPTBENCH_MAX_RUNS") {
        Err(_) => Ok(DEFAULT_MAX_RUNS),
        Ok(text) => text.trim().parse::<u64>().ok().filter(|&n| n >= 1).ok_or_else(|| {
            format!("OPTBENCH_MAX_RUNS=`{text}`: expected a whole number of runs >= 1 (default {DEFAULT_MAX_RUNS})")
        }),
    }
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

/// Checks that this binary can open `device`, before any run starts: a `cuda` or `metal`
/// device needs a binary built with that feature, and a CUDA binary needs a GPU and its driver.
/// Planning alone (`optbench plan`, `status`) does not ask for this.
pub fn check_device_usable(device: &str) -> Result<(), String> {
    match DeviceName::parse(device)? {
        DeviceName::Cpu => Ok(()),
        DeviceName::Cuda(ordinal) => {
            if !candle::utils::cuda_is_available() {
                return Err(format!(
                    "device `{device}`: this optbench was built without CUDA; build it with scripts/build-cuda.sh \
                     (the README's CUDA section)"
                ));
            }
            candle::Device::new_cuda(ordinal).map(drop).map_err(|e| {
                // candle appends a backtrace when RUST_BACKTRACE is set: the cause is its first line.
                let e = e.to_string();
                let e = e.lines().next().unwrap_or_default().trim_end();
                format!(
                    "device `{device}`: CUDA cannot open GPU {ordinal} ({e}); check that this machine has an \
                     NVIDIA GPU and driver (libcuda.so.1) and that LD_LIBRARY_PATH holds the CUDA 13 libraries"
                )
            })
        }
        DeviceName::Metal => {
            if !candle::utils::metal_is_available() {
                return Err(format!(
                    "device `{device}`: this optbench was built without Metal; build it on macOS with \
                     `cargo build --release -p tasks --features metal`"
                ));
            }
            candle::Device::new_metal(0).map(drop).map_err(|e| format!("device `{device}`: Metal cannot start ({e})"))
        }
    }
}

/// The longest label or name: a folder name must stay under the file systems' 255 bytes, with
/// room for what the runner adds beside it.
pub const MAX_LABEL: usize = 100;

fn check_label(label: &str) -> Result<(), String> {
    let ok = !label.is_empty()
        && !label.starts_with('.')
        && label.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
    if !ok {
        return Err(format!("`{label}` cannot name a folder: use letters, digits, '-', '_', '.' and '+'"));
    }
    if label.len() > MAX_LABEL {
        return Err(format!(
            "`{}...` is {} characters long: names folders, so at most {MAX_LABEL}",
            &label[..20],
            label.len()
        ));
    }
    Ok(())
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
    match &overrides.device {
        Some(given) => check_device(given).map_err(|m| error("--device (command line)".into(), m))?,
        None => check_device(&device).map_err(|m| error("device".into(), m))?,
    }
    let seed_count = exp.seeds.count();
    if seed_count > HARD_MAX_RUNS {
        return Err(error(
            "seeds".into(),
            format!("{seed_count} seeds: a sweep holds at most {HARD_MAX_RUNS} runs (a typo?)"),
        ));
    }
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
        let clip_norm = match entry.clip_norm.or(info.clip_norm) {
            Some(c) if !(c.is_finite() && c >= 0.0) => {
                return Err(error(at("clip_norm"), format!("must be a finite number >= 0 (0: no clipping), not {c}")))
            }
            Some(c) if c > 0.0 => Some(c),
            _ => None,
        };
        for role in entry.roles.keys() {
            if !info.optimizers.contains(&role.as_str()) {
                return Err(error(
                    at(&format!("roles.{role}")),
                    format!(
                        "task `{}` has no optimizer `{role}`; its optimizers: {}",
                        info.name,
                        info.optimizers.join(", ")
                    ),
                ));
            }
        }
        let setup = TaskSetup {
            name: info.name.clone(),
            label,
            options,
            budget,
            batch_size,
            eval_every: entry.eval_every.or(info.eval_every),
            log_every: entry.log_every.unwrap_or(info.log_every),
            schedule,
            clip_norm,
        };
        tasks.push((setup, entry));
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

    let unknown = |keys: &BTreeMap<String, HyperValue>| {
        keys.keys().find(|key| !arms.iter().any(|(_, _, known)| known.contains(key))).cloned()
    };
    for (i, (_, entry)) in tasks.iter().enumerate() {
        if let Some(key) = unknown(&entry.optimizer_overrides) {
            return Err(error(
                format!("tasks[{i}].optimizer_overrides.{key}"),
                "no optimizer arm has this hyperparameter".into(),
            ));
        }
        for (role, overrides) in &entry.roles {
            if let Some(key) = unknown(overrides) {
                return Err(error(
                    format!("tasks[{i}].roles.{role}.{key}"),
                    "no optimizer arm has this hyperparameter".into(),
                ));
            }
        }
    }
    let checkpoint_interval = exp.checkpoint_interval.unwrap_or(0.0);
    if !(checkpoint_interval.is_finite() && checkpoint_interval >= 0.0) {
        return Err(error("checkpoint_interval".into(), format!("must be seconds >= 0, not {checkpoint_interval}")));
    }

    for (k, reported) in exp.reported.iter().enumerate() {
        let Some((setup, _)) = tasks.iter().find(|(t, _)| t.label == reported.task) else {
            return Err(error(
                format!("reported[{k}].task"),
                format!("no task labelled `{}` in this config", reported.task),
            ));
        };
        let info = task::find(&setup.name).expect("checked above");
        if !info.has_metric(&reported.metric) {
            let metrics: Vec<&str> = info.metrics.iter().map(|m| m.name.as_str()).collect();
            return Err(error(
                format!("reported[{k}].metric"),
                format!(
                    "task `{}` has no metric `{}`; its metrics: {}, train_loss",
                    info.name,
                    reported.metric,
                    metrics.join(", ")
                ),
            ));
        }
        if !arms.iter().any(|(_, a, _)| a.label == reported.optimizer) {
            return Err(error(
                format!("reported[{k}].optimizer"),
                format!("no optimizer labelled `{}` in this config", reported.optimizer),
            ));
        }
        if reported.kind.is_none() {
            return Err(error(
                format!("reported[{k}].kind"),
                "say which evaluation the paper's number is: `kind = \"final\"` (the last epoch's) or \
                 `kind = \"best\"` (the best epoch's), so that the report compares it with the same statistic"
                    .into(),
            ));
        }
    }

    let labels: Vec<(&str, &str)> = tasks.iter().map(|(t, _)| (t.label.as_str(), t.name.as_str())).collect();
    let arm_labels: Vec<&str> = arms.iter().map(|(_, a, _)| a.label.as_str()).collect();
    config::claims::check_all(&exp.claims, &labels, &arm_labels).map_err(|(k, m)| error(k, m))?;
    for (i, (_, entry)) in tasks.iter().enumerate() {
        if let Some(t) = entry.target.filter(|t| !t.is_finite()) {
            return Err(error(format!("tasks[{i}].target"), format!("must be a finite number, not {t}")));
        }
    }

    // The size before anything is expanded: a typo must not exhaust memory.
    let settings: u128 = arms.iter().map(|(_, arm, _)| arm.count()).sum();
    let total = settings.saturating_mul(tasks.len() as u128).saturating_mul(seeds.len() as u128);
    let limit = max_runs().map_err(|m| error("(environment)".into(), m))?;
    let counted =
        format!("{} tasks x {settings} optimizer settings x {} seeds = {total} runs", tasks.len(), seeds.len());
    if total > HARD_MAX_RUNS as u128 {
        return Err(error("optimizers".into(), format!("{counted}: a sweep holds at most {HARD_MAX_RUNS} (a typo?)")));
    }
    if total > limit as u128 && !overrides.allow_large {
        return Err(error(
            "optimizers".into(),
            format!(
                "{counted}, more than {limit}: check the grids and `seeds`; pass --allow-large to expand it anyway \
                 (OPTBENCH_MAX_RUNS sets the limit)"
            ),
        ));
    }
    let mut runs = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (i, (setup, entry)) in tasks.iter().enumerate() {
        for (j, arm, known) in &arms {
            for setting in arm.settings() {
                let with = |base: &BTreeMap<String, HyperValue>, overrides: &BTreeMap<String, HyperValue>| {
                    let mut given = base.clone();
                    for (key, value) in overrides {
                        if known.contains(key) {
                            given.insert(key.clone(), value.clone());
                        }
                    }
                    given
                };
                let given = with(&setting, &entry.optimizer_overrides);
                let spec = OptimizerSpec { name: arm.name.clone(), hyperparameters: given.clone() };
                let at_key = |prefix: String, e: &optimizers::SpecError| {
                    let key = spec_error_key(e);
                    error(format!("{prefix}{}", key.map(|k| format!(".{k}")).unwrap_or_default()), e.to_string())
                };
                let resolved = spec.resolve().map_err(|e| at_key(format!("optimizers[{j}]"), &e))?;
                let mut roles = BTreeMap::new();
                for (role, overrides) in &entry.roles {
                    let spec = OptimizerSpec { name: arm.name.clone(), hyperparameters: with(&given, overrides) };
                    let role_spec = spec.resolve().map_err(|e| at_key(format!("tasks[{i}].roles.{role}"), &e))?;
                    roles.insert(role.clone(), role_spec);
                }
                let setting_name = spec.slug();
                if setting_name.len() > 2 * MAX_LABEL {
                    return Err(error(
                        format!("optimizers[{j}]"),
                        format!(
                            "the folder name of setting `{}...` would be {} characters long (at most {}): set fewer hyperparameters in the grid",
                            &setting_name[..40],
                            setting_name.len(),
                            2 * MAX_LABEL
                        ),
                    ));
                }
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
                        roles: roles.clone(),
                        setting: setting_name.clone(),
                        seed,
                        device: device.clone(),
                        reported: reported.clone(),
                        claims: exp.claims.iter().filter(|c| c.task == setup.label).cloned().collect(),
                        target: entry.target,
                        checkpoint: CheckpointPolicy {
                            enabled: entry.checkpoint.unwrap_or(true),
                            min_interval_s: checkpoint_interval,
                        },
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
