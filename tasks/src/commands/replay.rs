//! `optbench replay`: replays golden trajectories (`../shared/spec/golden-format.md`) against
//! the suite's optimizers and prints one line per file.

use std::path::PathBuf;

use candle::{DType, Device};
use optimizers::golden::{GoldenFile, Tolerance};

/// Options of `optbench replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Absolute tolerance (default: 1e-12 for f64 files, 1e-6 for f32).
    #[arg(long)]
    pub atol: Option<f64>,
    /// Relative tolerance (default: 1e-9 for f64 files, 1e-4 for f32).
    #[arg(long)]
    pub rtol: Option<f64>,
    /// Golden files (`optbench-golden/1` JSON).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Replays every file; returns whether all of them passed. A file that cannot be read or
/// replayed is reported and counts as a failure, and the others still run.
pub fn run(args: &ReplayArgs) -> bool {
    let mut passed = 0;
    let mut failed = 0;
    for path in &args.files {
        let outcome = GoldenFile::load(path).and_then(|file| {
            let dtype = file.dtype().unwrap_or(DType::F64);
            let default = Tolerance::default_for(dtype);
            let tolerance =
                Tolerance { atol: args.atol.unwrap_or(default.atol), rtol: args.rtol.unwrap_or(default.rtol) };
            file.replay(&Device::Cpu, Some(tolerance))
        });
        match outcome {
            Ok(report) => {
                println!("{report}");
                if report.passed() {
                    passed += 1;
                } else {
                    failed += 1;
                }
            }
            Err(err) => {
                println!("{}: cannot replay: {err}: FAIL", path.display());
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    failed == 0
}
