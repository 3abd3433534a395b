//! The papers' claims ([`Claim`], `[[claims]]` in a config, stored with each result), judged
//! from the results: at each optimizer's selected setting, over its completed seeds, the
//! statistic the claim names (each seed's final value, or its best). A claim
//!
//! - **holds** when the mean says what the claim says: A's mean is better than B's by more than
//!   the margin (`beats`), or the mean is above / below the value;
//! - **fails** when it does not;
//! - has **not enough runs** when a side has no completed run with the metric.
//!
//! With at least two seeds per side it also gives the 95% confidence interval of the
//! difference of means (Welch, for `beats`; of the mean, for `above` / `below`) and the
//! one-sided p-value of the claim's t-test (Welch's, or the one-sample test): how likely a
//! difference this large would be if the claim were just false. The verdict is on the means;
//! the interval and p-value say how sure it is.

use std::fmt::Write as _;

use super::stats::{one_sample, welch, Stats, Test};
use super::{number, ArmRow};
use crate::config::{Claim, ClaimKind};
use crate::runner::record::RunResult;
use crate::task::Goal;

/// A claim's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    Fails,
    NotEnoughRuns,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Fails => "fails",
            Verdict::NotEnoughRuns => "not enough runs",
        }
    }
}

/// A claim of an experiment with what the results say of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Judged {
    pub experiment: String,
    pub claim: Claim,
    pub verdict: Verdict,
    /// The claim's optimizer's per-seed statistic, and its setting.
    pub a: Option<Stats>,
    pub a_setting: Option<String>,
    /// `beats`: the other optimizer's.
    pub b: Option<Stats>,
    pub b_setting: Option<String>,
    /// How far the claim's way the means are: `beats`, A's mean minus B's in the metric's
    /// better direction (positive: A better); `above`, the mean minus the value; `below`, the
    /// value minus the mean.
    pub difference: Option<f64>,
    /// With >= 2 seeds per side: the interval (of the difference for `beats`, of the mean for
    /// `above` / `below`) and the p-value.
    pub test: Option<Test>,
    /// Why there are not enough runs.
    pub why: Option<String>,
}

/// Every claim stored in the results (once per experiment), judged at the rows' selected
/// settings.
pub fn judge(results: &[RunResult], rows: &[ArmRow]) -> Vec<Judged> {
    let mut claims: Vec<(String, Claim)> = Vec::new();
    for r in results {
        for c in &r.claims {
            let key = (r.experiment.clone(), c.clone());
            if !claims.contains(&key) {
                claims.push(key);
            }
        }
    }
    claims.into_iter().map(|(experiment, claim)| judge_one(experiment, claim, rows)).collect()
}

/// The per-seed values of a side: its stats and setting, or why there are none.
fn side(rows: &[ArmRow], experiment: &str, claim: &Claim, optimizer: &str) -> Result<(Stats, String, Goal), String> {
    let row = rows
        .iter()
        .find(|r| r.experiment == experiment && r.task == claim.task && r.optimizer == optimizer)
        .ok_or_else(|| format!("no results of {optimizer} on {}", claim.task))?;
    let goal = match row.metrics.iter().find(|m| m.metric == claim.metric) {
        Some(m) => m.goal,
        None => return Err(format!("{optimizer}'s results have no `{}`", claim.metric)),
    };
    let values = row.per_seed(&claim.metric, goal, claim.statistic);
    let stats = Stats::of(&values).ok_or_else(|| {
        format!(
            "{optimizer}: no completed run with `{}` ({} completed, {} diverged, {} failed)",
            claim.metric, row.completed, row.diverged, row.failed
        )
    })?;
    Ok((stats, row.setting.clone(), goal))
}

fn judge_one(experiment: String, claim: Claim, rows: &[ArmRow]) -> Judged {
    let mut judged = Judged {
        experiment: experiment.clone(),
        claim: claim.clone(),
        verdict: Verdict::NotEnoughRuns,
        a: None,
        a_setting: None,
        b: None,
        b_setting: None,
        difference: None,
        test: None,
        why: None,
    };
    let a = side(rows, &experiment, &claim, &claim.optimizer);
    let b = match (claim.kind, &claim.other) {
        (ClaimKind::Beats, Some(other)) => Some(side(rows, &experiment, &claim, other)),
        _ => None,
    };
    if let Ok((s, setting, _)) = &a {
        judged.a = Some(*s);
        judged.a_setting = Some(setting.clone());
    }
    if let Some(Ok((s, setting, _))) = &b {
        judged.b = Some(*s);
        judged.b_setting = Some(setting.clone());
    }
    let why: Vec<String> =
        [a.as_ref().err().cloned(), b.as_ref().and_then(|b| b.as_ref().err().cloned())].into_iter().flatten().collect();
    if !why.is_empty() {
        judged.why = Some(why.join("; "));
        return judged;
    }
    let (sa, _, goal) = a.expect("checked");
    let (difference, test) = match claim.kind {
        ClaimKind::Beats => {
            let (sb, _, _) = b.expect("a beats claim has another side").expect("checked");
            match goal {
                Goal::Max => (sa.mean - sb.mean, welch(sa, sb, claim.margin)),
                Goal::Min => (sb.mean - sa.mean, welch(sb, sa, claim.margin)),
            }
        }
        ClaimKind::Above => {
            let value = claim.value.unwrap_or(f64::NAN);
            (sa.mean - value, one_sample(sa, value))
        }
        ClaimKind::Below => {
            let value = claim.value.unwrap_or(f64::NAN);
            let negated = Stats { mean: -sa.mean, ..sa };
            let test = one_sample(negated, -value).map(|t| Test { estimate: sa.mean, low: -t.high, high: -t.low, ..t });
            (value - sa.mean, test)
        }
    };
    judged.difference = Some(difference);
    judged.test = test;
    let threshold = if claim.kind == ClaimKind::Beats { claim.margin } else { 0.0 };
    judged.verdict = if difference > threshold { Verdict::Holds } else { Verdict::Fails };
    judged
}

fn mean_cell(name: &str, stats: Option<Stats>, setting: Option<&String>) -> String {
    match stats {
        None => format!("{name}: none"),
        Some(s) => {
            let spread = if s.n > 1 { format!(" ± {} (n={})", number(s.std), s.n) } else { " (n=1)".into() };
            format!("{name} {}{spread}{}", number(s.mean), setting.map(|s| format!(", {s}")).unwrap_or_default())
        }
    }
}

/// `0.034`, or `3.1e-4` below 0.001.
pub fn p_value(p: f64) -> String {
    if p > 0.0 && p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// The `## Claims` section of a report.
pub fn markdown(claims: &[Judged]) -> String {
    let mut out = String::new();
    let count = |v: Verdict| claims.iter().filter(|c| c.verdict == v).count();
    let _ = writeln!(
        out,
        "\n## Claims\n\n{} claims of the papers: **{} hold**, **{} fail**, {} have not enough runs. Each is judged at \
         each optimizer's selected setting, over its completed seeds, on the statistic it names (final: each \
         run's last evaluation; best: each run's best). A claim holds when the means say so: A's mean better \
         than B's by more than the margin (beats), or the mean above / below the value. With 2 or more seeds \
         per side: the 95% confidence interval of the difference of means (Welch) or of the mean, and the \
         one-sided t-test p-value of the claim (Welch's; one-sample for above / below).\n\n\
         | verdict | claim | task | measured | compared with | difference | 95% CI | p | source |\n\
         |---|---|---|---|---|---|---|---|---|",
        claims.len(),
        count(Verdict::Holds),
        count(Verdict::Fails),
        count(Verdict::NotEnoughRuns),
    );
    for j in claims {
        let c = &j.claim;
        let verdict = match j.verdict {
            Verdict::NotEnoughRuns => format!("not enough runs ({})", j.why.as_deref().unwrap_or("")),
            v => format!("**{}**", v.as_str()),
        };
        let measured = mean_cell(&c.optimizer, j.a, j.a_setting.as_ref());
        let compared = match c.kind {
            ClaimKind::Beats => mean_cell(c.other.as_deref().unwrap_or("?"), j.b, j.b_setting.as_ref()),
            _ => format!("{} {}", c.kind.as_str(), c.value.map_or("?".into(), number)),
        };
        let difference = j.difference.map_or(String::new(), |d| {
            let margin = if c.margin != 0.0 { format!(" (margin {})", number(c.margin)) } else { String::new() };
            format!("{}{}{margin}", if d >= 0.0 { "+" } else { "" }, number(d))
        });
        let (ci, p) = match (&j.test, j.verdict) {
            (Some(t), _) => (format!("[{}, {}]", number(t.low), number(t.high)), p_value(t.p)),
            (None, Verdict::NotEnoughRuns) => (String::new(), String::new()),
            (None, _) => ("n/a (fewer than 2 seeds)".into(), "n/a".into()),
        };
        let _ = writeln!(
            out,
            "| {verdict} | {} | {} / {} | {measured} | {compared} | {difference} | {ci} | {p} | {} |",
            c.describe(),
            j.experiment,
            c.task,
            c.source.replace('|', "/").replace('\n', " "),
        );
    }
    out
}
