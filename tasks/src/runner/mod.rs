//! Runs a plan: skips the runs already done (resume), runs the rest on `--jobs` threads, writes
//! each result atomically as it finishes. One run's error or panic never stops the sweep.

pub mod checkpoint;
pub mod execute;
pub mod progress;
pub mod record;

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
}

/// The state of a run's result on disk.
#[derive(Clone, Debug, PartialEq)]
pub enum Existing {
    /// Completed or diverged with the same setup: nothing to do.
    Done(Status),
    Missing,
    /// A result from an earlier attempt that failed.
    Failed,
    /// A result made with another setup (the config changed).
    Changed,
    /// A file that is not a readable result.
    Unreadable(String),
}

/// Looks at what is on disk for `spec`.
pub fn existing(spec: &RunSpec, path: &Path) -> Existing {
    inspect(spec, path).0
}

/// [`existing`], with the result it read when it is done (for the data check of a sweep).
fn inspect(spec: &RunSpec, path: &Path) -> (Existing, Option<RunResult>) {
    if !path.exists() {
        return (Existing::Missing, None);
    }
    match RunResult::load(path) {
        Err(e) => (Existing::Unreadable(e), None),
        Ok(r) if r.fingerprint != spec.fingerprint() => (Existing::Changed, None),
        Ok(r) if r.status.is_final() => (Existing::Done(r.status), Some(r)),
        Ok(_) => (Existing::Failed, None),
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

/// Runs every run of the plan that is not done yet.
pub fn run_plan(plan: &Plan, options: &SweepOptions) -> SweepSummary {
    let mut summary = SweepSummary { total: plan.runs.len(), ..Default::default() };
    let mut pending = Vec::new();
    let mut notes = Vec::new();
    let mut data_now = DataNow::default();
    for spec in &plan.runs {
        let path = spec.result_path(&plan.out);
        // Leftovers of a run killed while writing.
        let _ = std::fs::remove_file(record::temporary_path(&path));
        let _ = std::fs::remove_file(record::temporary_path(&checkpoint::checkpoint_path(&path)));
        let (state, done) = inspect(spec, &path);
        match state {
            Existing::Done(_) => match done.and_then(|r| data_now.changed(&r, &options.data)) {
                Some(note) => {
                    notes.push(note);
                    pending.push(spec);
                }
                None => summary.skipped += 1,
            },
            Existing::Changed => {
                notes.push(format!("{}: the config changed since its result was written: running it again", spec.id()));
                pending.push(spec);
            }
            Existing::Unreadable(e) => {
                notes.push(format!("{e}: running it again"));
                pending.push(spec);
            }
            Existing::Missing | Existing::Failed => pending.push(spec),
        }
    }
    let progress = SweepProgress::new(options.mode, summary.total, summary.skipped);
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
    let next = AtomicUsize::new(0);
    let summary = Mutex::new(summary);
    let jobs = options.jobs.max(1).min(pending.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(spec) = pending.get(i) else { break };
                let path = spec.result_path(&plan.out);
                let result = {
                    let mut observer = progress.run(&spec.id());
                    execute::execute(spec, &path, &options.data, observer.as_mut())
                };
                if let Err(e) = result.save(&path) {
                    progress.println(&format!("{}: cannot write the result to {}: {e}", spec.id(), path.display()));
                }
                progress.finished(&result);
                let mut s = summary.lock().expect("summary lock");
                match result.status {
                    Status::Completed => s.completed += 1,
                    Status::Diverged => s.diverged += 1,
                    Status::Failed => s.failed += 1,
                }
            });
        }
    });
    progress.finish();
    summary.into_inner().expect("summary lock")
}
