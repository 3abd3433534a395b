//! The report's plots (SVG, [`super::svg`]), from result files only:
//! - learning curves, per experiment and task: a panel per metric, one for the evaluated
//!   training loss and one for the training-loss stream, smoothed by a moving average (the
//!   mean of the logged losses in each of at most [`STREAM_BINS`] equal windows of steps); per
//!   optimizer arm at the setting the report selected, the mean over seeds with a min-max band
//!   over seeds, against epochs where the task has them (else steps), with markers on series
//!   of at most [`MARKERS_UP_TO`] points, the legend right of the panels, and a cross where a
//!   diverged run ended (at its last finite value);
//! - learning-rate sensitivity, per experiment and task where an optimizer ran at two learning
//!   rates or more: the
//!   final primary metric (mean over completed seeds, min-max band) against lr on a log axis,
//!   one line per optimizer, as Adai's and DeepOBS's figures; a learning rate whose runs all
//!   diverged is a cross on the worse edge of the frame;
//! - performance profiles over the tasks of a folder (two or more): see [`super::profile`];
//! - toy 2-D, per experiment: a panel per `toy2d-*` function (AdaBelief Fig. 3) with the
//!   function's contours and each optimizer's path (the first seed of its selected setting),
//!   marked every k steps so that who arrives first can be read, clipped to the frame, and the
//!   diverged ones listed under the panel.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use candle::{Device, Tensor};

use super::profile::{Profiles, TaskValues};
use super::svg::{color, Axis, Panel, Svg};
use crate::runner::record::{find_results, stream_path, RunResult, Status};
use crate::task::{toy2d, Goal};

/// Series of at most this many points get a marker on each.
pub const MARKERS_UP_TO: usize = 30;
/// The smoothed loss stream has at most this many points.
pub const STREAM_BINS: usize = 200;
/// The right end of the performance profiles' tau axis, at most.
pub const TAU_MAX: f64 = 100.0;
/// Marks along a toy path: about this many.
const TOY_MARKS: usize = 10;

/// A result and where it was read from (the loss stream is beside it).
#[derive(Clone, Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub result: RunResult,
}

/// Every readable result under `dir`.
pub fn load(dir: &Path) -> Vec<Loaded> {
    find_results(dir)
        .into_iter()
        .filter_map(|path| RunResult::load(&path).ok().map(|result| Loaded { path, result }))
        .collect()
}

/// One plot.
#[derive(Clone, Debug)]
pub struct Figure {
    /// The file name without `.svg`.
    pub name: String,
    pub title: String,
    pub svg: String,
}

/// Draws one SVG per plot into `out`; returns the files written.
pub fn plot_all(dir: &Path, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let figures = figures(&load(dir));
    std::fs::create_dir_all(out)?;
    let mut written = Vec::new();
    for f in figures {
        let file = out.join(format!("{}.svg", f.name));
        std::fs::write(&file, f.svg).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
        written.push(file);
    }
    Ok(written)
}

/// Every plot of a set of results: per experiment and task the learning curves and the
/// learning-rate sensitivity, per experiment the toy 2-D panels, and the performance profiles.
pub fn figures(results: &[Loaded]) -> Vec<Figure> {
    let plain: Vec<RunResult> = results.iter().map(|l| l.result.clone()).collect();
    let report = super::aggregate(&plain);
    let mut tasks: BTreeMap<(String, String), Vec<&Loaded>> = BTreeMap::new();
    for l in results {
        tasks.entry((l.result.experiment.clone(), l.result.task.label.clone())).or_default().push(l);
    }
    let mut out = Vec::new();
    let mut toy: BTreeMap<String, Vec<(String, Vec<&Loaded>)>> = BTreeMap::new();
    for ((experiment, task), runs) in &tasks {
        // Each arm's selected setting, as the report chose it.
        let selected: BTreeMap<&str, &str> = report
            .rows
            .iter()
            .filter(|r| &r.experiment == experiment && &r.task == task)
            .map(|r| (r.optimizer.as_str(), r.setting.as_str()))
            .collect();
        let chosen: Vec<&Loaded> = runs
            .iter()
            .copied()
            .filter(|l| selected.get(l.result.optimizer_label.as_str()) == Some(&l.result.setting.as_str()))
            .filter(|l| l.result.status != Status::Failed)
            .collect();
        let stem = format!("{experiment}--{task}");
        if !chosen.is_empty() {
            out.push(Figure {
                name: format!("{stem}--curves"),
                title: format!("{experiment} / {task}: learning curves"),
                svg: curves(&format!("{experiment} / {task}"), &chosen),
            });
            if toy2d::function(&chosen[0].result.task.name).is_some() {
                toy.entry(experiment.clone()).or_default().push((task.clone(), chosen.clone()));
            }
        }
        if let Some(svg) = lr_sensitivity(&format!("{experiment} / {task}"), runs) {
            out.push(Figure {
                name: format!("{stem}--lr"),
                title: format!("{experiment} / {task}: learning-rate sensitivity"),
                svg,
            });
        }
    }
    for (experiment, panels) in toy {
        out.push(Figure {
            name: format!("{experiment}--toy2d"),
            title: format!("{experiment}: toy 2-D paths"),
            svg: toy_panels(&experiment, &panels),
        });
    }
    if let Some(svg) = profile(&report) {
        out.push(Figure { name: "performance-profile".into(), title: "Performance profiles".into(), svg });
    }
    out
}

/// Mean, min and max of some values.
fn summary(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((mean, lo, hi))
}

/// One arm's line in a panel: the mean over seeds at each x, the band, where runs diverged.
#[derive(Clone, Debug, Default)]
struct Line {
    name: String,
    mean: Vec<(f64, f64)>,
    lower: Vec<(f64, f64)>,
    upper: Vec<(f64, f64)>,
    /// Whether some x had values of two seeds or more (then a band is drawn).
    spread: bool,
    diverged: Vec<(f64, f64)>,
}

impl Line {
    /// From per-run series of `(key, x, value)`: the mean, min and max over runs per key.
    fn of(name: &str, runs: &[Vec<(u64, f64, f64)>]) -> Self {
        let mut at: BTreeMap<u64, (f64, Vec<f64>)> = BTreeMap::new();
        for run in runs {
            for &(key, x, v) in run {
                if v.is_finite() {
                    at.entry(key).or_insert((x, Vec::new())).1.push(v);
                }
            }
        }
        let mut line = Line { name: name.to_string(), ..Default::default() };
        for (x, values) in at.into_values() {
            let Some((mean, lo, hi)) = summary(&values) else { continue };
            line.spread |= values.len() > 1;
            line.mean.push((x, mean));
            line.lower.push((x, lo));
            line.upper.push((x, hi));
        }
        line
    }
}

/// A panel's lines, drawn on a panel fitted to them.
fn draw_lines(svg: &mut Svg, at: (f64, f64, f64, f64), title: &str, xlabel: &str, lines: &[(usize, Line)]) {
    let xs = lines.iter().flat_map(|(_, l)| l.mean.iter().chain(&l.diverged).map(|p| p.0));
    let ys = lines.iter().flat_map(|(_, l)| l.lower.iter().chain(&l.upper).chain(&l.diverged).map(|p| p.1));
    let panel = Panel { x: at.0, y: at.1, w: at.2, h: at.3, xaxis: Axis::fit(xs, false), yaxis: Axis::fit(ys, false) };
    svg.begin_panel(&panel, title, xlabel, "");
    for (i, line) in lines {
        if line.spread {
            svg.band(&panel, &line.name, color(*i), &line.lower, &line.upper);
        }
    }
    for (i, line) in lines {
        svg.series(&panel, &line.name, color(*i), &line.mean, line.mean.len() <= MARKERS_UP_TO);
        for &p in &line.diverged {
            svg.diverged(&panel, &line.name, color(*i), p);
        }
    }
    svg.end_panel();
}

/// The smoothed loss stream of a run: `(bin, step, mean loss)` per window, and the last finite
/// smoothed value with its step (where a diverged run ended).
fn smoothed_stream(l: &Loaded) -> Vec<(u64, f64, f64)> {
    let Ok(text) = std::fs::read_to_string(stream_path(&l.path)) else { return Vec::new() };
    let points: Vec<(u64, f64)> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| Some((v.get("step")?.as_u64()?, v.get("loss")?.as_f64().unwrap_or(f64::NAN))))
        .collect();
    let total = l.result.total_steps.max(points.last().map_or(1, |p| p.0)).max(1);
    let bins = STREAM_BINS.min(points.len()).max(1) as u64;
    let mut sums: BTreeMap<u64, (f64, f64, usize)> = BTreeMap::new();
    for (step, loss) in points {
        if !loss.is_finite() {
            continue;
        }
        let bin = (step.saturating_sub(1) * bins / total).min(bins - 1);
        let e = sums.entry(bin).or_insert((0.0, 0.0, 0));
        e.0 += step as f64;
        e.1 += loss;
        e.2 += 1;
    }
    sums.into_iter().map(|(bin, (s, v, n))| (bin, s / n as f64, v / n as f64)).collect()
}

/// The learning curves of one task's selected runs.
fn curves(title: &str, runs: &[&Loaded]) -> String {
    let first = &runs[0].result;
    let per_epoch =
        runs.iter().all(|l| l.result.steps_per_epoch.is_some() && l.result.history.epoch.iter().all(Option::is_some));
    let x_of_step = |r: &RunResult, step: f64| match (per_epoch, r.steps_per_epoch) {
        (true, Some(n)) => step / n as f64,
        _ => step,
    };
    let xlabel = if per_epoch { "epoch" } else { "step" };
    let mut metrics: Vec<String> = first.metrics.iter().map(|m| m.name.clone()).collect();
    if !metrics.iter().any(|m| m == "train_loss") {
        metrics.push("train_loss".into());
    }
    let arms: Vec<String> =
        runs.iter().map(|l| l.result.optimizer_label.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let label = |arm: &str| {
        let setting = runs.iter().find(|l| l.result.optimizer_label == arm).map_or("", |l| l.result.setting.as_str());
        format!("{arm} ({setting})")
    };
    // Panels: each metric, then the stream.
    let mut panels: Vec<(String, Vec<(usize, Line)>)> = Vec::new();
    for metric in &metrics {
        let mut lines = Vec::new();
        for (i, arm) in arms.iter().enumerate() {
            let mine: Vec<&RunResult> = runs.iter().map(|l| &l.result).filter(|r| &r.optimizer_label == arm).collect();
            let series: Vec<Vec<(u64, f64, f64)>> = mine
                .iter()
                .filter_map(|r| {
                    let values = r.history.values(metric)?;
                    Some(r.history.step.iter().zip(values).map(|(&s, v)| (s, x_of_step(r, s as f64), v)).collect())
                })
                .collect();
            let mut line = Line::of(&label(arm), &series);
            for (r, s) in mine.iter().zip(&series) {
                if r.status == Status::Diverged {
                    if let Some(&(_, x, v)) = s.iter().rev().find(|p| p.2.is_finite()) {
                        line.diverged.push((x, v));
                    }
                }
            }
            if !line.mean.is_empty() || !line.diverged.is_empty() {
                lines.push((i, line));
            }
        }
        if !lines.is_empty() {
            panels.push((metric.clone(), lines));
        }
    }
    let mut lines = Vec::new();
    for (i, arm) in arms.iter().enumerate() {
        let mine: Vec<&Loaded> = runs.iter().copied().filter(|l| &l.result.optimizer_label == arm).collect();
        let series: Vec<Vec<(u64, f64, f64)>> = mine
            .iter()
            .map(|l| smoothed_stream(l).into_iter().map(|(b, s, v)| (b, x_of_step(&l.result, s), v)).collect())
            .collect();
        let mut line = Line::of(&label(arm), &series);
        for (l, s) in mine.iter().zip(&series) {
            if l.result.status == Status::Diverged {
                if let Some(&(_, x, v)) = s.last() {
                    line.diverged.push((x, v));
                }
            }
        }
        if !line.mean.is_empty() {
            lines.push((i, line));
        }
    }
    if !lines.is_empty() {
        panels.push(("training loss (stream, moving average)".into(), lines));
    }
    let (pw, ph, cols) = (330.0, 210.0, 2usize);
    let rows = panels.len().div_ceil(cols).max(1);
    let legend_x = 70.0 + cols as f64 * (pw + 80.0);
    let width = legend_x + 230.0;
    let height = 50.0 + rows as f64 * (ph + 70.0);
    let mut svg = Svg::new(width, height);
    svg.text(width / 2.0, 20.0, &format!("{title}: mean over seeds, band min-max"), 14.0, "middle");
    for (k, (name, lines)) in panels.iter().enumerate() {
        let (c, r) = ((k % cols) as f64, (k / cols) as f64);
        draw_lines(&mut svg, (70.0 + c * (pw + 80.0), 50.0 + r * (ph + 70.0), pw, ph), name, xlabel, lines);
    }
    let entries: Vec<(String, &str)> = arms.iter().enumerate().map(|(i, a)| (label(a), color(i))).collect();
    let seeds: BTreeSet<u64> = runs.iter().map(|l| l.result.seed).collect();
    let mut notes = vec![format!("seeds: {}", seeds.len())];
    if runs.iter().any(|l| l.result.status == Status::Diverged) {
        notes.push("x: where a diverged run ended".to_string());
    }
    svg.legend(legend_x, 60.0, &entries, &notes);
    svg.finish()
}

/// The learning-rate sensitivity of one task (`None` unless an optimizer ran at two learning
/// rates or more).
fn lr_sensitivity(title: &str, runs: &[&Loaded]) -> Option<String> {
    let primary = runs.iter().find_map(|l| l.result.primary().cloned())?;
    let lrs: BTreeSet<u64> =
        runs.iter().filter_map(|l| l.result.optimizer.lr()).filter(|lr| *lr > 0.0).map(f64::to_bits).collect();
    // Drawn when some optimizer was run at two learning rates or more.
    let mut per_arm: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for l in runs {
        if let Some(lr) = l.result.optimizer.lr().filter(|lr| *lr > 0.0) {
            per_arm.entry(l.result.optimizer_label.as_str()).or_default().insert(lr.to_bits());
        }
    }
    if per_arm.values().all(|s| s.len() < 2) {
        return None;
    }
    let arms: Vec<String> =
        runs.iter().map(|l| l.result.optimizer_label.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let mut lines = Vec::new();
    let mut diverged: Vec<(usize, String, f64)> = Vec::new();
    for (i, arm) in arms.iter().enumerate() {
        // lr -> setting -> final values of its completed seeds
        let mut at: BTreeMap<u64, BTreeMap<&str, (Vec<f64>, usize)>> = BTreeMap::new();
        for l in runs.iter().filter(|l| &l.result.optimizer_label == arm) {
            let Some(lr) = l.result.optimizer.lr().filter(|lr| *lr > 0.0) else { continue };
            let entry = at.entry(lr.to_bits()).or_default().entry(l.result.setting.as_str()).or_default();
            match l.result.status {
                Status::Completed => {
                    if let Some(v) =
                        l.result.final_metrics.get(&primary.name).copied().flatten().filter(|v| v.is_finite())
                    {
                        entry.0.push(v);
                    }
                }
                Status::Diverged => entry.1 += 1,
                Status::Failed => {}
            }
        }
        let mut line = Line { name: arm.clone(), ..Default::default() };
        for (lr, settings) in at {
            let lr = f64::from_bits(lr);
            // Several settings at one lr (other hyperparameters swept): the best mean.
            let best = settings.values().filter_map(|(v, _)| summary(v).map(|s| (s, v.len()))).reduce(|a, b| {
                if primary.goal.better(b.0 .0, a.0 .0) {
                    b
                } else {
                    a
                }
            });
            match best {
                Some(((mean, lo, hi), n)) => {
                    line.spread |= n > 1;
                    line.mean.push((lr, mean));
                    line.lower.push((lr, lo));
                    line.upper.push((lr, hi));
                }
                None if settings.values().any(|(_, d)| *d > 0) => diverged.push((i, arm.clone(), lr)),
                None => {}
            }
        }
        lines.push((i, line));
    }
    let (x, y, w, h) = (80.0, 50.0, 480.0, 300.0);
    let xs = lrs.iter().map(|b| f64::from_bits(*b));
    let ys = lines.iter().flat_map(|(_, l)| l.lower.iter().chain(&l.upper).map(|p| p.1));
    let panel = Panel { x, y, w, h, xaxis: Axis::fit(xs, true), yaxis: Axis::fit(ys, false) };
    let mut svg = Svg::new(x + w + 260.0, y + h + 60.0);
    svg.text((x + w + 260.0) / 2.0, 20.0, &format!("{title}: final {} against lr", primary.name), 14.0, "middle");
    let direction = if primary.goal == Goal::Max { "higher is better" } else { "lower is better" };
    svg.begin_panel(&panel, &format!("mean over seeds, band min-max ({direction})"), "learning rate", &primary.name);
    for (i, line) in &lines {
        if line.spread {
            svg.band(&panel, &line.name, color(*i), &line.lower, &line.upper);
        }
    }
    for (i, line) in &lines {
        svg.series(&panel, &line.name, color(*i), &line.mean, true);
    }
    // The worse edge: the bottom when higher is better.
    let worse = if primary.goal == Goal::Max { panel.yaxis.lo } else { panel.yaxis.hi };
    for (i, name, lr) in &diverged {
        svg.diverged(&panel, name, color(*i), (*lr, worse));
    }
    svg.end_panel();
    let entries: Vec<(String, &str)> = arms.iter().enumerate().map(|(i, a)| (a.clone(), color(i))).collect();
    let notes: Vec<String> = std::iter::once("x on the edge: every run diverged".to_string())
        .chain(diverged.iter().map(|(_, n, lr)| format!("{n}: diverged at lr {lr}")))
        .collect();
    svg.legend(x + w + 20.0, y + 10.0, &entries, &notes);
    Some(svg.finish())
}

/// Performance profiles over the folder's tasks (`None` with fewer than two tasks).
fn profile(report: &super::Report) -> Option<String> {
    let mut tasks: BTreeMap<(String, String), TaskValues> = BTreeMap::new();
    for row in &report.rows {
        let Some(p) = row.primary() else { continue };
        let t = tasks.entry((row.experiment.clone(), row.task.clone())).or_insert_with(|| TaskValues {
            task: format!("{} / {}", row.experiment, row.task),
            goal: p.goal,
            values: BTreeMap::new(),
        });
        t.values.insert(row.optimizer.clone(), p.last.map(|s| s.mean));
    }
    if tasks.len() < 2 {
        return None;
    }
    let tasks: Vec<TaskValues> = tasks.into_values().collect();
    let profiles = Profiles::of(&tasks);
    if profiles.tasks.is_empty() {
        return None;
    }
    // Up to 100 at most (AlgoPerf integrates to 4): ratios above lie right of the frame.
    let tau_max = (profiles.max_ratio() * 1.25).clamp(1.5, TAU_MAX);
    let (x, y, w, h) = (80.0, 50.0, 480.0, 300.0);
    let panel = Panel {
        x,
        y,
        w,
        h,
        xaxis: Axis { lo: 1.0, hi: tau_max, log: true },
        yaxis: Axis { lo: -0.02, hi: 1.02, log: false },
    };
    let mut svg = Svg::new(x + w + 300.0, y + h + 60.0);
    svg.text(
        (x + w + 300.0) / 2.0,
        20.0,
        &format!("Performance profiles over {} tasks", profiles.tasks.len()),
        14.0,
        "middle",
    );
    svg.begin_panel(
        &panel,
        "fraction of tasks within a factor tau of the best",
        "tau (ratio to the best cost)",
        "rho(tau)",
    );
    let names: Vec<&String> = profiles.ratios.keys().collect();
    for (i, name) in names.iter().enumerate() {
        let corners = profiles.steps(name);
        let mut points = vec![(1.0, profiles.rho(name, 1.0))];
        for &(tau, rho) in &corners {
            let last = points.last().map_or(0.0, |p: &(f64, f64)| p.1);
            points.push((tau, last));
            points.push((tau, rho));
        }
        points.push((tau_max, points.last().map_or(0.0, |p| p.1)));
        svg.series(&panel, name, color(i), &points, false);
        for &c in &corners {
            svg.circle(&panel, "marker", name, color(i), c, 3.2);
        }
    }
    svg.end_panel();
    let entries: Vec<(String, &str)> = names.iter().enumerate().map(|(i, n)| (n.to_string(), color(i))).collect();
    let mut notes = vec![
        "cost: the final primary metric (mean over seeds)".to_string(),
        "of the selected setting; higher-is-better in [0,1]:".to_string(),
        "1 - value, other higher-is-better: 1 / value".to_string(),
        format!("tau up to {TAU_MAX} at most (beyond: off the frame)"),
    ];
    notes.extend(profiles.left_out.iter().map(|t| format!("left out: {t}")));
    svg.legend(x + w + 20.0, y + 10.0, &entries, &notes);
    Some(svg.finish())
}

/// The test function on a grid, for the contours.
fn grid(function: &toy2d::ToyFunction, n: usize) -> candle::Result<Vec<Vec<f64>>> {
    let d = function.domain;
    let coords: Vec<f64> = (0..n).map(|i| -d + 2.0 * d * i as f64 / (n - 1) as f64).collect();
    let xs: Vec<f64> = (0..n * n).map(|k| coords[k % n]).collect();
    let ys: Vec<f64> = (0..n * n).map(|k| coords[k / n]).collect();
    let x = Tensor::from_vec(xs, n * n, &Device::Cpu)?;
    let y = Tensor::from_vec(ys, n * n, &Device::Cpu)?;
    let f = (function.f)(&x, &y)?.to_vec1::<f64>()?;
    Ok(f.chunks(n).map(|row| row.to_vec()).collect())
}

/// Iso-line segments of `values` (rows are y) at `level`, by marching squares.
fn iso_segments(values: &[Vec<f64>], level: f64, d: f64) -> Vec<[(f64, f64); 2]> {
    let n = values.len();
    let at = |i: usize| -d + 2.0 * d * i as f64 / (n - 1) as f64;
    let lerp = |a: f64, b: f64, va: f64, vb: f64| a + (b - a) * (level - va) / (vb - va);
    let mut segments = Vec::new();
    for j in 0..n - 1 {
        for i in 0..n - 1 {
            let (x0, x1, y0, y1) = (at(i), at(i + 1), at(j), at(j + 1));
            let (a, b, c, e) = (values[j][i], values[j][i + 1], values[j + 1][i + 1], values[j + 1][i]);
            let mut points = Vec::new();
            if (a < level) != (b < level) {
                points.push((lerp(x0, x1, a, b), y0));
            }
            if (b < level) != (c < level) {
                points.push((x1, lerp(y0, y1, b, c)));
            }
            if (c < level) != (e < level) {
                points.push((lerp(x1, x0, c, e), y1));
            }
            if (e < level) != (a < level) {
                points.push((x0, lerp(y1, y0, e, a)));
            }
            for pair in points.chunks(2) {
                if let [p, q] = pair {
                    segments.push([*p, *q]);
                }
            }
        }
    }
    segments
}

/// The contour lines of a function on a panel, one `<path>` per level (levels evenly spaced in
/// log(1 + f - min)).
fn contours(svg: &mut Svg, panel: &Panel, function: &toy2d::ToyFunction) {
    let Ok(values) = grid(function, 81) else { return };
    let flat: Vec<f64> = values.iter().flatten().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = flat.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    if !lo.is_finite() || hi <= lo {
        return;
    }
    let levels = 12;
    for k in 1..=levels {
        let level = lo + ((1.0 + hi - lo).ln() * k as f64 / (levels + 1) as f64).exp() - 1.0;
        let shade = 130 + 100 * k / levels;
        let mut d = String::new();
        for [p, q] in iso_segments(&values, level, function.domain) {
            let _ = write!(d, "M{:.1} {:.1}L{:.1} {:.1}", panel.px(p.0), panel.py(p.1), panel.px(q.0), panel.py(q.1));
        }
        if !d.is_empty() {
            svg.raw(&format!(r#"<path class="contour" d="{d}" fill="none" stroke="rgb({shade},{shade},{shade})" stroke-width="0.8"/>"#));
        }
    }
}

/// Every `k`: marks about [`TOY_MARKS`] times along the longest path (in evaluations).
fn mark_every(evaluations: usize) -> usize {
    evaluations.div_ceil(TOY_MARKS).max(1)
}

/// One panel per toy function of an experiment.
fn toy_panels(experiment: &str, panels: &[(String, Vec<&Loaded>)]) -> String {
    let arms: Vec<String> = panels
        .iter()
        .flat_map(|(_, runs)| runs.iter().map(|l| l.result.optimizer_label.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (size, cols) = (300.0, 3usize.min(panels.len()).max(1));
    let rows = panels.len().div_ceil(cols);
    let (gap_x, gap_y) = (70.0, 110.0);
    let legend_x = 60.0 + cols as f64 * (size + gap_x);
    let width = legend_x + 220.0;
    let height = 50.0 + rows as f64 * (size + gap_y);
    let mut svg = Svg::new(width, height);
    svg.text(
        width / 2.0,
        20.0,
        &format!("{experiment}: paths on the toy functions (AdaBelief Fig. 3)"),
        14.0,
        "middle",
    );
    let mut notes = Vec::new();
    for (k, (task, runs)) in panels.iter().enumerate() {
        let Some(function) = toy2d::function(&runs[0].result.task.name) else { continue };
        let d = function.domain;
        let (c, r) = ((k % cols) as f64, (k / cols) as f64);
        let panel = Panel {
            x: 60.0 + c * (size + gap_x),
            y: 50.0 + r * (size + gap_y),
            w: size,
            h: size,
            xaxis: Axis { lo: -d, hi: d, log: false },
            yaxis: Axis { lo: -d, hi: d, log: false },
        };
        svg.begin_panel(&panel, &format!("{task}: {}", function.formula), "x", "y");
        contours(&mut svg, &panel, function);
        let (mx, my) = (panel.px(function.minimum.0), panel.py(function.minimum.1));
        svg.raw(&format!(
            r##"<path class="minimum" d="M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}" stroke="#000" stroke-width="1.5"/>"##,
            mx - 5.0,
            my,
            mx + 5.0,
            my,
            mx,
            my - 5.0,
            mx,
            my + 5.0
        ));
        // The first seed of each arm's selected setting.
        let mut firsts: BTreeMap<&str, &RunResult> = BTreeMap::new();
        for l in runs {
            let e = firsts.entry(l.result.optimizer_label.as_str()).or_insert(&l.result);
            if l.result.seed < e.seed {
                *e = &l.result;
            }
        }
        let longest = firsts.values().map(|r| r.history.step.len()).max().unwrap_or(0);
        let every = mark_every(longest);
        let mut step_every = None;
        let mut diverged = Vec::new();
        for (arm, run) in &firsts {
            let i = arms.iter().position(|a| a == arm).unwrap_or(0);
            let (Some(xs), Some(ys)) = (run.history.values("x"), run.history.values("y")) else { continue };
            let start = (
                run.task.options.get("x0").and_then(|v| v.as_f64()).unwrap_or(function.start.0),
                run.task.options.get("y0").and_then(|v| v.as_f64()).unwrap_or(function.start.1),
            );
            let path: Vec<(f64, f64)> = std::iter::once(start).chain(xs.into_iter().zip(ys)).collect();
            svg.series(&panel, arm, color(i), &path, false);
            for (j, &p) in path.iter().enumerate().skip(1) {
                if j % every == 0 && panel.drawable(p) {
                    svg.circle(&panel, "mark", arm, color(i), p, 2.6);
                }
            }
            if run.history.step.len() > every {
                step_every.get_or_insert(run.history.step[every] - run.history.step[0]);
            }
            if run.status == Status::Diverged {
                diverged.push(format!("{arm} (step {})", run.diverged_at_step.unwrap_or(run.steps_done)));
            }
        }
        svg.raw(&format!(
            r##"<circle class="start" cx="{:.1}" cy="{:.1}" r="4" fill="#000"/>"##,
            panel.px(function.start.0),
            panel.py(function.start.1)
        ));
        svg.end_panel();
        let below = panel.y + panel.h + 48.0;
        let marks = match step_every {
            Some(s) => format!("marks every {s} steps"),
            None => format!("marks every {every} evaluations"),
        };
        svg.text(panel.x, below, &marks, 10.0, "start");
        let div = if diverged.is_empty() {
            "diverged: none".to_string()
        } else {
            format!("diverged: {}", diverged.join(", "))
        };
        svg.text(panel.x, below + 14.0, &div, 10.0, "start");
        if !diverged.is_empty() {
            notes.push(format!("{task}: {}", div));
        }
    }
    let entries: Vec<(String, &str)> = arms.iter().enumerate().map(|(i, a)| (a.clone(), color(i))).collect();
    let mut legend_notes = vec!["black dot: start, +: minimum".to_string(), "paths clipped to the frame".to_string()];
    legend_notes.extend(notes);
    svg.legend(legend_x, 60.0, &entries, &legend_notes);
    svg.finish()
}
