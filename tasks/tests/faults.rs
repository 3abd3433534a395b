//! Faults a sweep must survive, each reproduced: results that cannot be written, concurrent
//! processes on one results folder, damaged or deleted loss streams, `--quiet` with failures;
//! and the scale-out pieces: `--shard`, `optbench status`, `optbench slurm`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use common::optbench;

/// Nine short runs of a problem that takes no data: long enough (about a second each) for
/// processes started together to overlap.
const SWEEP: &str = r#"
name = "faults"
seeds = 3
[[tasks]]
name = "online-sequential"
steps = 150000
eval_every = 50000
[[optimizers]]
name = "adam"
lr = [0.1, 0.01]
[[optimizers]]
name = "amsgrad"
lr = 0.1
"#;

const RUNS: usize = 9;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("faults.toml"), SWEEP).unwrap();
    dir
}

/// Starts `optbench` with `args` in `cwd` (for processes that must run at the same time).
fn spawn(args: &[&str], cwd: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_optbench"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("optbench starts")
}

fn output(child: std::process::Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

/// The output of processes that must all succeed.
fn succeeded(children: Vec<std::process::Child>) -> Vec<String> {
    children
        .into_iter()
        .map(|c| {
            let (ok, log) = output(c);
            assert!(ok, "{log}");
            log
        })
        .collect()
}

/// How many times each run was trained, from the `Completed in` lines of every process.
fn trained(logs: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for log in logs {
        for line in log.lines().filter(|l| l.contains(" Completed in ")) {
            let id = line.split_whitespace().nth(1).unwrap().to_string();
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

fn results_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("results/faults")
}

#[test]
fn a_result_that_cannot_be_written_fails_the_run_loudly_even_when_quiet() {
    let dir = setup();
    // The result's path is taken by a folder: the result cannot be written.
    let blocked = results_dir(dir.path()).join("online-sequential/adam/lr-0.1/seed-1.json");
    std::fs::create_dir_all(&blocked).unwrap();
    let (ok, stdout, stderr) = optbench(&["run", "faults.toml", "--quiet"], dir.path());
    assert!(!ok, "the exit code says a run failed: {stdout}\n{stderr}");
    assert!(
        stderr.contains("online-sequential/adam/lr-0.1/seed-1 Failed")
            && stderr.contains("cannot write its result")
            && stderr.contains("the result is lost"),
        "{stderr}"
    );
    assert!(stderr.contains("1 runs failed"), "{stderr}");
    assert!(!stdout.contains("Completed"), "--quiet prints no completed runs: {stdout}");
    let (ok, stdout, _) = optbench(&["status", "results/faults"], dir.path());
    assert!(!ok, "status exits non-zero while runs are not done");
    assert!(stdout.contains("faults: 9 runs: 8 done"), "{stdout}");
    // Once the path is free, the next run writes it.
    std::fs::remove_dir(&blocked).unwrap();
    let (ok, stdout, stderr) = optbench(&["run", "faults.toml"], dir.path());
    assert!(ok && stdout.contains("1 completed, 0 diverged, 0 failed, 8 already done"), "{stdout}\n{stderr}");
    let (ok, stdout, _) = optbench(&["status", "results/faults"], dir.path());
    assert!(ok && stdout.contains("9 runs: 9 done, 0 diverged, 0 running, 0 failed, 0 stale, 0 missing"), "{stdout}");
}

#[test]
fn concurrent_processes_on_one_folder_train_each_run_once() {
    let dir = setup();
    let children: Vec<_> = (0..3).map(|_| spawn(&["run", "faults.toml"], dir.path())).collect();
    let logs = succeeded(children);
    let counts = trained(&logs);
    assert_eq!(counts.len(), RUNS, "{logs:#?}");
    assert!(counts.values().all(|&n| n == 1), "a run trained twice: {counts:?}\n{logs:#?}");
    let all = logs.concat();
    assert!(all.contains("which is running it: skipped") || all.contains("finished by another process meanwhile"));
    for result in common::results(&results_dir(dir.path())) {
        let stream = std::fs::read(results_dir(dir.path()).join(format!("{}.steps.jsonl", result.id))).unwrap();
        assert!(!stream.contains(&0), "{}: NUL bytes in its loss stream", result.id);
        let recorded = result.stream.as_ref().expect("the result records its stream");
        assert_eq!(recorded.bytes, stream.len() as u64);
    }
    let locks: Vec<_> = walkdir::WalkDir::new(dir.path())
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "lock"))
        .collect();
    assert!(locks.is_empty(), "lock files left behind: {locks:?}");
}

#[test]
fn shards_cover_a_sweep_exactly_once() {
    let dir = setup();
    let children: Vec<_> =
        (1..=4).map(|i| spawn(&["run", "faults.toml", "--shard", &format!("{i}/4")], dir.path())).collect();
    let logs = succeeded(children);
    let counts = trained(&logs);
    assert_eq!(counts.len(), RUNS, "{logs:#?}");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    // 9 runs in 4 parts: 3, 2, 2, 2, and no part waited on another's lock.
    for (i, log) in logs.iter().enumerate() {
        let expected = if i == 0 { 3 } else { 2 };
        assert!(log.contains(&format!("(part {} of 4): {expected} runs: {expected} completed", i + 1)), "{log}");
        assert!(!log.contains("skipped"), "{log}");
    }
    // The same sweep unsharded finds everything done.
    let (ok, stdout, _) = optbench(&["run", "faults.toml"], dir.path());
    assert!(ok && stdout.contains("0 completed, 0 diverged, 0 failed, 9 already done"), "{stdout}");
    for bad in ["0/4", "5/4", "1/0", "a/b", "3"] {
        let (ok, _, stderr) = optbench(&["run", "faults.toml", "--shard", bad], dir.path());
        assert!(!ok && stderr.contains("expected I/N with 1 <= I <= N"), "{bad}: {stderr}");
    }
}

#[test]
fn damaged_or_deleted_loss_streams_are_run_again() {
    let dir = setup();
    let (ok, stdout, stderr) = optbench(&["run", "faults.toml"], dir.path());
    assert!(ok, "{stdout}\n{stderr}");
    let runs = results_dir(dir.path()).join("online-sequential/adam/lr-0.1");
    let damaged = runs.join("seed-0.steps.jsonl");
    let mut bytes = std::fs::read(&damaged).unwrap();
    let quarter = bytes.len() / 4;
    bytes[..quarter].fill(0);
    std::fs::write(&damaged, &bytes).unwrap();
    std::fs::remove_file(runs.join("seed-1.steps.jsonl")).unwrap();
    let cut = runs.join("seed-2.steps.jsonl");
    let len = std::fs::metadata(&cut).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&cut).unwrap().set_len(len / 2).unwrap();

    let (ok, stdout, _) = optbench(&["status", "results/faults"], dir.path());
    assert!(!ok && stdout.contains("6 done") && stdout.contains("3 stale"), "{stdout}");
    assert!(stdout.contains("is damaged") && stdout.contains("is missing") && stdout.contains("bytes"), "{stdout}");
    let (ok, stdout, stderr) = optbench(&["run", "faults.toml"], dir.path());
    assert!(ok && stdout.contains("3 completed, 0 diverged, 0 failed, 6 already done"), "{stdout}\n{stderr}");
    assert!(stderr.contains("seed-0: its loss stream") && stderr.contains("checksum differs"), "{stderr}");
    assert!(stderr.contains("seed-1: its loss stream") && stderr.contains("is missing"), "{stderr}");
    let repaired = std::fs::read(&damaged).unwrap();
    assert!(!repaired.contains(&0) && repaired.len() == bytes.len(), "the stream is whole again");
}

#[test]
fn status_reads_the_manifest_or_the_config() {
    let dir = setup();
    let (ok, _, stderr) = optbench(&["status", "."], dir.path());
    assert!(!ok && stderr.contains("no sweep.json") && stderr.contains("optbench status CONFIG"), "{stderr}");
    let (ok, stdout, _) = optbench(&["status", "faults.toml"], dir.path());
    assert!(!ok && stdout.contains("faults: 9 runs: 0 done") && stdout.contains("9 missing"), "{stdout}");
    assert!(stdout.contains("  missing  online-sequential/amsgrad/lr-0.1/seed-2"), "{stdout}");
    let (ok, _, _) = optbench(&["run", "faults.toml", "--shard", "1/3"], dir.path());
    assert!(ok);
    // From the folder (its manifest) and from the folder above it.
    for path in ["results/faults", "results"] {
        let (ok, stdout, _) = optbench(&["status", path], dir.path());
        assert!(!ok && stdout.contains("faults: 9 runs: 3 done") && stdout.contains("6 missing"), "{stdout}");
    }
    // A run being held is "running", with its holder.
    let held = results_dir(dir.path()).join("online-sequential/adam/lr-0.01/seed-2.json");
    let lock = match tasks::runner::lock::RunLock::try_acquire(&held).unwrap() {
        tasks::runner::lock::Acquired::Locked(lock) => lock,
        other => panic!("{other:?}"),
    };
    let (_, stdout, _) = optbench(&["status", "results/faults"], dir.path());
    assert!(
        stdout.contains("1 running") && stdout.contains("running  online-sequential/adam/lr-0.01/seed-2"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = optbench(&["run", "faults.toml"], dir.path());
    assert!(ok, "a locked run is not a failure: {stdout}\n{stderr}");
    assert!(stdout.contains("5 completed, 0 diverged, 0 failed, 3 already done, 1 running elsewhere"), "{stdout}");
    assert!(stderr.contains("seed-2: locked by process"), "{stderr}");
    drop(lock);
}

#[test]
fn slurm_writes_an_array_script_of_shards() {
    let dir = setup();
    let (ok, stdout, stderr) = optbench(
        &[
            "slurm",
            "faults.toml",
            "--shards",
            "4",
            "--partition",
            "debug",
            "--time",
            "00:10:00",
            "--max-parallel",
            "2",
            "--offline",
        ],
        dir.path(),
    );
    assert!(ok, "{stdout}\n{stderr}");
    let script = results_dir(dir.path()).join("slurm/array.sbatch");
    assert!(stdout.contains("faults: 9 runs in 4 array tasks") && stdout.contains("sbatch "), "{stdout}");
    let text = std::fs::read_to_string(&script).unwrap();
    for line in ["#SBATCH --array=1-4%2", "#SBATCH --partition=debug", "#SBATCH --time=00:10:00", "--offline"] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert!(text.contains("--shard \"$SLURM_ARRAY_TASK_ID/4\""), "{text}");
    assert!(results_dir(dir.path()).join("sweep.json").exists());
    let (ok, _, stderr) = optbench(&["slurm", "faults.toml", "--shards", "10"], dir.path());
    assert!(!ok && stderr.contains("the sweep has only 9 runs"), "{stderr}");

    // The script's array tasks, run by hand as Slurm would, cover the sweep.
    for i in 1..=4 {
        let status = Command::new("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", i.to_string())
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "array task {i}");
    }
    let (ok, stdout, _) = optbench(&["status", "results/faults"], dir.path());
    assert!(ok && stdout.contains("9 runs: 9 done"), "{stdout}");
}

#[test]
fn a_hub_that_never_answers_fails_the_sweep_within_seconds_with_one_message() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hub.toml"),
        "name = \"hub\"\nseeds = 4\n[[tasks]]\nname = \"mnist-logreg\"\nepochs = 1\n[[optimizers]]\nname = \"adam\"\n",
    )
    .unwrap();
    let (hf, optbench_cache) = (dir.path().join("cache/hf"), dir.path().join("cache/optbench"));
    let env: [(&str, &std::ffi::OsStr); 3] = [
        ("HF_ENDPOINT", endpoint.as_ref()),
        ("HF_HOME", hf.as_os_str()),
        ("OPTBENCH_CACHE", optbench_cache.as_os_str()),
    ];
    let started = std::time::Instant::now();
    let (ok, stdout, stderr) = common::optbench_env(&["run", "hub.toml", "--quiet"], dir.path(), &env);
    let took = started.elapsed().as_secs_f64();
    assert!(!ok, "{stdout}\n{stderr}");
    assert!(took < 30.0, "the sweep ends within seconds, not {took} s");
    assert_eq!(stderr.matches("operation timed out").count(), 1, "one message: {stderr}");
    assert!(stderr.contains("no answer within 4 s") && stderr.contains("OPTBENCH_HUB_TIMEOUT"), "{stderr}");
    assert_eq!(stderr.matches("the same error as mnist-logreg/adam/default/seed-0 (above)").count(), 3, "{stderr}");
    assert!(stderr.contains("4 runs failed"), "{stderr}");
    // Each result has the whole message.
    for result in common::results(&dir.path().join("results/hub")) {
        assert!(result.error.as_deref().unwrap_or("").contains("operation timed out"), "{:?}", result.error);
    }
    // `data fetch` too, and the limit can be set.
    let env: Vec<(&str, &std::ffi::OsStr)> =
        env.iter().copied().chain([("OPTBENCH_HUB_TIMEOUT", "1".as_ref())]).collect();
    let started = std::time::Instant::now();
    let (ok, _, stderr) = common::optbench_env(&["data", "fetch", "mnist"], dir.path(), &env);
    assert!(!ok && stderr.contains("no answer within 1 s"), "{stderr}");
    assert!(started.elapsed().as_secs_f64() < 15.0);
    let env: Vec<(&str, &std::ffi::OsStr)> =
        env.iter().copied().chain([("OPTBENCH_HUB_TIMEOUT", "soon".as_ref())]).collect();
    let (ok, _, stderr) = common::optbench_env(&["data", "fetch", "mnist"], dir.path(), &env);
    assert!(!ok && stderr.contains("OPTBENCH_HUB_TIMEOUT=`soon`: expected a number of seconds"), "{stderr}");
}

#[test]
fn limits_and_bad_values_get_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let base = "name = \"bad\"\n[[tasks]]\nname = \"toy2d-quadratic\"\n[[optimizers]]\nname = \"adam\"\n";
    let cases: &[(&str, &[&str])] = &[
        ("seeds = 1000000000000\n", &["seeds: 1000000000000 seeds: a sweep holds at most"]),
        ("lr = nan\n", &["optimizers[0].lr: not a finite number (nan, inf or null)"]),
        ("lr = [0.1, inf]\n", &["optimizers[0].lr: a grid value is not a finite number"]),
        ("lr = { log = [1e-4, 1], num = 100000000 }\n", &["`num` = 100000000: a range has at most 100000 values"]),
        (
            "lr = { log = [1e-4, 1], num = 300 }\nbeta1 = { linear = [0.1, 0.9], num = 300 }\n",
            &["1 tasks x 90000 optimizer settings x 1 seeds = 90000 runs, more than 20000", "--allow-large"],
        ),
    ];
    for (extra, expected) in cases {
        // `seeds` goes at the top, the rest into the optimizer arm.
        let text = if extra.starts_with("seeds") { format!("{extra}{base}") } else { format!("{base}{extra}") };
        std::fs::write(dir.path().join("bad.toml"), &text).unwrap();
        let started = std::time::Instant::now();
        let (ok, stdout, stderr) = optbench(&["plan", "bad.toml"], dir.path());
        assert!(!ok, "{text}: {stdout}");
        assert!(started.elapsed().as_secs_f64() < 20.0, "{text}: no expansion of the whole sweep");
        for e in *expected {
            assert!(stderr.contains(e), "{text}: `{e}` in {stderr}");
        }
        assert!(!stderr.contains("backtrace") && !stderr.contains("memory allocation"), "{stderr}");
    }
    // --allow-large expands it; OPTBENCH_MAX_RUNS moves the limit.
    let (ok, stdout, stderr) = optbench(&["plan", "bad.toml", "--allow-large"], dir.path());
    assert!(ok && stdout.contains("bad: 90000 runs"), "{stdout}\n{stderr}");
    let (ok, stdout, _) =
        common::optbench_env(&["plan", "bad.toml"], dir.path(), &[("OPTBENCH_MAX_RUNS", "100000".as_ref())]);
    assert!(ok && stdout.contains("bad: 90000 runs"), "{stdout}");
    let (ok, _, stderr) =
        common::optbench_env(&["plan", "bad.toml"], dir.path(), &[("OPTBENCH_MAX_RUNS", "lots".as_ref())]);
    assert!(!ok && stderr.contains("OPTBENCH_MAX_RUNS=`lots`: expected a whole number"), "{stderr}");

    std::fs::write(dir.path().join("dir.toml"), format!("data_dir = 5\n{base}")).unwrap();
    let (ok, _, stderr) = optbench(&["plan", "dir.toml"], dir.path());
    assert!(!ok && stderr.contains("data_dir") && stderr.contains("must be a folder"), "{stderr}");
    assert!(!stderr.contains("untagged enum"), "{stderr}");
    std::fs::write(dir.path().join("ok.toml"), base).unwrap();
    let (ok, _, stderr) = optbench(&["run", "ok.toml", "--device", "foo"], dir.path());
    assert!(!ok && stderr.starts_with("error: --device foo: unknown device `foo`"), "{stderr}");
}

#[test]
fn data_verify_reports_missing_manifests_and_removed_caches_are_said() {
    let dir = tempfile::tempdir().unwrap();
    common::toy_digits(dir.path(), 200, 50);
    let cache = dir.path().join("cache");
    let env: [(&str, &std::ffi::OsStr); 1] = [("OPTBENCH_CACHE", cache.as_os_str())];
    let data_dir = dir.path().to_str().unwrap();
    let (ok, stdout, stderr) =
        common::optbench_env(&["data", "fetch", "mnist", "--data-dir", data_dir], dir.path(), &env);
    assert!(ok, "{stdout}\n{stderr}");
    let (ok, stdout, _) = common::optbench_env(&["data", "verify", "mnist"], dir.path(), &env);
    assert!(ok && stdout.contains("1 files ok, 0 corrupt, 0 without a manifest"), "{stdout}");
    let manifest = std::fs::read_dir(cache.join("datasets"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let tensors = manifest.with_extension("safetensors");
    let saved = std::fs::read(&manifest).unwrap();

    // Offline, with the sources gone, a truncated cache is removed: and said so.
    std::fs::remove_dir_all(dir.path().join("mnist")).unwrap();
    std::fs::create_dir_all(dir.path().join("mnist")).unwrap();
    let bytes = std::fs::read(&tensors).unwrap();
    std::fs::write(&tensors, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(
        dir.path().join("r.toml"),
        "name = \"r\"\n[[tasks]]\nname = \"mnist-logreg\"\nepochs = 1\n[[optimizers]]\nname = \"adam\"\n",
    )
    .unwrap();
    let (ok, _, stderr) =
        common::optbench_env(&["run", "r.toml", "--offline", "--data-dir", data_dir], dir.path(), &env);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("warning: the decoded cache") && stderr.contains("it was removed"), "{stderr}");
    assert!(!tensors.exists());

    // A tensors file without its manifest is reported, and verify fails.
    std::fs::write(&tensors, &bytes).unwrap();
    std::fs::remove_file(&manifest).ok();
    let (ok, stdout, _) = common::optbench_env(&["data", "verify", "mnist"], dir.path(), &env);
    assert!(
        !ok && stdout.contains("NO MANIFEST") && stdout.contains("0 files ok, 0 corrupt, 1 without a manifest"),
        "{stdout}"
    );
    std::fs::write(&manifest, saved).unwrap();
    let (ok, stdout, _) = common::optbench_env(&["data", "verify", "cifar10"], dir.path(), &env);
    assert!(ok && stdout.contains("cifar10: nothing cached"), "{stdout}");
}
