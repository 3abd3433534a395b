//! One run: builds the task, applies the schedule before every step, streams the training
//! loss, evaluates, stops on a non-finite loss, and returns the result. Errors and panics end
//! the run as `failed`; they never escape to the sweep.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

use candle::Device;

use super::progress::RunObserver;
use super::record::{timestamp, History, RunResult, Status};
use crate::plan::{DeviceName, RunSpec};
use crate::schedule::Progress;
use crate::task::{self, Budget, DataSettings, TaskContext, TaskInfo};

/// Opens the device a run asks for; says how to get it when this binary cannot.
pub fn open_device(name: &str) -> anyhow::Result<Device> {
    match DeviceName::parse(name).map_err(anyhow::Error::msg)? {
        DeviceName::Cpu => Ok(Device::Cpu),
        DeviceName::Cuda(ordinal) => {
            if !candle::utils::cuda_is_available() {
                anyhow::bail!("device `{name}`: this optbench was built without CUDA; rebuild with `--features cuda`");
            }
            Ok(Device::new_cuda(ordinal)?)
        }
        DeviceName::Metal => {
            if !candle::utils::metal_is_available() {
                anyhow::bail!("device `metal`: this optbench was built without Metal; rebuild with `--features metal`");
            }
            Ok(Device::new_metal(0)?)
        }
    }
}

/// Runs one spec to its end and returns its result (never an error: failures are results).
pub fn execute(spec: &RunSpec, stream: &Path, data: &DataSettings, observer: &mut dyn RunObserver) -> RunResult {
    let info = task::find(&spec.task.name);
    let metrics = info.map(|i| i.metrics.clone()).unwrap_or_default();
    let mut result = RunResult::start(spec, metrics);
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| train(spec, info, stream, data, observer, &mut result, started)));
    match outcome {
        Ok(Ok(status)) => result.status = status,
        Ok(Err(err)) => {
            result.status = Status::Failed;
            result.error = Some(format!("{err:#}"));
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            result.status = Status::Failed;
            result.error = Some(format!("panicked: {message}"));
        }
    }
    result.wall_time_s = started.elapsed().as_secs_f64();
    result.finished_at = timestamp();
    result.final_metrics = final_values(&result.history);
    result
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn final_values(history: &History) -> std::collections::BTreeMap<String, Option<f64>> {
    let mut out = std::collections::BTreeMap::new();
    if let Some(v) = history.train_loss.last() {
        out.insert("train_loss".to_string(), *v);
    }
    for (name, values) in &history.metrics {
        if let Some(v) = values.last() {
            out.insert(name.clone(), *v);
        }
    }
    out
}

fn train(
    spec: &RunSpec,
    info: Option<&'static TaskInfo>,
    stream: &Path,
    data: &DataSettings,
    observer: &mut dyn RunObserver,
    result: &mut RunResult,
    started: Instant,
) -> anyhow::Result<Status> {
    let info = info.ok_or_else(|| anyhow::anyhow!("unknown task `{}`", spec.task.name))?;
    let device = open_device(&spec.device)?;
    let ctx = TaskContext {
        info,
        options: &spec.task.options,
        optimizer: &spec.optimizer,
        batch_size: spec.task.batch_size,
        seed: spec.seed,
        device: &device,
        data,
    };
    let mut task = (info.build)(&ctx)?;
    let steps_per_epoch = task.steps_per_epoch();
    let total_steps = match spec.task.budget {
        Budget::Steps(s) => s,
        Budget::Epochs(e) => {
            e * steps_per_epoch.ok_or_else(|| anyhow::anyhow!("task `{}` has no epochs", info.name))?
        }
    };
    result.total_steps = total_steps;
    result.steps_per_epoch = steps_per_epoch;
    let eval_every = spec.task.eval_every.or(steps_per_epoch).unwrap_or(total_steps).max(1);
    let log_every = spec.task.log_every.max(1);
    let base_lr = spec.optimizer.lr().ok_or_else(|| anyhow::anyhow!("the optimizer has no `lr`"))?;

    if let Some(dir) = stream.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut log = BufWriter::new(File::create(stream)?);
    observer.started(total_steps);
    let mut current_lr = f64::NAN;
    let (mut loss_sum, mut loss_count) = (0.0, 0u64);
    for step in 1..=total_steps {
        let lr = spec.task.schedule.lr(base_lr, Progress { step, total_steps, steps_per_epoch });
        if lr != current_lr {
            task.set_learning_rate(lr);
            current_lr = lr;
        }
        let loss = task.train_step(step)?;
        result.steps_done = step;
        if step % log_every == 0 || !loss.is_finite() {
            writeln!(log, "{{\"step\":{step},\"lr\":{},\"loss\":{}}}", json_number(lr), json_number(loss))?;
        }
        if !loss.is_finite() {
            result.diverged_at_step = Some(step);
            log.flush()?;
            return Ok(Status::Diverged);
        }
        loss_sum += loss;
        loss_count += 1;
        observer.step(step, loss, lr);
        if step % eval_every == 0 || step == total_steps {
            let metrics = task.evaluate()?;
            let h = &mut result.history;
            h.step.push(step);
            h.epoch.push(steps_per_epoch.map(|spe| step as f64 / spe as f64));
            h.lr.push(lr);
            h.train_loss.push(finite(loss_sum / loss_count as f64));
            h.wall_time.push(started.elapsed().as_secs_f64());
            for (name, value) in &metrics {
                h.metrics.entry(name.clone()).or_default().push(finite(*value));
            }
            (loss_sum, loss_count) = (0.0, 0);
            log.flush()?;
            observer.evaluated(step, &metrics);
        }
    }
    log.flush()?;
    Ok(Status::Completed)
}

fn json_number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}
