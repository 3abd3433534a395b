//! A paper's claims as data (`[[claims]]` in a config), stored with every result of the task
//! they are about (as `[[reported]]` numbers are), so that a report judges them from result
//! files alone:
//!
//! ```toml
//! [[claims]]                  # optimizer A beats optimizer B on a metric of a task
//! kind = "beats"
//! task = "online-sequential"
//! optimizer = "max-adashift"  # A (an arm label)
//! other = "adam"              # B
//! metric = "x"
//! statistic = "final"         # final: the last evaluation; best: the best one of each run
//! margin = 1.0                # A better than B by more than this (default 0), in the metric's units
//! source = "AdaShift (ICLR 2019) Fig. 1"
//!
//! [[claims]]                  # a metric of an optimizer ends above (or below) a value
//! kind = "below"              # or "above"
//! task = "online-sequential"
//! optimizer = "max-adashift"
//! metric = "x"
//! value = -0.9
//! statistic = "final"
//! source = "..."
//! ```

use serde::{Deserialize, Serialize};

use super::ReportedKind;

/// What a claim says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimKind {
    /// `optimizer` does better than `other` on `metric` (by more than `margin`).
    Beats,
    /// `optimizer`'s `metric` ends above `value`.
    Above,
    /// `optimizer`'s `metric` ends below `value`.
    Below,
}

impl ClaimKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimKind::Beats => "beats",
            ClaimKind::Above => "above",
            ClaimKind::Below => "below",
        }
    }
}

/// One claim of a paper about a task of the config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub kind: ClaimKind,
    /// The task label.
    pub task: String,
    /// The optimizer arm label the claim is about (A of "A beats B").
    pub optimizer: String,
    /// B of "A beats B" (only for `beats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
    pub metric: String,
    /// The value of `above` / `below`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// `beats`: A's mean must be better than B's by more than this (in the metric's units).
    #[serde(default)]
    pub margin: f64,
    /// Which evaluation of each run: the last one (`final`) or its best (`best`), as the paper
    /// states it.
    pub statistic: ReportedKind,
    /// Where the paper says so (paper, table or figure; the code it comes from).
    #[serde(default)]
    pub source: String,
}

impl Claim {
    /// The claim in words: `max-adashift beats adam on final x by > 1`.
    pub fn describe(&self) -> String {
        let statistic = self.statistic.as_str();
        match self.kind {
            ClaimKind::Beats => {
                let margin = if self.margin != 0.0 { format!(" by > {}", self.margin) } else { String::new() };
                format!(
                    "{} beats {} on {statistic} {}{margin}",
                    self.optimizer,
                    self.other.as_deref().unwrap_or("?"),
                    self.metric
                )
            }
            ClaimKind::Above | ClaimKind::Below => format!(
                "{} {statistic} {} {} {}",
                self.optimizer,
                self.metric,
                self.kind.as_str(),
                self.value.map_or("?".to_string(), |v| v.to_string())
            ),
        }
    }

    /// What is wrong with the claim on its own (the plan checks its task, optimizers and
    /// metric against the config): `(key, message)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        match self.kind {
            ClaimKind::Beats => {
                let Some(other) = &self.other else {
                    return Err((
                        "other".into(),
                        "a `beats` claim names the optimizer beaten: `other = \"adam\"`".into(),
                    ));
                };
                if other == &self.optimizer {
                    return Err(("other".into(), format!("`{other}` cannot beat itself")));
                }
                if self.value.is_some() {
                    return Err((
                        "value".into(),
                        "a `beats` claim compares two optimizers: use `margin`, not `value`".into(),
                    ));
                }
                if !(self.margin.is_finite() && self.margin >= 0.0) {
                    return Err(("margin".into(), format!("must be a number >= 0, not {}", self.margin)));
                }
            }
            ClaimKind::Above | ClaimKind::Below => {
                if self.other.is_some() {
                    return Err((
                        "other".into(),
                        format!(
                            "an `{}` claim is about one optimizer: use kind = \"beats\" to compare two",
                            self.kind.as_str()
                        ),
                    ));
                }
                match self.value {
                    None => {
                        return Err((
                            "value".into(),
                            format!("an `{}` claim needs the value: `value = 0.9`", self.kind.as_str()),
                        ))
                    }
                    Some(v) if !v.is_finite() => return Err(("value".into(), format!("must be finite, not {v}"))),
                    Some(_) => {}
                }
                if self.margin != 0.0 {
                    return Err(("margin".into(), "`margin` is for `beats` claims".into()));
                }
            }
        }
        Ok(())
    }
}

/// Checks the claims of a config against its tasks (`(label, task name)`) and optimizer arm
/// labels: `(key path, message)` of the first error.
pub fn check_all(claims: &[Claim], tasks: &[(&str, &str)], arms: &[&str]) -> Result<(), (String, String)> {
    for (k, claim) in claims.iter().enumerate() {
        let at = |key: &str| format!("claims[{k}].{key}");
        claim.check().map_err(|(key, m)| (at(&key), m))?;
        let Some((_, name)) = tasks.iter().find(|(label, _)| *label == claim.task) else {
            let labels: Vec<&str> = tasks.iter().map(|(l, _)| *l).collect();
            return Err((
                at("task"),
                format!("no task labelled `{}` in this config; its tasks: {}", claim.task, labels.join(", ")),
            ));
        };
        let info = crate::task::find(name).expect("the plan checked the task names");
        if !info.has_metric(&claim.metric) {
            let metrics: Vec<&str> = info.metrics.iter().map(|m| m.name.as_str()).collect();
            return Err((
                at("metric"),
                format!(
                    "task `{}` has no metric `{}`; its metrics: {}, train_loss",
                    info.name,
                    claim.metric,
                    metrics.join(", ")
                ),
            ));
        }
        for (key, label) in [("optimizer", Some(&claim.optimizer)), ("other", claim.other.as_ref())] {
            if let Some(label) = label.filter(|l| !arms.contains(&l.as_str())) {
                return Err((
                    at(key),
                    format!("no optimizer labelled `{label}` in this config; its arms: {}", arms.join(", ")),
                ));
            }
        }
    }
    Ok(())
}
