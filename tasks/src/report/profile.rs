//! Performance profiles (Dolan and Moré, 2002), as AlgoPerf scores submissions
//! (`mlcommons/algorithmic-efficiency`, `scoring/performance_profile.py`): on each task every
//! optimizer has a cost (smaller is better); its ratio is its cost over the best cost on that
//! task, and its profile rho(tau) is the fraction of the tasks on which its ratio is at most
//! tau. An optimizer without a result on a task (none completed) has ratio infinity there.
//!
//! AlgoPerf's cost is the time to reach a target. Here it is the final primary metric of the
//! optimizer's selected setting (mean over seeds), turned into a cost as follows:
//! - lower is better (losses, perplexity, FID): the value itself;
//! - higher is better, with every value of the task in [0, 1] (accuracies): the error, 1 - value;
//! - higher is better otherwise (BLEU): 1 / value, so the ratio is best / value.
//!
//! A ratio needs costs above zero: a task whose best cost is not (a loss that reaches 0 or goes
//! negative, an accuracy of 1) is left out of the profile and listed as such.

use std::collections::{BTreeMap, BTreeSet};

use crate::task::Goal;

/// One task's results: each optimizer's value of the task's metric (`None`: no result).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskValues {
    pub task: String,
    pub goal: Goal,
    pub values: BTreeMap<String, Option<f64>>,
}

/// The profiles of a set of tasks.
#[derive(Clone, Debug, PartialEq)]
pub struct Profiles {
    /// Per optimizer: its ratio on each task in the profile (infinite: no result).
    pub ratios: BTreeMap<String, Vec<f64>>,
    /// The tasks in the profile.
    pub tasks: Vec<String>,
    /// The tasks left out, with why.
    pub left_out: Vec<String>,
}

/// The costs of a task's values (see the module's doc); `None` for a missing value.
pub fn costs(task: &TaskValues) -> BTreeMap<String, Option<f64>> {
    let finite: Vec<f64> = task.values.values().flatten().copied().filter(|v| v.is_finite()).collect();
    let unit = finite.iter().all(|v| (0.0..=1.0).contains(v));
    task.values
        .iter()
        .map(|(name, v)| {
            let cost = v.filter(|v| v.is_finite()).map(|v| match task.goal {
                Goal::Min => v,
                Goal::Max if unit => 1.0 - v,
                Goal::Max => 1.0 / v,
            });
            (name.clone(), cost)
        })
        .collect()
}

impl Profiles {
    pub fn of(tasks: &[TaskValues]) -> Self {
        let names: BTreeSet<String> = tasks.iter().flat_map(|t| t.values.keys().cloned()).collect();
        let mut ratios: BTreeMap<String, Vec<f64>> = names.iter().map(|n| (n.clone(), Vec::new())).collect();
        let (mut kept, mut left_out) = (Vec::new(), Vec::new());
        for task in tasks {
            let costs = costs(task);
            let best = costs.values().flatten().copied().fold(f64::INFINITY, f64::min);
            if !best.is_finite() {
                left_out.push(format!("{}: no optimizer has a result", task.task));
                continue;
            }
            if best <= 0.0 {
                left_out.push(format!("{}: a cost is not above 0 (best {best})", task.task));
                continue;
            }
            kept.push(task.task.clone());
            for name in &names {
                let ratio = match costs.get(name).copied().flatten() {
                    Some(c) if c > 0.0 => c / best,
                    _ => f64::INFINITY,
                };
                ratios.get_mut(name).expect("every name").push(ratio);
            }
        }
        Self { ratios, tasks: kept, left_out }
    }

    /// rho(tau) of one optimizer.
    pub fn rho(&self, optimizer: &str, tau: f64) -> f64 {
        let Some(r) = self.ratios.get(optimizer) else { return 0.0 };
        if r.is_empty() {
            return 0.0;
        }
        r.iter().filter(|&&x| x <= tau).count() as f64 / r.len() as f64
    }

    /// The corners of an optimizer's profile: `(tau, rho(tau))` at each finite ratio, in order.
    pub fn steps(&self, optimizer: &str) -> Vec<(f64, f64)> {
        let mut taus: Vec<f64> =
            self.ratios.get(optimizer).into_iter().flatten().copied().filter(|r| r.is_finite()).collect();
        taus.sort_by(f64::total_cmp);
        taus.dedup();
        taus.into_iter().map(|t| (t, self.rho(optimizer, t))).collect()
    }

    /// The largest finite ratio.
    pub fn max_ratio(&self) -> f64 {
        self.ratios.values().flatten().copied().filter(|r| r.is_finite()).fold(1.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str, goal: Goal, values: &[(&str, Option<f64>)]) -> TaskValues {
        TaskValues { task: name.into(), goal, values: values.iter().map(|(n, v)| (n.to_string(), *v)).collect() }
    }

    #[test]
    fn ratios_to_the_best_per_task() {
        let tasks = [
            task("loss", Goal::Min, &[("a", Some(1.0)), ("b", Some(2.0))]),
            task("acc", Goal::Max, &[("a", Some(0.8)), ("b", Some(0.9))]),
            task("bleu", Goal::Max, &[("a", Some(20.0)), ("b", None)]),
            task("zero", Goal::Min, &[("a", Some(0.0)), ("b", Some(1.0))]),
        ];
        let p = Profiles::of(&tasks);
        assert_eq!(p.tasks, ["loss", "acc", "bleu"]);
        assert_eq!(p.left_out.len(), 1);
        let a = &p.ratios["a"];
        assert_eq!(a[0], 1.0);
        assert!((a[1] - 2.0).abs() < 1e-9, "error 0.2 against 0.1");
        assert_eq!(a[2], 1.0);
        let b = &p.ratios["b"];
        assert_eq!((b[0], b[1], b[2]), (2.0, 1.0, f64::INFINITY));
        assert!((p.rho("a", 1.0) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(p.rho("a", 2.0), 1.0);
        assert_eq!(p.rho("b", 100.0), 2.0 / 3.0);
    }
}
