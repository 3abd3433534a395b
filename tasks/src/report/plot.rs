//! SVG plots from result files: for the `toy2d-*` tasks, the function's contour lines with
//! every optimizer's path (AdaBelief Fig. 3); for the others, the primary metric against the
//! step, the mean over seeds of each optimizer's best setting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle::{Device, Tensor};
use plotters::prelude::*;

use crate::runner::record::{RunResult, Status};
use crate::task::toy2d;

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

type Plotted = Result<(), Box<dyn std::error::Error>>;

/// Draws one SVG per experiment and task into `out`; returns the files written.
pub fn plot_all(dir: &Path, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let (results, _) = super::read_results(dir);
    let report = super::aggregate(&results);
    let mut runs: BTreeMap<(String, String), Vec<&RunResult>> = BTreeMap::new();
    for r in &results {
        runs.entry((r.experiment.clone(), r.task.label.clone())).or_default().push(r);
    }
    std::fs::create_dir_all(out)?;
    let mut written = Vec::new();
    for ((experiment, task), results) in runs {
        // Each arm's best setting, as the report chose it.
        let best: BTreeMap<&str, &str> = report
            .rows
            .iter()
            .filter(|r| r.experiment == experiment && r.task == task)
            .map(|r| (r.optimizer.as_str(), r.setting.as_str()))
            .collect();
        let chosen: Vec<&RunResult> = results
            .into_iter()
            .filter(|r| best.get(r.optimizer_label.as_str()) == Some(&r.setting.as_str()))
            .filter(|r| r.status != Status::Failed)
            .collect();
        if chosen.is_empty() {
            continue;
        }
        let file = out.join(format!("{experiment}--{task}.svg"));
        let drawn = match toy2d::function(&chosen[0].task.name) {
            Some(function) => toy_paths(&file, &format!("{experiment}: {task}"), function, &chosen),
            None => curves(&file, &format!("{experiment}: {task}"), &chosen),
        };
        drawn.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        written.push(file);
    }
    Ok(written)
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

fn toy_paths(file: &Path, title: &str, function: &toy2d::ToyFunction, runs: &[&RunResult]) -> Plotted {
    let d = function.domain;
    let values = grid(function, 161)?;
    let root = SVGBackend::new(file, (760, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}  ({})", function.formula), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(40)
        .build_cartesian_2d(-d..d, -d..d)?;
    chart.configure_mesh().disable_mesh().x_desc("x").y_desc("y").draw()?;
    // Contour levels evenly spaced in log(1 + f - min).
    let flat: Vec<f64> = values.iter().flatten().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = flat.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let levels = 14;
    for k in 1..=levels {
        let level = lo + ((1.0 + hi - lo).ln() * k as f64 / (levels + 1) as f64).exp() - 1.0;
        let shade = 120 + (120 * k / levels) as u8;
        let style = RGBColor(shade, shade, shade).stroke_width(1);
        for [p, q] in iso_segments(&values, level, d) {
            chart.draw_series(std::iter::once(PathElement::new(vec![p, q], style)))?;
        }
    }
    chart.draw_series(std::iter::once(Cross::new(function.minimum, 7, BLACK.stroke_width(2))))?;
    chart.draw_series(std::iter::once(Circle::new(function.start, 5, BLACK.filled())))?;
    // One path per optimizer: the first seed of its best setting, from the start point.
    let mut drawn = std::collections::BTreeSet::new();
    for run in runs {
        if !drawn.insert(run.optimizer_label.clone()) {
            continue;
        }
        let color = COLORS[(drawn.len() - 1) % COLORS.len()];
        let (Some(xs), Some(ys)) = (run.history.values("x"), run.history.values("y")) else { continue };
        let start = (run.task.options["x0"].as_f64().unwrap_or(0.0), run.task.options["y0"].as_f64().unwrap_or(0.0));
        let path: Vec<(f64, f64)> = std::iter::once(start)
            .chain(xs.into_iter().zip(ys).filter(|(x, y)| x.is_finite() && y.is_finite()))
            .map(|(x, y)| (x.clamp(-d, d), y.clamp(-d, d)))
            .collect();
        let end = *path.last().unwrap_or(&start);
        chart
            .draw_series(LineSeries::new(path, color.stroke_width(2)))?
            .label(format!("{} ({})", run.optimizer_label, run.setting))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(std::iter::once(Circle::new(end, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

fn curves(file: &Path, title: &str, runs: &[&RunResult]) -> Plotted {
    let metric = runs[0].primary().map(|m| m.name.clone()).unwrap_or_else(|| "train_loss".into());
    // Mean over seeds, per optimizer, at each evaluated step.
    let mut series: BTreeMap<String, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    for run in runs {
        let Some(values) = run.history.values(&metric) else { continue };
        let entry = series.entry(format!("{} ({})", run.optimizer_label, run.setting)).or_default();
        for (step, v) in run.history.step.iter().zip(values) {
            if v.is_finite() {
                entry.entry(*step).or_default().push(v);
            }
        }
    }
    let lines: Vec<(String, Vec<(f64, f64)>)> = series
        .into_iter()
        .map(|(name, points)| {
            let pts = points.into_iter().map(|(s, v)| (s as f64, v.iter().sum::<f64>() / v.len() as f64)).collect();
            (name, pts)
        })
        .collect();
    let all: Vec<(f64, f64)> = lines.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    if all.is_empty() {
        return Ok(());
    }
    let (x_max, y_min, y_max) = all
        .iter()
        .fold((1.0f64, f64::INFINITY, f64::NEG_INFINITY), |(xm, lo, hi), &(x, y)| (xm.max(x), lo.min(y), hi.max(y)));
    let pad = ((y_max - y_min) * 0.05).max(1e-12);
    let root = SVGBackend::new(file, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))?;
    chart.configure_mesh().x_desc("step").y_desc(metric.as_str()).draw()?;
    for (i, (name, points)) in lines.into_iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}
