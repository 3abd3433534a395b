//! `optbench run`: runs the experiments of config files, skipping what is already done, then
//! writes the report beside the results and says where everything is.

use std::path::PathBuf;

use anyhow::Context;

use crate::plan::{self, Overrides};
use crate::report;
use crate::runner::{self, progress::Mode, SweepOptions};
use crate::task::DataSettings;

/// Options of `optbench run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Experiment configs (TOML or YAML).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Results folder (default: the config's `out`, else `results`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs at once.
    #[arg(long, short = 'j', default_value_t = 1)]
    pub jobs: usize,
    /// Device: cpu, cuda, cuda:N or metal (default: the config's, else cpu).
    #[arg(long)]
    pub device: Option<String>,
    /// Folder with local copies of data sets (one folder per data set); may be repeated.
    #[arg(long)]
    pub data_dir: Vec<PathBuf>,
    /// Never use the network: only --data-dir and the caches (also OPTBENCH_OFFLINE=1 or HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    /// Print nothing but errors and failed runs.
    #[arg(long, short)]
    pub quiet: bool,
    /// Run only part I of N of each sweep (I from 1 to N): N processes, anywhere on a shared
    /// file system, cover the sweep exactly once (`optbench slurm` uses it).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Expand sweeps larger than 20,000 runs (OPTBENCH_MAX_RUNS sets the limit).
    #[arg(long)]
    pub allow_large: bool,
}

/// `I/N` with `1 <= I <= N`.
pub fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("`{text}` is not a shard: expected I/N with 1 <= I <= N, such as 2/8");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let i: usize = i.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Runs every file; returns false when a run failed.
pub fn run(args: &RunArgs) -> anyhow::Result<bool> {
    let overrides = Overrides {
        out: args.out.clone(),
        device: args.device.clone(),
        data_dirs: args.data_dir.clone(),
        allow_large: args.allow_large,
    };
    if let Some(device) = &args.device {
        plan::check_device(device).map_err(|m| anyhow::anyhow!("--device {device}: {m}"))?;
    }
    // Check every file before running any.
    let plans = args.files.iter().map(|f| plan::load(f, &overrides)).collect::<Result<Vec<_>, _>>()?;
    // One error for a device this binary cannot open, not one failed run per run.
    let devices: std::collections::BTreeSet<&str> =
        plans.iter().flat_map(|p| &p.runs).map(|r| r.device.as_str()).collect();
    for device in devices {
        plan::check_device_usable(device).map_err(anyhow::Error::msg)?;
    }
    let mode = Mode::detect(args.quiet);
    let mut all_ok = true;
    for plan in &plans {
        let options = SweepOptions {
            jobs: args.jobs,
            mode,
            data: DataSettings::for_cli(plan.data_dirs.clone(), args.offline),
            shard: args.shard,
        };
        let dir = runner::results_dir(plan);
        runner::sweep::Sweep::of(plan)
            .save(&dir)
            .with_context(|| format!("cannot write the sweep manifest into {}", dir.display()))?;
        let summary = runner::run_plan(plan, &options);
        let (md, csv) = report::build(&dir)
            .write(&dir)
            .with_context(|| format!("cannot write the report into {}", dir.display()))?;
        all_ok &= summary.failed == 0;
        if !args.quiet {
            let part = args.shard.map(|(i, n)| format!(" (part {i} of {n})")).unwrap_or_default();
            let locked =
                if summary.locked > 0 { format!(", {} running elsewhere", summary.locked) } else { String::new() };
            println!(
                "{}{part}: {} runs: {} completed, {} diverged, {} failed, {} already done{locked}",
                plan.experiment, summary.total, summary.completed, summary.diverged, summary.failed, summary.skipped
            );
            println!("  results: {}", dir.display());
            println!("  summary: {} (and {})", md.display(), csv.display());
        }
        if summary.failed > 0 {
            eprintln!(
                "{}: {} runs failed (listed above with their errors); run the command again to retry them",
                plan.experiment, summary.failed
            );
        }
    }
    Ok(all_ok)
}
