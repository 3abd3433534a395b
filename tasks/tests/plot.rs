//! Each plot kind draws the data it is given: synthetic result files (written by the tests, no
//! training), then the SVG parsed back: its series, markers and bands read back to data
//! through each panel's mapping (`data-x`, `data-y`), and compared with the input.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use tasks::plan::RunSpec;
use tasks::report::plot;
use tasks::runner::record::{stream_path, RunResult, Status};
use tasks::task::{Goal, MetricInfo};

/// An element of the SVG: its name, attributes, and the panel it is in.
#[derive(Clone, Debug)]
pub struct Element {
    pub name: String,
    pub attrs: BTreeMap<String, String>,
    pub panel: Option<Map>,
}

/// A panel's mapping from data to pixels, read back.
#[derive(Clone, Debug)]
pub struct Map {
    pub title: String,
    x: (bool, f64, f64, f64, f64),
    y: (bool, f64, f64, f64, f64),
}

fn axis(text: &str) -> (bool, f64, f64, f64, f64) {
    let p: Vec<&str> = text.split(' ').collect();
    let f = |i: usize| p[i].parse::<f64>().unwrap();
    (p[0] == "log", f(1), f(2), f(3), f(4))
}

fn back((log, lo, hi, p0, p1): (bool, f64, f64, f64, f64), px: f64) -> f64 {
    let t = |v: f64| if log { v.log10() } else { v };
    let v = t(lo) + (px - p0) / (p1 - p0) * (t(hi) - t(lo));
    if log {
        10f64.powf(v)
    } else {
        v
    }
}

impl Map {
    pub fn data(&self, (px, py): (f64, f64)) -> (f64, f64) {
        (back(self.x, px), back(self.y, py))
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// Every element of an SVG, with the panel it lies in.
pub fn parse(svg: &str) -> Vec<Element> {
    let mut out = Vec::new();
    let mut panel: Option<Map> = None;
    for chunk in svg.split('<').skip(1) {
        let tag = chunk.split('>').next().unwrap();
        if let Some(closing) = tag.strip_prefix('/') {
            if closing == "g" {
                panel = None;
            }
            continue;
        }
        let name: String = tag.chars().take_while(|c| c.is_alphanumeric()).collect();
        let mut attrs = BTreeMap::new();
        let mut rest = &tag[name.len()..];
        while let Some(eq) = rest.find("=\"") {
            let key = rest[..eq].trim().to_string();
            let after = &rest[eq + 2..];
            let end = after.find('"').unwrap();
            attrs.insert(key, unescape(&after[..end]));
            rest = &after[end + 1..];
        }
        if name == "g" && attrs.get("class").is_some_and(|c| c == "panel") {
            panel =
                Some(Map { title: attrs["data-title"].clone(), x: axis(&attrs["data-x"]), y: axis(&attrs["data-y"]) });
        }
        out.push(Element { name, attrs, panel: panel.clone() });
    }
    out
}

/// The elements of `class` for series `series` in the panel titled `title`.
pub fn of<'a>(elements: &'a [Element], class: &str, series: &str, title: &str) -> Vec<&'a Element> {
    elements
        .iter()
        .filter(|e| e.attrs.get("class").is_some_and(|c| c == class))
        .filter(|e| e.attrs.get("data-series").is_some_and(|s| s == series))
        .filter(|e| e.panel.as_ref().is_some_and(|p| p.title == title))
        .collect()
}

/// A polyline's points, as data.
pub fn line_points(e: &Element) -> Vec<(f64, f64)> {
    let map = e.panel.as_ref().unwrap();
    e.attrs["points"]
        .split(' ')
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            map.data((x.parse().unwrap(), y.parse().unwrap()))
        })
        .collect()
}

/// A circle's centre, as data.
pub fn circle_point(e: &Element) -> (f64, f64) {
    e.panel.as_ref().unwrap().data((e.attrs["cx"].parse().unwrap(), e.attrs["cy"].parse().unwrap()))
}

/// Where a cross is, as data.
pub fn cross_point(e: &Element) -> (f64, f64) {
    let (x, y) = e.attrs["data-at"].split_once(',').unwrap();
    e.panel.as_ref().unwrap().data((x.parse().unwrap(), y.parse().unwrap()))
}

/// Close enough for pixels written with two decimals.
pub fn near(a: (f64, f64), b: (f64, f64), tolerance: (f64, f64)) -> bool {
    (a.0 - b.0).abs() <= tolerance.0 && (a.1 - b.1).abs() <= tolerance.1
}

/// Writes a synthetic result for every run of the config (nothing trains): `fill` sets what
/// each run did.
pub fn synthetic(dir: &Path, config: &str, fill: impl Fn(&RunSpec, &mut RunResult)) -> std::path::PathBuf {
    let file = write_config(dir, "synthetic.toml", config);
    let out = dir.join("out");
    let plan = load(&file, &out);
    for spec in &plan.runs {
        let mut r = RunResult::start(spec, vec![MetricInfo::new("test_accuracy", Goal::Max)]);
        r.status = Status::Completed;
        fill(spec, &mut r);
        let path = spec.result_path(&out);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        r.save(&path).unwrap();
        if !stream_path(&path).exists() {
            std::fs::write(stream_path(&path), "").unwrap();
        }
    }
    out
}

/// A history of evaluations at `steps` with the metric's values.
pub fn history(r: &mut RunResult, metric: &str, steps: &[u64], values: &[f64], per_epoch: Option<u64>) {
    r.history.step = steps.to_vec();
    r.history.epoch = steps.iter().map(|s| per_epoch.map(|n| *s as f64 / n as f64)).collect();
    r.history.lr = vec![0.1; steps.len()];
    r.history.wall_time = steps.iter().map(|s| *s as f64 * 0.01).collect();
    r.history.train_loss = values.iter().map(|v| Some(1.0 - v)).collect();
    r.history.metrics.insert(metric.into(), values.iter().map(|v| Some(*v).filter(|v| v.is_finite())).collect());
    r.final_metrics = [(metric.to_string(), values.last().copied().filter(|v| v.is_finite()))].into();
    r.steps_per_epoch = per_epoch;
    r.total_steps = steps.last().copied().unwrap_or(0);
    r.steps_done = r.total_steps;
}

fn figure<'a>(figures: &'a [plot::Figure], name: &str) -> &'a plot::Figure {
    figures
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no figure {name}: {:?}", figures.iter().map(|f| &f.name).collect::<Vec<_>>()))
}

const CURVES: &str = r#"
name = "curves"
seeds = [0, 1]

[[tasks]]
name = "online-sequential"
label = "cls"
steps = 30

[[optimizers]]
name = "adam"
lr = 0.01

[[optimizers]]
name = "sgd"
lr = 0.1
"#;

#[test]
fn learning_curves_draw_the_mean_the_band_the_stream_and_where_runs_diverged() {
    let dir = tempfile::tempdir().unwrap();
    let out = synthetic(dir.path(), CURVES, |spec, r| {
        let seed = spec.seed as f64;
        if spec.optimizer_label == "adam" {
            // Three evaluations (epochs 1, 2, 3 of 10 steps), seeds 0.1 apart.
            history(
                r,
                "test_accuracy",
                &[10, 20, 30],
                &[0.5 + 0.1 * seed, 0.6 + 0.1 * seed, 0.7 + 0.1 * seed],
                Some(10),
            );
            let path = spec.result_path(&dir.path().join("out"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let stream: String =
                (1..=30).map(|s| format!("{{\"step\":{s},\"lr\":0.01,\"loss\":{}}}\n", s as f64 + seed)).collect();
            std::fs::write(stream_path(&path), stream).unwrap();
        } else if spec.seed == 0 {
            // sgd seed 0: a single evaluation; seed 1 diverged after its first.
            history(r, "test_accuracy", &[10], &[0.3], Some(10));
        } else {
            history(r, "test_accuracy", &[10, 20], &[0.2, f64::NAN], Some(10));
            r.status = Status::Diverged;
            r.diverged_at_step = Some(15);
        }
    });
    let figures = plot::figures(&plot::load(&out));
    let svg = &figure(&figures, "curves--cls--curves").svg;
    let elements = parse(svg);
    let panel = "test_accuracy";

    // adam: the mean over its two seeds at epochs 1, 2, 3, a marker on each, and a band.
    let lines = of(&elements, "series", "adam (lr-0.01)", panel);
    assert_eq!(lines.len(), 1);
    let points = line_points(lines[0]);
    let expected = [(1.0, 0.55), (2.0, 0.65), (3.0, 0.75)];
    assert_eq!(points.len(), 3, "{points:?}");
    for (p, e) in points.iter().zip(expected) {
        assert!(near(*p, e, (0.01, 0.002)), "{p:?} vs {e:?}");
    }
    let markers = of(&elements, "marker", "adam (lr-0.01)", panel);
    assert_eq!(markers.len(), 3, "few points get markers");
    assert!(near(circle_point(markers[0]), (1.0, 0.55), (0.01, 0.002)));
    let band = of(&elements, "band", "adam (lr-0.01)", panel);
    assert_eq!(band.len(), 1, "two seeds: a min-max band");
    let corners: Vec<(f64, f64)> = band[0].attrs["points"]
        .split(' ')
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            band[0].panel.as_ref().unwrap().data((x.parse().unwrap(), y.parse().unwrap()))
        })
        .collect();
    assert!(near(corners[0], (1.0, 0.6), (0.01, 0.002)) && near(corners[5], (1.0, 0.5), (0.01, 0.002)), "{corners:?}");

    // sgd: one point at epoch 1 (the mean of 0.3 and 0.2): no line, but a visible marker; the
    // diverged seed is a cross at its last finite value.
    let name = "sgd (lr-0.1)";
    assert!(of(&elements, "series", name, panel).is_empty());
    let single = of(&elements, "marker", name, panel);
    assert_eq!(single.len(), 1, "a single point is drawn");
    assert!(near(circle_point(single[0]), (1.0, 0.25), (0.01, 0.002)));
    let crosses = of(&elements, "diverged", name, panel);
    assert_eq!(crosses.len(), 1);
    assert!(near(cross_point(crosses[0]), (1.0, 0.2), (0.01, 0.002)));

    // The loss stream, against epochs: 30 logged steps, one per window, mean over seeds.
    let stream = "training loss (stream, moving average)";
    let lines = of(&elements, "series", "adam (lr-0.01)", stream);
    assert_eq!(lines.len(), 1, "{svg}");
    let points = line_points(lines[0]);
    assert_eq!(points.len(), 30);
    assert!(near(points[0], (0.1, 1.5), (0.01, 0.05)) && near(points[29], (3.0, 30.5), (0.01, 0.05)), "{points:?}");
    // The legend is outside every panel.
    let legend_x: f64 = elements
        .iter()
        .find(|e| e.attrs.get("class").is_some_and(|c| c == "legend"))
        .map(|_| {
            svg.split("<g class=\"legend\"><line x1=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap()
        })
        .unwrap();
    for e in elements.iter().filter(|e| e.name == "rect" && e.attrs.contains_key("stroke")) {
        let right: f64 = e.attrs["x"].parse::<f64>().unwrap() + e.attrs["width"].parse::<f64>().unwrap();
        assert!(legend_x > right, "the legend ({legend_x}) is right of every panel ({right})");
    }
}

const SENSITIVITY: &str = r#"
name = "lrs"
seeds = [0, 1]

[[tasks]]
name = "online-sequential"
label = "cls"
steps = 10

[[optimizers]]
name = "adam"
lr = [0.001, 0.01, 0.1, 1.0]

[[optimizers]]
name = "sgd"
lr = 0.1
"#;

#[test]
fn lr_sensitivity_draws_each_learning_rate_and_marks_those_that_diverged() {
    let dir = tempfile::tempdir().unwrap();
    let out = synthetic(dir.path(), SENSITIVITY, |spec, r| {
        let lr = spec.optimizer.lr().unwrap();
        let seed = spec.seed as f64;
        let value = if spec.optimizer_label == "sgd" { 0.4 } else { 0.9 - 0.1 * lr.log10().abs() + 0.02 * seed };
        history(r, "test_accuracy", &[10], &[value], None);
        if lr == 1.0 && spec.optimizer_label == "adam" {
            r.status = Status::Diverged;
            r.final_metrics.clear();
        }
    });
    let figures = plot::figures(&plot::load(&out));
    let elements = parse(&figure(&figures, "lrs--cls--lr").svg);
    let title = "mean over seeds, band min-max (higher is better)";
    let lines = of(&elements, "series", "adam", title);
    assert_eq!(lines.len(), 1);
    let points = line_points(lines[0]);
    let expected = [(0.001, 0.61), (0.01, 0.71), (0.1, 0.81)];
    assert_eq!(points.len(), 3, "{points:?}");
    for (p, e) in points.iter().zip(expected) {
        assert!((p.0 / e.0 - 1.0).abs() < 0.01 && (p.1 - e.1).abs() < 0.002, "{p:?} vs {e:?}: a log axis");
    }
    assert_eq!(of(&elements, "marker", "adam", title).len(), 3);
    assert_eq!(of(&elements, "band", "adam", title).len(), 1);
    let crosses = of(&elements, "diverged", "adam", title);
    assert_eq!(crosses.len(), 1, "lr 1 diverged on every seed");
    assert!((cross_point(crosses[0]).0 - 1.0).abs() < 0.01);
    let sgd = of(&elements, "marker", "sgd", title);
    assert_eq!(sgd.len(), 1, "a single learning rate is a visible point");
    assert!(near(circle_point(sgd[0]), (0.1, 0.4), (0.001, 0.002)));
}

const PROFILES: &str = r#"
name = "prof"
seeds = [0]

[[tasks]]
name = "online-sequential"
label = "a"
steps = 10

[[tasks]]
name = "online-sequential"
label = "b"
steps = 10

[[optimizers]]
name = "adam"
lr = 0.01

[[optimizers]]
name = "sgd"
lr = 0.1
"#;

#[test]
fn performance_profiles_step_at_each_ratio_to_the_best() {
    let dir = tempfile::tempdir().unwrap();
    // Accuracies (higher is better, in [0, 1]): costs are errors. Task a: adam 0.9 (error 0.1),
    // sgd 0.8 (0.2, ratio 2); task b: adam 0.5 (0.5, ratio 1.25), sgd 0.6 (0.4).
    let out = synthetic(dir.path(), PROFILES, |spec, r| {
        let v = match (spec.task.label.as_str(), spec.optimizer_label.as_str()) {
            ("a", "adam") => 0.9,
            ("a", _) => 0.8,
            ("b", "adam") => 0.5,
            _ => 0.6,
        };
        history(r, "test_accuracy", &[10], &[v], None);
    });
    let figures = plot::figures(&plot::load(&out));
    let elements = parse(&figure(&figures, "performance-profile").svg);
    let title = "fraction of tasks within a factor tau of the best";
    for (name, corners) in [("adam", [(1.0, 0.5), (1.25, 1.0)]), ("sgd", [(1.0, 0.5), (2.0, 1.0)])] {
        let markers: Vec<(f64, f64)> = of(&elements, "marker", name, title).iter().map(|e| circle_point(e)).collect();
        assert_eq!(markers.len(), 2, "{name}: {markers:?}");
        for (m, c) in markers.iter().zip(corners) {
            assert!((m.0 / c.0 - 1.0).abs() < 0.01 && (m.1 - c.1).abs() < 0.005, "{name}: {m:?} vs {c:?}");
        }
        let line = line_points(of(&elements, "series", name, title)[0]);
        assert!(near(line[0], (1.0, 0.5), (0.01, 0.005)), "the profile starts at rho(1)");
    }
}

const TOY: &str = r#"
name = "toy"
seeds = [0, 1]

[[tasks]]
name = "toy2d-quadratic"
steps = 100
eval_every = 10

[[tasks]]
name = "toy2d-abs"
steps = 10
eval_every = 10

[[optimizers]]
name = "adam"
lr = 0.1

[[optimizers]]
name = "sgd"
lr = 0.1
"#;

#[test]
fn toy_panels_draw_every_path_with_marks_and_list_the_diverged() {
    let dir = tempfile::tempdir().unwrap();
    let out = synthetic(dir.path(), TOY, |spec, r| {
        r.metrics =
            vec![MetricInfo::new("loss", Goal::Min), MetricInfo::new("x", Goal::Min), MetricInfo::new("y", Goal::Min)];
        let n = if spec.task.label == "toy2d-abs" { 1 } else { 10 };
        let steps: Vec<u64> = (1..=n).map(|k| 10 * k).collect();
        let xs: Vec<f64> = (1..=n).map(|k| 2.5 - 0.25 * k as f64 + spec.seed as f64).collect();
        // sgd leaves the frame on the quadratic (domain 3) and then diverges.
        let ys: Vec<f64> =
            (1..=n).map(|k| if spec.optimizer_label == "sgd" { k as f64 } else { 0.1 * k as f64 }).collect();
        history(r, "x", &steps, &xs, None);
        r.history.metrics.insert("y".into(), ys.iter().map(|v| Some(*v)).collect());
        r.history.metrics.insert("loss".into(), ys.iter().map(|v| Some(v * v)).collect());
        if spec.optimizer_label == "sgd" && spec.task.label == "toy2d-quadratic" {
            r.status = Status::Diverged;
            r.diverged_at_step = Some(101);
        }
    });
    let figures = plot::figures(&plot::load(&out));
    let svg = &figure(&figures, "toy--toy2d").svg;
    let elements = parse(svg);
    let quadratic = elements
        .iter()
        .filter_map(|e| e.panel.as_ref().map(|p| p.title.clone()))
        .find(|t| t.starts_with("toy2d-quadratic"))
        .unwrap();
    let abs = elements
        .iter()
        .filter_map(|e| e.panel.as_ref().map(|p| p.title.clone()))
        .find(|t| t.starts_with("toy2d-abs"))
        .unwrap();
    // adam on the quadratic: seed 0's path from the start (2.5, 0), through its 10 evaluations.
    let path = line_points(of(&elements, "series", "adam", &quadratic)[0]);
    assert_eq!(path.len(), 11);
    assert!(near(path[0], (2.5, 0.0), (0.01, 0.01)) && near(path[10], (0.0, 1.0), (0.01, 0.01)), "{path:?}");
    // Marks every evaluation here (10 evaluations, about 10 marks), at the path's points.
    let marks = of(&elements, "mark", "adam", &quadratic);
    assert_eq!(marks.len(), 10);
    assert!(near(circle_point(marks[4]), (1.25, 0.5), (0.01, 0.01)));
    assert!(svg.contains("marks every 10 steps"), "{svg}");
    // sgd's path leaves the frame: drawn whole, clipped by the panel.
    let sgd = line_points(of(&elements, "series", "sgd", &quadratic)[0]);
    assert!(near(sgd[10], (0.0, 10.0), (0.01, 0.01)), "not clamped: {sgd:?}");
    assert!(svg.contains("diverged: sgd (step 101)"), "the diverged ones are listed");
    // A single evaluation: a path of two points (the start, then it).
    let single = line_points(of(&elements, "series", "adam", &abs)[0]);
    assert_eq!(single.len(), 2);
    assert!(of(&elements, "mark", "adam", &abs).len() == 1, "a mark on the single point");
}
