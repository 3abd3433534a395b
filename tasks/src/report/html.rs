//! `report.html`: one self-contained page (inline SVG and CSS; no scripts, no network, no
//! files referenced) written beside `report.md`: the report's markdown rendered (whatever it
//! holds: claims, tables, warnings), the plots inline ([`super::plot`]; a task's under its
//! section, the others after), the configs the runs were made with (each sweep's config file
//! as it is now, and the resolved setup every result records) and the software (what each
//! result records, and the machine writing the page).
//!
//! The markdown renderer covers what `report.md` uses: ATX headings, pipe tables (with `:`
//! alignment), `-`/`*`/`1.` lists, paragraphs, `>` quotes, `---` rules, fenced code, and inline
//! `code`, **bold**, *italic* and `[text](address)` links (shown as text with the address, not
//! as a link). Everything else is text, escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::plot::{self, Loaded};
use super::svg::escape;
use crate::runner::record::{self, Software};
use crate::runner::sweep::{self, Sweep};

/// Inline markdown of one line or cell: code spans, bold, italic, links; the rest escaped.
pub fn inline(text: &str) -> String {
    let mut pieces: Vec<String> = text.split('`').map(str::to_string).collect();
    if pieces.len().is_multiple_of(2) {
        // An unmatched backtick is text.
        let last = pieces.pop().unwrap_or_default();
        let before = pieces.pop().unwrap_or_default();
        pieces.push(format!("{before}`{last}"));
    }
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| if i % 2 == 1 { format!("<code>{}</code>", escape(p)) } else { emphasis(&links(p)) })
        .collect()
}

/// `[text](address)` as `text (address)`, escaped.
fn links(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find("](") else { break };
        let Some(end) = after[close + 2..].find(')') else { break };
        out.push_str(&escape(&rest[..open]));
        let (label, address) = (&after[..close], &after[close + 2..close + 2 + end]);
        let _ = write!(out, "{} (<span class=\"address\">{}</span>)", escape(label), escape(address));
        rest = &after[close + 2 + end + 1..];
    }
    out.push_str(&escape(rest));
    out
}

/// `**bold**` and `*italic*` in escaped text.
fn emphasis(text: &str) -> String {
    let text = pairs(text, "**", "strong");
    pairs(&text, "*", "em")
}

/// Wraps text between pairs of `mark` (not followed by a space when opening) in `tag`.
fn pairs(text: &str, mark: &str, tag: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find(mark) {
        let inner = &rest[open + mark.len()..];
        let opens = inner.chars().next().is_some_and(|c| !c.is_whitespace());
        match inner.find(mark).filter(|_| opens) {
            Some(close) if close > 0 && !inner[..close].ends_with(' ') => {
                let _ = write!(out, "{}<{tag}>{}</{tag}>", &rest[..open], &inner[..close]);
                rest = &inner[close + mark.len()..];
            }
            _ => {
                out.push_str(&rest[..open + mark.len()]);
                rest = inner;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The cells of a table line `| a | b |` (a `\|` is a `|` in a cell; `|` in code spans stay).
fn cells(line: &str) -> Vec<String> {
    let line = line.trim();
    let line = line.strip_prefix('|').unwrap_or(line);
    let line = line.strip_suffix('|').unwrap_or(line);
    let mut out = vec![String::new()];
    let (mut code, mut escaped) = (false, false);
    for c in line.chars() {
        match c {
            '\\' if !escaped => {
                escaped = true;
                continue;
            }
            '`' => code = !code,
            '|' if !code && !escaped => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if escaped && c != '|' {
            out.last_mut().expect("a cell").push('\\');
        }
        escaped = false;
        out.last_mut().expect("a cell").push(c);
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

fn is_rule_row(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('|') && t.contains('-') && t.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// Markdown to HTML (see the module's doc for what is understood).
pub fn markdown_to_html(md: &str) -> String {
    let lines: Vec<&str> = md.lines().collect();
    let mut out = String::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut list: Option<&str> = None;
    let flush = |out: &mut String, paragraph: &mut Vec<&str>| {
        if !paragraph.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", inline(&paragraph.join(" ")));
            paragraph.clear();
        }
    };
    let close_list = |out: &mut String, list: &mut Option<&str>| {
        if let Some(tag) = list.take() {
            let _ = writeln!(out, "</{tag}>");
        }
    };
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        if let Some(fence) = t.strip_prefix("```") {
            flush(&mut out, &mut paragraph);
            close_list(&mut out, &mut list);
            let _ = fence;
            let mut code = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].trim().starts_with("```") {
                code.push(lines[i]);
                i += 1;
            }
            let _ = writeln!(out, "<pre><code>{}</code></pre>", escape(&code.join("\n")));
            i += 1;
            continue;
        }
        if t.is_empty() {
            flush(&mut out, &mut paragraph);
            close_list(&mut out, &mut list);
        } else if let Some(level) = (1..=6).find(|&n| t.starts_with(&"#".repeat(n)) && t[n..].starts_with(' ')) {
            flush(&mut out, &mut paragraph);
            close_list(&mut out, &mut list);
            let _ = writeln!(out, "<h{level}>{}</h{level}>", inline(t[level..].trim()));
        } else if t.starts_with('|') {
            flush(&mut out, &mut paragraph);
            close_list(&mut out, &mut list);
            let mut block = Vec::new();
            while i < lines.len() && lines[i].trim().starts_with('|') {
                block.push(lines[i]);
                i += 1;
            }
            out.push_str(&table(&block));
            continue;
        } else if t == "---" || t == "***" {
            flush(&mut out, &mut paragraph);
            close_list(&mut out, &mut list);
            out.push_str("<hr>\n");
        } else if let Some(item) = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")) {
            flush(&mut out, &mut paragraph);
            if list != Some("ul") {
                close_list(&mut out, &mut list);
                out.push_str("<ul>\n");
                list = Some("ul");
            }
            let _ = writeln!(out, "<li>{}</li>", inline(item));
        } else if let Some(item) = ordered_item(t) {
            flush(&mut out, &mut paragraph);
            if list != Some("ol") {
                close_list(&mut out, &mut list);
                out.push_str("<ol>\n");
                list = Some("ol");
            }
            let _ = writeln!(out, "<li>{}</li>", inline(item));
        } else if let Some(quote) = t.strip_prefix('>') {
            flush(&mut out, &mut paragraph);
            close_list(&mut out, &mut list);
            let _ = writeln!(out, "<blockquote>{}</blockquote>", inline(quote.trim()));
        } else if list.is_some() && line.starts_with("  ") {
            // A list item's continuation line.
            if let Some(pos) = out.rfind("</li>") {
                out.replace_range(pos.., &format!(" {}</li>\n", inline(t)));
            }
        } else {
            close_list(&mut out, &mut list);
            paragraph.push(t);
        }
        i += 1;
    }
    flush(&mut out, &mut paragraph);
    close_list(&mut out, &mut list);
    out
}

fn ordered_item(t: &str) -> Option<&str> {
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    (digits > 0).then(|| t[digits..].strip_prefix(". ")).flatten()
}

/// A pipe table: a header row, an optional rule row (with alignment), body rows.
fn table(block: &[&str]) -> String {
    let mut out = String::from("<table>\n");
    let header = cells(block[0]);
    let (aligns, body) = if block.len() > 1 && is_rule_row(block[1]) {
        let aligns: Vec<&str> = cells(block[1])
            .iter()
            .map(|c| match (c.starts_with(':'), c.ends_with(':')) {
                (true, true) => "center",
                (false, true) => "right",
                _ => "",
            })
            .collect();
        (aligns, &block[2..])
    } else {
        (Vec::new(), &block[1..])
    };
    let style = |k: usize| match aligns.get(k) {
        Some(a) if !a.is_empty() => format!(" style=\"text-align:{a}\""),
        _ => String::new(),
    };
    out.push_str("<thead><tr>");
    for (k, c) in header.iter().enumerate() {
        let _ = write!(out, "<th{}>{}</th>", style(k), inline(c));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for line in body {
        out.push_str("<tr>");
        for (k, c) in cells(line).iter().enumerate() {
            let _ = write!(out, "<td{}>{}</td>", style(k), inline(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    out
}

const CSS: &str = "body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:13px}\
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}\
code{background:#f4f4f4;padding:0 3px;border-radius:3px}\
pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}\
figure{margin:1.5em 0;overflow-x:auto}figcaption{font-weight:bold;margin-bottom:4px}\
.address{color:#555}blockquote{border-left:3px solid #ccc;margin-left:0;padding-left:10px;color:#444}\
td.json{font-family:monospace;font-size:11px;max-width:700px;word-break:break-all}";

/// An SVG for inline use: without the XML namespace (HTML needs none), so that the page holds
/// no address at all.
fn inline_svg(svg: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

/// The model name of the CPU writing the page (Linux), and the cores it has.
fn cpu() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_string())
    });
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{}, {cores} cores available",
        model.unwrap_or_else(|| format!("{} (model unknown)", std::env::consts::ARCH))
    )
}

/// (experiment, task, optimizer, setting)
type ArmKey = (String, String, String, String);

/// The configs section: each sweep's config file, then the resolved setup of every arm's
/// setting as its results record it.
fn configs(dir: &Path, results: &[Loaded]) -> String {
    let mut out = String::from("<h2>Configs</h2>\n");
    let manifests = sweep::find(dir);
    if manifests.is_empty() {
        out.push_str("<p>No sweep manifest (sweep.json) here: the configs are known only by what each result records (below).</p>\n");
    }
    for path in manifests {
        match Sweep::load(&path) {
            Ok(s) => {
                let _ = writeln!(
                    out,
                    "<h3>{}: <code>{}</code> ({} runs)</h3>",
                    escape(&s.experiment),
                    escape(&s.config.display().to_string()),
                    s.runs.len()
                );
                match std::fs::read_to_string(&s.config) {
                    Ok(text) => {
                        let _ =
                            writeln!(out, "<p>The file as it is now:</p>\n<pre><code>{}</code></pre>", escape(&text));
                    }
                    Err(e) => {
                        let _ = writeln!(
                            out,
                            "<p>The file cannot be read now ({}); the setups below are what the results record.</p>",
                            escape(&e.to_string())
                        );
                    }
                }
            }
            Err(e) => {
                let _ = writeln!(out, "<p>{}</p>", escape(&e));
            }
        }
    }
    // (experiment, task, optimizer, setting) -> (seeds, task setup, optimizer spec)
    let mut arms: BTreeMap<ArmKey, (Vec<u64>, String, String)> = BTreeMap::new();
    for l in results {
        let r = &l.result;
        let e = arms
            .entry((r.experiment.clone(), r.task.label.clone(), r.optimizer_label.clone(), r.setting.clone()))
            .or_insert_with(|| {
                let task = serde_json::to_string(&r.task).unwrap_or_default();
                let opt = serde_json::to_string(&r.optimizer).unwrap_or_default();
                (Vec::new(), task, opt)
            });
        e.0.push(r.seed);
    }
    if !arms.is_empty() {
        out.push_str("<h3>Resolved setups, as the results record them</h3>\n<table>\n<thead><tr><th>experiment</th><th>task</th><th>optimizer</th><th>setting</th><th>seeds</th><th>optimizer spec</th><th>task setup</th></tr></thead>\n<tbody>\n");
        for ((experiment, task, optimizer, setting), (mut seeds, task_json, opt_json)) in arms {
            seeds.sort_unstable();
            let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"json\">{}</td><td class=\"json\">{}</td></tr>",
                escape(&experiment),
                escape(&task),
                escape(&optimizer),
                escape(&setting),
                seeds.join(", "),
                escape(&opt_json),
                escape(&task_json)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out
}

/// The software section: what the results record, and what writes the page.
fn software(results: &[Loaded]) -> String {
    let mut out = String::from("<h2>Software</h2>\n");
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for l in results {
        let s = &l.result.software;
        let key = format!(
            "optbench {} (git {}), candle {}, {}, {} {}{}",
            s.optbench,
            l.result.git_commit,
            s.candle,
            s.rustc,
            s.os,
            s.arch,
            if s.features.is_empty() { String::new() } else { format!(", features {}", s.features.join(" ")) }
        );
        *seen.entry((key, l.result.device.clone())).or_default() += 1;
    }
    out.push_str("<table>\n<thead><tr><th>runs made with</th><th>device</th><th>runs</th></tr></thead>\n<tbody>\n");
    for ((key, device), n) in seen {
        let _ = writeln!(out, "<tr><td>{}</td><td>{}</td><td>{n}</td></tr>", escape(&key), escape(&device));
    }
    out.push_str("</tbody></table>\n");
    let now = Software::current();
    let _ = writeln!(
        out,
        "<p>This page: optbench {} (git {}), candle {}, {}, {} {}; CPU of the machine writing it (results do not record theirs): {}.</p>",
        escape(&now.optbench),
        escape(record::git_commit()),
        escape(&now.candle),
        escape(&now.rustc),
        escape(&now.os),
        escape(&now.arch),
        escape(&cpu())
    );
    out
}

/// The whole page for the results under `dir`, with `markdown` as its report.
pub fn page(dir: &Path, markdown: &str) -> String {
    let results = plot::load(dir);
    let figures = plot::figures(&results);
    let title = markdown
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .map_or_else(|| format!("optbench report: {}", dir.display()), str::to_string);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    // The report by `## ` sections; a task's plots after the section of its heading
    // (`## experiment / task`), the others (toy panels, profiles) at the end.
    let mut placed = vec![false; figures.len()];
    let mut sections: Vec<Vec<&str>> = vec![Vec::new()];
    for line in markdown.lines() {
        if line.starts_with("## ") {
            sections.push(Vec::new());
        }
        sections.last_mut().expect("a section").push(line);
    }
    let figure = |f: &plot::Figure| {
        format!(
            "<figure id=\"{}\">\n<figcaption>{}</figcaption>\n{}</figure>\n",
            escape(&f.name),
            escape(&f.title),
            inline_svg(&f.svg)
        )
    };
    for section in sections {
        out.push_str(&markdown_to_html(&section.join("\n")));
        let Some(heading) = section.first().and_then(|l| l.strip_prefix("## ")) else { continue };
        for (f, done) in figures.iter().zip(placed.iter_mut()) {
            if !*done && f.title.starts_with(&format!("{}: ", heading.trim())) {
                out.push_str(&figure(f));
                *done = true;
            }
        }
    }
    out.push_str("<h2>Plots</h2>\n");
    if figures.is_empty() {
        out.push_str("<p>No plots: no readable results.</p>\n");
    } else if placed.iter().all(|p| *p) {
        out.push_str("<p>Each task's plots are under its table above.</p>\n");
    }
    for (f, done) in figures.iter().zip(&placed) {
        if !done {
            out.push_str(&figure(f));
        }
    }
    out.push_str(&configs(dir, &results));
    out.push_str(&software(&results));
    out.push_str("</body>\n</html>\n");
    out
}

/// Writes `report.html` into `dir` from the `report.md` there; returns its path.
pub fn write(dir: &Path) -> std::io::Result<PathBuf> {
    let markdown = std::fs::read_to_string(dir.join("report.md"))?;
    let path = dir.join("report.html");
    crate::util::atomic::write_atomically_shared(&path, page(dir, &markdown).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_escaped() {
        let md = "# T\n\nSome **bold** and *it* and `a|b <c>`.\n\n| x | y |\n|---|--:|\n| `p\\|q` | 1 < 2 |\n\n- one\n- two\n";
        let html = markdown_to_html(md);
        assert!(html.contains("<h1>T</h1>"), "{html}");
        assert!(html.contains("<strong>bold</strong>") && html.contains("<em>it</em>"), "{html}");
        assert!(html.contains("<code>a|b &lt;c&gt;</code>"), "{html}");
        assert!(html.contains("<th>x</th><th style=\"text-align:right\">y</th>"), "{html}");
        assert!(html.contains("<td><code>p|q</code></td><td style=\"text-align:right\">1 &lt; 2</td>"), "{html}");
        assert!(html.contains("<ul>\n<li>one</li>\n<li>two</li>\n</ul>"), "{html}");
        assert_eq!(inline("a * b * c"), "a * b * c", "spaced stars are not emphasis");
        assert_eq!(inline("test_accuracy_x"), "test_accuracy_x");
        assert_eq!(inline("[doc](http://x)"), "doc (<span class=\"address\">http://x</span>)");
    }
}
