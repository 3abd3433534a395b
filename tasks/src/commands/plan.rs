//! `optbench plan`: prints the runs a config expands into, with their ids and whether their
//! result is already there; runs nothing.

use std::path::PathBuf;

use crate::plan::{self, Overrides};
use crate::runner::{self, Existing};

/// Options of `optbench plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// An experiment config (TOML or YAML).
    pub file: PathBuf,
    /// Results folder to check for finished runs (default: the config's `out`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the runs as JSON lines (the resolved run specs).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let plan = plan::load(&args.file, &Overrides { out: args.out.clone(), ..Default::default() })?;
    if args.json {
        for spec in &plan.runs {
            println!("{}", serde_json::to_string(spec)?);
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
            Existing::Failed if checkpoint => "failed, to run on from its checkpoint".into(),
            Existing::Failed => "failed, to run again".into(),
            Existing::Changed => "setup changed, to run again".into(),
            Existing::Unreadable(_) => "unreadable, to run again".into(),
        };
        let budget = match spec.task.budget {
            crate::task::Budget::Steps(s) => format!("{s} steps"),
            crate::task::Budget::Epochs(e) => format!("{e} epochs"),
        };
        println!("{:>4}  {}  [{budget}, {}]  {}", i + 1, spec.id(), state, spec.optimizer);
    }
    Ok(())
}
