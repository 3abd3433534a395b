//! `optbench status`: where every run of a sweep stands (done, running, failed, stale, missing),
//! across every process and machine writing into its results folder.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::plan::{self, Overrides};
use crate::runner::{self, sweep};

/// Options of `optbench status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A results folder (an experiment's, with its `sweep.json`, or the `out` folder above
    /// several), or a config file.
    pub path: PathBuf,
    /// Results folder, when PATH is a config (default: the config's `out`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// List every run that is not done (default: the first 20 of each kind).
    #[arg(long)]
    pub all: bool,
}

/// Prints the status; returns whether every run is done.
pub fn run(args: &StatusArgs) -> anyhow::Result<bool> {
    let sweeps: Vec<(sweep::Sweep, PathBuf)> = if args.path.is_file() {
        let overrides = Overrides { out: args.out.clone(), allow_large: true, ..Default::default() };
        let plan = plan::load(&args.path, &overrides)?;
        vec![(sweep::Sweep::of(&plan), runner::results_dir(&plan))]
    } else {
        anyhow::ensure!(args.path.is_dir(), "{} is neither a results folder nor a config file", args.path.display());
        let found = sweep::find(&args.path);
        anyhow::ensure!(
            !found.is_empty(),
            "no {} in {} or its folders: it is written by `optbench run` and `optbench slurm`; give the config \
             instead (`optbench status CONFIG`)",
            sweep::FILE,
            args.path.display()
        );
        found
            .into_iter()
            .map(|p| {
                let dir = p.parent().expect("a manifest is in a folder").to_path_buf();
                sweep::Sweep::load(&p).map(|s| (s, dir)).map_err(anyhow::Error::msg)
            })
            .collect::<anyhow::Result<_>>()?
    };
    let mut all_done = true;
    for (sweep, dir) in &sweeps {
        let states: Vec<(&str, sweep::RunState)> =
            sweep.runs.iter().map(|r| (r.id.as_str(), sweep::state(dir, r))).collect();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, state) in &states {
            *counts.entry(state.label()).or_default() += 1;
        }
        let count = |label: &str| counts.get(label).copied().unwrap_or(0);
        println!(
            "{}: {} runs: {} done, {} diverged, {} running, {} failed, {} stale, {} missing  ({})",
            sweep.experiment,
            states.len(),
            count("done"),
            count("diverged"),
            count("running"),
            count("failed"),
            count("stale"),
            count("missing"),
            dir.display()
        );
        all_done &= count("done") + count("diverged") == states.len();
        for label in ["running", "failed", "stale", "missing"] {
            let of_kind: Vec<_> = states.iter().filter(|(_, s)| s.label() == label).collect();
            let shown = if args.all { of_kind.len() } else { of_kind.len().min(20) };
            for (id, state) in &of_kind[..shown] {
                let detail = match state {
                    sweep::RunState::Running(who) => format!(": {who}"),
                    sweep::RunState::Failed(why) | sweep::RunState::Stale(why) => format!(": {why}"),
                    _ => String::new(),
                };
                println!("  {label:<8} {id}{detail}");
            }
            if shown < of_kind.len() {
                println!("  ... and {} more {label} (--all lists them)", of_kind.len() - shown);
            }
        }
    }
    Ok(all_done)
}
