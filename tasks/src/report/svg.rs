//! A small SVG writer for the report's plots: panels with linear or log axes, ticks, lines,
//! markers, min-max bands, crosses and a legend, each panel's data clipped to its frame.
//!
//! Written directly rather than through plotters: the plots need log axes, filled bands,
//! clipping and a legend outside the data, which are a few lines each here, and the output
//! must be parseable by the tests (every data element names its series and kind, and every
//! panel says how data maps to pixels, so a test can read the data back from the picture).
//!
//! The elements a test can rely on:
//! - `<g class="panel" data-title="TITLE" data-x="lin|log LO HI PX0 PX1" data-y="...">`: a value `v` is drawn at
//!   `PX0 + (t(v) - t(LO)) / (t(HI) - t(LO)) * (PX1 - PX0)`, with `t = log10` on a log axis;
//! - `<polyline class="series" data-series="NAME" points="x,y x,y ...">`;
//! - `<circle class="marker" data-series="NAME" cx= cy=>` (a point of a series with few points);
//! - `<circle class="mark" ...>` (a toy path's mark every k steps);
//! - `<polygon class="band" data-series="NAME">` (min-max over seeds);
//! - `<path class="diverged" data-series="NAME" data-at="X,Y">` (where a diverged run ended).

use std::fmt::Write as _;

/// The colours of the series, in order (the "tab10" palette).
pub const COLORS: [&str; 10] =
    ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/// The colour of the `i`-th series.
pub fn color(i: usize) -> &'static str {
    COLORS[i % COLORS.len()]
}

/// Escapes text for SVG and HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One axis: its range and scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
}

impl Axis {
    fn t(&self, v: f64) -> f64 {
        if self.log {
            v.log10()
        } else {
            v
        }
    }

    /// Where `v` lies between `lo` (0) and `hi` (1).
    pub fn frac(&self, v: f64) -> f64 {
        let (a, b) = (self.t(self.lo), self.t(self.hi));
        if b == a {
            0.5
        } else {
            (self.t(v) - a) / (b - a)
        }
    }

    /// A range holding every finite value (positive ones on a log axis), padded by 5%; a single
    /// value gets a range around it, so that it is drawn inside the frame.
    pub fn fit(values: impl IntoIterator<Item = f64>, log: bool) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values {
            if v.is_finite() && (!log || v > 0.0) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if !lo.is_finite() {
            return Self { lo: if log { 0.1 } else { 0.0 }, hi: if log { 10.0 } else { 1.0 }, log };
        }
        if log {
            let (a, b) = (lo.log10(), hi.log10());
            let pad = if b > a { 0.05 * (b - a) } else { 0.5 };
            Self { lo: 10f64.powf(a - pad), hi: 10f64.powf(b + pad), log }
        } else {
            let pad = if hi > lo { 0.05 * (hi - lo) } else { (lo.abs() * 0.1).max(0.5) };
            Self { lo: lo - pad, hi: hi + pad, log }
        }
    }

    /// Tick positions: "nice" steps on a linear axis, powers of ten (and 2, 5 times them on a
    /// short range) on a log axis.
    pub fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (a, b) = (self.lo.log10().floor() as i32, self.hi.log10().ceil() as i32);
            let mults: &[f64] = if b - a <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
            let step = ((b - a) / 8 + 1).max(1);
            let mut out = Vec::new();
            let mut k = a;
            while k <= b {
                for m in mults {
                    let v = m * 10f64.powi(k);
                    if v >= self.lo * (1.0 - 1e-9) && v <= self.hi * (1.0 + 1e-9) {
                        out.push(v);
                    }
                }
                k += step;
            }
            if out.len() < 3 {
                // A short range (profiles from 1 to 1.9): evenly spaced values, on the log scale.
                out = Axis { log: false, ..*self }.ticks().into_iter().filter(|v| *v > 0.0).collect();
            }
            out
        } else {
            let span = self.hi - self.lo;
            if span <= 0.0 || !span.is_finite() {
                return vec![self.lo];
            }
            let raw = span / 5.0;
            let mag = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
            let first = (self.lo / step).ceil() as i64;
            let last = (self.hi / step).floor() as i64;
            (first..=last).map(|k| k as f64 * step).collect()
        }
    }
}

/// A short label for a tick value.
pub fn tick_label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let e = a.log10().floor() as i32;
        let m = v / 10f64.powi(e);
        if (m.abs() - 1.0).abs() < 1e-9 {
            return format!("{}1e{e}", if v < 0.0 { "-" } else { "" });
        }
        return format!("{m:.3}e{e}").replace(".000e", "e").replace("00e", "e").replace("0e", "e");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Pixel points without those within half a pixel of the previous one kept (the first and
/// the last are kept): a line of 10,000 evaluations draws the same with a few hundred.
pub fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(points.len().min(2048));
    for (i, &(x, y)) in points.iter().enumerate() {
        let last = i + 1 == points.len();
        match out.last() {
            Some(&(a, b)) if !last && (x - a).abs() < 0.5 && (y - b).abs() < 0.5 => {}
            _ => out.push((x, y)),
        }
    }
    out
}

/// A rectangle of the figure with its axes.
#[derive(Clone, Debug)]
pub struct Panel {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub xaxis: Axis,
    pub yaxis: Axis,
}

impl Panel {
    pub fn px(&self, v: f64) -> f64 {
        self.x + self.w * self.xaxis.frac(v)
    }

    pub fn py(&self, v: f64) -> f64 {
        self.y + self.h * (1.0 - self.yaxis.frac(v))
    }

    /// Whether a point can be drawn (finite, and positive on a log axis).
    pub fn drawable(&self, (x, y): (f64, f64)) -> bool {
        x.is_finite() && y.is_finite() && (!self.xaxis.log || x > 0.0) && (!self.yaxis.log || y > 0.0)
    }
}

fn map_attr(axis: &Axis, p0: f64, p1: f64) -> String {
    format!("{} {} {} {p0:.3} {p1:.3}", if axis.log { "log" } else { "lin" }, axis.lo, axis.hi)
}

/// An SVG document being written.
pub struct Svg {
    pub width: f64,
    pub height: f64,
    body: String,
    clips: usize,
}

impl Svg {
    pub fn new(width: f64, height: f64) -> Self {
        Self { width, height, body: String::new(), clips: 0 }
    }

    /// Text at `(x, y)`; `anchor` is `start`, `middle` or `end`.
    pub fn text(&mut self, x: f64, y: f64, text: &str, size: f64, anchor: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}">{}</text>"#,
            escape(text)
        );
    }

    /// Text turned a quarter to the left (a y axis's label).
    fn vertical_text(&mut self, x: f64, y: f64, text: &str, size: f64) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="middle" transform="rotate(-90 {x:.1} {y:.1})">{}</text>"#,
            escape(text)
        );
    }

    /// The frame, ticks, grid and labels of a panel, then opens its data group (clipped to the
    /// frame); close it with [`Svg::end_panel`].
    pub fn begin_panel(&mut self, p: &Panel, title: &str, xlabel: &str, ylabel: &str) {
        let _ = writeln!(
            self.body,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#fff" stroke="#444" stroke-width="1"/>"##,
            p.x, p.y, p.w, p.h
        );
        for v in p.xaxis.ticks() {
            let x = p.px(v);
            let _ = writeln!(
                self.body,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#e4e4e4"/>"##,
                p.y,
                p.y + p.h
            );
            self.text(x, p.y + p.h + 14.0, &tick_label(v), 10.0, "middle");
        }
        for v in p.yaxis.ticks() {
            let y = p.py(v);
            let _ = writeln!(
                self.body,
                r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/>"##,
                p.x,
                p.x + p.w
            );
            self.text(p.x - 4.0, y + 3.5, &tick_label(v), 10.0, "end");
        }
        self.text(p.x + p.w / 2.0, p.y - 6.0, title, 12.0, "middle");
        self.text(p.x + p.w / 2.0, p.y + p.h + 30.0, xlabel, 11.0, "middle");
        self.vertical_text(p.x - 44.0, p.y + p.h / 2.0, ylabel, 11.0);
        self.clips += 1;
        let _ = writeln!(
            self.body,
            r#"<clipPath id="clip{}"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/></clipPath>"#,
            self.clips, p.x, p.y, p.w, p.h
        );
        let _ = writeln!(
            self.body,
            r#"<g class="panel" clip-path="url(#clip{})" data-title="{}" data-x="{}" data-y="{}">"#,
            self.clips,
            escape(title),
            map_attr(&p.xaxis, p.x, p.x + p.w),
            map_attr(&p.yaxis, p.y + p.h, p.y)
        );
    }

    pub fn end_panel(&mut self) {
        self.body.push_str("</g>\n");
    }

    /// A series: a line through its drawable points (broken where one is not), and a marker
    /// on each point when `markers` (so that a series of one point is visible).
    pub fn series(&mut self, p: &Panel, name: &str, color: &str, points: &[(f64, f64)], markers: bool) {
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, body: &mut String| {
            if run.len() >= 2 {
                let pixels: Vec<(f64, f64)> = run.iter().map(|&(x, y)| (p.px(x), p.py(y))).collect();
                let pts: Vec<String> = thin(&pixels).iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = writeln!(
                    body,
                    r#"<polyline class="series" data-series="{}" fill="none" stroke="{color}" stroke-width="1.8" points="{}"/>"#,
                    escape(name),
                    pts.join(" ")
                );
            }
            run.clear();
        };
        for &pt in points {
            if p.drawable(pt) {
                run.push(pt);
            } else {
                flush(&mut run, &mut self.body);
            }
        }
        flush(&mut run, &mut self.body);
        if markers {
            for &pt in points.iter().filter(|pt| p.drawable(**pt)) {
                self.circle(p, "marker", name, color, pt, 3.2);
            }
        }
    }

    /// A filled circle of class `class` at a data point.
    pub fn circle(&mut self, p: &Panel, class: &str, name: &str, color: &str, (x, y): (f64, f64), r: f64) {
        let _ = writeln!(
            self.body,
            r#"<circle class="{class}" data-series="{}" cx="{:.2}" cy="{:.2}" r="{r}" fill="{color}"/>"#,
            escape(name),
            p.px(x),
            p.py(y)
        );
    }

    /// A band between `lower` and `upper` (same x values), filled lightly.
    pub fn band(&mut self, p: &Panel, name: &str, color: &str, lower: &[(f64, f64)], upper: &[(f64, f64)]) {
        let ok = |pt: &&(f64, f64)| p.drawable(**pt);
        let mut pixels: Vec<(f64, f64)> = upper.iter().filter(ok).map(|&(x, y)| (p.px(x), p.py(y))).collect();
        pixels.extend(lower.iter().rev().filter(ok).map(|&(x, y)| (p.px(x), p.py(y))));
        let pts: Vec<String> = thin(&pixels).iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        if pts.len() < 3 {
            return;
        }
        let _ = writeln!(
            self.body,
            r#"<polygon class="band" data-series="{}" fill="{color}" fill-opacity="0.18" stroke="none" points="{}"/>"#,
            escape(name),
            pts.join(" ")
        );
    }

    /// A cross where a diverged run ended.
    pub fn diverged(&mut self, p: &Panel, name: &str, color: &str, (x, y): (f64, f64)) {
        let (cx, cy) = (p.px(x), p.py(y));
        let _ = writeln!(
            self.body,
            r#"<path class="diverged" data-series="{}" data-at="{cx:.2},{cy:.2}" d="M{:.2} {:.2}L{:.2} {:.2}M{:.2} {:.2}L{:.2} {:.2}" stroke="{color}" stroke-width="2.2"/>"#,
            escape(name),
            cx - 5.0,
            cy - 5.0,
            cx + 5.0,
            cy + 5.0,
            cx - 5.0,
            cy + 5.0,
            cx + 5.0,
            cy - 5.0
        );
    }

    /// A raw element (contours).
    pub fn raw(&mut self, element: &str) {
        self.body.push_str(element);
        self.body.push('\n');
    }

    /// A legend at `(x, y)` going down: a line (and a marker) per entry, then notes in grey.
    pub fn legend(&mut self, x: f64, y: f64, entries: &[(String, &str)], notes: &[String]) {
        // The figure grows to hold the longest line (about 6.5 px a character at these sizes).
        let widest = entries
            .iter()
            .map(|(n, _)| 26.0 + 6.5 * n.chars().count() as f64)
            .chain(notes.iter().map(|n| 6.0 * n.chars().count() as f64))
            .fold(0.0, f64::max);
        self.width = self.width.max(x + widest + 10.0);
        let mut y = y;
        for (name, color) in entries {
            let _ = writeln!(
                self.body,
                r#"<g class="legend"><line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2.5"/></g>"#,
                x + 20.0
            );
            self.text(x + 26.0, y + 4.0, name, 11.0, "start");
            y += 17.0;
        }
        for note in notes {
            let _ = writeln!(
                self.body,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#555">{}</text>"##,
                x,
                y + 4.0,
                escape(note)
            );
            y += 14.0;
        }
    }

    pub fn finish(self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
             font-family=\"sans-serif\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>\n{}</svg>\n",
            self.body,
            w = self.width,
            h = self.height
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_the_values_and_a_single_value_lies_inside() {
        let a = Axis::fit([3.0], false);
        assert!(a.lo < 3.0 && a.hi > 3.0);
        let a = Axis::fit([1e-3, 1e-1, f64::NAN, -1.0], true);
        assert!(a.lo < 1e-3 && a.hi > 1e-1 && (a.frac(1e-2) - 0.5).abs() < 1e-9);
        let ticks = Axis { lo: 0.0, hi: 1.0, log: false }.ticks();
        assert_eq!(ticks.len(), 6);
        assert!((ticks[3] - 0.6).abs() < 1e-12);
        assert_eq!(Axis { lo: 0.9e-4, hi: 2e-1, log: true }.ticks(), [1e-4, 1e-3, 1e-2, 1e-1]);
        assert_eq!(Axis { lo: 1.0, hi: 1.9, log: true }.ticks().len(), 5, "a short log range has ticks too");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(1e-4), "1e-4");
    }
}
