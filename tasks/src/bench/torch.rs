//! The PyTorch halves of the benchmarks: the scripts under `scripts/bench/` run with a given
//! interpreter, each printing one `OPTBENCH_RESULT {json}` line per benchmark
//! (`scripts/bench/benchlib.py`), which [`run_script`] collects.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// One `OPTBENCH_RESULT` line.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TorchResult {
    pub name: String,
    pub seconds: Vec<f64>,
    #[serde(default)]
    pub parts: std::collections::BTreeMap<String, Vec<f64>>,
    #[serde(default)]
    pub note: String,
    /// torch's version.
    #[serde(default)]
    pub torch: String,
}

/// The folder of the PyTorch halves: `scripts/bench` of this source tree, else under the
/// current directory (an installed binary run from a checkout).
pub fn scripts_dir() -> anyhow::Result<PathBuf> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench");
    let cwd = PathBuf::from("scripts/bench");
    [here, cwd]
        .into_iter()
        .find(|d| d.join("benchlib.py").is_file())
        .ok_or_else(|| anyhow::anyhow!("no scripts/bench/benchlib.py beside the source tree or under the current directory: run optbench bench --torch from the repository root"))
}

/// Runs `python scripts/bench/<script> <args>` and returns its `OPTBENCH_RESULT` lines; an
/// exit failure carries the script's stderr.
pub fn run_script(python: &Path, script: &str, args: &[String]) -> anyhow::Result<Vec<TorchResult>> {
    let dir = scripts_dir()?;
    let path = dir.join(script);
    let out = Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .with_context(|| format!("starting {} {}", python.display(), path.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
        anyhow::bail!(
            "{} {} {} failed ({}):\n{}",
            python.display(),
            path.display(),
            args.join(" "),
            out.status,
            tail.join("\n")
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results: Vec<TorchResult> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("OPTBENCH_RESULT "))
        .map(|j| {
            serde_json::from_str(j).with_context(|| format!("{}: a bad OPTBENCH_RESULT line: {j}", path.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    if results.is_empty() {
        anyhow::bail!("{} printed no OPTBENCH_RESULT line (is it an older copy?)", path.display());
    }
    Ok(results)
}
