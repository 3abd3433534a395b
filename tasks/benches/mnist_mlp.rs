//! Trains the MNIST MLP (784-256-256-10, ReLU) for one epoch with Adam (lr 1e-3, batch 64)
//! through the suite's task, and times it (`tasks::bench::models::mnist_mlp`, which
//! `optbench bench` runs too): the same work as `scripts/bench/mnist_mlp.py` does in PyTorch
//! (`scripts/bench/mnist.sh` runs both and prints the ratio).
//!
//!     cargo bench -p tasks --bench mnist_mlp -- [--data-dir DIR] [--repeats N] [--steps S]
//!
//! `DIR` (default `../shared/data` beside the repository) holds `mnist/`; `--steps S` times the
//! first S steps of each epoch and extrapolates. Prints the median epoch time over the
//! repeats, and a breakdown of one step (forward + backward, optimizer step) measured apart.

mod common;

use std::path::PathBuf;

use common::{arg, parsed};
use tasks::bench::models::{mnist_mlp, mnist_step_breakdown, MnistConfig};

fn main() -> anyhow::Result<()> {
    tasks::init_process();
    // `cargo bench` runs in `tasks/`: the default is `../shared/data` beside the repository.
    let shared = || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    let config = MnistConfig {
        data_dir: Some(arg("--data-dir").map(PathBuf::from).unwrap_or_else(shared)),
        steps: arg("--steps").map(|s| s.parse()).transpose()?,
        repeats: parsed("--repeats", 3)?,
    };
    let device = candle::Device::Cpu;
    let m = mnist_mlp(&config, &device)?;
    for (r, s) in m.seconds.iter().enumerate() {
        println!("optbench: epoch {}: {s:.3} s", r + 1);
    }
    println!("optbench median epoch: {:.3} s ({})", m.median(), m.note);
    let n = 300;
    let (fb, fused, composed) = mnist_step_breakdown(n, &device)?;
    println!("optbench step breakdown (median of {n}): forward+backward {fb:.3} ms, Adam step {fused:.3} ms");
    println!("optbench Adam step alone (median of {n}): fused kernel {fused:.3} ms, tensor ops {composed:.3} ms");
    Ok(())
}
