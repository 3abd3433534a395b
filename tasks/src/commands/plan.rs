//! `optbench plan`: prints the runs a config expands into, with their ids, their model's
//! parameter count and whether their result is already there; runs nothing.

use std::collections::HashMap;
use std::path::PathBuf;

use candle::Device;

use crate::plan::{self, Overrides, RunSpec};
use crate::runner::{self, Existing};
use crate::task::{self, DataSettings};

/// Options of `optbench plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// An experiment config (TOML or YAML).
    pub file: PathBuf,
    /// Results folder to check for finished runs (default: the config's `out`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the runs as JSON lines (the resolved run specs, with `parameters`: the model's
    /// trainable parameter count, null for problems without a model).
    #[arg(long)]
    pub json: bool,
    /// Expand sweeps larger than 20,000 runs (OPTBENCH_MAX_RUNS sets the limit).
    #[arg(long)]
    pub allow_large: bool,
}

/// The trainable parameter count of a run's model, `None` for problems without one; the model
/// is built on the CPU without data, once per task and options (the count depends on nothing
/// else).
pub struct ParameterCounts {
    counted: HashMap<String, Option<usize>>,
}

impl ParameterCounts {
    pub fn new() -> Self {
        Self { counted: HashMap::new() }
    }

    pub fn of(&mut self, spec: &RunSpec) -> anyhow::Result<Option<usize>> {
        let key = format!("{} {}", spec.task.name, serde_json::to_string(&spec.task.options)?);
        if let Some(&count) = self.counted.get(&key) {
            return Ok(count);
        }
        let info = task::find(&spec.task.name).ok_or_else(|| anyhow::anyhow!("unknown task `{}`", spec.task.name))?;
        let count = match &info.parameters {
            None => None,
            Some(count) => {
                let no_data = DataSettings::default();
                let ctx = spec.context(info, &Device::Cpu, &no_data);
                let n = count(&ctx)
                    .map_err(|e| anyhow::anyhow!("counting the parameters of task `{}`: {e}", spec.task.label))?;
                Some(n)
            }
        };
        self.counted.insert(key, count);
        Ok(count)
    }
}

impl Default for ParameterCounts {
    fn default() -> Self {
        Self::new()
    }
}

/// `9750922` as `9,750,922`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let plan = plan::load(
        &args.file,
        &Overrides { out: args.out.clone(), allow_large: args.allow_large, ..Default::default() },
    )?;
    let mut counts = ParameterCounts::new();
    if args.json {
        for spec in &plan.runs {
            let mut line = serde_json::to_value(spec)?;
            line["parameters"] = serde_json::json!(counts.of(spec)?);
            println!("{}", serde_json::to_string(&line)?);
        }
        return Ok(());
    }
    println!("{}: {} runs into {}", plan.experiment, plan.runs.len(), runner::results_dir(&plan).display());
    if !plan.description.is_empty() {
        println!("{}", plan.description.trim());
    }
    for (i, spec) in plan.runs.iter().enumerate() {
        let path = spec.result_path(&plan.out);
        let checkpoint = runner::checkpoint::checkpoint_path(&path).exists();
        let state = match runner::existing(spec, &path) {
            Existing::Done(status) => format!("{status:?}").to_lowercase(),
            Existing::Missing if checkpoint => "to run on from its checkpoint".into(),
            Existing::Missing => "to run".into(),
            Existing::Failed(_) if checkpoint => "failed, to run on from its checkpoint".into(),
            Existing::Failed(_) => "failed, to run again".into(),
            Existing::Changed => "setup changed, to run again".into(),
            Existing::Unreadable(_) => "unreadable, to run again".into(),
            Existing::Damaged(_) => "loss stream damaged, to run again".into(),
        };
        let budget = match spec.task.budget {
            crate::task::Budget::Steps(s) => format!("{s} steps"),
            crate::task::Budget::Epochs(e) => format!("{e} epochs"),
        };
        let parameters = counts.of(spec)?.map(|n| format!(", {} parameters", thousands(n))).unwrap_or_default();
        println!("{:>4}  {}  [{budget}{parameters}, {}]  {}", i + 1, spec.id(), state, spec.optimizer);
        for (role, optimizer) in &spec.roles {
            println!("        role {role}: {optimizer}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_separated() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(9_750_922), "9,750,922");
        assert_eq!(super::thousands(11_173_962), "11,173,962");
    }
}
