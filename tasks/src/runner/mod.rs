//! Runs a plan: skips the runs already done (resume), runs the rest on `--jobs` threads, writes
//! each result atomically as it finishes. One run's error or panic never stops the sweep.

pub mod checkpoint;
pub mod execute;
pub mod lock;
pub mod progress;
pub mod record;
pub mod sweep;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::plan::{Plan, RunSpec};
use crate::task::DataSettings;
use progress::{Mode, SweepProgress};
use record::{RunResult, Status};

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Runs at once.
    pub jobs: usize,
    pub mode: Mode,
    pub data: DataSettings,
    /// Only this part of the sweep: `(i, n)`, part `i` (1-based) of `n` (see [`shard`]).
    pub shard: Option<(usize, usize)>,
}

/// What a sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepSummary {
    pub total: usize,
    /// Already done before this sweep (same setup, completed or diverged).
    pub skipped: usize,
    pub completed: usize,
    pub diverged: usize,
    pub failed: usize,
    /// Runs another process held the lock of (it is running them): skipped.
    pub locked: usize,
}

/// The state of a run's result on disk.
#[derive(Clone, Debug, PartialEq)]
pub enum Existing {
    /// Completed or diverged with the same setup: nothing to do.
    Done(Status),
    Missing,
    /// A result from an earlier attempt that failed (its error).
    Failed(String),
    /// A result made with another setup (the config changed).
    Changed,
    /// A file that is not a readable result.
    Unreadable(String),
    /// A finished result whose loss stream is missing or damaged (why).
    Damaged(String),
}

/// Looks at what is on disk for `spec`.
pub fn existing(spec: &RunSpec, path: &Path) -> Existing {
    inspect(spec, path).0
}

/// [`existing`], with the result it read when it is done (for the data check of a sweep).
fn inspect(spec: &RunSpec, path: &Path) -> (Existing, Option<RunResult>) {
    inspect_fingerprint(&spec.fingerprint(), path)
}

/// [`inspect`] for the run of this fingerprint (what a sweep manifest knows of a run).
pub fn inspect_fingerprint(fingerprint: &str, path: &Path) -> (Existing, Option<RunResult>) {
    if !path.exists() {
        return (Existing::Missing, None);
    }
    match RunResult::load(path) {
        Err(e) => (Existing::Unreadable(e), None),
        Ok(r) if r.fingerprint != fingerprint => (Existing::Changed, None),
        Ok(r) if r.status.is_final() => match r.stream.as_ref().and_then(|s| s.damage(&record::stream_path(path))) {
            Some(damage) => (Existing::Damaged(damage), None),
            None => (Existing::Done(r.status), Some(r)),
        },
        Ok(r) => (Existing::Failed(r.error.unwrap_or_default()), None),
    }
}

/// The data sets each run would load now, found once per sweep (without the network).
#[derive(Default)]
pub struct DataNow {
    found: std::collections::HashMap<String, Option<crate::data::DataRecord>>,
}

impl DataNow {
    /// Why a finished result's data differs from what its run would load now (`None`: the
    /// same data, or none to compare: a result without records, or data not reachable now, in
    /// which case a rerun could not do better).
    pub fn changed(&mut self, result: &RunResult, settings: &DataSettings) -> Option<String> {
        for record in &result.data {
            let now = self
                .found
                .entry(record.name.clone())
                .or_insert_with(|| crate::data::identify(&record.name, settings).ok())
                .as_ref()?;
            if now.sha256 != record.sha256 {
                return Some(format!(
                    "{}: trained on {} {} (sha256 {}), but the data found now is {} (sha256 {}): running it again",
                    result.id,
                    record.name,
                    record.source.describe(),
                    record.short_hash(),
                    now.source.describe(),
                    now.short_hash()
                ));
            }
        }
        None
    }
}

/// The folder a plan's results go to.
pub fn results_dir(plan: &Plan) -> PathBuf {
    plan.out.join(&plan.experiment)
}

/// The runs of part `i` (1-based) of `n`: every `n`-th run of the plan from its `i`-th. The
/// plan's order is fixed by the config, so `n` processes with `i = 1..=n` cover a sweep exactly
/// once, wherever they run.
pub fn shard(runs: &[RunSpec], (i, n): (usize, usize)) -> Vec<&RunSpec> {
    assert!(n >= 1 && (1..=n).contains(&i), "shard {i}/{n}");
    runs.iter().skip(i - 1).step_by(n).collect()
}

/// When a result file was last changed (`None`: there is none).
fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Runs every run of the plan (of its shard) that is not done yet. Each run is locked while it
/// runs: a run that another process holds is skipped, and one that another process finished
/// while this one waited is not run again.
pub fn run_plan(plan: &Plan, options: &SweepOptions) -> SweepSummary {
    let runs = match options.shard {
        Some(part) => shard(&plan.runs, part),
        None => plan.runs.iter().collect(),
    };
    let mut summary = SweepSummary { total: runs.len(), ..Default::default() };
    // Each run to do, with the time its result file had when it was looked at.
    let mut pending = Vec::new();
    let mut notes = Vec::new();
    let mut data_now = DataNow::default();
    for spec in runs {
        let path = spec.result_path(&plan.out);
        let (state, done) = inspect(spec, &path);
        let seen = modified(&path);
        match state {
            Existing::Done(_) => match done.and_then(|r| data_now.changed(&r, &options.data)) {
                Some(note) => {
                    notes.push(note);
                    pending.push((spec, seen));
                }
                None => summary.skipped += 1,
            },
            Existing::Changed => {
                notes.push(format!("{}: the config changed since its result was written: running it again", spec.id()));
                pending.push((spec, seen));
            }
            Existing::Unreadable(e) => {
                notes.push(format!("{e}: running it again"));
                pending.push((spec, seen));
            }
            Existing::Damaged(why) => {
                notes.push(format!("{}: {why}: running it again", spec.id()));
                pending.push((spec, seen));
            }
            Existing::Missing | Existing::Failed(_) => pending.push((spec, seen)),
        }
    }
    let progress = SweepProgress::new(options.mode, summary.total, summary.skipped);
    progress.plan(pending.iter().map(|(spec, _)| (spec.id(), progress::planned_steps(spec))));
    for note in notes {
        progress.println(&note);
    }
    if summary.skipped > 0 {
        progress.println(&format!(
            "{}: {} of {} runs already done, {} to run",
            plan.experiment,
            summary.skipped,
            summary.total,
            pending.len()
        ));
    }
    // One sweep: a data set that cannot be fetched fails its runs once, with one message.
    let options = &SweepOptions {
        data: DataSettings { sweep: Some(crate::data::source::new_sweep()), ..options.data.clone() },
        ..options.clone()
    };
    let next = AtomicUsize::new(0);
    let summary = Mutex::new(summary);
    let jobs = options.jobs.max(1).min(pending.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(spec, seen)) = pending.get(i) else { break };
                let path = spec.result_path(&plan.out);
                let outcome = run_locked(spec, &path, seen, options, &progress);
                let mut s = summary.lock().expect("summary lock");
                match outcome {
                    Outcome::Ran(Status::Completed) => s.completed += 1,
                    Outcome::Ran(Status::Diverged) => s.diverged += 1,
                    Outcome::Ran(Status::Failed) => s.failed += 1,
                    Outcome::Locked => s.locked += 1,
                    Outcome::DoneMeanwhile => s.skipped += 1,
                }
            });
        }
    });
    progress.finish();
    summary.into_inner().expect("summary lock")
}

/// What became of one pending run.
enum Outcome {
    Ran(Status),
    /// Another process holds its lock.
    Locked,
    /// Another process finished it after this sweep looked.
    DoneMeanwhile,
}

/// Locks a run, runs it unless another process did meanwhile, and writes its result. A result
/// that cannot be written makes the run `failed`, said on stderr whatever the mode.
fn run_locked(
    spec: &RunSpec,
    path: &Path,
    seen: Option<std::time::SystemTime>,
    options: &SweepOptions,
    progress: &SweepProgress,
) -> Outcome {
    let lock = match lock::RunLock::try_acquire(path) {
        Ok(lock::Acquired::Locked(lock)) => lock,
        Ok(lock::Acquired::Busy(holder)) => {
            progress.println(&format!("{}: locked by {holder}, which is running it: skipped", spec.id()));
            progress.skipped();
            return Outcome::Locked;
        }
        Err(e) => {
            let mut result = RunResult::start(spec, Vec::new());
            result.error = Some(format!("cannot lock the run at {}: {e}", lock::lock_path(path).display()));
            progress.finished(&result);
            return Outcome::Ran(Status::Failed);
        }
    };
    if modified(path) != seen {
        if let Existing::Done(_) = existing(spec, path) {
            progress.println(&format!("{}: finished by another process meanwhile: skipped", spec.id()));
            progress.skipped();
            return Outcome::DoneMeanwhile;
        }
    }
    // Leftovers of a run killed while writing (only the lock's holder may touch them).
    let _ = std::fs::remove_file(record::temporary_path(path));
    let _ = std::fs::remove_file(record::temporary_path(&checkpoint::checkpoint_path(path)));
    let mut result = {
        let mut observer = progress.run(&spec.id());
        execute::execute(spec, path, &options.data, observer.as_mut())
    };
    if let Err(e) = result.save(path) {
        result.status = Status::Failed;
        let lost = match &result.error {
            Some(error) => format!(" (it had failed: {error})"),
            None => String::new(),
        };
        result.error = Some(format!("cannot write its result to {}: {e}; the result is lost{lost}", path.display()));
    }
    progress.finished(&result);
    drop(lock);
    Outcome::Ran(result.status)
}
