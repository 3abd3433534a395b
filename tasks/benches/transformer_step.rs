//! One training step of fairseq's `transformer_iwslt_de_en` (post-LN, 6 + 6 layers, d 512,
//! FFN 1024, 4 heads, dropout 0.3, decoder input and output embeddings shared) on a batch of
//! 4096 target tokens (128 sentences of 32 tokens on both sides, vocabulary 10,000): forward in
//! training mode, label-smoothed cross-entropy (0.1), backward, Adam step
//! (`tasks::bench::models::transformer_step`, which `optbench bench` runs too). The same work as
//! `scripts/bench/transformer_step.py` in PyTorch; `scripts/bench/transformer.sh` runs both and
//! prints the ratio.
//!
//!     cargo bench -p tasks --bench transformer_step -- [--steps N] [--sentences B] [--len T]
//!         [--vocab V] [--d D] [--ffn F] [--layers L] [--device cpu|cuda]
//!
//! Prints the median step after a warm-up step, split into forward (with the loss), backward
//! and optimizer step.

mod common;

use common::parsed;
use tasks::bench::models::{transformer_step, TransformerBenchConfig};

fn main() -> anyhow::Result<()> {
    tasks::init_process();
    let d = TransformerBenchConfig::default();
    let config = TransformerBenchConfig {
        steps: parsed("--steps", 3)?,
        sentences: parsed("--sentences", d.sentences)?,
        len: parsed("--len", d.len)?,
        vocab: parsed("--vocab", d.vocab)?,
        d: parsed("--d", d.d)?,
        ffn: parsed("--ffn", d.ffn)?,
        layers: parsed("--layers", d.layers)?,
    };
    let m = transformer_step(&config, &common::device()?)?;
    println!("optbench transformer step ({}): {}", m.note, tasks::bench::summary_line(&m, "step"));
    Ok(())
}
