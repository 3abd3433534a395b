//! Progress of a sweep: indicatif bars on a terminal (a sweep bar with runs done / total and an
//! ETA from the steps trained, and a bar per running run with its progress, loss and lr), plain
//! log lines otherwise, and with `--quiet` only the failures (which always go to stderr). Lines
//! fit [`WIDTH`] columns (run ids are shortened: [`short_id`]). On Ctrl-C (SIGINT) or SIGTERM
//! the process prints one line (how many runs are done, and that running the command again
//! continues) and exits with 128 + the signal (130 for Ctrl-C): results are written atomically
//! (a temporary file, then a rename), so a run stopped midway leaves no result, and the next
//! run of the sweep does it again (from its checkpoint where it has one).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::record::{RunResult, Status};
use crate::plan::RunSpec;
use crate::task::{Budget, Metrics};

/// The width lines are made to fit.
pub const WIDTH: usize = 80;

/// The steps a run is planned to take, where the config says (`None` for a budget in epochs:
/// known when the run starts).
pub fn planned_steps(spec: &RunSpec) -> Option<u64> {
    match spec.task.budget {
        Budget::Steps(s) => Some(s),
        Budget::Epochs(_) => None,
    }
}

/// `id` (`experiment/task/optimizer/setting/seed-N`) in at most `max` characters: without
/// its experiment (the sweep's), then with its longest parts cut (`lr-0.001_wd~`), keeping the
/// seed whole; as a last resort its end after `...`.
pub fn short_id(id: &str, max: usize) -> String {
    let len = |s: &str| s.chars().count();
    if len(id) <= max {
        return id.to_string();
    }
    let mut parts: Vec<String> = id.split('/').map(str::to_string).collect();
    if parts.len() >= 5 {
        parts.remove(0);
    }
    let total = |parts: &[String]| parts.iter().map(|p| len(p)).sum::<usize>() + parts.len().saturating_sub(1);
    while total(&parts) > max && parts.len() > 1 {
        let excess = total(&parts) - max;
        let (k, longest) = parts[..parts.len() - 1]
            .iter()
            .enumerate()
            .max_by_key(|(_, p)| len(p))
            .map(|(k, p)| (k, len(p)))
            .expect("two parts or more");
        if longest <= 6 {
            break;
        }
        let keep = longest.saturating_sub(excess + 1).max(5);
        parts[k] = format!("{}~", parts[k].chars().take(keep).collect::<String>());
    }
    let joined = parts.join("/");
    let n = len(&joined);
    if n <= max {
        return joined;
    }
    let keep = max.saturating_sub(3);
    format!("...{}", joined.chars().skip(n - keep).collect::<String>())
}

/// `prefix ID suffix` in [`WIDTH`] columns, shortening the id (to 12 characters at least).
pub fn fit_line(prefix: &str, id: &str, suffix: &str) -> String {
    let room = WIDTH.saturating_sub(prefix.chars().count() + suffix.chars().count()).max(12);
    format!("{prefix}{}{suffix}", short_id(id, room))
}

/// `1h02m`, `3m05s`, `12s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The steps of a sweep's runs, for its ETA: each pending run's planned steps (once known)
/// and the steps it trained in this process.
#[derive(Clone, Debug, Default)]
pub struct SweepSteps {
    runs: HashMap<String, RunSteps>,
}

#[derive(Clone, Debug, Default)]
struct RunSteps {
    planned: Option<u64>,
    /// The step this process started it from (a resumed run's checkpoint).
    first: Option<u64>,
    done: u64,
    finished: bool,
}

impl SweepSteps {
    /// The runs to do, with their planned steps where known.
    pub fn new(runs: impl IntoIterator<Item = (String, Option<u64>)>) -> Self {
        Self { runs: runs.into_iter().map(|(id, planned)| (id, RunSteps { planned, ..Default::default() })).collect() }
    }

    /// A run started: its planned steps are known now.
    pub fn started(&mut self, id: &str, total_steps: u64) {
        self.runs.entry(id.to_string()).or_default().planned = Some(total_steps);
    }

    /// A run is at `step` (its first call says where it started).
    pub fn step(&mut self, id: &str, step: u64) {
        let run = self.runs.entry(id.to_string()).or_default();
        let first = *run.first.get_or_insert(step.saturating_sub(1));
        run.done = step.max(first);
    }

    /// A run ended (completed, diverged or failed: nothing is left of it).
    pub fn finished(&mut self, id: &str) {
        self.runs.entry(id.to_string()).or_default().finished = true;
    }

    /// Steps trained in this process, and steps left: a run whose planned steps are not known
    /// yet counts the mean of those known.
    pub fn done_and_left(&self) -> (u64, u64) {
        let known: Vec<u64> = self.runs.values().filter_map(|r| r.planned).collect();
        let guess = if known.is_empty() { 0 } else { known.iter().sum::<u64>() / known.len() as u64 };
        let mut done = 0;
        let mut left = 0;
        for r in self.runs.values() {
            done += r.done - r.first.unwrap_or(r.done);
            if !r.finished {
                let planned = r.planned.unwrap_or(guess);
                left += planned.saturating_sub(r.done.max(r.first.unwrap_or(0)));
            }
        }
        (done, left)
    }

    /// Seconds left at the rate so far (`None` before any step).
    pub fn eta(&self, elapsed_s: f64) -> Option<f64> {
        let (done, left) = self.done_and_left();
        (done > 0).then(|| elapsed_s * left as f64 / done as f64)
    }
}

/// What a Ctrl-C reports: the sweep running now.
struct Running {
    multi: MultiProgress,
    total: usize,
    /// Done before this process started (already there) plus done by it.
    done: Arc<Mutex<(usize, usize, usize)>>,
}

fn running() -> &'static Mutex<Option<Running>> {
    static RUNNING: OnceLock<Mutex<Option<Running>>> = OnceLock::new();
    RUNNING.get_or_init(|| Mutex::new(None))
}

/// The line printed on Ctrl-C: `already` runs were done before, `ran` finished now (completed or
/// diverged), `failed` failed, of `total`.
pub fn interrupted_line(total: usize, already: usize, ran: usize, failed: usize) -> String {
    let done = already + ran;
    let failed = if failed > 0 { format!(", {failed} failed") } else { String::new() };
    format!(
        "interrupted: {done} of {total} runs done ({ran} in this run{failed}); run the same command again to continue with the other {}",
        total.saturating_sub(done)
    )
}

#[cfg(unix)]
mod interrupt {
    use std::sync::atomic::{AtomicI32, Ordering};

    static WRITE_END: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn on_signal(signal: libc::c_int) {
        // Only what a signal handler may do: one write to the pipe (the signal's number).
        let fd = WRITE_END.load(Ordering::Relaxed);
        if fd >= 0 {
            let byte = signal as u8;
            unsafe {
                libc::write(fd, (&byte as *const u8).cast(), 1);
            }
        }
    }

    /// Installs the SIGINT and SIGTERM handlers once: a thread waits on a pipe the handler
    /// writes to, prints the line and exits.
    pub fn install(report: fn()) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let mut fds = [0 as libc::c_int; 2];
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return; // no handler: Ctrl-C stops the process as before
            }
            WRITE_END.store(fds[1], Ordering::Relaxed);
            let read_end = fds[0];
            std::thread::spawn(move || {
                let mut byte = 0u8;
                loop {
                    let n = unsafe { libc::read(read_end, (&mut byte as *mut u8).cast(), 1) };
                    if n == 1 {
                        report();
                        // As a shell reports a process the signal ended: 130 for SIGINT.
                        std::process::exit(128 + i32::from(byte));
                    }
                    if n == 0 {
                        return;
                    }
                }
            });
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
                libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
            }
        });
    }
}

/// Prints the Ctrl-C line of the sweep running now (if any).
fn report_interrupt() {
    let guard = running().lock().unwrap_or_else(|e| e.into_inner());
    match guard.as_ref() {
        Some(r) => {
            let (already, ran, failed) = *r.done.lock().unwrap_or_else(|e| e.into_inner());
            let _ = r.multi.clear();
            eprintln!("\n{}", interrupted_line(r.total, already, ran, failed));
        }
        None => eprintln!("\ninterrupted"),
    }
}

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
    /// (done before, completed or diverged now, failed now), for the Ctrl-C line.
    counts: Arc<Mutex<(usize, usize, usize)>>,
    steps: Mutex<SweepSteps>,
    started: Instant,
    last_eta: Mutex<Instant>,
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
                "{prefix} [{bar:25.green/dim}] {pos}/{len} runs, {elapsed} elapsed, ETA {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        sweep.set_prefix("sweep");
        sweep.set_position(skipped as u64);
        sweep.set_message("-");
        let counts = Arc::new(Mutex::new((skipped, 0, 0)));
        *running().lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Running { multi: multi.clone(), total, done: counts.clone() });
        #[cfg(unix)]
        interrupt::install(report_interrupt);
        Self {
            mode,
            multi,
            sweep,
            total,
            done: Mutex::new(skipped),
            counts,
            steps: Mutex::default(),
            started: Instant::now(),
            last_eta: Mutex::new(Instant::now()),
            errors: Mutex::default(),
        }
    }

    /// The runs this sweep will run, with their planned steps where known (for the ETA).
    pub fn plan(&self, runs: impl IntoIterator<Item = (String, Option<u64>)>) {
        *self.steps.lock().expect("progress lock") = SweepSteps::new(runs);
    }

    /// Updates the steps of a run, and the ETA at most twice a second.
    fn steps_of(&self, update: impl FnOnce(&mut SweepSteps)) {
        let mut steps = self.steps.lock().expect("progress lock");
        update(&mut steps);
        let mut last = self.last_eta.lock().expect("progress lock");
        if self.mode == Mode::Bars && last.elapsed() > Duration::from_millis(500) {
            *last = Instant::now();
            let eta = steps.eta(self.started.elapsed().as_secs_f64());
            self.sweep.set_message(eta.map_or("-".to_string(), duration));
        }
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
        self.counts.lock().expect("progress lock").0 += 1;
        self.sweep.inc(1);
    }

    /// An observer for a run that starts now.
    pub fn run<'a>(&'a self, id: &str) -> Box<dyn RunObserver + 'a> {
        match self.mode {
            Mode::Bars => {
                let bar = self.multi.insert_before(&self.sweep, ProgressBar::new(1));
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:12.cyan/dim}] {percent:>3}% {msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                // The id, the bar (16), the percentage (5) and the message (up to 26).
                bar.set_prefix(short_id(id, WIDTH - 16 - 5 - 26));
                Box::new(BarObserver {
                    bar,
                    next_update: 0,
                    last_draw: Instant::now(),
                    id: id.to_string(),
                    sweep: self,
                })
            }
            Mode::Lines => Box::new(LineObserver {
                id: id.to_string(),
                total: 0,
                next_report: 0,
                last_line: Instant::now(),
                sweep: self,
            }),
            Mode::Quiet => Box::new(QuietObserver { id: id.to_string(), sweep: self }),
        }
    }

    /// Records a finished run and prints its one-line summary.
    pub fn finished(&self, result: &RunResult) {
        let mut done = self.done.lock().expect("progress lock");
        *done += 1;
        {
            let mut counts = self.counts.lock().expect("progress lock");
            if result.status == Status::Failed {
                counts.2 += 1;
            } else {
                counts.1 += 1;
            }
        }
        self.steps_of(|s| s.finished(&result.id));
        self.sweep.inc(1);
        let primary = result.primary().map(|m| m.name.clone()).unwrap_or_default();
        let value = result.final_metrics.get(&primary).copied().flatten();
        let detail = match result.status {
            Status::Completed => format!("{primary} {}", value.map_or("n/a".into(), |v| format!("{v:.5}"))),
            Status::Diverged => format!("diverged at step {}", result.diverged_at_step.unwrap_or(0)),
            Status::Failed => {
                let error = result.error.as_deref().unwrap_or("unknown error");
                let mut errors = self.errors.lock().expect("progress lock");
                match errors.get(error) {
                    Some(first) => format!("FAILED: the same error as {first} (above)"),
                    None => {
                        errors.insert(error.to_string(), result.id.clone());
                        format!("FAILED:\n  {}", error.replace('\n', "\n  "))
                    }
                }
            }
        };
        let line = finished_line(*done, self.total, &result.id, result.status, result.wall_time_s, &detail);
        if result.status == Status::Failed {
            self.error(&line);
        } else {
            self.println(&line);
        }
    }

    pub fn finish(&self) {
        self.sweep.finish_and_clear();
        *running().lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// `[3/20] ID Completed in 1.2s: DETAIL` in [`WIDTH`] columns (the id shortened; a failure's
/// error goes on the lines below, whole).
pub fn finished_line(done: usize, total: usize, id: &str, status: Status, seconds: f64, detail: &str) -> String {
    let (first, rest) = detail.split_once('\n').map_or((detail, None), |(a, b)| (a, Some(b)));
    let mut line = fit_line(&format!("[{done}/{total}] "), id, &format!(" {status:?} in {seconds:.1}s: {first}"));
    if let Some(rest) = rest {
        line.push('\n');
        line.push_str(rest);
    }
    line
}

struct BarObserver<'a> {
    bar: ProgressBar,
    next_update: u64,
    last_draw: Instant,
    id: String,
    sweep: &'a SweepProgress,
}

impl RunObserver for BarObserver<'_> {
    fn started(&mut self, total_steps: u64) {
        self.bar.set_length(total_steps);
        self.bar.reset_eta();
        self.sweep.steps_of(|s| s.started(&self.id, total_steps));
    }

    fn step(&mut self, step: u64, loss: f64, lr: f64) {
        // Throttled: millions of steps must not each take a lock.
        if step >= self.next_update {
            self.bar.set_position(step);
            if self.last_draw.elapsed() > Duration::from_millis(200) {
                self.bar.set_message(format!("loss {loss:.3e} lr {lr:.2e}"));
                self.last_draw = Instant::now();
            }
            self.sweep.steps_of(|s| s.step(&self.id, step));
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

impl Drop for BarObserver<'_> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

struct LineObserver<'a> {
    id: String,
    total: u64,
    next_report: u64,
    last_line: Instant,
    sweep: &'a SweepProgress,
}

impl RunObserver for LineObserver<'_> {
    fn started(&mut self, total_steps: u64) {
        self.total = total_steps;
        self.next_report = (total_steps / 10).max(1);
        self.sweep.steps_of(|s| s.started(&self.id, total_steps));
        eprintln!("{}", fit_line("", &self.id, &format!(": started, {total_steps} steps")));
    }

    fn step(&mut self, step: u64, loss: f64, lr: f64) {
        // A line every 10% of the run, and at least every 30 s on long ones.
        if step >= self.next_report || (step.is_multiple_of(1024) && self.last_line.elapsed() > Duration::from_secs(30))
        {
            let suffix = format!(
                ": step {step}/{} ({:.0}%) loss {loss:.3e} lr {lr:.2e}",
                self.total,
                100.0 * step as f64 / self.total.max(1) as f64
            );
            eprintln!("{}", fit_line("", &self.id, &suffix));
            self.sweep.steps_of(|s| s.step(&self.id, step));
            self.next_report = step + (self.total / 10).max(1);
            self.last_line = Instant::now();
        }
    }

    fn evaluated(&mut self, _step: u64, _metrics: &Metrics) {}

    fn note(&mut self, line: &str) {
        eprintln!("{line}");
    }
}

struct QuietObserver<'a> {
    id: String,
    sweep: &'a SweepProgress,
}

impl RunObserver for QuietObserver<'_> {
    fn started(&mut self, total_steps: u64) {
        self.sweep.steps_of(|s| s.started(&self.id, total_steps));
    }
    fn step(&mut self, _step: u64, _loss: f64, _lr: f64) {}
    fn evaluated(&mut self, _step: u64, _metrics: &Metrics) {}
    fn note(&mut self, _line: &str) {}
}
