//! The MNIST MLP's step (784-256-256-10, ReLU, batch 64, f32) part by part, candle's ops against
//! the fused layers of `models::linear`, alternating in one process (medians of `N` rounds):
//!
//!     MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 \
//!         cargo run --release -p models --example mlp_ops [-- N]
//!
//! The environment gives glibc the settings `tasks::init_process` gives the `optbench` binary
//! (freed memory kept in the heap); the example sets candle's thread-pool spin limit as it does.
//!
//! Parts: each layer's forward (linear + ReLU), the cross-entropy forward, and the backward of
//! the whole step. The optimizer's update is not included (`cargo bench -p tasks --bench
//! mnist_mlp` times it).

use std::time::Instant;

use candle::{DType, Device, Module, Result, Tensor};
use models::linear::linear;
use models::mlp::{Activation, Mlp};
use models::{Params, SeededRng};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Microseconds per part of one step: [fc1, fc2, fc3, loss, backward].
fn step(layers: &[candle_nn::Linear], x: &Tensor, y: &Tensor, fused: bool) -> Result<[f64; 5]> {
    let mut t = [0.0; 5];
    let mut h = x.clone();
    for (i, layer) in layers.iter().enumerate() {
        let relu = i + 1 < layers.len();
        let t0 = Instant::now();
        h = if fused {
            linear(&h, layer.weight(), layer.bias().expect("bias"), relu)?
        } else {
            let z = layer.forward(&h)?;
            if relu {
                z.relu()?
            } else {
                z
            }
        };
        t[i] = t0.elapsed().as_secs_f64() * 1e6;
    }
    let t0 = Instant::now();
    let loss = candle_nn::loss::cross_entropy(&h, y)?;
    t[3] = t0.elapsed().as_secs_f64() * 1e6;
    let t0 = Instant::now();
    let grads = loss.backward()?;
    t[4] = t0.elapsed().as_secs_f64() * 1e6;
    drop(grads);
    Ok(t)
}

fn main() -> Result<()> {
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        // Before any other thread exists, as in `tasks::init_process`.
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "1000");
    }
    let rounds: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    let device = Device::Cpu;
    let params = Params::new(SeededRng::new(0), DType::F32, &device);
    // Built for its parameters only; the layers below are the same tensors.
    Mlp::new(&params.root(), &[784, 256, 256, 10], Activation::Relu)?;
    let named = params.named_trainable();
    let get = |name: &str| named.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_tensor().clone());
    let layers: Vec<candle_nn::Linear> = (1..=3)
        .map(|i| candle_nn::Linear::new(get(&format!("fc{i}.weight")).unwrap(), get(&format!("fc{i}.bias"))))
        .collect();
    let mut rng = SeededRng::new(1);
    let x = Tensor::from_vec(rng.uniform_vec(64 * 784, 0.0, 1.0), (64, 784), &device)?;
    let y = Tensor::from_vec((0..64u32).map(|i| i % 10).collect::<Vec<_>>(), 64, &device)?;
    let (mut candle_t, mut fused_t) = (vec![Vec::new(); 5], vec![Vec::new(); 5]);
    for _ in 0..rounds {
        for (fused, out) in [(false, &mut candle_t), (true, &mut fused_t)] {
            for (part, t) in step(&layers, &x, &y, fused)?.into_iter().enumerate() {
                out[part].push(t);
            }
        }
    }
    println!(
        "MNIST MLP step parts, f32, batch 64, {} threads, medians of {rounds} alternating rounds (us):",
        rayon::current_num_threads()
    );
    println!("{:<24} {:>10} {:>10} {:>7}", "part", "candle", "fused", "ratio");
    let names = ["fc1 784-256 + relu", "fc2 256-256 + relu", "fc3 256-10", "cross-entropy forward", "backward (all)"];
    let (mut sum_c, mut sum_f) = (0.0, 0.0);
    for (part, name) in names.iter().enumerate() {
        let (c, f) = (median(&mut candle_t[part]), median(&mut fused_t[part]));
        sum_c += c;
        sum_f += f;
        println!("{name:<24} {c:>10.1} {f:>10.1} {:>7.2}", f / c);
    }
    println!("{:<24} {sum_c:>10.1} {sum_f:>10.1} {:>7.2}", "sum of medians", sum_f / sum_c);
    Ok(())
}
