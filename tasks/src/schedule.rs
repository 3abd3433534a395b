//! Learning-rate schedules, applied by the runner through `set_learning_rate` before every
//! step. `step` is 1-based; `updates = step - 1` is the number of updates already made (the
//! counter fairseq's schedulers see).
//!
//! | kind | learning rate at a step | from |
//! |---|---|---|
//! | `constant` | `lr` | |
//! | `multistep` | `lr factor^k`, `k` = milestones passed (in epochs, or in steps) | `torch.optim.lr_scheduler.MultiStepLR` |
//! | `cosine` | `min_lr + (lr - min_lr) (1 + cos(pi updates / total)) / 2` | `CosineAnnealingLR` |
//! | `warmup-inverse-sqrt` | linear from `init_lr` to `lr` over `warmup` updates, then `lr sqrt(warmup / updates)` | fairseq `inverse_sqrt` |
//! | `cold-start` | `lr` for `warmup` updates, then `lr sqrt(warmup / updates)` | AdaMod's `cold_start` |
//! | `inverse-sqrt` | `lr / sqrt(step)` | the online problems' `alpha / sqrt(t)` (Reddi et al.) |

use serde::{Deserialize, Serialize};

/// A learning-rate schedule, as a config writes it: `schedule = { kind = "multistep",
/// epochs = [150, 225], factor = 0.1 }`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Schedule {
    #[default]
    Constant,
    Multistep {
        /// Epochs after which the rate is multiplied by `factor` (as `MultiStepLR` stepped once
        /// per epoch: the rate of epoch `e`, counted from 0, has passed every milestone <= e).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        epochs: Vec<u64>,
        /// Or steps after which it is (for tasks without epochs).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        steps: Vec<u64>,
        #[serde(default = "default_factor")]
        factor: f64,
    },
    Cosine {
        #[serde(default)]
        min_lr: f64,
    },
    WarmupInverseSqrt {
        warmup: u64,
        #[serde(default)]
        init_lr: f64,
    },
    ColdStart {
        warmup: u64,
    },
    InverseSqrt,
}

/// The keys each kind takes besides `kind`.
const KEYS: &[(&str, &[&str])] = &[
    ("constant", &[]),
    ("multistep", &["epochs", "steps", "factor"]),
    ("cosine", &["min_lr"]),
    ("warmup-inverse-sqrt", &["warmup", "init_lr"]),
    ("cold-start", &["warmup"]),
    ("inverse-sqrt", &[]),
];

impl<'de> Deserialize<'de> for Schedule {
    /// As derived, and a key that the kind does not take is an error that names it (serde
    /// ignores extra keys of the kinds without fields).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        let kinds = || KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ");
        let map = value.as_object().ok_or_else(|| {
            D::Error::custom(format!("a schedule is a table `{{ kind = \"...\", ... }}`; kinds: {}", kinds()))
        })?;
        let kind = map
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or_else(|| D::Error::custom(format!("a schedule needs `kind`, one of {}", kinds())))?;
        let Some((_, keys)) = KEYS.iter().find(|(k, _)| *k == kind) else {
            return Err(D::Error::custom(format!("unknown schedule kind `{kind}`; kinds: {}", kinds())));
        };
        if let Some(key) = map.keys().find(|key| *key != "kind" && !keys.contains(&key.as_str())) {
            let valid = if keys.is_empty() { "none".to_string() } else { keys.join(", ") };
            return Err(D::Error::custom(format!("schedule `{kind}` takes no key `{key}`; its keys: {valid}")));
        }
        Schedule::deserialize(value).map_err(D::Error::custom)
    }
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Schedule::serialize(self, serializer)
    }
}

impl std::fmt::Display for Schedule {
    /// The schedule as a config would write it, compactly: `multistep(epochs=[150, 225], factor=0.1)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Constant => write!(f, "constant"),
            Schedule::Multistep { epochs, steps, factor } if !epochs.is_empty() || steps.is_empty() => {
                write!(f, "multistep(epochs={epochs:?}, factor={factor})")
            }
            Schedule::Multistep { steps, factor, .. } => write!(f, "multistep(steps={steps:?}, factor={factor})"),
            Schedule::Cosine { min_lr } => write!(f, "cosine(min_lr={min_lr})"),
            Schedule::WarmupInverseSqrt { warmup, init_lr } => {
                write!(f, "warmup-inverse-sqrt(warmup={warmup}, init_lr={init_lr})")
            }
            Schedule::ColdStart { warmup } => write!(f, "cold-start(warmup={warmup})"),
            Schedule::InverseSqrt => write!(f, "inverse-sqrt"),
        }
    }
}

fn default_factor() -> f64 {
    0.1
}

/// Where the run is, for a schedule.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// 1-based step about to be taken.
    pub step: u64,
    /// Steps in the whole run.
    pub total_steps: u64,
    /// Steps per epoch, for tasks that have epochs.
    pub steps_per_epoch: Option<u64>,
}

impl Schedule {
    /// Checks the schedule against the task's budget; says what is wrong.
    pub fn validate(&self, has_epochs: bool) -> Result<(), String> {
        match self {
            Schedule::Multistep { epochs, steps, factor } => {
                if epochs.is_empty() == steps.is_empty() {
                    return Err("multistep needs `epochs = [...]` or `steps = [...]` (one of the two)".into());
                }
                if !epochs.is_empty() && !has_epochs {
                    return Err("multistep `epochs` needs a task with epochs; give `steps = [...]`".into());
                }
                if !(factor.is_finite() && *factor > 0.0) {
                    return Err(format!("multistep factor must be > 0, not {factor}"));
                }
            }
            Schedule::Cosine { min_lr } if !(min_lr.is_finite() && *min_lr >= 0.0) => {
                return Err(format!("cosine min_lr must be >= 0, not {min_lr}"));
            }
            Schedule::WarmupInverseSqrt { warmup, .. } | Schedule::ColdStart { warmup } if *warmup == 0 => {
                return Err("warmup must be at least 1 update".into());
            }
            Schedule::WarmupInverseSqrt { init_lr, .. } if !(init_lr.is_finite() && *init_lr >= 0.0) => {
                return Err(format!("warmup-inverse-sqrt init_lr must be >= 0, not {init_lr}"));
            }
            _ => {}
        }
        Ok(())
    }

    /// The learning rate for the step `at.step`, from the base rate `lr`.
    pub fn lr(&self, lr: f64, at: Progress) -> f64 {
        let updates = at.step.saturating_sub(1);
        match self {
            Schedule::Constant => lr,
            Schedule::Multistep { epochs, steps, factor } => {
                let passed = if !epochs.is_empty() {
                    let epoch = updates / at.steps_per_epoch.unwrap_or(u64::MAX).max(1);
                    epochs.iter().filter(|&&m| m <= epoch).count()
                } else {
                    steps.iter().filter(|&&m| m <= updates).count()
                };
                lr * factor.powi(passed as i32)
            }
            Schedule::Cosine { min_lr } => {
                let progress = updates as f64 / at.total_steps.max(1) as f64;
                min_lr + (lr - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0
            }
            Schedule::WarmupInverseSqrt { warmup, init_lr } => {
                if updates < *warmup {
                    init_lr + (lr - init_lr) * updates as f64 / *warmup as f64
                } else {
                    lr * (*warmup as f64 / updates as f64).sqrt()
                }
            }
            Schedule::ColdStart { warmup } => {
                if updates < *warmup {
                    lr
                } else {
                    lr * (*warmup as f64 / updates as f64).sqrt()
                }
            }
            Schedule::InverseSqrt => lr / (at.step.max(1) as f64).sqrt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(step: u64) -> Progress {
        Progress { step, total_steps: 100, steps_per_epoch: Some(10) }
    }

    #[test]
    fn multistep_in_epochs_follows_multisteplr() {
        let s = Schedule::Multistep { epochs: vec![2, 4], steps: vec![], factor: 0.1 };
        // Steps 1..=20 are epochs 0 and 1; the first decay applies from epoch 2 (step 21).
        assert_eq!(s.lr(1.0, at(20)), 1.0);
        assert!((s.lr(1.0, at(21)) - 0.1).abs() < 1e-15);
        assert!((s.lr(1.0, at(41)) - 0.01).abs() < 1e-15);
        let by_steps = Schedule::Multistep { epochs: vec![], steps: vec![5], factor: 0.5 };
        assert_eq!(by_steps.lr(2.0, at(5)), 2.0);
        assert_eq!(by_steps.lr(2.0, at(6)), 1.0);
    }

    #[test]
    fn cosine_goes_from_lr_to_min_lr() {
        let s = Schedule::Cosine { min_lr: 0.1 };
        assert_eq!(s.lr(1.0, at(1)), 1.0);
        assert!((s.lr(1.0, at(51)) - 0.55).abs() < 1e-12);
        assert!((s.lr(1.0, at(101)) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn fairseq_inverse_sqrt_and_cold_start() {
        let s = Schedule::WarmupInverseSqrt { warmup: 4, init_lr: 0.0 };
        let lrs: Vec<f64> = (1..=6).map(|t| s.lr(1.0, at(t))).collect();
        assert_eq!(&lrs[..4], &[0.0, 0.25, 0.5, 0.75]);
        assert_eq!(lrs[4], 1.0);
        assert!((lrs[5] - (4.0f64 / 5.0).sqrt()).abs() < 1e-15);
        let c = Schedule::ColdStart { warmup: 4 };
        assert_eq!(c.lr(1.0, at(1)), 1.0);
        assert_eq!(c.lr(1.0, at(5)), 1.0);
        assert!((c.lr(1.0, at(17)) - 0.5).abs() < 1e-15);
        assert_eq!(Schedule::InverseSqrt.lr(3.0, at(9)), 1.0);
    }

    #[test]
    fn validation_says_what_is_missing() {
        let empty = Schedule::Multistep { epochs: vec![], steps: vec![], factor: 0.1 };
        assert!(empty.validate(true).unwrap_err().contains("`epochs = [...]` or `steps = [...]`"));
        let epochs = Schedule::Multistep { epochs: vec![3], steps: vec![], factor: 0.1 };
        assert!(epochs.validate(false).unwrap_err().contains("needs a task with epochs"));
        assert!(Schedule::ColdStart { warmup: 0 }.validate(false).is_err());
        let parsed: Schedule = toml::from_str("kind = \"multistep\"\nepochs = [150, 225]").unwrap();
        assert_eq!(parsed, Schedule::Multistep { epochs: vec![150, 225], steps: vec![], factor: 0.1 });
        let negative = Schedule::WarmupInverseSqrt { warmup: 4, init_lr: -1e-7 };
        assert!(negative.validate(false).unwrap_err().contains("init_lr must be >= 0, not -0.0000001"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = toml::from_str::<Schedule>("kind = \"constant\"\nfoo = 1").unwrap_err().to_string();
        assert!(err.contains("schedule `constant` takes no key `foo`; its keys: none"), "{err}");
        let err = toml::from_str::<Schedule>("kind = \"cosine\"\nmin = 1").unwrap_err().to_string();
        assert!(err.contains("schedule `cosine` takes no key `min`; its keys: min_lr"), "{err}");
        let err = toml::from_str::<Schedule>("kind = \"linear\"").unwrap_err().to_string();
        assert!(err.contains("unknown schedule kind `linear`"), "{err}");
        let back: Schedule =
            serde_json::from_str(&serde_json::to_string(&Schedule::ColdStart { warmup: 3 }).unwrap()).unwrap();
        assert_eq!(back, Schedule::ColdStart { warmup: 3 });
    }
}
