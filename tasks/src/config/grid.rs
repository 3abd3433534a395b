//! Optimizer arms with hyperparameter grids. A value is a scalar (fixed), a list (a grid), or a
//! range table: `{ log = [1e-4, 1e-1], num = 4 }` (geometric) or `{ linear = [0.8, 0.95],
//! num = 4 }`. An arm expands into the cartesian product of its grids, keys in sorted order,
//! values in the order given.

use std::collections::BTreeMap;

use optimizers::HyperValue;
use serde_json::Value;

use super::ArmEntry;

/// An arm with its grids read: everything still to be checked against the optimizer.
#[derive(Clone, Debug, PartialEq)]
pub struct Arm {
    pub name: String,
    pub label: String,
    /// Each hyperparameter with the values it takes (one for a fixed value).
    pub values: BTreeMap<String, Vec<HyperValue>>,
}

impl Arm {
    /// The number of combinations, without making them.
    pub fn count(&self) -> u128 {
        self.values.values().fold(1u128, |n, v| n.saturating_mul(v.len() as u128))
    }

    /// Every combination of the grid values.
    pub fn settings(&self) -> Vec<BTreeMap<String, HyperValue>> {
        let mut settings = vec![BTreeMap::new()];
        for (key, values) in &self.values {
            settings = settings
                .into_iter()
                .flat_map(|setting| {
                    values.iter().map(move |v| {
                        let mut s = setting.clone();
                        s.insert(key.clone(), v.clone());
                        s
                    })
                })
                .collect();
        }
        settings
    }
}

/// Reads one arm; errors are `(key, message)`.
pub fn read_arm(entry: &ArmEntry) -> Result<Arm, (String, String)> {
    let mut values = BTreeMap::new();
    let mut name = None;
    let mut label = None;
    for (key, raw) in &entry.0 {
        match key.as_str() {
            "name" | "label" => {
                let Value::String(s) = raw else {
                    return Err((key.clone(), format!("must be a string, not {raw}")));
                };
                if key == "name" {
                    name = Some(s.clone());
                } else {
                    label = Some(s.clone());
                }
            }
            _ => {
                values.insert(key.clone(), read_values(raw).map_err(|m| (key.clone(), m))?);
            }
        }
    }
    let name = name.ok_or_else(|| {
        (
            "name".to_string(),
            format!("an optimizer arm needs a `name`: one of {}", optimizers::registry::names().join(", ")),
        )
    })?;
    let label = label.unwrap_or_else(|| name.clone());
    Ok(Arm { name, label, values })
}

/// The most values one range table makes.
const MAX_RANGE: u64 = 100_000;

/// TOML's `nan` and `inf` reach the config as JSON, which has no such numbers: as `null`.
const NOT_FINITE: &str = "not a finite number (nan, inf or null): give a finite number";

fn read_values(raw: &Value) -> Result<Vec<HyperValue>, String> {
    if let Some(v) = HyperValue::from_json(raw) {
        return Ok(vec![v]);
    }
    match raw {
        Value::Array(items) if items.is_empty() => Err("an empty grid: give at least one value".into()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                HyperValue::from_json(item).ok_or_else(|| match item {
                    Value::Null => format!("a grid value is {NOT_FINITE}"),
                    _ => format!("grid values must be numbers, booleans or strings, not {item}"),
                })
            })
            .collect(),
        Value::Object(table) => read_range(table),
        Value::Null => Err(NOT_FINITE.into()),
        other => Err(format!("expected a value, a list of values or a range table, not {other}")),
    }
}

fn read_range(table: &serde_json::Map<String, Value>) -> Result<Vec<HyperValue>, String> {
    let expected = "a range is `{ log = [low, high], num = n }` or `{ linear = [low, high], num = n }`";
    let kind = match (table.get("log"), table.get("linear")) {
        (Some(bounds), None) => ("log", bounds),
        (None, Some(bounds)) => ("linear", bounds),
        _ => return Err(expected.into()),
    };
    if let Some(extra) = table.keys().find(|k| !["log", "linear", "num"].contains(&k.as_str())) {
        return Err(format!("unknown key `{extra}` in a range; {expected}"));
    }
    let bounds: Vec<f64> = kind.1.as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
    let [low, high] = bounds[..] else { return Err(expected.into()) };
    let num = table
        .get("num")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("`num` must be a whole number >= 1; {expected}"))?;
    if num == 0 {
        return Err("`num` must be at least 1".into());
    }
    if num > MAX_RANGE {
        return Err(format!("`num` = {num}: a range has at most {MAX_RANGE} values"));
    }
    if kind.0 == "log" && !(low > 0.0 && high > 0.0) {
        return Err(format!("a log range needs bounds > 0, not [{low}, {high}]"));
    }
    let at = |i: u64| -> f64 {
        let f = if num == 1 { 0.0 } else { i as f64 / (num - 1) as f64 };
        let v = if kind.0 == "log" { low * (high / low).powf(f) } else { low + (high - low) * f };
        round_significant(v)
    };
    Ok((0..num).map(|i| HyperValue::Float(at(i))).collect())
}

/// Rounds to 12 significant digits, so that a log range gives 0.001, not 0.0009999999999.
fn round_significant(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    format!("{v:.11e}").parse().unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(json: &str) -> Result<Arm, (String, String)> {
        read_arm(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn grids_and_ranges_expand_to_the_product() {
        let a =
            arm(r#"{"name": "adashift", "lr": {"log": [1e-4, 1e-1], "num": 4}, "keep_num": [1, 10], "phi": "max"}"#)
                .unwrap();
        assert_eq!(a.label, "adashift");
        assert_eq!(a.values["lr"], [1e-4, 1e-3, 1e-2, 1e-1].iter().map(|&x| HyperValue::Float(x)).collect::<Vec<_>>());
        let settings = a.settings();
        assert_eq!(settings.len(), 8);
        assert_eq!(settings[0]["keep_num"], HyperValue::Int(1));
        assert_eq!(settings[1]["keep_num"], HyperValue::Int(1));
        assert_eq!(settings[1]["lr"], HyperValue::Float(1e-3));
        let linear = arm(r#"{"name": "adam", "beta1": {"linear": [0.8, 0.9], "num": 3}}"#).unwrap();
        assert_eq!(
            linear.values["beta1"],
            vec![HyperValue::Float(0.8), HyperValue::Float(0.85), HyperValue::Float(0.9)]
        );
    }

    #[test]
    fn bad_arms_say_what_is_expected() {
        assert!(arm(r#"{"lr": 0.1}"#).unwrap_err().1.contains("needs a `name`"));
        assert_eq!(arm(r#"{"name": "adam", "lr": []}"#).unwrap_err().0, "lr");
        assert!(arm(r#"{"name": "adam", "lr": {"log": [0, 1], "num": 3}}"#).unwrap_err().1.contains("bounds > 0"));
        assert!(arm(r#"{"name": "adam", "lr": {"log": [0.1, 1], "steps": 3}}"#)
            .unwrap_err()
            .1
            .contains("unknown key `steps`"));
        assert!(arm(r#"{"name": "adam", "lr": [[1]]}"#).unwrap_err().1.contains("grid values must be"));
    }
}
