//! `optbench compare A B`: two result folders side by side. Per experiment, task and optimizer
//! found in both: the mean final primary metric at each folder's selected setting, the
//! difference of means (B - A) and, with at least two seeds on each side, its 95% confidence
//! interval (Welch). A run is the same run when its id and fingerprint are the same: found in
//! both folders, or twice in one, it is counted once (the first found, A before B), with a
//! warning.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use super::stats::{welch, Stats};
use super::{aggregate, number, read_results, ArmRow, Report};
use crate::config::ReportedKind;
use crate::runner::record::RunResult;

/// Two folders' reports, and what was counted once.
#[derive(Debug)]
pub struct Comparison {
    pub a: Report,
    pub b: Report,
    /// One line per run found more than once.
    pub warnings: Vec<String>,
}

/// The identity of a run: what it is (`id`) and how it was set up (`fingerprint`).
fn identity(r: &RunResult) -> (String, String, String) {
    (r.experiment.clone(), r.id.clone(), r.fingerprint.clone())
}

/// Keeps the first of each run: `seen` holds the runs kept so far; the others give a warning.
fn dedup(
    results: Vec<RunResult>,
    folder: &str,
    seen: &mut HashSet<(String, String, String)>,
    warnings: &mut Vec<String>,
) -> Vec<RunResult> {
    let mut kept = Vec::new();
    for r in results {
        if seen.insert(identity(&r)) {
            kept.push(r);
        } else {
            warnings.push(format!(
                "{}/{} (fingerprint {}) in {folder} is a run already counted: counted once",
                r.experiment, r.id, r.fingerprint
            ));
        }
    }
    kept
}

/// Reads both folders, each run once.
pub fn compare(a: &Path, b: &Path) -> Comparison {
    let mut seen = HashSet::new();
    let mut warnings = Vec::new();
    let (ra, ua) = read_results(a);
    let (rb, ub) = read_results(b);
    let ra = dedup(ra, &a.display().to_string(), &mut seen, &mut warnings);
    let rb = dedup(rb, &b.display().to_string(), &mut seen, &mut warnings);
    Comparison {
        a: Report { unreadable: ua, ..aggregate(&ra) },
        b: Report { unreadable: ub, ..aggregate(&rb) },
        warnings,
    }
}

/// The final primary metric of each completed seed of a row's selected setting.
fn finals(row: &ArmRow) -> Option<Stats> {
    let p = row.primary()?;
    Stats::of(&row.per_seed(&p.metric, p.goal, ReportedKind::Final))
}

impl Comparison {
    /// The markdown table: one line per experiment, task and optimizer of either folder.
    pub fn markdown(&self, a: &str, b: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# optbench compare\n\nA = {a}\nB = {b}\n\nPer task and optimizer: the mean final primary metric over the \
             seeds of each folder's selected setting, B - A, and with 2 or more seeds on each side the 95% confidence \
             interval of the difference (Welch). Each run is counted once.\n\n\
             | experiment / task | optimizer | metric | A | B | B - A | 95% CI |\n|---|---|---|---|---|---|---|"
        );
        let mut keys: Vec<(String, String, String)> = self
            .a
            .rows
            .iter()
            .chain(&self.b.rows)
            .map(|r| (r.experiment.clone(), r.task.clone(), r.optimizer.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        let find = |report: &Report, key: &(String, String, String)| {
            report.rows.iter().find(|r| (&r.experiment, &r.task, &r.optimizer) == (&key.0, &key.1, &key.2)).cloned()
        };
        let cell = |s: Option<Stats>| match s {
            None => "none".to_string(),
            Some(s) if s.n == 1 => format!("{} (n=1)", number(s.mean)),
            Some(s) => format!("{} ± {} (n={})", number(s.mean), number(s.std), s.n),
        };
        for key in keys {
            let (ra, rb) = (find(&self.a, &key), find(&self.b, &key));
            let metric =
                ra.as_ref().or(rb.as_ref()).and_then(|r| r.primary().map(|p| p.metric.clone())).unwrap_or_default();
            let (sa, sb) = (ra.as_ref().and_then(finals), rb.as_ref().and_then(finals));
            let (diff, ci) = match (sa, sb) {
                (Some(x), Some(y)) => {
                    let d = y.mean - x.mean;
                    let ci = welch(y, x, 0.0).map_or("n/a (fewer than 2 seeds)".to_string(), |t| {
                        format!("[{}, {}]", number(t.low), number(t.high))
                    });
                    (format!("{}{}", if d >= 0.0 { "+" } else { "" }, number(d)), ci)
                }
                _ => ("n/a".to_string(), String::new()),
            };
            let _ = writeln!(
                out,
                "| {} / {} | {} | {metric} | {} | {} | {diff} | {ci} |",
                key.0,
                key.1,
                key.2,
                cell(sa),
                cell(sb)
            );
        }
        out
    }
}
