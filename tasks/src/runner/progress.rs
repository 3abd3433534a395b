//! Progress of a sweep: indicatif bars on a terminal (a sweep bar with runs done / total and
//! ETA, and a bar per running run with step, loss and lr), plain log lines otherwise, and with
//! `--quiet` only the failures (which always go to stderr).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::record::{RunResult, Status};
use crate::task::Metrics;

/// What a running run reports. Called on the training hot path: keep it cheap.
pub trait RunObserver: Send {
    fn started(&mut self, total_steps: u64);
    fn step(&mut self, step: u64, loss: f64, lr: f64);
    fn evaluated(&mut self, step: u64, metrics: &Metrics);
    /// A line about the run worth telling (resumed from a checkpoint, a checkpoint not used).
    fn note(&mut self, line: &str);
}

/// How a sweep shows its progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Quiet,
}

impl Mode {
    /// Bars on a terminal, lines otherwise, nothing when quiet.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

/// The progress display of a whole sweep, shared by the worker threads.
pub struct SweepProgress {
    mode: Mode,
    multi: MultiProgress,
    sweep: ProgressBar,
    total: usize,
    done: Mutex<usize>,
    /// Each error printed so far, with the run it was printed for (a data set that cannot be
    /// loaded fails all its runs with one message: printed once).
    errors: Mutex<std::collections::HashMap<String, String>>,
}

impl SweepProgress {
    pub fn new(mode: Mode, total: usize, skipped: usize) -> Self {
        let multi = MultiProgress::with_draw_target(match mode {
            Mode::Bars => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        });
        let sweep = multi.add(ProgressBar::new(total as u64));
        sweep.set_style(
            ProgressStyle::with_template(
                "{prefix:>6} [{bar:30.green/dim}] {pos}/{len} runs  {elapsed} elapsed, ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        sweep.set_prefix("sweep");
        sweep.set_position(skipped as u64);
        sweep.reset_eta();
        Self { mode, multi, sweep, total, done: Mutex::new(skipped), errors: Mutex::default() }
    }

    /// Prints a line above the bars (or on stderr), unless quiet.
    pub fn println(&self, line: &str) {
        match self.mode {
            Mode::Bars => {
                let _ = self.multi.println(line);
            }
            Mode::Lines => eprintln!("{line}"),
            Mode::Quiet => {}
        }
    }

    /// Prints a line whatever the mode (failures: `--quiet` hides everything but them).
    pub fn error(&self, line: &str) {
        match self.mode {
            Mode::Bars => {
                let _ = self.multi.println(line);
            }
            Mode::Lines | Mode::Quiet => eprintln!("{line}"),
        }
    }

    /// Counts a run that this sweep will not run after all (another process has it).
    pub fn skipped(&self) {
        *self.done.lock().expect("progress lock") += 1;
        self.sweep.inc(1);
    }

    /// An observer for a run that starts now.
    pub fn run(&self, id: &str) -> Box<dyn RunObserver + '_> {
        match self.mode {
            Mode::Bars => {
                let bar = self.multi.insert_before(&self.sweep, ProgressBar::new(1));
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:25.cyan/dim}] {pos}/{len} {msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(id.to_string());
                Box::new(BarObserver { bar, next_update: 0, last_draw: Instant::now() })
            }
            Mode::Lines => {
                Box::new(LineObserver { id: id.to_string(), total: 0, next_report: 0, last_line: Instant::now() })
            }
            Mode::Quiet => Box::new(QuietObserver),
        }
    }

    /// Records a finished run and prints its one-line summary.
    pub fn finished(&self, result: &RunResult) {
        let mut done = self.done.lock().expect("progress lock");
        *done += 1;
        self.sweep.inc(1);
        let primary = result.primary().map(|m| m.name.clone()).unwrap_or_default();
        let value = result.final_metrics.get(&primary).copied().flatten();
        let detail = match result.status {
            Status::Completed => format!("{primary} {}", value.map_or("n/a".into(), |v| format!("{v:.6}"))),
            Status::Diverged => format!("diverged at step {}", result.diverged_at_step.unwrap_or(0)),
            Status::Failed => {
                let error = result.error.as_deref().unwrap_or("unknown error");
                let mut errors = self.errors.lock().expect("progress lock");
                match errors.get(error) {
                    Some(first) => format!("FAILED: the same error as {first} (above)"),
                    None => {
                        errors.insert(error.to_string(), result.id.clone());
                        format!("FAILED: {error}")
                    }
                }
            }
        };
        let line = format!(
            "[{}/{}] {} {:?} in {:.1}s: {detail}",
            *done, self.total, result.id, result.status, result.wall_time_s
        );
        if result.status == Status::Failed {
            self.error(&line);
        } else {
            self.println(&line);
        }
    }

    pub fn finish(&self) {
        self.sweep.finish_and_clear();
    }
}

struct BarObserver {
    bar: ProgressBar,
    next_update: u64,
    last_draw: Instant,
}

impl RunObserver for BarObserver {
    fn started(&mut self, total_steps: u64) {
        self.bar.set_length(total_steps);
        self.bar.reset_eta();
    }

    fn step(&mut self, step: u64, loss: f64, lr: f64) {
        // Throttled: millions of steps must not each take a lock.
        if step >= self.next_update {
            self.bar.set_position(step);
            if self.last_draw.elapsed() > Duration::from_millis(200) {
                self.bar.set_message(format!("loss {loss:.4e} lr {lr:.3e}"));
                self.last_draw = Instant::now();
            }
            self.next_update = step + 64;
        }
    }

    fn evaluated(&mut self, step: u64, _metrics: &Metrics) {
        self.bar.set_position(step);
    }

    fn note(&mut self, line: &str) {
        self.bar.println(line);
    }
}

impl Drop for BarObserver {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

struct LineObserver {
    id: String,
    total: u64,
    next_report: u64,
    last_line: Instant,
}

impl RunObserver for LineObserver {
    fn started(&mut self, total_steps: u64) {
        self.total = total_steps;
        self.next_report = (total_steps / 10).max(1);
        eprintln!("{}: started, {total_steps} steps", self.id);
    }

    fn step(&mut self, step: u64, loss: f64, lr: f64) {
        // A line every 10% of the run, and at least every 30 s on long ones.
        if step >= self.next_report || (step.is_multiple_of(1024) && self.last_line.elapsed() > Duration::from_secs(30))
        {
            eprintln!(
                "{}: step {step}/{} ({:.0}%) loss {loss:.4e} lr {lr:.3e}",
                self.id,
                self.total,
                100.0 * step as f64 / self.total.max(1) as f64
            );
            self.next_report = step + (self.total / 10).max(1);
            self.last_line = Instant::now();
        }
    }

    fn evaluated(&mut self, _step: u64, _metrics: &Metrics) {}

    fn note(&mut self, line: &str) {
        eprintln!("{line}");
    }
}

struct QuietObserver;

impl RunObserver for QuietObserver {
    fn started(&mut self, _total_steps: u64) {}
    fn step(&mut self, _step: u64, _loss: f64, _lr: f64) {}
    fn evaluated(&mut self, _step: u64, _metrics: &Metrics) {}
    fn note(&mut self, _line: &str) {}
}
