//! `report.tex`: the report's tables as a standalone LaTeX document (booktabs), for a paper:
//! the claims, then per task the ranked optimizers (mean ± std of the final primary metric at
//! the selected setting, the best value, the margin to the next, the runs). Every text field
//! is escaped ([`escape`]).

use std::fmt::Write as _;

use super::claims::Verdict;
use super::{number, ArmRow, Report, Stats};
use crate::task::Goal;

/// `text` with LaTeX's special characters escaped, so that any label, setting or source
/// typesets as written.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '<' => out.push_str("\\textless{}"),
            '>' => out.push_str("\\textgreater{}"),
            '±' => out.push_str("$\\pm$"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn stats(s: Option<Stats>) -> String {
    match s {
        None => "n/a".into(),
        Some(s) if s.n == 1 => number(s.mean),
        Some(s) => format!("{} $\\pm$ {}", number(s.mean), number(s.std)),
    }
}

/// The whole document.
pub fn document(report: &Report, title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "% Written by optbench from the result files under {}.\n\\documentclass{{article}}\n\\usepackage{{booktabs}}\n\
         \\usepackage[margin=2cm,landscape]{{geometry}}\n\\begin{{document}}\n\\section*{{optbench report: {}}}",
        title.replace('\n', " "),
        escape(title)
    );
    if !report.claims.is_empty() {
        let _ = writeln!(
            out,
            "\\subsection*{{Claims}}\n\\begin{{tabular}}{{lllll}}\n\\toprule\nVerdict & Claim & Task & Difference & $p$ \\\\\n\\midrule"
        );
        for j in &report.claims {
            let verdict = match j.verdict {
                Verdict::Holds => "\\textbf{holds}",
                Verdict::Fails => "\\textbf{fails}",
                Verdict::NotEnoughRuns => "not enough runs",
            };
            let _ = writeln!(
                out,
                "{verdict} & {} & {} & {} & {} \\\\",
                escape(&j.claim.describe()),
                escape(&j.claim.task),
                j.difference.map_or(String::new(), number),
                j.test.map_or("n/a".into(), |t| super::claims::p_value(t.p)),
            );
        }
        let _ = writeln!(out, "\\bottomrule\n\\end{{tabular}}");
    }
    for ((experiment, task), rows) in report.tasks() {
        task_table(&mut out, &experiment, &task, &rows);
    }
    out.push_str("\\end{document}\n");
    out
}

fn task_table(out: &mut String, experiment: &str, task: &str, rows: &[&ArmRow]) {
    let first = rows[0];
    let primary = first.primary();
    let metric = primary.map_or("?", |p| p.metric.as_str());
    let goal = primary.map_or(Goal::Min, |p| p.goal);
    let selected = if first.on_validation {
        format!("selected on {}", first.selected_on)
    } else {
        "selected on test (no validation metric)".to_string()
    };
    let _ = writeln!(
        out,
        "\\subsection*{{{} / {}}}\n{}; mean $\\pm$ std over seeds.\n\n\\begin{{tabular}}{{rllllll}}\n\\toprule\n\
         Rank & Optimizer & Setting & Final {} & Best {} & vs.\\ next & Runs ok / div. / failed \\\\\n\\midrule",
        escape(experiment),
        escape(task),
        escape(&selected),
        escape(metric),
        escape(metric)
    );
    let value = |r: &ArmRow| r.primary().and_then(|p| p.last).map(|s| s.mean);
    for (i, row) in rows.iter().enumerate() {
        let p = row.primary();
        let margin = match (value(row), rows.get(i + 1).and_then(|r| value(r))) {
            (Some(a), Some(b)) => number(if goal == Goal::Max { a - b } else { b - a }),
            _ => String::new(),
        };
        let name = if i == 0 && value(row).is_some() {
            format!("\\textbf{{{}}}", escape(&row.optimizer))
        } else {
            escape(&row.optimizer)
        };
        let _ = writeln!(
            out,
            "{} & {name} & {} & {} & {} & {margin} & {} / {} / {} \\\\",
            i + 1,
            escape(&row.setting),
            stats(p.and_then(|p| p.last)),
            stats(p.and_then(|p| p.best)),
            row.completed,
            row.diverged,
            row.failed
        );
    }
    let _ = writeln!(out, "\\bottomrule\n\\end{{tabular}}");
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn every_special_character_is_escaped() {
        assert_eq!(
            escape(r"lr_0.1 & 50% $x# {a} ~b^c \d"),
            r"lr\_0.1 \& 50\% \$x\# \{a\} \textasciitilde{}b\textasciicircum{}c \textbackslash{}d"
        );
        assert_eq!(escape("0.9 ± 0.1\nnext"), r"0.9 $\pm$ 0.1 next");
        assert_eq!(escape("a<b>c"), r"a\textless{}b\textgreater{}c");
    }
}
