//! One training step of fairseq's `transformer_iwslt_de_en` (post-LN, 6 + 6 layers, d 512,
//! FFN 1024, 4 heads, dropout 0.3, decoder input and output embeddings shared) on a batch of
//! 4096 target tokens (128 sentences of 32 tokens on both sides, vocabulary 10,000): forward in
//! training mode, label-smoothed cross-entropy (0.1), backward, Adam step. The same work as
//! `scripts/bench/transformer_step.py` in PyTorch; `scripts/bench/transformer.sh` runs both and
//! prints the ratio.
//!
//!     cargo bench -p tasks --bench transformer_step -- [--steps N] [--sentences B] [--len T]
//!         [--vocab V] [--d D] [--ffn F] [--layers L] [--device cpu|cuda]
//!
//! Prints the median step after a warm-up step, split into forward (with the loss), backward
//! and optimizer step.

mod common;

use candle::DType;
use models::transformer::{Transformer, TransformerConfig};
use models::{Params, SeededRng};
use optimizers::OptimizerSpec;
use tasks::task::translation::label_smoothed_loss;

use common::{arg, parsed};

fn main() -> anyhow::Result<()> {
    tasks::init_process();
    let steps: usize = parsed("--steps", 3)?;
    let sentences: usize = parsed("--sentences", 128)?;
    let len: usize = parsed("--len", 32)?;
    let vocab: usize = parsed("--vocab", 10000)?;
    let d: usize = parsed("--d", 512)?;
    let ffn: usize = parsed("--ffn", 1024)?;
    let layers: usize = parsed("--layers", 6)?;
    let device = tasks::runner::execute::open_device(&arg("--device").unwrap_or_else(|| "cpu".into()))?;
    let config = TransformerConfig {
        d_model: d,
        ffn,
        encoder_layers: layers,
        decoder_layers: layers,
        ..TransformerConfig::iwslt_de_en(vocab, vocab)
    };
    let params = Params::new(SeededRng::new(0), DType::F32, &device);
    let model = Transformer::new(&params.root(), &config)?;
    let spec = OptimizerSpec::new("adam").with("lr", 5e-4).with("beta2", 0.98);
    let mut opt = spec.build(params.trainable())?;
    let mut rng = SeededRng::new(1);
    let mut tokens = |n: usize| -> Vec<Vec<u32>> {
        (0..sentences).map(|_| (0..n).map(|_| 4 + rng.below(vocab - 4) as u32).collect()).collect()
    };
    let (src, prev, gold) = (tokens(len), tokens(len), tokens(len));
    let mut times = common::StepTimes::default();
    for i in 0..=steps {
        let loss = || {
            let logits = model.forward(&src, &prev, true)?;
            let (loss, _, n) = label_smoothed_loss(&logits, &gold, 0.1)?;
            Ok(((loss / n as f64)?, ()))
        };
        times.step(&device, i == 0, loss, |grads| opt.step(grads))?;
    }
    println!(
        "optbench transformer step ({} parameters), {sentences} x {len} tokens, {:?}: {}",
        params.count(),
        device.location(),
        times.summary("Adam step")
    );
    Ok(())
}
