//! One training step of AdaBelief's PTB LSTM (AWD-LSTM, tied, emsize 400, nhid 1150, 3 layers,
//! AdaBelief's dropouts) on random tokens of a 10,000-word vocabulary: forward in training mode
//! with every dropout, cross-entropy plus AR / TAR, backward, clipping to norm 0.25 and an SGD
//! step (lr 30, weight decay 1.2e-6) (`tasks::bench::models::lstm_step`, which `optbench bench`
//! runs too). The same work as `scripts/bench/lstm_step.py` in PyTorch; `scripts/bench/lstm.sh`
//! runs both and prints the ratio.
//!
//!     cargo bench -p tasks --bench lstm_step -- [--steps N] [--layers L] [--batch B] [--bptt T]
//!         [--emsize E] [--nhid H] [--vocab V] [--kernel auto|fused|composed] [--device cpu|cuda]
//!
//! Prints the median step time after a warm-up step, split into forward (with the loss),
//! backward, and clipping with the optimizer step.

mod common;

use common::{arg, parsed};
use models::lstm::LstmKernel;
use tasks::bench::models::{lstm_step, LstmBenchConfig};

fn main() -> anyhow::Result<()> {
    tasks::init_process();
    let d = LstmBenchConfig::default();
    let kernel = match arg("--kernel").as_deref().unwrap_or("auto") {
        "auto" => LstmKernel::Auto,
        "fused" => LstmKernel::Fused,
        "composed" => LstmKernel::Composed,
        other => anyhow::bail!("--kernel {other}: auto, fused or composed"),
    };
    let config = LstmBenchConfig {
        steps: parsed("--steps", 5)?,
        batch: parsed("--batch", d.batch)?,
        bptt: parsed("--bptt", d.bptt)?,
        vocab: parsed("--vocab", d.vocab)?,
        emsize: parsed("--emsize", d.emsize)?,
        nhid: parsed("--nhid", d.nhid)?,
        layers: parsed("--layers", d.layers)?,
        kernel,
    };
    let m = lstm_step(&config, &common::device()?)?;
    println!("optbench LSTM LM step ({}): {}", m.note, tasks::bench::summary_line(&m, "step"));
    Ok(())
}
