//! Reports read result files only (never configs): per experiment, task and optimizer arm, the
//! best setting (by the mean over seeds of the final primary metric), mean ± std over seeds
//! of the final and the best value of each metric, how many runs completed, diverged or
//! failed, and the papers' numbers where the config recorded them, each compared with the
//! statistic of the same kind ([`measured_like`]: a final-epoch number with the final value, a
//! best-epoch number with the best); per task, the data its runs trained on (source and a short
//! SHA-256), with a warning when they differ.

pub mod export;
pub mod html;
pub mod plot;
pub mod profile;
pub mod svg;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{Reported, ReportedKind};
use crate::runner::record::{find_results, RunResult, Status};
use crate::task::Goal;
use crate::util::atomic::write_atomically_shared;

/// Mean and sample standard deviation of some values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stats {
    /// Over the finite values; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Self> {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let std = if n > 1 { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        Some(Self { mean, std, n })
    }
}

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
    pub metrics: Vec<MetricRow>,
    pub completed: usize,
    pub diverged: usize,
    pub failed: usize,
    pub reported: Vec<Reported>,
}

impl ArmRow {
    pub fn primary(&self) -> Option<&MetricRow> {
        self.metrics.iter().find(|m| m.primary)
    }
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
    pub rows: Vec<ArmRow>,
    /// Per (experiment, task): the data its runs used; `None` counts runs whose result does
    /// not record its data (written by an older optbench).
    pub data: BTreeMap<(String, String), (Vec<DataUse>, usize)>,
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

/// Aggregates results: a row per experiment, task and optimizer arm.
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
        let count = |s: Status| all.iter().filter(|r| r.status == s).count();
        let Some(template) = all.first() else { continue };
        let metric_infos = template.metrics.clone();
        let primary = metric_infos.first().cloned();
        // The best setting: best mean final primary metric over its completed seeds.
        let score = |runs: &Vec<&RunResult>| -> Option<f64> {
            let p = primary.as_ref()?;
            let finals: Vec<f64> = runs
                .iter()
                .filter(|r| r.status == Status::Completed)
                .filter_map(|r| r.final_metrics.get(&p.name).copied().flatten())
                .collect();
            Stats::of(&finals).map(|s| s.mean)
        };
        let goal = primary.as_ref().map_or(Goal::Min, |p| p.goal);
        let best = settings
            .iter()
            .filter_map(|(s, runs)| score(runs).map(|v| (s, runs, v)))
            .reduce(|a, b| if goal.better(b.2, a.2) { b } else { a })
            .map(|(s, runs, _)| (s.clone(), runs))
            .or_else(|| settings.iter().next().map(|(s, runs)| (s.clone(), runs)));
        let Some((setting, runs)) = best else { continue };
        let completed: Vec<&RunResult> = runs.iter().copied().filter(|r| r.status == Status::Completed).collect();
        let mut metrics = Vec::new();
        let mut names: Vec<(String, Goal, bool)> =
            metric_infos.iter().enumerate().map(|(i, m)| (m.name.clone(), m.goal, i == 0)).collect();
        if !names.iter().any(|(n, _, _)| n == "train_loss") {
            names.push(("train_loss".into(), Goal::Min, false));
        }
        for (name, goal, is_primary) in names {
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
        report.rows.push(ArmRow {
            experiment,
            task,
            optimizer,
            lr: runs.first().and_then(|r| r.optimizer.lr()),
            setting,
            settings_tried: settings.len(),
            metrics,
            completed: count(Status::Completed),
            diverged: count(Status::Diverged),
            failed: count(Status::Failed),
            reported: template.reported.clone(),
        });
    }
    report
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

/// `0.9712 ± 0.0021`, or `n/a`.
fn show(stats: Option<Stats>) -> String {
    match stats {
        None => "n/a".into(),
        Some(s) if s.n == 1 => number(s.mean),
        Some(s) => format!("{} ± {} (n={})", number(s.mean), number(s.std), s.n),
    }
}

fn number(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        format!("{v:.4e}")
    } else {
        format!("{v:.4}")
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

    /// The markdown table: one section per experiment and task.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let mut current = (String::new(), String::new());
        for row in &self.rows {
            if (row.experiment.clone(), row.task.clone()) != current {
                if !current.0.is_empty() {
                    self.data_section(&mut out, &current);
                }
                current = (row.experiment.clone(), row.task.clone());
                let primary = row.primary();
                let direction = match primary.map(|p| p.goal) {
                    Some(Goal::Max) => "higher is better",
                    _ => "lower is better",
                };
                let others: Vec<&str> = row.metrics.iter().filter(|m| !m.primary).map(|m| m.metric.as_str()).collect();
                let _ = writeln!(
                    out,
                    "\n## {} / {}\n\nPrimary metric `{}` ({direction}); final = last evaluation, best = best evaluation; \
                     mean ± std over seeds of the best setting; paper: its number, whether it is a final \
                     or a best one, and our mean of the same kind minus it.\n",
                    row.experiment,
                    row.task,
                    primary.map_or("?", |p| p.metric.as_str())
                );
                let mut header = "| optimizer | best setting | lr | final | best | paper |".to_string();
                let mut rule = "|---|---|---|---|---|---|".to_string();
                for o in &others {
                    let _ = write!(header, " final {o} |");
                    rule.push_str("---|");
                }
                header.push_str(" runs ok / diverged / failed |");
                rule.push_str("---|");
                let _ = writeln!(out, "{header}\n{rule}");
            }
            let primary = row.primary();
            let paper = row
                .reported
                .iter()
                .map(|r| paper_cell(row, r, primary.is_some_and(|p| p.metric == r.metric)))
                .collect::<Vec<_>>()
                .join("; ");
            let mut line = format!(
                "| {} | {}{} | {} | {} | {} | {} |",
                row.optimizer,
                row.setting,
                if row.settings_tried > 1 { format!(" (of {})", row.settings_tried) } else { String::new() },
                row.lr.map_or("n/a".into(), |lr| optimizers::HyperValue::Float(lr).to_string()),
                show(primary.and_then(|p| p.last)),
                show(primary.and_then(|p| p.best)),
                if paper.is_empty() { "".to_string() } else { paper },
            );
            for m in row.metrics.iter().filter(|m| !m.primary) {
                let _ = write!(line, " {} |", show(m.last));
            }
            let _ = write!(line, " {} / {} / {} |", row.completed, row.diverged, row.failed);
            let _ = writeln!(out, "{line}");
        }
        if !current.0.is_empty() {
            self.data_section(&mut out, &current);
        }
        if !self.unreadable.is_empty() {
            let _ = writeln!(out, "\nUnreadable result files:\n");
            for u in &self.unreadable {
                let _ = writeln!(out, "- {u}");
            }
        }
        out
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
        ];
        out.write_record(header).expect("writing to memory");
        let num = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
        for row in &self.rows {
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
                ];
                out.write_record(&record).expect("writing to memory");
            }
        }
        String::from_utf8(out.into_inner().expect("writing to memory")).expect("the fields are UTF-8")
    }

    /// Writes `report.md` and `report.csv` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
        let md = dir.join("report.md");
        let csv = dir.join("report.csv");
        let title = format!("# optbench report: {}\n", dir.display());
        write_atomically_shared(&md, (title + &self.markdown()).as_bytes())?;
        write_atomically_shared(&csv, self.csv().as_bytes())?;
        html::write(dir)?;
        Ok((md, csv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_the_sample_deviation_and_skip_non_finite_values() {
        let s = Stats::of(&[1.0, 2.0, 3.0, f64::NAN]).unwrap();
        assert_eq!((s.mean, s.std, s.n), (2.0, 1.0, 3));
        assert_eq!(Stats::of(&[f64::INFINITY]), None);
        assert_eq!(Stats::of(&[4.0]).unwrap().std, 0.0);
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
                && lines[0].ends_with("paper_source,paper_kind,measured_like_paper")
        );
        assert_eq!(
            lines[1],
            "\"table 2, left\",mnist-mlp,adam,lr-0.001,0.001,3,test_accuracy,max,true,0.5,0.25,,,2,2,0,1,0.98,,\
             \"Kingma & Ba, \"\"Adam\"\"\nfig. 2\",final,0.5\n"
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
        assert!(accuracy.ends_with(",0.91,,,final,0.9"), "{accuracy}");
        let loss = csv.lines().find(|l| l.contains(",test_loss,")).unwrap();
        assert!(loss.ends_with(",0.35,,,best,0.3"), "{loss}");
    }
}
