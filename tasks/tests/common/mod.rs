//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod cifar;
pub mod hub;
pub mod hubfiles;
pub mod idx;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use tasks::plan::{self, Overrides, Plan};
use tasks::runner::progress::Mode;
use tasks::runner::record::{find_results, RunResult};
use tasks::runner::{self, SweepOptions, SweepSummary};
use tasks::task::DataSettings;

/// The project root (configs/ lives there).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared/data` beside the repository, when the real MNIST is there.
pub fn shared_data() -> Option<PathBuf> {
    let d = root().join("../shared/data");
    d.join("mnist/train-images-idx3-ubyte.gz").exists().then(|| d.canonicalize().unwrap())
}

/// The caches the tests use, never the user's: one folder per test process under cargo's
/// temporary folder for this target (decoded caches of the tests' made-up data sets must not
/// reach `~/.cache/optbench`, where a user's run could find them).
pub fn test_cache() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("optbench-test-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir); // a leftover of an earlier process with this id
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
    .clone()
}

/// A Hub address where nothing listens (the discard port): tests never reach the real Hub.
pub const NO_HUB: &str = "http://127.0.0.1:9";

/// Data settings that keep every cache in [`test_cache`] and never reach the real Hub.
pub fn test_data_settings() -> DataSettings {
    DataSettings {
        cache_dir: Some(test_cache().join("optbench")),
        hub_cache: Some(test_cache().join("hf").join("hub")),
        hub_endpoint: Some(NO_HUB.into()),
        ..Default::default()
    }
}

/// Runs the `optbench` binary in `cwd`: (success, stdout, stderr).
pub fn optbench(args: &[&str], cwd: &Path) -> (bool, String, String) {
    optbench_env(args, cwd, &[])
}

/// [`optbench`] with environment variables set; the offline switches of the caller's
/// environment are cleared first, and the caches and the Hub are the tests' own
/// ([`test_cache`], [`NO_HUB`]) unless `env` sets them.
pub fn optbench_env(args: &[&str], cwd: &Path, env: &[(&str, &OsStr)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_optbench"));
    cmd.args(args).current_dir(cwd).env_remove("OPTBENCH_OFFLINE").env_remove("HF_HUB_OFFLINE");
    cmd.env_remove("HF_HUB_CACHE").env_remove("XDG_CACHE_HOME");
    cmd.env("OPTBENCH_CACHE", test_cache().join("optbench")).env("HF_HOME", test_cache().join("hf"));
    cmd.env("HF_ENDPOINT", NO_HUB);
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Writes MNIST-shaped images (28x28 grey, as PNGs) and labels as a parquet file in the Hub's
/// schema.
pub fn mnist_parquet(path: &Path, images: &[Vec<u8>], labels: &[i64]) {
    let pngs: Vec<Vec<u8>> = images.iter().map(|img| hubfiles::encode_png(img, 1, 28, 28)).collect();
    hubfiles::write_images(path, "image", &pngs, &[("label", labels.to_vec())]).unwrap();
}

/// Writes a config into `dir` and returns its path.
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn load(file: &Path, out: &Path) -> Plan {
    plan::load(file, &Overrides { out: Some(out.to_path_buf()), ..Default::default() })
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn sweep(plan: &Plan, jobs: usize) -> SweepSummary {
    sweep_with(plan, jobs, test_data_settings())
}

pub fn sweep_with(plan: &Plan, jobs: usize, data: DataSettings) -> SweepSummary {
    runner::run_plan(plan, &SweepOptions { jobs, mode: Mode::Quiet, data, shard: None })
}

/// Every result under `dir`, by run id.
pub fn results(dir: &Path) -> Vec<RunResult> {
    find_results(dir).iter().map(|p| RunResult::load(p).unwrap()).collect()
}

pub fn find<'a>(results: &'a [RunResult], task: &str, optimizer: &str) -> &'a RunResult {
    results
        .iter()
        .find(|r| r.task.label == task && r.optimizer_label == optimizer)
        .unwrap_or_else(|| panic!("no result for {task} / {optimizer}"))
}

pub fn final_value(r: &RunResult, metric: &str) -> f64 {
    r.final_metrics[metric].unwrap_or(f64::NAN)
}

/// A learnable toy digit set: class k lights a 7x7 block at position k, plus noise.
pub fn toy_digits(dir: &Path, train: usize, test: usize) {
    let m = dir.join("mnist");
    std::fs::create_dir_all(&m).unwrap();
    let make = |n: usize, offset: usize| -> (Vec<u8>, Vec<u8>) {
        let mut images = Vec::with_capacity(n * 784);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let k = (i * 7 + offset) % 10;
            let (by, bx) = (k / 4 * 7 + 3, k % 4 * 7);
            for p in 0..784 {
                let (y, x) = (p / 28, p % 28);
                let on = y >= by && y < by + 7 && x >= bx && x < bx + 7;
                images.push(if on { 200 } else { ((p * 31 + i * 17) % 50) as u8 });
            }
            labels.push(k as u8);
        }
        (images, labels)
    };
    let (images, labels) = make(train, 0);
    std::fs::write(m.join("train-images-idx3-ubyte"), idx::encode_images(train, 28, 28, &images)).unwrap();
    std::fs::write(m.join("train-labels-idx1-ubyte"), idx::encode_labels(&labels)).unwrap();
    let (images, labels) = make(test, 3);
    std::fs::write(m.join("t10k-images-idx3-ubyte"), idx::encode_images(test, 28, 28, &images)).unwrap();
    std::fs::write(m.join("t10k-labels-idx1-ubyte"), idx::encode_labels(&labels)).unwrap();
}
