//! The sweep manifest, `<results>/sweep.json`: every run a config expands into, with its
//! fingerprint and result file, written by `optbench run` and `optbench slurm` before anything
//! runs. `optbench status` reads it to tell, across every machine writing into the folder, which
//! runs are done, running, failed or missing.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lock;
use super::record::Status;
use super::Existing;
use crate::plan::Plan;
use crate::util::atomic::write_atomically_shared;

/// The format tag of sweep manifests.
pub const FORMAT: &str = "optbench-sweep/1";

/// The file name of a sweep manifest in an experiment's results folder.
pub const FILE: &str = "sweep.json";

/// One run of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRun {
    pub id: String,
    pub fingerprint: String,
}

/// A sweep as its config expanded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub format: String,
    pub experiment: String,
    /// The config it came from (absolute where it could be resolved).
    pub config: PathBuf,
    pub runs: Vec<SweepRun>,
}

impl Sweep {
    pub fn of(plan: &Plan) -> Self {
        Self {
            format: FORMAT.into(),
            experiment: plan.experiment.clone(),
            config: std::fs::canonicalize(&plan.file).unwrap_or_else(|_| plan.file.clone()),
            runs: plan.runs.iter().map(|r| SweepRun { id: r.id(), fingerprint: r.fingerprint() }).collect(),
        }
    }

    /// Writes the manifest into the experiment's results folder `dir` (atomically: processes
    /// of one sweep write the same file).
    pub fn save(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join(FILE);
        let text = serde_json::to_string_pretty(self).expect("manifests serialise");
        write_atomically_shared(&path, text.as_bytes())?;
        Ok(path)
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let sweep: Sweep =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a sweep manifest: {e}", path.display()))?;
        if sweep.format != FORMAT {
            return Err(format!("{}: format `{}`, expected `{FORMAT}`", path.display(), sweep.format));
        }
        Ok(sweep)
    }
}

/// Where one run of a sweep stands.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    Done(Status),
    /// Locked by a process (who).
    Running(String),
    /// Its last attempt failed (the error's first line).
    Failed(String),
    /// A result of another setup, a damaged stream or an unreadable file: the next run redoes it.
    Stale(String),
    Missing,
}

impl RunState {
    pub fn label(&self) -> &'static str {
        match self {
            RunState::Done(Status::Diverged) => "diverged",
            RunState::Done(_) => "done",
            RunState::Running(_) => "running",
            RunState::Failed(_) => "failed",
            RunState::Stale(_) => "stale",
            RunState::Missing => "missing",
        }
    }
}

/// The state of the run `run` of the sweep whose results are in `dir`.
pub fn state(dir: &Path, run: &SweepRun) -> RunState {
    let path = dir.join(format!("{}.json", run.id));
    if let Some(holder) = lock::holder_of(&path) {
        return RunState::Running(holder);
    }
    match super::inspect_fingerprint(&run.fingerprint, &path).0 {
        Existing::Done(status) => RunState::Done(status),
        Existing::Missing => RunState::Missing,
        Existing::Failed(error) => RunState::Failed(error.lines().next().unwrap_or("").to_string()),
        Existing::Changed => RunState::Stale("its result was made with another setup (the config changed)".into()),
        Existing::Unreadable(why) | Existing::Damaged(why) => RunState::Stale(why),
    }
}

/// The manifests under `dir`: its own, or those of the experiment folders in it.
pub fn find(dir: &Path) -> Vec<PathBuf> {
    let own = dir.join(FILE);
    if own.is_file() {
        return vec![own];
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join(FILE))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found
}
