//! `optbench export`: every evaluation of every run in long format, CSV and parquet; both read
//! back to the values of the results.

mod common;

use common::*;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use tasks::report::export::{self, Row, COLUMNS};

const CONFIG: &str = r#"
name = "exp"
seeds = [0, 1]

[[tasks]]
name = "toy2d-quadratic"
steps = 30
eval_every = 10

[[optimizers]]
name = "adam"
lr = [0.01, 0.1]
"#;

/// The rows the results hold, from the result files themselves.
fn expected(dir: &std::path::Path) -> Vec<(String, String, u64, u64, String, Option<f64>)> {
    let mut out = Vec::new();
    for r in results(dir) {
        for (i, &step) in r.history.step.iter().enumerate() {
            out.push((r.setting.clone(), "train_loss".into(), r.seed, step, r.status_name(), r.history.train_loss[i]));
            out.push((r.setting.clone(), "lr".into(), r.seed, step, r.status_name(), Some(r.history.lr[i])));
            for (m, values) in &r.history.metrics {
                out.push((r.setting.clone(), m.clone(), r.seed, step, r.status_name(), values[i]));
            }
        }
    }
    out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    out
}

trait StatusName {
    fn status_name(&self) -> String;
}

impl StatusName for tasks::runner::record::RunResult {
    fn status_name(&self) -> String {
        serde_json::to_value(self.status).unwrap().as_str().unwrap().to_string()
    }
}

fn key(r: &Row) -> (String, String, u64, u64, String, Option<f64>) {
    (r.setting.clone(), r.metric.clone(), r.seed, r.step, r.status.clone(), r.value)
}

#[test]
fn csv_and_parquet_hold_every_evaluation_of_every_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("exp.toml"), CONFIG).unwrap();
    let (ok, stdout, stderr) = optbench(&["run", "exp.toml", "--quiet"], dir.path());
    assert!(ok, "{stdout}\n{stderr}");
    let (ok, stdout, stderr) = optbench(&["export", "results/exp", "--out", "long/all"], dir.path());
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("long/all.csv") && stdout.contains("long/all.parquet"), "{stdout}");
    let results_dir = dir.path().join("results/exp");
    let want = expected(&results_dir);
    // 4 runs x 3 evaluations x (train_loss, lr, loss, x, y)
    assert_eq!(want.len(), 4 * 3 * 5);

    // CSV: the header, then the values as written, read back to the same numbers.
    let mut reader = csv::Reader::from_path(dir.path().join("long/all.csv")).unwrap();
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), COLUMNS);
    let mut got: Vec<_> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!((&r[0], &r[1], &r[2]), ("exp", "toy2d-quadratic", "adam"));
            assert!(!r[9].is_empty(), "wall time recorded");
            let value = if r[11].is_empty() { None } else { Some(r[11].parse::<f64>().unwrap()) };
            (r[3].to_string(), r[10].to_string(), r[5].parse().unwrap(), r[7].parse().unwrap(), r[6].to_string(), value)
        })
        .collect();
    got.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(got, want, "the CSV round-trips every value");
    // lr is the run's own.
    let rows = export::rows(&results(&results_dir));
    assert!(rows.iter().all(|r| r.lr == Some(if r.setting == "lr-0.01" { 0.01 } else { 0.1 })));

    // Parquet: read back with the parquet crate's reader, the same rows.
    let file = std::fs::File::open(dir.path().join("long/all.parquet")).unwrap();
    let reader = SerializedFileReader::new(file).unwrap();
    let names: Vec<String> =
        reader.metadata().file_metadata().schema_descr().columns().iter().map(|c| c.name().to_string()).collect();
    assert_eq!(names, COLUMNS);
    let mut got = Vec::new();
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        let fields: std::collections::BTreeMap<String, Field> =
            row.get_column_iter().map(|(n, f)| (n.clone(), f.clone())).collect();
        let text = |n: &str| match &fields[n] {
            Field::Str(s) => s.clone(),
            other => panic!("{n}: {other:?}"),
        };
        let int = |n: &str| match &fields[n] {
            Field::Long(v) => *v as u64,
            other => panic!("{n}: {other:?}"),
        };
        let value = match &fields["value"] {
            Field::Double(v) => Some(*v),
            Field::Null => None,
            other => panic!("value: {other:?}"),
        };
        got.push(Row {
            experiment: text("experiment"),
            task: text("task"),
            optimizer: text("optimizer"),
            setting: text("setting"),
            lr: None,
            seed: int("seed"),
            status: text("status"),
            step: int("step"),
            epoch: None,
            wall_time: None,
            metric: text("metric"),
            value,
        });
    }
    let mut got: Vec<_> = got.iter().map(key).collect();
    got.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(got, want, "the parquet file holds the same rows");
}
