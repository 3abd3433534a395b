//! One run: builds the task, continues from its checkpoint if there is one, applies the
//! schedule to each of the task's optimizers before every step, streams the losses,
//! evaluates, saves a checkpoint at evaluations, stops on a non-finite loss, and returns the
//! result. Errors and panics end the run as `failed`; they never escape to the sweep.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

use candle::{Device, Tensor};
use optimizers::OptimizerState;

use super::checkpoint::{checkpoint_path, Checkpoint, Header, LoopState};
use super::progress::RunObserver;
use super::record::{self, timestamp, write_atomically, History, RunResult, Status};
use crate::plan::{DeviceName, RunSpec};
use crate::schedule::Progress;
use crate::task::{self, Budget, DataSettings, Losses, Task, TaskInfo, TaskState};

/// Opens the device a run asks for; says how to get it when this binary cannot.
pub fn open_device(name: &str) -> anyhow::Result<Device> {
    match DeviceName::parse(name).map_err(anyhow::Error::msg)? {
        DeviceName::Cpu => Ok(Device::Cpu),
        DeviceName::Cuda(ordinal) => {
            if !candle::utils::cuda_is_available() {
                anyhow::bail!(
                    "device `{name}`: this optbench was built without CUDA; build it with scripts/build-cuda.sh"
                );
            }
            Ok(Device::new_cuda(ordinal)?)
        }
        DeviceName::Metal => {
            if !candle::utils::metal_is_available() {
                anyhow::bail!(
                    "device `metal`: this optbench was built without Metal; build it with `--features metal`"
                );
            }
            Ok(Device::new_metal(0)?)
        }
    }
}

/// Runs one spec to its end and returns its result (never an error: failures are results).
/// The loss stream and the checkpoint go beside `result_path`; a checkpoint of the same setup
/// found there is continued from.
pub fn execute(spec: &RunSpec, result_path: &Path, data: &DataSettings, observer: &mut dyn RunObserver) -> RunResult {
    let info = task::find(&spec.task.name);
    let metrics = info.map(|i| i.metrics.clone()).unwrap_or_default();
    let mut result = RunResult::start(spec, metrics);
    let started = Instant::now();
    let outcome =
        catch_unwind(AssertUnwindSafe(|| train(spec, info, result_path, data, observer, &mut result, started)));
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
    if result.status.is_final() {
        // A failed run keeps its checkpoint: the rerun continues from there.
        let _ = std::fs::remove_file(checkpoint_path(result_path));
    }
    let stream = record::stream_path(result_path);
    if stream.exists() {
        match record::StreamRecord::of(&stream) {
            Ok(record) => result.stream = Some(record),
            Err(e) if result.status.is_final() => {
                result.status = Status::Failed;
                result.error = Some(format!("the loss stream cannot be read back: {e}"));
            }
            Err(_) => {}
        }
    }
    result.wall_time_s += started.elapsed().as_secs_f64();
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

/// The loss stream: JSON lines, with the bytes written counted (a checkpoint records them).
struct Stream {
    file: BufWriter<File>,
    len: u64,
}

impl Stream {
    /// A new stream, or the stream of a resumed run cut back to `len` bytes.
    fn open(path: &Path, resume_at: Option<u64>) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let Some(len) = resume_at else {
            return Ok(Self { file: BufWriter::new(File::create(path)?), len: 0 });
        };
        let mut file = OpenOptions::new().write(true).open(path)?;
        let on_disk = file.metadata()?.len();
        anyhow::ensure!(on_disk >= len, "the loss stream {} is shorter than its checkpoint says", path.display());
        file.set_len(len)?;
        file.seek(SeekFrom::End(0))?;
        Ok(Self { file: BufWriter::new(file), len })
    }

    fn line(&mut self, step: u64, lr: f64, losses: &Losses) -> std::io::Result<()> {
        let mut line = format!("{{\"step\":{step},\"lr\":{}", json_number(lr));
        for (k, (name, value)) in losses.iter().enumerate() {
            let name = if k == 0 { "loss" } else { name };
            line.push_str(&format!(",\"{name}\":{}", json_number(*value)));
        }
        line.push_str("}\n");
        self.len += line.len() as u64;
        self.file.write_all(line.as_bytes())
    }
}

fn train(
    spec: &RunSpec,
    info: Option<&'static TaskInfo>,
    result_path: &Path,
    data: &DataSettings,
    observer: &mut dyn RunObserver,
    result: &mut RunResult,
    started: Instant,
) -> anyhow::Result<Status> {
    let info = info.ok_or_else(|| anyhow::anyhow!("unknown task `{}`", spec.task.name))?;
    let device = open_device(&spec.device)?;
    let ctx = spec.context(info, &device, data);
    let mut task = (info.build)(&ctx)?;
    result.data = task.data();
    for record in &result.data {
        if let crate::data::Origin::DecodedCache { .. } = record.source {
            observer.note(&format!("{}: offline, training on {}", spec.id(), record.describe()));
        }
    }
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
    let base_lrs = info
        .optimizers
        .iter()
        .map(|role| ctx.spec_for(role).lr().ok_or_else(|| anyhow::anyhow!("optimizer `{role}` has no `lr`")))
        .collect::<anyhow::Result<Vec<f64>>>()?;

    let checkpoint = checkpoint_path(result_path);
    let mut state = LoopState {
        step: 0,
        history: History::default(),
        loss_sums: Vec::new(),
        loss_count: 0,
        stream_len: 0,
        elapsed_s: 0.0,
    };
    let mut resumed = false;
    if spec.checkpoint.enabled && checkpoint.exists() {
        match restore(&checkpoint, spec, task.as_mut()) {
            Ok(saved) => {
                observer.note(&format!("{}: resuming from its checkpoint at step {}", spec.id(), saved.step));
                result.resumed_from_step = Some(saved.step);
                state = saved;
                resumed = true;
            }
            Err(e) => {
                observer.note(&format!(
                    "{}: checkpoint {} not used ({e:#}): starting from the beginning",
                    spec.id(),
                    checkpoint.display()
                ));
                let _ = std::fs::remove_file(&checkpoint);
                // A restore that failed halfway may have changed the task: start from a new one.
                task = (info.build)(&ctx)?;
            }
        }
    }
    let stream_path = record::stream_path(result_path);
    let mut stream = Stream::open(&stream_path, resumed.then_some(state.stream_len))?;
    result.history = state.history.clone();
    result.steps_done = state.step;
    result.wall_time_s = state.elapsed_s;
    observer.started(total_steps);
    let mut current_lrs = vec![f64::NAN; base_lrs.len()];
    let mut last_checkpoint = Instant::now();
    let mut checkpoints = spec.checkpoint.enabled;
    for step in state.step + 1..=total_steps {
        let at = Progress { step, total_steps, steps_per_epoch };
        for (k, (_, optimizer)) in task.optimizers().into_iter().enumerate() {
            let lr = spec.task.schedule.lr(base_lrs[k], at);
            if lr != current_lrs[k] {
                optimizer.set_learning_rate(lr);
                current_lrs[k] = lr;
            }
        }
        let lr = current_lrs[0];
        let losses = task.train_step(step)?;
        anyhow::ensure!(!losses.is_empty(), "task `{}` returned no loss", info.name);
        result.steps_done = step;
        let finite_losses = losses.iter().all(|(_, v)| v.is_finite());
        if step % log_every == 0 || !finite_losses {
            stream.line(step, lr, &losses)?;
        }
        if !finite_losses {
            result.diverged_at_step = Some(step);
            stream.file.flush()?;
            return Ok(Status::Diverged);
        }
        if state.loss_sums.is_empty() {
            state.loss_sums = losses.iter().map(|(name, _)| (name.to_string(), 0.0)).collect();
        }
        for ((_, sum), (_, value)) in state.loss_sums.iter_mut().zip(&losses) {
            *sum += value;
        }
        state.loss_count += 1;
        observer.step(step, losses[0].1, lr);
        if step % eval_every == 0 || step == total_steps {
            let metrics = task.evaluate()?;
            for (name, bytes) in task.artifacts(step)? {
                let path = result_path.with_extension(&name);
                write_atomically(&path, &bytes)
                    .map_err(|e| anyhow::anyhow!("cannot write {} of the run: {e}", path.display()))?;
            }
            let h = &mut result.history;
            h.step.push(step);
            h.epoch.push(steps_per_epoch.map(|spe| step as f64 / spe as f64));
            h.lr.push(lr);
            let count = state.loss_count as f64;
            for (k, (name, sum)) in state.loss_sums.iter_mut().enumerate() {
                let mean = finite(*sum / count);
                if k == 0 {
                    h.train_loss.push(mean);
                } else {
                    h.metrics.entry(name.clone()).or_default().push(mean);
                }
                *sum = 0.0;
            }
            state.loss_count = 0;
            h.wall_time.push(state.elapsed_s + started.elapsed().as_secs_f64());
            for (name, value) in &metrics {
                h.metrics.entry(name.clone()).or_default().push(finite(*value));
            }
            stream.file.flush()?;
            observer.evaluated(step, &metrics);
            let due = last_checkpoint.elapsed().as_secs_f64() >= spec.checkpoint.min_interval_s;
            if checkpoints && step < total_steps && due {
                state.step = step;
                state.history = result.history.clone();
                state.stream_len = stream.len;
                let elapsed = state.elapsed_s + started.elapsed().as_secs_f64();
                let saved = save(&checkpoint, spec, task.as_mut(), &LoopState { elapsed_s: elapsed, ..state.clone() });
                if let Err(e) = saved {
                    // The run goes on without them: a checkpoint only saves time.
                    observer.note(&format!("{}: no more checkpoints for this run: {e:#}", spec.id()));
                    checkpoints = false;
                }
                last_checkpoint = Instant::now();
            }
        }
    }
    stream.file.flush()?;
    Ok(Status::Completed)
}

/// Writes the run's checkpoint atomically.
/// Each data set's SHA-256, by name.
fn data_hashes(task: &dyn Task) -> BTreeMap<String, String> {
    task.data().into_iter().map(|r| (r.name, r.sha256)).collect()
}

fn save(path: &Path, spec: &RunSpec, task: &mut dyn Task, runner: &LoopState) -> anyhow::Result<()> {
    let task_state = task.state(runner.step)?;
    let mut tensors: BTreeMap<String, Tensor> =
        task_state.tensors.into_iter().map(|(k, t)| (format!("task.{k}"), t)).collect();
    let mut optimizers = BTreeMap::new();
    for (role, optimizer) in task.optimizers() {
        let state = optimizer.state()?;
        for (k, t) in state.tensors {
            tensors.insert(format!("opt.{role}.{k}"), t);
        }
        optimizers.insert(role.to_string(), state.meta);
    }
    let header = Header {
        fingerprint: spec.fingerprint(),
        data: data_hashes(task),
        runner: runner.clone(),
        task: task_state.meta,
        optimizers,
        tensors_sha256: String::new(),
    };
    let bytes = Checkpoint { header, tensors }.to_bytes()?;
    write_atomically(path, &bytes).map_err(|e| anyhow::anyhow!("cannot write the checkpoint {}: {e}", path.display()))
}

/// Restores a checkpoint into a freshly built task; returns the runner's state.
fn restore(path: &Path, spec: &RunSpec, task: &mut dyn Task) -> anyhow::Result<LoopState> {
    let mut ckpt = Checkpoint::load(path)?;
    anyhow::ensure!(ckpt.header.fingerprint == spec.fingerprint(), "it was made with another setup");
    anyhow::ensure!(ckpt.header.data == data_hashes(task), "it was made on other data");
    let step = ckpt.header.runner.step;
    let mut optimizers = ckpt.header.optimizers.clone();
    let roles: Vec<&'static str> = task.optimizers().into_iter().map(|(role, _)| role).collect();
    let mut saved = BTreeMap::new();
    for role in &roles {
        let meta = optimizers.remove(*role).ok_or_else(|| anyhow::anyhow!("no state of optimizer `{role}`"))?;
        saved.insert(*role, OptimizerState { tensors: ckpt.take(&format!("opt.{role}")), meta });
    }
    let task_state = TaskState { tensors: ckpt.take("task"), meta: ckpt.header.task.clone() };
    task.restore(&task_state, step)?;
    for (role, optimizer) in task.optimizers() {
        optimizer.load_state(&saved[role]).map_err(|e| anyhow::anyhow!("optimizer `{role}`: {e}"))?;
    }
    Ok(ckpt.header.runner)
}

fn json_number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}
