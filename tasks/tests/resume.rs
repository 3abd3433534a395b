//! Mid-run checkpoints end to end: a sweep killed with SIGKILL in the middle of each of its
//! runs, then run again, continues every run from its checkpoint and ends with the same
//! final metrics and the same loss streams, to the bit, as a sweep that was never killed.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tasks::runner::record::RunResult;

/// Two families with state beyond the parameters: the stochastic online problem (its
/// generator), and an MLP classifier (the data order, Adam's moments).
const CONFIG: &str = r#"
name = "resume"
[[tasks]]
name = "online-stochastic"
steps = 300000
eval_every = 10000
log_every = 1000
[[tasks]]
name = "mnist-mlp"
epochs = 12
eval_every = 20
options = { hidden = 64, valid_size = 200, test_subset = 200 }
[[optimizers]]
name = "adam"
lr = 1e-3
[[optimizers]]
name = "adashift"
label = "max-adashift"
lr = 1e-2
"#;

fn optbench(dir: &Path, out: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_optbench"));
    cmd.args(["run", "resume.toml", "--out", out, "--jobs", "1", "--data-dir", "."])
        .current_dir(dir)
        .env("OPTBENCH_CACHE", dir.join("cache"))
        .env("OPTBENCH_OFFLINE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_killed_sweep_resumes_every_run_from_its_checkpoint_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    common::toy_digits(dir.path(), 2000, 200);
    common::write_config(dir.path(), "resume.toml", CONFIG);

    let whole = optbench(dir.path(), "whole").output().unwrap();
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    assert!(files_with_extension(&dir.path().join("whole"), "ckpt").is_empty(), "checkpoints are removed at the end");

    // Kill the sweep as soon as a run has a checkpoint that was not killed at yet; again until
    // the sweep finishes on its own.
    let out = dir.path().join("killed");
    let mut killed_at: BTreeSet<PathBuf> = BTreeSet::new();
    let mut notes = String::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut child = optbench(dir.path(), "killed").spawn().unwrap();
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            let fresh = files_with_extension(&out, "ckpt").into_iter().find(|p| !killed_at.contains(p));
            if let Some(ckpt) = fresh {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed_at.insert(ckpt);
                break None;
            }
            assert!(Instant::now() < deadline, "the sweep neither finished nor wrote a checkpoint");
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        notes.push_str(&stderr);
        if let Some(status) = finished {
            assert!(status.success(), "{notes}");
            break;
        }
    }
    assert_eq!(killed_at.len(), 4, "every run was killed once midway: {killed_at:?}");
    assert!(notes.contains("resuming from its checkpoint at step"), "{notes}");

    let whole_results = common::results(&dir.path().join("whole"));
    let resumed_results = common::results(&out);
    assert_eq!(whole_results.len(), 4);
    assert_eq!(resumed_results.len(), 4);
    for resumed in &resumed_results {
        let id = &resumed.id;
        let whole: &RunResult = whole_results.iter().find(|r| r.id == *id).unwrap();
        let step = resumed.resumed_from_step.unwrap_or_else(|| panic!("{id} did not resume"));
        assert!(step > 0 && step < resumed.total_steps, "{id}: resumed from step {step}");
        assert_eq!(whole.resumed_from_step, None);
        assert_eq!(resumed.final_metrics, whole.final_metrics, "{id}: final metrics");
        assert_eq!(resumed.history.train_loss, whole.history.train_loss, "{id}: training losses");
        assert_eq!(resumed.history.metrics, whole.history.metrics, "{id}: every evaluation");
        assert_eq!(resumed.history.step, whole.history.step, "{id}");
        let stream = |r: &RunResult, root: &Path| {
            std::fs::read(tasks::runner::record::stream_path(&r.result_path(root))).unwrap()
        };
        assert!(stream(whole, &dir.path().join("whole")) == stream(resumed, &out), "{id}: loss streams differ");
    }
    assert!(files_with_extension(&out, "ckpt").is_empty(), "checkpoints are removed at the end");
}

#[test]
fn a_damaged_checkpoint_is_reported_and_the_run_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let config = "name = \"damaged\"\n[[tasks]]\nname = \"toy2d-quadratic\"\nsteps = 200\n[[optimizers]]\nname = \"adam\"\nlr = 0.1\n";
    common::write_config(dir.path(), "resume.toml", config);
    let ckpt = dir.path().join("out/damaged/toy2d-quadratic/adam/lr-0.1/seed-0.ckpt");
    std::fs::create_dir_all(ckpt.parent().unwrap()).unwrap();
    std::fs::write(&ckpt, b"optbench-checkpoint/1\n\x10\0\0\0\0\0\0\0{\"truncated").unwrap();
    let output = optbench(dir.path(), "out").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("checkpoint")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("not used (truncated") && lines[0].contains("starting from the beginning"), "{stderr}");
    let results = common::results(&dir.path().join("out"));
    let r = &results[0];
    assert_eq!(r.resumed_from_step, None);
    assert_eq!(r.steps_done, 200);
    assert!(!ckpt.exists());
}
