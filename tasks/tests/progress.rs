//! Terminal progress: the sweep's ETA from steps (not runs), lines that fit 80 columns, and the
//! one line Ctrl-C prints (a real `optbench run` sent SIGINT), after which a rerun continues.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use tasks::runner::progress::{duration, finished_line, interrupted_line, short_id, SweepSteps, WIDTH};
use tasks::runner::record::Status;

#[test]
fn the_eta_counts_steps_across_runs_with_their_planned_steps() {
    // Three runs: 100 steps, 1000 steps, and one in epochs (unknown until it starts).
    let mut s = SweepSteps::new([("a".to_string(), Some(100)), ("b".to_string(), Some(1000)), ("c".to_string(), None)]);
    assert_eq!(s.eta(10.0), None, "no step yet");
    s.step("a", 1);
    s.step("a", 100);
    s.finished("a");
    // 100 steps done in 10 s; left: b's 1000 and c counted as the mean of the known (550).
    assert_eq!(s.done_and_left(), (100, 1550));
    assert_eq!(s.eta(10.0), Some(155.0));
    // One run done of three would say 20 s; by steps it is 155 s.
    s.started("c", 10);
    s.step("b", 1);
    s.step("b", 501);
    assert_eq!(s.done_and_left(), (601, 509), "b from step 0 to 501; c planned 10 now");
    // A run resumed from its checkpoint at step 400 counts only the steps trained now.
    let mut r = SweepSteps::new([("d".to_string(), Some(1000))]);
    r.step("d", 401);
    r.step("d", 600);
    assert_eq!(r.done_and_left(), (200, 400));
    assert_eq!(r.eta(20.0), Some(40.0));
    // A run that diverged early leaves nothing.
    r.finished("d");
    assert_eq!(r.done_and_left(), (200, 0));
    assert_eq!((duration(12.4), duration(185.0), duration(3725.0)), ("12s".into(), "3m05s".into(), "1h02m".into()));
}

#[test]
fn run_lines_fit_80_columns() {
    let id = "adabelief-cifar-quick/cifar10-vgg11-bn-with-a-long-label/adabelief-rectified/lr-0.001_wd-0.0005/seed-2";
    let line = finished_line(123, 4567, id, Status::Completed, 12345.6, "test_accuracy 0.91234");
    assert!(line.chars().count() <= WIDTH, "{} columns: {line}", line.chars().count());
    assert!(line.ends_with("/seed-2 Completed in 12345.6s: test_accuracy 0.91234"), "{line}");
    // The experiment goes first (the sweep's), then the longest parts are cut.
    let id = "adashift-mnist-quick/mnist-mlp-linear/adam/beta1-0_beta2-0.999_eps-1e-8_lr-0.001/seed-0";
    let line = finished_line(3, 8, id, Status::Completed, 95.3, "test_accuracy 0.91234");
    assert_eq!(line, "[3/8] mnist-mlp-li~/adam/beta1~/seed-0 Completed in 95.3s: test_accuracy 0.91234");
    let short = finished_line(1, 2, "e/t/adam/lr-0.1/seed-0", Status::Diverged, 1.0, "diverged at step 3");
    assert_eq!(short, "[1/2] e/t/adam/lr-0.1/seed-0 Diverged in 1.0s: diverged at step 3");
    // A failure: the run's line fits; its error follows whole.
    let failed = finished_line(1, 2, id, Status::Failed, 0.5, "FAILED:\n  cannot read the data at /a/very/long/path");
    let (first, rest) = failed.split_once('\n').unwrap();
    assert!(first.chars().count() <= WIDTH && rest.contains("/a/very/long/path"), "{failed}");
    assert_eq!(short_id("abcdefghij", 8), "...fghij");
    assert_eq!(short_id("exp/task/adam/lr-0.001_wd-0.0005/seed-0", 30), "task/adam/lr-0.001_wd-~/seed-0");
    let ctrl_c = interrupted_line(20, 4, 3, 1);
    assert_eq!(
        ctrl_c,
        "interrupted: 7 of 20 runs done (3 in this run, 1 failed); run the same command again to continue with the other 13"
    );
}

const CONFIG: &str = r#"
name = "stop"
seeds = [0]

[[tasks]]
name = "toy2d-quadratic"
steps = 50

[[tasks]]
name = "online-stochastic"
steps = 200_000_000
eval_every = 100_000_000
log_every = 1_000_000

[[optimizers]]
name = "adam"
lr = [0.01, 0.1]
"#;

#[cfg(unix)]
#[test]
fn ctrl_c_says_how_many_runs_are_done_and_a_rerun_continues() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stop.toml"), CONFIG).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_optbench"))
        .args(["run", "stop.toml"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    // The two toy runs finish, then the long run starts: interrupt it.
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("online-stochastic") && line.contains("started") {
            break;
        }
    }
    assert!(seen.iter().filter(|l| l.contains("Completed")).count() == 2, "{seen:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    let last = rest.iter().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert_eq!(
        last,
        "interrupted: 2 of 4 runs done (2 in this run); run the same command again to continue with the other 2"
    );
    // The interrupted run left no result; the finished ones are there, whole.
    let results_dir = dir.path().join("results/stop");
    assert_eq!(results(&results_dir).len(), 2);
    assert!(!results_dir.join("online-stochastic/adam/lr-0.01/seed-0.json").exists());
}
