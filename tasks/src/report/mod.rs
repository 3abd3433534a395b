//! Reports read result files only (never configs). Per experiment and task: the optimizer
//! arms ranked by the primary metric (best first, the winner marked with its margin to the
//! next), each at its best setting chosen on the **validation** metric of the primary
//! ([`selection_metric`]: `test_X` -> `valid_X`, else `valid_loss`; where a task has none, on
//! the primary itself, which the report says), mean ± std over seeds of the final and the best
//! value of each metric, how many runs completed, diverged or failed, the papers' numbers beside
//! the statistic of the same kind ([`measured_like`]), the steps and seconds to a target, and a
//! learning-rate sensitivity table of every setting; per task, the data its runs trained on
//! (source and a short SHA-256), with a warning when they differ. Above them the papers' claims,
//! judged ([`claims`]). Written as `report.md`, `report.csv` and `report.tex` ([`tex`]).

pub mod claims;
pub mod compare;
pub mod export;
pub mod html;
pub mod plot;
pub mod profile;
pub mod stats;
pub mod svg;
pub mod tex;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{Reported, ReportedKind};
use crate::runner::record::{find_results, RunResult, Status};
use crate::task::{Goal, MetricInfo};
use crate::util::atomic::write_atomically_shared;

pub use self::stats::Stats;

/// One metric of one arm's best setting.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRow {
    pub metric: String,
    pub goal: Goal,
    pub primary: bool,
    /// The last value of each completed seed.
    pub last: Option<Stats>,
    /// The best value over each completed seed's history.
    pub best: Option<Stats>,
}

/// One setting (a point of an arm's grid) of an arm: its result, for the learning-rate
/// sensitivity table.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingRow {
    pub setting: String,
    pub lr: Option<f64>,
    /// The final primary metric over its completed seeds.
    pub primary: Option<Stats>,
    /// The final selection metric (the validation one where there is one).
    pub selection: Option<Stats>,
    pub completed: usize,
    pub diverged: usize,
    pub failed: usize,
}

/// When one seed first reached the target.
#[derive(Clone, Debug, PartialEq)]
pub struct Reached {
    pub seed: u64,
    /// `(step, seconds since the run started)` of the first evaluation at the target or better;
    /// `None`: never.
    pub at: Option<(u64, f64)>,
}

/// One optimizer arm on one task.
#[derive(Clone, Debug, PartialEq)]
pub struct ArmRow {
    pub experiment: String,
    pub task: String,
    pub optimizer: String,
    /// The best setting (as in the result paths), and its learning rate.
    pub setting: String,
    pub lr: Option<f64>,
    pub settings_tried: usize,
    /// The metric the best setting was chosen on: a validation metric, or the primary where
    /// the task has none ([`selection_metric`]).
    pub selected_on: String,
    /// Whether `selected_on` is a validation metric (else the setting was chosen on test).
    pub on_validation: bool,
    pub metrics: Vec<MetricRow>,
    /// Counts over every setting of the arm.
    pub completed: usize,
    pub diverged: usize,
    pub failed: usize,
    pub reported: Vec<Reported>,
    /// Every setting of the arm (the chosen one is `setting`).
    pub settings: Vec<SettingRow>,
    /// The completed runs of the chosen setting (the seeds the statistics are over).
    pub runs: Vec<RunResult>,
    /// When each seed of the chosen setting first reached the task's target (filled by
    /// [`aggregate`] once every arm of the task is known).
    pub reached: Vec<Reached>,
}

impl ArmRow {
    pub fn primary(&self) -> Option<&MetricRow> {
        self.metrics.iter().find(|m| m.primary)
    }

    /// Each completed seed's value of `metric` at the chosen setting: its last evaluation
    /// (`Final`) or its best one (`Best`).
    pub fn per_seed(&self, metric: &str, goal: Goal, kind: ReportedKind) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| match kind {
                ReportedKind::Final => r.final_metrics.get(metric).copied().flatten(),
                ReportedKind::Best => r.history.values(metric).and_then(|v| best_of(&v, goal)),
            })
            .filter(|v| v.is_finite())
            .collect()
    }
}

/// The target of a task's time-to-target table.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub metric: String,
    pub goal: Goal,
    pub value: f64,
    /// Whether the config set it (else: within 10% of the best final mean of any arm).
    pub from_config: bool,
}

/// The runs of a task that trained on one data set's same files.
#[derive(Clone, Debug, PartialEq)]
pub struct DataUse {
    pub dataset: String,
    /// Where the files were (for several places with the same hash, the first).
    pub source: String,
    pub sha256: String,
    pub runs: usize,
}

/// A report over a folder of results.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Per experiment and task, the arms ranked by the final primary metric, best first.
    pub rows: Vec<ArmRow>,
    /// Per (experiment, task): the data its runs used; `None` counts runs whose result does
    /// not record its data (written by an older optbench).
    pub data: BTreeMap<(String, String), (Vec<DataUse>, usize)>,
    /// Per (experiment, task): the target of the time-to-target table.
    pub targets: BTreeMap<(String, String), Target>,
    /// The papers' claims, judged.
    pub claims: Vec<claims::Judged>,
    /// Files that could not be read, with why.
    pub unreadable: Vec<String>,
}

fn best_of(values: &[f64], goal: Goal) -> Option<f64> {
    values.iter().copied().filter(|v| v.is_finite()).reduce(|a, b| if goal.better(b, a) { b } else { a })
}

/// Every readable result under `dir`, and why the others could not be read.
pub fn read_results(dir: &Path) -> (Vec<RunResult>, Vec<String>) {
    let (mut results, mut unreadable) = (Vec::new(), Vec::new());
    for path in find_results(dir) {
        match RunResult::load(&path) {
            Ok(r) => results.push(r),
            Err(e) => unreadable.push(e),
        }
    }
    (results, unreadable)
}

/// Reads every result under `dir` and aggregates it.
pub fn build(dir: &Path) -> Report {
    let (results, unreadable) = read_results(dir);
    Report { unreadable, ..aggregate(&results) }
}

/// The metric a primary metric's best setting is chosen on, with its goal and whether it is
/// a validation metric: `test_X` -> `valid_X` where the runs have it, else `valid_loss` (a
/// translation task's BLEU: its validation loss); without either, the primary itself.
pub fn selection_metric(primary: &MetricInfo, runs: &[&RunResult]) -> (String, Goal, bool) {
    let has =
        |name: &str| runs.iter().any(|r| r.final_metrics.get(name).copied().flatten().is_some_and(f64::is_finite));
    let goal_of = |name: &str, default: Goal| {
        runs.iter().find_map(|r| r.metrics.iter().find(|m| m.name == name).map(|m| m.goal)).unwrap_or(default)
    };
    if let Some(rest) = primary.name.strip_prefix("test_") {
        let valid = format!("valid_{rest}");
        if has(&valid) {
            let goal = goal_of(&valid, primary.goal);
            return (valid, goal, true);
        }
        if has("valid_loss") {
            return ("valid_loss".into(), goal_of("valid_loss", Goal::Min), true);
        }
    }
    (primary.name.clone(), primary.goal, false)
}

/// The metrics of a group of runs: the declared ones (the primary first), then the
/// validation metrics the runs recorded without declaring them (a classifier's
/// `valid_accuracy` / `valid_loss`), each with the goal of its test metric, then `train_loss`.
fn metric_names(declared: &[MetricInfo], runs: &[&RunResult]) -> Vec<(String, Goal, bool)> {
    let mut names: Vec<(String, Goal, bool)> =
        declared.iter().enumerate().map(|(i, m)| (m.name.clone(), m.goal, i == 0)).collect();
    let mut extra: Vec<&String> = runs
        .iter()
        .flat_map(|r| r.history.metrics.keys())
        .filter(|k| k.starts_with("valid_") && !names.iter().any(|(n, _, _)| n == *k))
        .collect();
    extra.sort();
    extra.dedup();
    for name in extra {
        let test = name.replacen("valid_", "test_", 1);
        let goal = declared.iter().find(|m| m.name == test).map_or(Goal::Min, |m| m.goal);
        names.push((name.clone(), goal, false));
    }
    if !names.iter().any(|(n, _, _)| n == "train_loss") {
        names.push(("train_loss".into(), Goal::Min, false));
    }
    names
}

/// Aggregates results: a row per experiment, task and optimizer arm, ranked within each task.
pub fn aggregate(results: &[RunResult]) -> Report {
    let mut report = Report { data: data_uses(results), ..Default::default() };
    // (experiment, task, optimizer) -> setting -> results
    let mut groups: BTreeMap<(String, String, String), BTreeMap<String, Vec<&RunResult>>> = BTreeMap::new();
    for r in results {
        groups
            .entry((r.experiment.clone(), r.task.label.clone(), r.optimizer_label.clone()))
            .or_default()
            .entry(r.setting.clone())
            .or_default()
            .push(r);
    }
    for ((experiment, task, optimizer), settings) in groups {
        let all: Vec<&RunResult> = settings.values().flatten().copied().collect();
        let count = |runs: &[&RunResult], s: Status| runs.iter().filter(|r| r.status == s).count();
        let Some(template) = all.first() else { continue };
        let metric_infos = template.metrics.clone();
        let primary = metric_infos.first().cloned().unwrap_or_else(|| MetricInfo::new("train_loss", Goal::Min));
        let (selected_on, selection_goal, on_validation) = selection_metric(&primary, &all);
        let final_stats = |runs: &[&RunResult], name: &str| -> Option<Stats> {
            let finals: Vec<f64> = runs
                .iter()
                .filter(|r| r.status == Status::Completed)
                .filter_map(|r| r.final_metrics.get(name).copied().flatten())
                .collect();
            Stats::of(&finals)
        };
        let setting_rows: Vec<SettingRow> = settings
            .iter()
            .map(|(s, runs)| SettingRow {
                setting: s.clone(),
                lr: runs.first().and_then(|r| r.optimizer.lr()),
                primary: final_stats(runs, &primary.name),
                selection: final_stats(runs, &selected_on),
                completed: count(runs, Status::Completed),
                diverged: count(runs, Status::Diverged),
                failed: count(runs, Status::Failed),
            })
            .collect();
        // The best setting: the best mean final selection metric over its completed seeds.
        let best = setting_rows
            .iter()
            .filter_map(|row| row.selection.map(|s| (row.setting.clone(), s.mean)))
            .reduce(|a, b| if selection_goal.better(b.1, a.1) { b } else { a })
            .map(|(s, _)| s)
            .or_else(|| settings.keys().next().cloned());
        let Some(setting) = best else { continue };
        let runs = &settings[&setting];
        let completed: Vec<&RunResult> = runs.iter().copied().filter(|r| r.status == Status::Completed).collect();
        let mut metrics = Vec::new();
        for (name, goal, is_primary) in metric_names(&metric_infos, &all) {
            let last: Vec<f64> =
                completed.iter().filter_map(|r| r.final_metrics.get(&name).copied().flatten()).collect();
            let best: Vec<f64> =
                completed.iter().filter_map(|r| r.history.values(&name).and_then(|v| best_of(&v, goal))).collect();
            metrics.push(MetricRow {
                metric: name,
                goal,
                primary: is_primary,
                last: Stats::of(&last),
                best: Stats::of(&best),
            });
        }
        let mut seen_claims: Vec<crate::config::Claim> = Vec::new();
        for r in &all {
            for c in &r.claims {
                if !seen_claims.contains(c) {
                    seen_claims.push(c.clone());
                }
            }
        }
        report.rows.push(ArmRow {
            experiment,
            task,
            optimizer,
            lr: runs.first().and_then(|r| r.optimizer.lr()),
            setting,
            settings_tried: settings.len(),
            selected_on,
            on_validation,
            metrics,
            completed: count(&all, Status::Completed),
            diverged: count(&all, Status::Diverged),
            failed: count(&all, Status::Failed),
            reported: template.reported.clone(),
            settings: setting_rows,
            runs: completed.into_iter().cloned().collect(),
            reached: Vec::new(),
        });
    }
    rank(&mut report.rows);
    report.targets = targets(&report.rows, results);
    for row in &mut report.rows {
        if let Some(target) = report.targets.get(&(row.experiment.clone(), row.task.clone())) {
            row.reached = reached(&row.runs, target);
        }
    }
    report.claims = claims::judge(results, &report.rows);
    report
}

/// Orders the rows by experiment and task, and within a task by the mean final primary metric,
/// best first (arms without a value last, by name).
fn rank(rows: &mut [ArmRow]) {
    rows.sort_by(|a, b| {
        (a.experiment.as_str(), a.task.as_str()).cmp(&(b.experiment.as_str(), b.task.as_str())).then_with(|| {
            let value = |r: &ArmRow| r.primary().and_then(|p| p.last).map(|s| s.mean);
            let goal = a.primary().map_or(Goal::Min, |p| p.goal);
            match (value(a), value(b)) {
                (Some(x), Some(y)) if goal.better(x, y) => std::cmp::Ordering::Less,
                (Some(x), Some(y)) if goal.better(y, x) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                _ => a.optimizer.cmp(&b.optimizer),
            }
        })
    });
}

/// Each task's target: the config's (`target` of the task, recorded in its results), else
/// within 10% of the best mean final primary value of any arm (`best - 0.1 |best|` when larger
/// is better, `best + 0.1 |best|` when smaller is).
fn targets(rows: &[ArmRow], results: &[RunResult]) -> BTreeMap<(String, String), Target> {
    let mut out = BTreeMap::new();
    for row in rows {
        let key = (row.experiment.clone(), row.task.clone());
        if out.contains_key(&key) {
            continue;
        }
        let Some(primary) = row.primary() else { continue };
        let configured = results
            .iter()
            .find(|r| r.experiment == row.experiment && r.task.label == row.task && r.target.is_some())
            .and_then(|r| r.target);
        let target = match configured {
            Some(value) => {
                Some(Target { metric: primary.metric.clone(), goal: primary.goal, value, from_config: true })
            }
            None => {
                let finals = rows
                    .iter()
                    .filter(|r| (&r.experiment, &r.task) == (&key.0, &key.1))
                    .filter_map(|r| r.primary().and_then(|p| p.last).map(|s| s.mean));
                let best = best_of(&finals.collect::<Vec<_>>(), primary.goal);
                best.map(|b| Target {
                    metric: primary.metric.clone(),
                    goal: primary.goal,
                    value: match primary.goal {
                        Goal::Max => b - 0.1 * b.abs(),
                        Goal::Min => b + 0.1 * b.abs(),
                    },
                    from_config: false,
                })
            }
        };
        if let Some(t) = target {
            out.insert(key, t);
        }
    }
    out
}

/// When each run first reached the target (its first evaluation at the target or better).
fn reached(runs: &[RunResult], target: &Target) -> Vec<Reached> {
    runs.iter()
        .map(|r| {
            let at = r.history.values(&target.metric).and_then(|values| {
                let i = values
                    .iter()
                    .position(|&v| v.is_finite() && (v == target.value || target.goal.better(v, target.value)))?;
                Some((*r.history.step.get(i)?, r.history.wall_time.get(i).copied().unwrap_or(f64::NAN)))
            });
            Reached { seed: r.seed, at }
        })
        .collect()
}

/// Which data each task's runs trained on (runs of a task with data that record none are
/// counted apart).
fn data_uses(results: &[RunResult]) -> BTreeMap<(String, String), (Vec<DataUse>, usize)> {
    let mut out: BTreeMap<(String, String), (Vec<DataUse>, usize)> = BTreeMap::new();
    let with_data: std::collections::BTreeSet<&str> =
        results.iter().filter(|r| !r.data.is_empty()).map(|r| r.task.label.as_str()).collect();
    let uses_data = |task: &str| with_data.contains(task);
    for r in results {
        let key = (r.experiment.clone(), r.task.label.clone());
        if r.data.is_empty() {
            // Synthetic problems have none; a data task's result without records is old.
            if r.status != Status::Failed && uses_data(&r.task.label) {
                out.entry(key).or_default().1 += 1;
            }
            continue;
        }
        let (uses, _) = out.entry(key).or_default();
        for d in &r.data {
            match uses.iter_mut().find(|u| u.dataset == d.name && u.sha256 == d.sha256) {
                Some(u) => u.runs += 1,
                None => uses.push(DataUse {
                    dataset: d.name.clone(),
                    source: d.source.short(),
                    sha256: d.sha256.clone(),
                    runs: 1,
                }),
            }
        }
    }
    out
}

/// The measured statistic a paper's number is compared with, like with like: the mean over
/// seeds of the final value for a final-epoch number, of each seed's best for a best-epoch
/// one. `None` when the arm has no such metric or no completed run, or the kind is unknown.
pub fn measured_like(row: &ArmRow, reported: &Reported) -> Option<Stats> {
    let metric = row.metrics.iter().find(|m| m.metric == reported.metric)?;
    match reported.kind? {
        ReportedKind::Final => metric.last,
        ReportedKind::Best => metric.best,
    }
}

/// A paper's number with its kind and the difference of the like measured mean from it:
/// `0.9117 (final; ours -0.0067)`.
fn paper_cell(row: &ArmRow, reported: &Reported, primary: bool) -> String {
    let std = reported.std.map(|s| format!(" ± {}", number(s))).unwrap_or_default();
    let name = if primary { String::new() } else { format!("{} ", reported.metric) };
    let comparison = match (reported.kind, measured_like(row, reported)) {
        (None, _) => "kind not recorded".to_string(),
        (Some(kind), None) => kind.as_str().to_string(),
        (Some(kind), Some(ours)) => {
            let diff = ours.mean - reported.value;
            format!("{}; ours {}{}", kind.as_str(), if diff >= 0.0 { "+" } else { "" }, number(diff))
        }
    };
    format!("{name}{}{std} ({comparison})", number(reported.value))
}

impl DataUse {
    fn short_hash(&self) -> &str {
        &self.sha256[..12.min(self.sha256.len())]
    }
}

/// The data warnings of one task: a data set whose runs used different files, results that do
/// not record their data.
fn data_warnings_of((experiment, task): &(String, String), uses: &[DataUse], unrecorded: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut names: Vec<&str> = uses.iter().map(|u| u.dataset.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let versions: Vec<String> = uses
            .iter()
            .filter(|u| u.dataset == name)
            .map(|u| format!("{} (sha256 {}, {} runs)", u.source, u.short_hash(), u.runs))
            .collect();
        if versions.len() > 1 {
            out.push(format!(
                "{experiment} / {task}: the runs trained on different {name} data, so they do not compare: {}",
                versions.join("; ")
            ));
        }
    }
    if unrecorded > 0 {
        out.push(format!(
            "{experiment} / {task}: {unrecorded} results do not record their data (written by an older optbench)"
        ));
    }
    out
}

/// `0.9712 ± 0.0021 (n=3)`, or `n/a`.
fn show(stats: Option<Stats>) -> String {
    match stats {
        None => "n/a".into(),
        Some(s) if s.n == 1 => number(s.mean),
        Some(s) => format!("{} ± {} (n={})", number(s.mean), number(spread(s)), s.n),
    }
}

/// The deviation, 0 where it is only rounding (equal values whose mean is not exact).
fn spread(s: Stats) -> f64 {
    if s.std <= 1e-12 * s.mean.abs().max(1.0) {
        0.0
    } else {
        s.std
    }
}

/// Four decimals, or four significant digits in scientific notation for very small or large
/// values.
pub fn number(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        format!("{v:.4e}")
    } else {
        format!("{v:.4}")
    }
}

fn lr_cell(lr: Option<f64>) -> String {
    lr.map_or("n/a".into(), |lr| optimizers::HyperValue::Float(lr).to_string())
}

/// `1.5 s`, `2.0 min`, `1.2 h`.
fn seconds(s: f64) -> String {
    if !s.is_finite() {
        "n/a".into()
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.2} h", s / 3600.0)
    }
}

/// How a task's best settings were chosen, in words.
pub fn selection_sentence(row: &ArmRow) -> String {
    let primary = row.primary().map_or("?", |p| p.metric.as_str());
    if row.on_validation {
        format!(
            "Each optimizer's setting is selected on validation data: the best mean final `{}`; the test metrics \
             are shown at that setting.",
            row.selected_on
        )
    } else {
        format!("**Selected on test (no validation metric):** each optimizer's setting is the one with the best mean final `{primary}`.")
    }
}

impl Report {
    /// Warnings about the data: a task whose runs trained on different files of a data set, or
    /// whose results do not all say what they trained on.
    pub fn data_warnings(&self) -> Vec<String> {
        self.data.iter().flat_map(|(key, (uses, unrecorded))| data_warnings_of(key, uses, *unrecorded)).collect()
    }

    /// The data lines of one task's section.
    fn data_section(&self, out: &mut String, key: &(String, String)) {
        let Some((uses, unrecorded)) = self.data.get(key) else { return };
        let mut lines: Vec<String> = uses
            .iter()
            .map(|u| format!("{}: {} (sha256 {}), {} runs", u.dataset, u.source, u.short_hash(), u.runs))
            .collect();
        if *unrecorded > 0 {
            lines.push(format!("not recorded: {unrecorded} runs"));
        }
        let _ = writeln!(out, "\nData: {}", lines.join("; "));
        for w in data_warnings_of(key, uses, *unrecorded) {
            let _ = writeln!(out, "\n**Warning:** {w}");
        }
    }

    /// The rows of each (experiment, task), in order.
    pub fn tasks(&self) -> Vec<((String, String), Vec<&ArmRow>)> {
        let mut out: Vec<((String, String), Vec<&ArmRow>)> = Vec::new();
        for row in &self.rows {
            let key = (row.experiment.clone(), row.task.clone());
            match out.last_mut() {
                Some((k, rows)) if *k == key => rows.push(row),
                _ => out.push((key, vec![row])),
            }
        }
        out
    }

    /// The markdown report: the claims, then one section per experiment and task.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        if !self.claims.is_empty() {
            out.push_str(&claims::markdown(&self.claims));
        }
        for (key, rows) in self.tasks() {
            self.task_section(&mut out, &key, &rows);
        }
        if !self.unreadable.is_empty() {
            let _ = writeln!(out, "\nUnreadable result files:\n");
            for u in &self.unreadable {
                let _ = writeln!(out, "- {u}");
            }
        }
        out
    }

    fn task_section(&self, out: &mut String, key: &(String, String), rows: &[&ArmRow]) {
        let first = rows[0];
        let primary = first.primary();
        let goal = primary.map_or(Goal::Min, |p| p.goal);
        let direction = if goal == Goal::Max { "higher is better" } else { "lower is better" };
        let others: Vec<&str> = first.metrics.iter().filter(|m| !m.primary).map(|m| m.metric.as_str()).collect();
        let _ = writeln!(
            out,
            "\n## {} / {}\n\nPrimary metric `{metric}` ({direction}). {} Optimizers ranked by the mean final `{metric}`, best \
             first; final = last evaluation, best = best evaluation, mean ± std over the seeds of the selected \
             setting; rank 1 is the winner; vs next: how much better than the next one; paper: its number, whether it is a final or a \
             best one, and our mean of the same kind minus it.\n",
            key.0,
            key.1,
            selection_sentence(first),
            metric = primary.map_or("?", |p| p.metric.as_str()),
        );
        let mut header = "| optimizer | setting | lr | final | best | rank | vs next | paper |".to_string();
        let mut rule = "|---|---|---|---|---|---|---|---|".to_string();
        for o in &others {
            let _ = write!(header, " final {o} |");
            rule.push_str("---|");
        }
        header.push_str(" runs ok / diverged / failed |");
        rule.push_str("---|");
        let _ = writeln!(out, "{header}\n{rule}");
        let value = |r: &ArmRow| r.primary().and_then(|p| p.last).map(|s| s.mean);
        for (i, row) in rows.iter().enumerate() {
            let primary = row.primary();
            let paper = row
                .reported
                .iter()
                .map(|r| paper_cell(row, r, primary.is_some_and(|p| p.metric == r.metric)))
                .collect::<Vec<_>>()
                .join("; ");
            let margin = match (value(row), rows.get(i + 1).and_then(|r| value(r))) {
                (Some(a), Some(b)) => {
                    let m = if goal == Goal::Max { a - b } else { b - a };
                    format!("{}{}", if m >= 0.0 { "+" } else { "" }, number(m))
                }
                _ => String::new(),
            };
            let rank = match value(row) {
                Some(_) if i == 0 => "**1 (winner)**".to_string(),
                Some(_) => (i + 1).to_string(),
                None => "-".to_string(),
            };
            let mut line = format!(
                "| {} | {}{} | {} | {} | {} | {rank} | {margin} | {paper} |",
                row.optimizer,
                row.setting,
                if row.settings_tried > 1 { format!(" (of {})", row.settings_tried) } else { String::new() },
                lr_cell(row.lr),
                show(primary.and_then(|p| p.last)),
                show(primary.and_then(|p| p.best)),
            );
            for o in &others {
                let m = row.metrics.iter().find(|m| m.metric == *o);
                let _ = write!(line, " {} |", show(m.and_then(|m| m.last)));
            }
            let _ = write!(line, " {} / {} / {} |", row.completed, row.diverged, row.failed);
            let _ = writeln!(out, "{line}");
        }
        self.target_section(out, key, rows);
        sensitivity_section(out, rows);
        self.data_section(out, key);
    }

    fn target_section(&self, out: &mut String, key: &(String, String), rows: &[&ArmRow]) {
        let Some(target) = self.targets.get(key) else { return };
        let sign = if target.goal == Goal::Max { ">=" } else { "<=" };
        let why = if target.from_config {
            "the task's `target` in the config".to_string()
        } else {
            "no `target` in the config: within 10% of the best final mean of any optimizer".to_string()
        };
        let _ = writeln!(
            out,
            "\nTime to target: the first evaluation with `{}` {sign} {} ({why}); steps and seconds of training per \
             seed of the selected setting, then their mean over the seeds that reached it.\n\n\
             | optimizer | reached | steps per seed | mean steps | time per seed | mean time |\n|---|---|---|---|---|---|",
            target.metric,
            number(target.value),
        );
        for row in rows {
            let steps: Vec<String> =
                row.reached.iter().map(|r| r.at.map_or("never".into(), |(s, _)| s.to_string())).collect();
            let times: Vec<String> =
                row.reached.iter().map(|r| r.at.map_or("never".into(), |(_, t)| seconds(t))).collect();
            let hits: Vec<(u64, f64)> = row.reached.iter().filter_map(|r| r.at).collect();
            let mean_steps = Stats::of(&hits.iter().map(|(s, _)| *s as f64).collect::<Vec<_>>());
            let mean_time = Stats::of(&hits.iter().map(|(_, t)| *t).collect::<Vec<_>>());
            let _ = writeln!(
                out,
                "| {} | {} of {} | {} | {} | {} | {} |",
                row.optimizer,
                hits.len(),
                row.reached.len(),
                steps.join(", "),
                mean_steps.map_or("n/a".into(), |s| format!("{:.0}", s.mean)),
                times.join(", "),
                mean_time.map_or("n/a".into(), |s| seconds(s.mean)),
            );
        }
    }

    /// The CSV table, one row per experiment, task, optimizer and metric (quoted where a
    /// field needs it, by the `csv` crate).
    pub fn csv(&self) -> String {
        let mut out = csv::Writer::from_writer(Vec::new());
        let header = [
            "experiment",
            "task",
            "optimizer",
            "best_setting",
            "lr",
            "settings_tried",
            "metric",
            "goal",
            "primary",
            "final_mean",
            "final_std",
            "best_mean",
            "best_std",
            "seeds",
            "completed",
            "diverged",
            "failed",
            "paper_value",
            "paper_std",
            "paper_source",
            "paper_kind",
            "measured_like_paper",
            "selected_on",
            "selected_on_validation",
            "rank",
        ];
        out.write_record(header).expect("writing to memory");
        let num = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
        for (_, rows) in self.tasks() {
            for (rank, row) in rows.iter().enumerate() {
                for m in &row.metrics {
                    let paper = row.reported.iter().find(|r| r.metric == m.metric);
                    let record = [
                        row.experiment.clone(),
                        row.task.clone(),
                        row.optimizer.clone(),
                        row.setting.clone(),
                        num(row.lr),
                        row.settings_tried.to_string(),
                        m.metric.clone(),
                        if m.goal == Goal::Max { "max" } else { "min" }.to_string(),
                        m.primary.to_string(),
                        num(m.last.map(|s| s.mean)),
                        num(m.last.map(|s| s.std)),
                        num(m.best.map(|s| s.mean)),
                        num(m.best.map(|s| s.std)),
                        m.last.map_or(0, |s| s.n).to_string(),
                        row.completed.to_string(),
                        row.diverged.to_string(),
                        row.failed.to_string(),
                        num(paper.map(|p| p.value)),
                        num(paper.and_then(|p| p.std)),
                        paper.map_or(String::new(), |p| p.source.clone()),
                        paper.and_then(|p| p.kind).map_or("", ReportedKind::as_str).to_string(),
                        num(paper.and_then(|p| measured_like(row, p)).map(|s| s.mean)),
                        row.selected_on.clone(),
                        row.on_validation.to_string(),
                        (rank + 1).to_string(),
                    ];
                    out.write_record(&record).expect("writing to memory");
                }
            }
        }
        String::from_utf8(out.into_inner().expect("writing to memory")).expect("the fields are UTF-8")
    }

    /// Writes `report.md`, `report.csv` and `report.tex` into `dir`; returns the first two's
    /// paths (the third is [`tex_path`]).
    pub fn write(&self, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
        let md = dir.join("report.md");
        let csv = dir.join("report.csv");
        let title = format!("# optbench report: {}\n", dir.display());
        write_atomically_shared(&md, (title + &self.markdown()).as_bytes())?;
        write_atomically_shared(&csv, self.csv().as_bytes())?;
        write_atomically_shared(&tex_path(dir), tex::document(self, &dir.display().to_string()).as_bytes())?;
        html::write(dir)?;
        Ok((md, csv))
    }
}

/// Where [`Report::write`] writes the LaTeX tables.
pub fn tex_path(dir: &Path) -> PathBuf {
    dir.join("report.tex")
}

/// Every setting of every arm of a task: the learning-rate sensitivity table (only when some
/// arm tried more than one setting).
fn sensitivity_section(out: &mut String, rows: &[&ArmRow]) {
    if rows.iter().all(|r| r.settings.len() < 2) {
        return;
    }
    let first = rows[0];
    let primary = first.primary().map_or("?", |p| p.metric.as_str());
    let selection = if first.on_validation { format!(" | final {}", first.selected_on) } else { String::new() };
    let _ = writeln!(
        out,
        "\nLearning-rate sensitivity: every setting tried, mean ± std over its completed seeds.\n\n\
         | optimizer | setting | lr | final {primary}{selection} | runs ok / diverged / failed | |\n|---|---|---|---|{}---|---|",
        if first.on_validation { "---|" } else { "" }
    );
    for row in rows {
        let mut settings: Vec<&SettingRow> = row.settings.iter().collect();
        settings.sort_by(|a, b| {
            a.lr.partial_cmp(&b.lr).unwrap_or(std::cmp::Ordering::Equal).then(a.setting.cmp(&b.setting))
        });
        for s in settings {
            let selection = if first.on_validation { format!(" {} |", show(s.selection)) } else { String::new() };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |{selection} {} / {} / {} | {} |",
                row.optimizer,
                s.setting,
                lr_cell(s.lr),
                show(s.primary),
                s.completed,
                s.diverged,
                s.failed,
                if s.setting == row.setting { "selected" } else { "" }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_of_follows_the_goal() {
        assert_eq!(best_of(&[0.3, 0.9, f64::NAN, 0.5], Goal::Max), Some(0.9));
        assert_eq!(best_of(&[0.3, 0.9, 0.1], Goal::Min), Some(0.1));
    }

    #[test]
    fn csv_fields_are_quoted_where_they_need_it() {
        let stats = Some(Stats { mean: 0.5, std: 0.25, n: 2 });
        let row = ArmRow {
            experiment: "table 2, left".into(),
            task: "mnist-mlp".into(),
            optimizer: "adam".into(),
            setting: "lr-0.001".into(),
            lr: Some(0.001),
            settings_tried: 3,
            metrics: vec![MetricRow {
                metric: "test_accuracy".into(),
                goal: Goal::Max,
                primary: true,
                last: stats,
                best: None,
            }],
            completed: 2,
            diverged: 0,
            failed: 1,
            selected_on: "test_accuracy".into(),
            on_validation: false,
            settings: Vec::new(),
            runs: Vec::new(),
            reached: Vec::new(),
            reported: vec![Reported {
                task: "mnist-mlp".into(),
                optimizer: "adam".into(),
                metric: "test_accuracy".into(),
                value: 0.98,
                std: None,
                kind: Some(ReportedKind::Final),
                source: "Kingma & Ba, \"Adam\"\nfig. 2".into(),
            }],
        };
        let csv = Report { rows: vec![row], ..Default::default() }.csv();
        let lines: Vec<&str> = csv.splitn(2, '\n').collect();
        assert!(
            lines[0].starts_with("experiment,task,optimizer,best_setting,lr,")
                && lines[0]
                    .ends_with("paper_source,paper_kind,measured_like_paper,selected_on,selected_on_validation,rank")
        );
        assert_eq!(
            lines[1],
            "\"table 2, left\",mnist-mlp,adam,lr-0.001,0.001,3,test_accuracy,max,true,0.5,0.25,,,2,2,0,1,0.98,,\
             \"Kingma & Ba, \"\"Adam\"\"\nfig. 2\",final,0.5,test_accuracy,false,1\n"
        );
    }

    fn reported(metric: &str, value: f64, kind: Option<ReportedKind>) -> Reported {
        Reported {
            task: "cifar10-vgg11".into(),
            optimizer: "adai".into(),
            metric: metric.into(),
            value,
            std: None,
            kind,
            source: String::new(),
        }
    }

    #[test]
    fn a_paper_number_is_compared_with_the_statistic_of_its_kind() {
        let stats = |mean| Some(Stats { mean, std: 0.01, n: 3 });
        let metric = |name: &str, goal, last, best| MetricRow {
            metric: name.into(),
            goal,
            primary: name == "test_accuracy",
            last: stats(last),
            best: stats(best),
        };
        let row = ArmRow {
            experiment: "adai-cifar".into(),
            task: "cifar10-vgg11".into(),
            optimizer: "adai".into(),
            setting: "default".into(),
            lr: Some(1.0),
            settings_tried: 1,
            metrics: vec![metric("test_accuracy", Goal::Max, 0.90, 0.95), metric("test_loss", Goal::Min, 0.40, 0.30)],
            completed: 3,
            diverged: 0,
            failed: 0,
            reported: Vec::new(),
            selected_on: "test_accuracy".into(),
            on_validation: false,
            settings: Vec::new(),
            runs: Vec::new(),
            reached: Vec::new(),
        };
        let final_number = reported("test_accuracy", 0.91, Some(ReportedKind::Final));
        let best_number = reported("test_accuracy", 0.94, Some(ReportedKind::Best));
        let best_loss = reported("test_loss", 0.35, Some(ReportedKind::Best));
        assert_eq!(measured_like(&row, &final_number).map(|s| s.mean), Some(0.90));
        assert_eq!(measured_like(&row, &best_number).map(|s| s.mean), Some(0.95));
        assert_eq!(measured_like(&row, &best_loss).map(|s| s.mean), Some(0.30));
        assert_eq!(measured_like(&row, &reported("test_accuracy", 0.9, None)), None);
        assert_eq!(measured_like(&row, &reported("bleu", 30.0, Some(ReportedKind::Final))), None);

        let row = ArmRow {
            reported: vec![final_number, best_number, best_loss, reported("test_accuracy", 0.9, None)],
            ..row
        };
        let md = Report { rows: vec![row.clone()], ..Default::default() }.markdown();
        assert!(md.contains("0.9100 (final; ours -0.0100)"), "{md}");
        assert!(md.contains("0.9400 (best; ours +0.0100)"), "{md}");
        assert!(md.contains("test_loss 0.3500 (best; ours -0.0500)"), "{md}");
        assert!(md.contains("0.9000 (kind not recorded)"), "{md}");
        let csv = Report { rows: vec![row], ..Default::default() }.csv();
        let accuracy = csv.lines().find(|l| l.contains(",test_accuracy,")).unwrap();
        assert!(accuracy.ends_with(",0.91,,,final,0.9,test_accuracy,false,1"), "{accuracy}");
        let loss = csv.lines().find(|l| l.contains(",test_loss,")).unwrap();
        assert!(loss.ends_with(",0.35,,,best,0.3,test_accuracy,false,1"), "{loss}");
    }
}
