//! One training step of AdaBelief's PTB LSTM (AWD-LSTM, tied, emsize 400, nhid 1150, 3 layers,
//! AdaBelief's dropouts) on random tokens of a 10,000-word vocabulary: forward in training mode
//! with every dropout, cross-entropy plus AR / TAR, backward, clipping to norm 0.25 and an SGD
//! step (lr 30, weight decay 1.2e-6). The same work as `scripts/bench/lstm_step.py` in PyTorch;
//! `scripts/bench/lstm.sh` runs both and prints the ratio.
//!
//!     cargo bench -p tasks --bench lstm_step -- [--steps N] [--layers L] [--batch B] [--bptt T]
//!         [--emsize E] [--nhid H] [--vocab V] [--kernel auto|fused|composed] [--device cpu|cuda]
//!
//! Prints the median step time after a warm-up step, split into forward (with the loss),
//! backward, and clipping with the optimizer step.

mod common;

use candle::{DType, Tensor};
use models::lstm::{activation_regularizers, LstmKernel, LstmLm, LstmLmConfig};
use models::{Params, SeededRng};
use optimizers::{DynOptimizer, OptimizerSpec};

use common::{arg, parsed};

fn main() -> anyhow::Result<()> {
    tasks::init_process();
    let steps: usize = parsed("--steps", 5)?;
    let batch: usize = parsed("--batch", 20)?;
    let bptt: usize = parsed("--bptt", 70)?;
    let device = tasks::runner::execute::open_device(&arg("--device").unwrap_or_else(|| "cpu".into()))?;
    let config = LstmLmConfig {
        vocab: parsed("--vocab", 10_000)?,
        emsize: parsed("--emsize", 400)?,
        nhid: parsed("--nhid", 1150)?,
        layers: parsed("--layers", 3)?,
        ..LstmLmConfig::default()
    };
    let kernel = match arg("--kernel").as_deref().unwrap_or("auto") {
        "auto" => LstmKernel::Auto,
        "fused" => LstmKernel::Fused,
        "composed" => LstmKernel::Composed,
        other => anyhow::bail!("--kernel {other}: auto, fused or composed"),
    };
    let params = Params::new(SeededRng::new(0), DType::F32, &device);
    let model = LstmLm::new(&params.root(), &config)?.with_kernel(kernel);
    let vars = params.trainable();
    let spec = OptimizerSpec::new("sgd").with("lr", 30.0).with("weight_decay", 1.2e-6);
    let mut opt = tasks::task::clip::Clipped::new(spec.build(vars.clone())?, vars, 0.25);
    let mut rng = SeededRng::new(1);
    let ids: Vec<u32> = (0..(bptt + 1) * batch).map(|_| rng.below(config.vocab) as u32).collect();
    let x = Tensor::from_slice(&ids[..bptt * batch], (bptt, batch), &device)?;
    let y = Tensor::from_slice(&ids[batch..], bptt * batch, &device)?;
    let mut state = model.zero_state(batch)?;
    let mut times = common::StepTimes::default();
    for i in 0..=steps {
        let loss = || {
            let out = model.forward(&x, &state, true)?;
            let ce = out.loss(&y)?;
            let loss = (&ce + activation_regularizers(&out, 2.0, 1.0)?.expect("alpha, beta > 0"))?;
            Ok((loss, out))
        };
        let out = times.step(&device, i == 0, loss, |grads| opt.step(grads))?;
        state = out.state.iter().map(|s| s.detach()).collect();
    }
    println!(
        "optbench LSTM LM step ({} layers, emsize {}, nhid {}, vocab {}), batch {batch}, bptt {bptt}, {kernel:?}, {:?}: {}",
        config.layers,
        config.emsize,
        config.nhid,
        config.vocab,
        device.location(),
        times.summary("clip + SGD step")
    );
    Ok(())
}
