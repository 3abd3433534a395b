//! One training step of ResNet-18 (CIFAR, full width) at batch 128 on 32x32 inputs with SGD
//! (momentum 0.9): forward in training mode, cross-entropy, backward, optimizer step
//! (`tasks::bench::models::resnet_step`, which `optbench bench` runs too). The same work as
//! `scripts/bench/resnet18_step.py` in PyTorch; `scripts/bench/resnet18.sh` runs both and prints
//! the ratio.
//!
//!     cargo bench -p tasks --bench resnet18_step -- [--steps N] [--batch B] [--device cpu|cuda]
//!         [--model resnet18|resnet34|vgg11|densenet121|googlenet] [--width W]
//!
//! Prints the median step time after a warm-up step, split into forward, backward and
//! optimizer step.

mod common;

use common::{arg, parsed};
use tasks::bench::models::{resnet_step, ResnetConfig};

fn main() -> anyhow::Result<()> {
    tasks::init_process();
    let d = ResnetConfig::default();
    let config = ResnetConfig {
        model: arg("--model").unwrap_or(d.model),
        width: parsed("--width", d.width)?,
        batch: parsed("--batch", d.batch)?,
        steps: parsed("--steps", 5)?,
    };
    let m = resnet_step(&config, &common::device()?)?;
    println!("optbench {} step: {}", m.note, tasks::bench::summary_line(&m, "step"));
    Ok(())
}
