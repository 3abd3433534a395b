//! `optbench export`: every evaluation of every run in long format, one row per run,
//! evaluation and metric, as CSV and as parquet, for pandas or polars:
//!
//! `experiment, task, optimizer, setting, lr, seed, status, step, epoch, wall_time, metric, value`
//!
//! `lr` is the run's base learning rate (its optimizer's `lr`); the learning rate of the
//! schedule at that evaluation is the metric `lr`. `epoch` and `wall_time` (seconds since the
//! run started) are empty where the result does not record them, and so is a `value` that was
//! not finite (`NaN` or infinite values are stored as null). The metrics are the task's
//! metrics, `train_loss` (the mean training loss since the previous evaluation) and `lr`.
//!
//! The parquet file is written with the `parquet` crate's column writers (no arrow): strings as
//! UTF-8 byte arrays, `seed` and `step` as INT64, the numbers as optional DOUBLE, compressed
//! with zstd.

use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use crate::runner::record::{RunResult, Status};

/// The columns, in order.
pub const COLUMNS: [&str; 12] = [
    "experiment",
    "task",
    "optimizer",
    "setting",
    "lr",
    "seed",
    "status",
    "step",
    "epoch",
    "wall_time",
    "metric",
    "value",
];

/// One row of the long table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub experiment: String,
    pub task: String,
    pub optimizer: String,
    pub setting: String,
    pub lr: Option<f64>,
    pub seed: u64,
    pub status: String,
    pub step: u64,
    pub epoch: Option<f64>,
    pub wall_time: Option<f64>,
    pub metric: String,
    pub value: Option<f64>,
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Completed => "completed",
        Status::Diverged => "diverged",
        Status::Failed => "failed",
    }
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

/// The rows of some results: per run, per evaluation, `train_loss`, `lr`, then the metrics.
pub fn rows(results: &[RunResult]) -> Vec<Row> {
    let mut out = Vec::new();
    for r in results {
        let h = &r.history;
        let mut columns: Vec<(&str, Vec<Option<f64>>)> =
            vec![("train_loss", h.train_loss.clone()), ("lr", h.lr.iter().map(|v| Some(*v)).collect())];
        for (name, values) in &h.metrics {
            columns.push((name.as_str(), values.clone()));
        }
        for (i, &step) in h.step.iter().enumerate() {
            for (metric, values) in &columns {
                out.push(Row {
                    experiment: r.experiment.clone(),
                    task: r.task.label.clone(),
                    optimizer: r.optimizer_label.clone(),
                    setting: r.setting.clone(),
                    lr: finite(r.optimizer.lr()),
                    seed: r.seed,
                    status: status_name(r.status).into(),
                    step,
                    epoch: finite(h.epoch.get(i).copied().flatten()),
                    wall_time: finite(h.wall_time.get(i).copied()),
                    metric: metric.to_string(),
                    value: finite(values.get(i).copied().flatten()),
                });
            }
        }
    }
    out
}

/// The rows as CSV (a header, then a line per row; numbers as Rust prints them, which read
/// back to the same `f64`).
pub fn csv(rows: &[Row]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS).expect("writing to memory");
    let num = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
    for r in rows {
        w.write_record([
            r.experiment.clone(),
            r.task.clone(),
            r.optimizer.clone(),
            r.setting.clone(),
            num(r.lr),
            r.seed.to_string(),
            r.status.clone(),
            r.step.to_string(),
            num(r.epoch),
            num(r.wall_time),
            r.metric.clone(),
            num(r.value),
        ])
        .expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

const SCHEMA: &str = "message optbench_evaluations {
    REQUIRED BYTE_ARRAY experiment (UTF8);
    REQUIRED BYTE_ARRAY task (UTF8);
    REQUIRED BYTE_ARRAY optimizer (UTF8);
    REQUIRED BYTE_ARRAY setting (UTF8);
    OPTIONAL DOUBLE lr;
    REQUIRED INT64 seed;
    REQUIRED BYTE_ARRAY status (UTF8);
    REQUIRED INT64 step;
    OPTIONAL DOUBLE epoch;
    OPTIONAL DOUBLE wall_time;
    REQUIRED BYTE_ARRAY metric (UTF8);
    OPTIONAL DOUBLE value;
}";

/// The rows as a parquet file (one row group).
pub fn parquet(rows: &[Row]) -> parquet::errors::Result<Vec<u8>> {
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build());
    let mut buffer = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut buffer, schema, props)?;
    let mut group = writer.next_row_group()?;
    let strings = |f: fn(&Row) -> &str| -> Vec<ByteArray> { rows.iter().map(|r| ByteArray::from(f(r))).collect() };
    let optional = |f: fn(&Row) -> Option<f64>| -> (Vec<f64>, Vec<i16>) {
        let values = rows.iter().filter_map(f).collect();
        let defined = rows.iter().map(|r| i16::from(f(r).is_some())).collect();
        (values, defined)
    };
    for name in COLUMNS {
        let mut column =
            group.next_column()?.ok_or_else(|| parquet::errors::ParquetError::General(format!("no column {name}")))?;
        match name {
            "experiment" | "task" | "optimizer" | "setting" | "status" | "metric" => {
                let values = strings(match name {
                    "experiment" => |r| r.experiment.as_str(),
                    "task" => |r| r.task.as_str(),
                    "optimizer" => |r| r.optimizer.as_str(),
                    "setting" => |r| r.setting.as_str(),
                    "status" => |r| r.status.as_str(),
                    _ => |r| r.metric.as_str(),
                });
                column.typed::<ByteArrayType>().write_batch(&values, None, None)?;
            }
            "seed" | "step" => {
                let values: Vec<i64> =
                    rows.iter().map(|r| if name == "seed" { r.seed } else { r.step } as i64).collect();
                column.typed::<Int64Type>().write_batch(&values, None, None)?;
            }
            _ => {
                let (values, defined) = optional(match name {
                    "lr" => |r| r.lr,
                    "epoch" => |r| r.epoch,
                    "wall_time" => |r| r.wall_time,
                    _ => |r| r.value,
                });
                column.typed::<DoubleType>().write_batch(&values, Some(&defined), None)?;
            }
        }
        column.close()?;
    }
    group.close()?;
    writer.close()?;
    Ok(buffer)
}

/// Which files `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Parquet,
    Both,
}

/// Writes the export of the results under `dir`: `out` with the format's extension (both for
/// `Both`); returns the files and the number of rows.
pub fn export(dir: &Path, out: &Path, format: Format) -> anyhow::Result<(Vec<std::path::PathBuf>, usize)> {
    let (results, unreadable) = super::read_results(dir);
    for u in &unreadable {
        eprintln!("warning: skipped {u}");
    }
    anyhow::ensure!(!results.is_empty(), "no result files (seed-*.json) under {}", dir.display());
    let rows = rows(&results);
    let mut written = Vec::new();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
    }
    if matches!(format, Format::Csv | Format::Both) {
        let file = out.with_extension("csv");
        crate::util::atomic::write_atomically(&file, &csv(&rows))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
        written.push(file);
    }
    if matches!(format, Format::Parquet | Format::Both) {
        let file = out.with_extension("parquet");
        let bytes = parquet(&rows).map_err(|e| anyhow::anyhow!("cannot encode the parquet file: {e}"))?;
        crate::util::atomic::write_atomically(&file, &bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
        written.push(file);
    }
    Ok((written, rows.len()))
}
