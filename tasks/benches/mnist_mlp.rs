//! Trains the MNIST MLP (784-256-256-10, ReLU) for one epoch with Adam (lr 1e-3, batch 64)
//! through the suite's task, and times it: the same work as `scripts/bench/mnist_mlp.py` does
//! in PyTorch (`scripts/bench/mnist.sh` runs both and prints the ratio).
//!
//!     cargo bench -p tasks --bench mnist_mlp -- [--data-dir DIR] [--repeats N]
//!
//! `DIR` (default `../shared/data` beside the repository) holds `mnist/`.
//! Prints the median epoch time over the repeats, and a breakdown of one step (batch
//! preparation, forward + backward, optimizer step) measured separately.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use candle::{DType, Device, ModuleT, Tensor};
use models::mlp::{Activation, Mlp};
use models::{Params, SeededRng};
use optimizers::OptimizerSpec;
use tasks::data::DataSettings;
use tasks::task::{self, TaskContext};

use common::{arg, median, parsed};

fn main() -> anyhow::Result<()> {
    tasks::init_process();
    // `cargo bench` runs in `tasks/`: the default is `../shared/data` beside the repository.
    let shared = || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    let data_dir = arg("--data-dir").map(PathBuf::from).unwrap_or_else(shared);
    let repeats: usize = parsed("--repeats", 3)?;
    let settings = DataSettings { data_dirs: vec![data_dir], ..Default::default() }.with_system_dirs();
    let info = task::find("mnist-mlp").expect("registered");
    let options = info.resolve_options(&Default::default()).expect("defaults");
    let spec = OptimizerSpec::new("adam").with("lr", 1e-3).resolve()?;
    let device = Device::Cpu;
    let mut epochs = Vec::new();
    for r in 0..repeats {
        let ctx = TaskContext {
            info,
            options: &options,
            optimizer: &spec,
            roles: &Default::default(),
            clip_norm: None,
            batch_size: Some(64),
            seed: r as u64,
            device: &device,
            data: &settings,
        };
        let mut t = (info.build)(&ctx)?;
        let steps = t.steps_per_epoch().expect("epochs");
        let started = Instant::now();
        let mut loss = 0.0;
        for step in 1..=steps {
            loss = t.train_step(step)?[0].1;
        }
        let seconds = started.elapsed().as_secs_f64();
        let acc = t.evaluate()?[0].1;
        println!(
            "optbench: epoch {} of {steps} steps: {seconds:.3} s (last loss {loss:.4}, test accuracy {acc:.4})",
            r + 1
        );
        epochs.push(seconds);
    }
    println!("optbench median epoch: {:.3} s", median(epochs));

    // Breakdown of one step, on random data of the same shape.
    let params = Params::new(SeededRng::new(0), DType::F32, &device);
    let net = Mlp::new(&params.root(), &[784, 256, 256, 10], Activation::Relu)?;
    let mut opt = spec.build(params.trainable())?;
    let mut rng = SeededRng::new(1);
    let x = Tensor::from_vec(rng.uniform_vec(64 * 784, 0.0, 1.0), (64, 784), &device)?;
    let y = Tensor::from_vec((0..64u32).map(|i| i % 10).collect::<Vec<_>>(), 64, &device)?;
    let n = 300;
    let (mut fb, mut st) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t0 = Instant::now();
        let loss = candle_nn::loss::cross_entropy(&net.forward_t(&x, true)?, &y)?;
        let grads = loss.backward()?;
        let t1 = Instant::now();
        opt.step(&grads)?;
        let t2 = Instant::now();
        fb.push((t1 - t0).as_secs_f64() * 1e3);
        st.push((t2 - t1).as_secs_f64() * 1e3);
    }
    println!(
        "optbench step breakdown (median of {n}): forward+backward {:.3} ms, Adam step {:.3} ms",
        median(fb),
        median(st)
    );
    // The same Adam step through candle tensor ops (what other devices run).
    let loss = candle_nn::loss::cross_entropy(&net.forward_t(&x, true)?, &y)?;
    let grads = loss.backward()?;
    let mut tensor_ops = spec.build_with_kernels(params.trainable(), optimizers::Kernels::TensorOps)?;
    let mut times = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        tensor_ops.step(&grads)?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let mut times_fused = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        opt.step(&grads)?;
        times_fused.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "optbench Adam step alone (median of {n}): fused kernel {:.3} ms, tensor ops {:.3} ms",
        median(times_fused),
        median(times)
    );
    Ok(())
}
