//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod hub;

use std::path::{Path, PathBuf};

use tasks::plan::{self, Overrides, Plan};
use tasks::runner::progress::Mode;
use tasks::runner::record::{find_results, RunResult};
use tasks::runner::{self, SweepOptions, SweepSummary};
use tasks::task::DataSettings;

/// The project root (configs/ lives there).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Writes a config into `dir` and returns its path.
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn load(file: &Path, out: &Path) -> Plan {
    plan::load(file, &Overrides { out: Some(out.to_path_buf()), ..Default::default() })
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn sweep(plan: &Plan, jobs: usize) -> SweepSummary {
    let options = SweepOptions { jobs, mode: Mode::Quiet, data: DataSettings::default() };
    runner::run_plan(plan, &options)
}

/// Every result under `dir`, by run id.
pub fn results(dir: &Path) -> Vec<RunResult> {
    find_results(dir).iter().map(|p| RunResult::load(p).unwrap()).collect()
}

pub fn find<'a>(results: &'a [RunResult], task: &str, optimizer: &str) -> &'a RunResult {
    results
        .iter()
        .find(|r| r.task.label == task && r.optimizer_label == optimizer)
        .unwrap_or_else(|| panic!("no result for {task} / {optimizer}"))
}

pub fn final_value(r: &RunResult, metric: &str) -> f64 {
    r.final_metrics[metric].unwrap_or(f64::NAN)
}
