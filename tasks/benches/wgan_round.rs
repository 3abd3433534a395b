//! One WGAN-GP round at AdaBelief's CIFAR-10 size: 5 critic steps (each: a generator forward
//! of new noise, the critic on real and generated images, the gradient penalty, backward, Adam
//! step) and one generator step, DCGAN 64x64 (ngf = ndf = 64, nz 100), batch 64, Adam lr 2e-4
//! beta1 0.5 (`tasks::bench::models::wgan_round`, which `optbench bench` runs too). The same work
//! as `scripts/bench/wgan_round.py` in PyTorch; `scripts/bench/wgan.sh` runs both and prints the
//! ratio.
//!
//!     cargo bench -p tasks --bench wgan_round -- [--rounds N] [--batch B] [--width W] [--device cpu|cuda]
//!
//! Prints the median round time after a warm-up round, and the part of the critic steps.

mod common;

use common::parsed;
use tasks::bench::models::{wgan_round, WganConfig};

fn main() -> anyhow::Result<()> {
    tasks::init_process();
    let d = WganConfig::default();
    let config = WganConfig {
        rounds: parsed("--rounds", 3)?,
        batch: parsed("--batch", d.batch)?,
        width: parsed("--width", d.width)?,
    };
    let m = wgan_round(&config, &common::device()?)?;
    println!("optbench WGAN-GP round ({}): {}", m.note, tasks::bench::summary_line(&m, "round"));
    Ok(())
}
