//! `optbench slurm`: writes an `sbatch` job-array script for a config: one array task per shard,
//! each running `optbench run --shard $SLURM_ARRAY_TASK_ID/N` into the same results folder (on
//! a file system every node sees). Runs lock themselves, so array tasks never run one run twice,
//! a resubmitted array skips what is done, and `optbench report` on the folder afterwards is the
//! merged report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::plan::{self, Overrides};
use crate::runner;

/// Options of `optbench slurm`.
#[derive(Debug, clap::Args)]
pub struct SlurmArgs {
    /// An experiment config (TOML or YAML).
    pub file: PathBuf,
    /// Results folder, on a file system every node sees (default: the config's `out`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Array tasks (shards) to split the sweep into (default: one per run, at most 1000).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Slurm partition (`#SBATCH --partition`).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit of each array task (`#SBATCH --time`, e.g. 04:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// GPUs per array task (`#SBATCH --gpus-per-task`); the runs then use `--device cuda`
    /// unless `--device` says otherwise.
    #[arg(long)]
    pub gpus_per_task: Option<u32>,
    /// CPUs per array task (`#SBATCH --cpus-per-task`, default 2).
    #[arg(long, default_value_t = 2)]
    pub cpus_per_task: u32,
    /// At most this many array tasks at once (`#SBATCH --array=1-N%K`).
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// Runs at once within each array task (`optbench run --jobs`).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Device of the runs (default: the config's; `cuda` with `--gpus-per-task`).
    #[arg(long)]
    pub device: Option<String>,
    /// Folders with local copies of data sets, as for `optbench run`; may be repeated.
    #[arg(long)]
    pub data_dir: Vec<PathBuf>,
    /// The array tasks never use the network (compute nodes often have none).
    #[arg(long)]
    pub offline: bool,
    /// Expand sweeps larger than 20,000 runs (the array tasks get it too).
    #[arg(long)]
    pub allow_large: bool,
    /// The optbench binary the array tasks run (default: this one).
    #[arg(long)]
    pub binary: Option<PathBuf>,
}

/// The most array tasks a script asks for unless `--shards` says so (Slurm's default
/// `MaxArraySize` is 1001).
const MAX_DEFAULT_SHARDS: usize = 1000;

/// An absolute path (relative ones against the current folder), without resolving links.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) })
}

/// A word for a bash script, single-quoted.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn quote_path(path: &Path) -> String {
    quote(&path.to_string_lossy())
}

/// What the script will contain, and where it goes.
pub struct Script {
    pub path: PathBuf,
    pub text: String,
    pub shards: usize,
    /// The sweep as the array tasks will expand it.
    pub plan: plan::Plan,
}

/// Builds the script of a config.
pub fn script(args: &SlurmArgs) -> anyhow::Result<Script> {
    let device = args.device.clone().or_else(|| args.gpus_per_task.filter(|&g| g > 0).map(|_| "cuda".to_string()));
    let overrides = Overrides {
        out: args.out.clone(),
        device: device.clone(),
        data_dirs: args.data_dir.clone(),
        allow_large: args.allow_large,
    };
    if let Some(device) = &device {
        plan::check_device(device).map_err(|m| anyhow::anyhow!("--device {device}: {m}"))?;
    }
    let plan = plan::load(&args.file, &overrides)?;
    let runs = plan.runs.len();
    let shards = args.shards.unwrap_or(runs.min(MAX_DEFAULT_SHARDS)).max(1);
    anyhow::ensure!(shards <= runs, "--shards {shards}: the sweep has only {runs} runs; use at most {runs}");
    if let Some(k) = args.max_parallel {
        anyhow::ensure!(k >= 1, "--max-parallel must be at least 1");
    }
    let dir = absolute(&runner::results_dir(&plan))?;
    let out = absolute(&plan.out)?;
    let binary = match &args.binary {
        Some(b) => absolute(b)?,
        None => std::env::current_exe().context("cannot find this optbench binary; give it with --binary")?,
    };
    let logs = dir.join("slurm");
    let mut text = String::from("#!/bin/bash\n");
    let _ =
        writeln!(text, "# Written by `optbench slurm` for {}: {runs} runs in {shards} array tasks.", plan.experiment);
    let _ = writeln!(text, "# Submit: sbatch {}", quote_path(&logs.join("array.sbatch")));
    let _ = writeln!(text, "# Then: optbench status {0}; optbench report {0}", quote_path(&dir));
    let _ = writeln!(text, "#SBATCH --job-name={}", quote(&format!("optbench-{}", plan.experiment)));
    let throttle = args.max_parallel.map(|k| format!("%{k}")).unwrap_or_default();
    let _ = writeln!(text, "#SBATCH --array=1-{shards}{throttle}");
    let _ = writeln!(text, "#SBATCH --output={}", logs.join("%A_%a.out").display());
    let _ = writeln!(text, "#SBATCH --cpus-per-task={}", args.cpus_per_task);
    if let Some(p) = &args.partition {
        let _ = writeln!(text, "#SBATCH --partition={p}");
    }
    if let Some(t) = &args.time {
        let _ = writeln!(text, "#SBATCH --time={t}");
    }
    if let Some(g) = args.gpus_per_task.filter(|&g| g > 0) {
        let _ = writeln!(text, "#SBATCH --gpus-per-task={g}");
    }
    text.push_str("set -euo pipefail\n");
    let _ = writeln!(text, "export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-{}}}\"", args.cpus_per_task);
    let _ = writeln!(text, "cd {}", quote_path(&std::env::current_dir()?));
    let mut command = vec![
        quote_path(&binary),
        "run".into(),
        quote_path(&absolute(&args.file)?),
        "--out".into(),
        quote_path(&out),
        "--shard".into(),
        format!("\"$SLURM_ARRAY_TASK_ID/{shards}\""),
        "--jobs".into(),
        args.jobs.to_string(),
    ];
    if let Some(d) = &device {
        command.extend(["--device".into(), quote(d)]);
    }
    for d in &args.data_dir {
        command.extend(["--data-dir".into(), quote_path(&absolute(d)?)]);
    }
    if args.offline {
        command.push("--offline".into());
    }
    if args.allow_large {
        command.push("--allow-large".into());
    }
    let _ = writeln!(text, "exec {}", command.join(" "));
    Ok(Script { path: logs.join("array.sbatch"), text, shards, plan })
}

pub fn run(args: &SlurmArgs) -> anyhow::Result<()> {
    let script = script(args)?;
    let plan = &script.plan;
    let dir = runner::results_dir(plan);
    runner::sweep::Sweep::of(plan)
        .save(&dir)
        .with_context(|| format!("cannot write the sweep manifest into {}", dir.display()))?;
    crate::util::atomic::write_atomically(&script.path, script.text.as_bytes())
        .with_context(|| format!("cannot write {}", script.path.display()))?;
    println!("{}: {} runs in {} array tasks", plan.experiment, plan.runs.len(), script.shards);
    println!("  script: {}", script.path.display());
    println!("  submit: sbatch {}", quote_path(&script.path));
    println!("  watch:  optbench status {}", dir.display());
    Ok(())
}
