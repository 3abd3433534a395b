//! The result of one run: a self-describing JSON file (DeepOBS-style) at
//! `<out>/<experiment>/<task>/<optimizer>/<setting>/seed-<n>.json`, written atomically, and the
//! training-loss stream beside it (`seed-<n>.steps.jsonl`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::DataRecord;
use crate::plan::RunSpec;
use crate::task::MetricInfo;
pub use crate::util::atomic::{temporary_path, write_atomically};
pub use crate::util::time::timestamp;

/// The format tag of result files.
pub const FORMAT: &str = "optbench-result/1";

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Trained for its whole budget.
    Completed,
    /// The training loss became NaN or infinite; the run stopped there.
    Diverged,
    /// An error ended it (see `error`).
    Failed,
}

impl Status {
    /// Whether a rerun of the same setup would give the same outcome (so resume skips it).
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Diverged)
    }
}

/// The evaluations of a run, one array element per evaluation. Non-finite values are `null`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub step: Vec<u64>,
    /// Epochs done (fractional), for tasks with epochs.
    pub epoch: Vec<Option<f64>>,
    pub lr: Vec<f64>,
    /// The mean training loss since the previous evaluation.
    pub train_loss: Vec<Option<f64>>,
    /// Seconds since the run started.
    pub wall_time: Vec<f64>,
    /// The task's metrics.
    #[serde(flatten)]
    pub metrics: BTreeMap<String, Vec<Option<f64>>>,
}

impl History {
    /// The values of a metric (`train_loss` included), `NaN` for nulls.
    pub fn values(&self, metric: &str) -> Option<Vec<f64>> {
        let column = if metric == "train_loss" { Some(&self.train_loss) } else { self.metrics.get(metric) };
        column.map(|c| c.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }
}

/// What produced the result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Software {
    pub optbench: String,
    pub candle: String,
    pub rustc: String,
    pub os: String,
    pub arch: String,
    /// Cargo features the binary was built with (`cuda`, `metal`).
    pub features: Vec<String>,
}

impl Software {
    pub fn current() -> Self {
        let mut features = Vec::new();
        if cfg!(feature = "cuda") {
            features.push("cuda".into());
        }
        if cfg!(feature = "metal") {
            features.push("metal".into());
        }
        Self {
            optbench: env!("CARGO_PKG_VERSION").into(),
            candle: env!("OPTBENCH_CANDLE_VERSION").into(),
            rustc: env!("OPTBENCH_RUSTC_VERSION").into(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            features,
        }
    }
}

/// The git commit the binary was built from (`-dirty` with uncommitted changes).
pub fn git_commit() -> &'static str {
    env!("OPTBENCH_GIT_COMMIT")
}

/// One run's result file: the run's spec (flattened: its keys at the top level), then what
/// happened. It dereferences to its [`RunSpec`], so `result.task`, `result.seed` read the spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub format: String,
    pub id: String,
    #[serde(flatten)]
    pub run: RunSpec,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The step at which the training loss stopped being finite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged_at_step: Option<u64>,
    /// The step of the checkpoint this run continued from (absent when it did not resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from_step: Option<u64>,
    /// The data sets the run used: source, SHA-256, examples (empty for synthetic problems, and
    /// in results written before data was recorded).
    #[serde(default)]
    pub data: Vec<DataRecord>,
    /// The size and SHA-256 of the loss stream as the run left it (absent in results written
    /// before streams were checked): resume runs a run again whose stream no longer matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamRecord>,
    /// The task's metrics and whether each is better small or large; the first is primary.
    pub metrics: Vec<MetricInfo>,
    pub history: History,
    /// The last value of every metric (`train_loss` included).
    #[serde(rename = "final")]
    pub final_metrics: BTreeMap<String, Option<f64>>,
    pub steps_done: u64,
    pub total_steps: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_per_epoch: Option<u64>,
    /// Seconds of training, over every attempt that led to this result.
    pub wall_time_s: f64,
    pub fingerprint: String,
    pub software: Software,
    pub git_commit: String,
    pub started_at: String,
    pub finished_at: String,
}

impl std::ops::Deref for RunResult {
    type Target = RunSpec;

    fn deref(&self) -> &RunSpec {
        &self.run
    }
}

impl RunResult {
    /// An empty result for a run that is starting.
    pub fn start(spec: &RunSpec, metrics: Vec<MetricInfo>) -> Self {
        let now = timestamp();
        Self {
            format: FORMAT.into(),
            id: spec.id(),
            run: spec.clone(),
            status: Status::Failed,
            error: None,
            diverged_at_step: None,
            resumed_from_step: None,
            data: Vec::new(),
            stream: None,
            metrics,
            history: History::default(),
            final_metrics: BTreeMap::new(),
            steps_done: 0,
            total_steps: 0,
            steps_per_epoch: None,
            wall_time_s: 0.0,
            fingerprint: spec.fingerprint(),
            software: Software::current(),
            git_commit: git_commit().into(),
            started_at: now.clone(),
            finished_at: now,
        }
    }

    /// Reads a result file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let result: RunResult =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a result file: {e}", path.display()))?;
        if result.format != FORMAT {
            return Err(format!("{}: format `{}`, expected `{FORMAT}`", path.display(), result.format));
        }
        Ok(result)
    }

    /// Writes the file atomically: a temporary file in the same folder, then a rename, so
    /// that a run killed while writing never leaves a half-written result.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).expect("results serialise");
        write_atomically(path, text.as_bytes())
    }

    /// The primary metric.
    pub fn primary(&self) -> Option<&MetricInfo> {
        self.metrics.first()
    }
}

/// The loss stream of a finished run, as it was on disk when the run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    pub bytes: u64,
    pub sha256: String,
}

impl StreamRecord {
    /// The record of the stream at `path` now.
    pub fn of(path: &Path) -> Result<Self, String> {
        let bytes = fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
        Ok(Self { bytes, sha256: crate::util::hash::sha256_file(path)? })
    }

    /// Why the stream at `path` is no longer the one recorded (`None`: it is).
    pub fn damage(&self, path: &Path) -> Option<String> {
        let now = match Self::of(path) {
            Ok(now) => now,
            Err(_) if !path.exists() => return Some(format!("its loss stream {} is missing", path.display())),
            Err(e) => return Some(e),
        };
        if now.bytes != self.bytes {
            return Some(format!(
                "its loss stream {} has {} bytes, its result says {}",
                path.display(),
                now.bytes,
                self.bytes
            ));
        }
        (now.sha256 != self.sha256).then(|| format!("its loss stream {} is damaged (checksum differs)", path.display()))
    }
}

/// `seed-0.json` -> `seed-0.steps.jsonl`: the training-loss stream.
pub fn stream_path(result: &Path) -> PathBuf {
    result.with_extension("steps.jsonl")
}

/// Every result file under `dir` (recursively, through links to folders), sorted. A file
/// reached twice (through a link) is listed once, by its path without links where it has one;
/// a link back up the tree (a loop) is not followed.
pub fn find_results(dir: &Path) -> Vec<PathBuf> {
    let root = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    // (the file itself, whether this path goes through a link, the path)
    let mut found: Vec<(PathBuf, bool, PathBuf)> = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .into_iter()
        .filter_map(Result::ok) // unreadable folders and link loops
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("seed-"))
        })
        .map(|p| {
            let real = fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
            let through_link = !p.strip_prefix(dir).is_ok_and(|rel| root.join(rel) == real);
            (real, through_link, p)
        })
        .collect();
    found.sort();
    found.dedup_by(|a, b| a.0 == b.0);
    let mut found: Vec<PathBuf> = found.into_iter().map(|(_, _, p)| p).collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_beside_the_result() {
        let p = Path::new("out/exp/task/adam/lr-0.1/seed-3.json");
        assert_eq!(stream_path(p), Path::new("out/exp/task/adam/lr-0.1/seed-3.steps.jsonl"));
        assert_eq!(temporary_path(p), Path::new("out/exp/task/adam/lr-0.1/seed-3.json.tmp"));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_loop_under_the_results_neither_hangs_nor_counts_twice() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("exp/task/adam/lr-0.1");
        fs::create_dir_all(&runs).unwrap();
        fs::write(runs.join("seed-0.json"), "{}").unwrap();
        fs::write(runs.join("seed-0.steps.jsonl"), "").unwrap();
        // A loop back to the top, and a second name for a folder of runs.
        std::os::unix::fs::symlink(dir.path(), runs.join("loop")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("exp/task"), dir.path().join("alias")).unwrap();
        let root = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(find_results(&root)).unwrap());
        let found = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("the walk ends");
        assert_eq!(found, [runs.join("seed-0.json")], "once, by its path without links");
    }
}
