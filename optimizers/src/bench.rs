//! Timing primitives for one optimizer step on the CPU, which `optbench bench` and the
//! `step_times` example call: an optimizer's step over one f32 parameter beside an
//! "Adam-shaped pass" over the same number of elements, which only moves the bytes an Adam
//! step moves (reads the parameter, the gradient and two state vectors, writes the parameter
//! and the two state vectors) with the least arithmetic that keeps it from being optimised
//! away. The ratio of the two says how far an optimizer's step is from the memory bound of
//! the machine, whatever the machine; these are benchmarks, never timed tests.

use std::time::{Duration, Instant};

use candle::backprop::GradStore;
use candle::{Device, Tensor, Var};
use rayon::prelude::*;

use crate::spec::OptimizerSpec;

/// Elements below which the Adam-shaped pass runs on the calling thread, and its chunk: the
/// same as the fused kernels' (`fused::for_chunks`).
const PARALLEL_FROM: usize = crate::fused::PARALLEL_FROM;
const CHUNK: usize = crate::fused::CHUNK;

/// `n` fixed pseudo-random values in [-1, 1) (xorshift), the same for every call.
fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Times `repeats` steps (after `warmup`) of the optimizer `spec` over one f32 CPU parameter of `numel` elements
/// with a fixed pseudo-random gradient; returns each step's wall time.
pub fn time_optimizer_step(
    spec: &OptimizerSpec,
    numel: usize,
    warmup: usize,
    repeats: usize,
) -> candle::Result<Vec<Duration>> {
    let var = Var::from_tensor(&Tensor::from_vec(pseudo_random(numel, 1), numel, &Device::Cpu)?)?;
    // Small gradients, so that no optimizer drives the parameter far in a few steps.
    let grad = (Tensor::from_vec(pseudo_random(numel, 2), numel, &Device::Cpu)? * 1e-3)?;
    let mut grads = GradStore::default();
    grads.insert(var.as_tensor(), grad);
    let mut optimizer = spec.build(vec![var]).map_err(candle::Error::wrap)?;
    // AdaShift's window fills in its first keep_num steps, which read less of it: time the
    // steady state.
    let warmup = match spec.name.as_str() {
        "adashift" => {
            let window = spec.hyperparameters.get("keep_num").and_then(|v| v.as_f64()).unwrap_or(10.0);
            warmup.max(window as usize + 1)
        }
        _ => warmup,
    };
    for _ in 0..warmup {
        optimizer.step(&grads)?;
    }
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = Instant::now();
        optimizer.step(&grads)?;
        times.push(start.elapsed());
    }
    Ok(times)
}

/// Whether `spec`'s optimizer updates an f32 CPU parameter with its fused kernel.
pub fn fused_on_cpu(spec: &OptimizerSpec) -> candle::Result<bool> {
    let var = Var::from_tensor(&Tensor::ones(16, candle::DType::F32, &Device::Cpu)?)?;
    let mut grads = GradStore::default();
    grads.insert(var.as_tensor(), Tensor::ones(16, candle::DType::F32, &Device::Cpu)?);
    let mut optimizer = spec.build(vec![var]).map_err(candle::Error::wrap)?;
    optimizer.step(&grads)?;
    Ok(optimizer.fused_variables() > 0)
}

/// The minimal Adam-shaped arithmetic over one chunk: every element of `p`, `m`, `v` is read
/// and written, every element of `g` read.
fn shaped_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = *m * 0.9 + g;
        *v = *v * 0.999 + g * g;
        *p -= *m * 1e-3 + *v;
    }
}

/// The same for an "Adam-shaped pass that only moves the bytes": reads p, g, m, v and writes p, m, v
/// (the minimal arithmetic to keep the compiler from removing it), rayon over the same chunks as the kernels.
pub fn time_adam_shaped_pass(numel: usize, warmup: usize, repeats: usize) -> Vec<Duration> {
    let mut p = pseudo_random(numel, 1);
    let g: Vec<f32> = pseudo_random(numel, 2).iter().map(|x| x * 1e-3).collect();
    let (mut m, mut v) = (vec![0.0f32; numel], vec![0.0f32; numel]);
    let mut pass = || {
        if numel < PARALLEL_FROM {
            shaped_chunk(&mut p, &g, &mut m, &mut v);
        } else {
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| shaped_chunk(p, g, m, v));
        }
    };
    for _ in 0..warmup {
        pass();
    }
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = Instant::now();
        pass();
        times.push(start.elapsed());
    }
    std::hint::black_box((&p, &m, &v));
    times
}

/// One spec per optimizer of the registry (its paper/reference defaults, the flags the papers' configs use),
/// with a short label, and the target ratio to the Adam-shaped pass (1.25, AdaShift 2.0, Adai/AdaiW 1.5).
pub fn bench_specs() -> Vec<(String, OptimizerSpec, f64)> {
    let spec = OptimizerSpec::new;
    vec![
        // The ResNet CIFAR baseline of the papers (Adai, AdaBelief): lr 0.1, momentum 0.9, wd 5e-4.
        ("sgd-momentum", spec("sgd").with("lr", 0.1).with("momentum", 0.9).with("weight_decay", 5e-4), 1.25),
        ("sgd-nesterov", spec("sgd").with("lr", 0.1).with("momentum", 0.9).with("nesterov", true), 1.25),
        ("adam", spec("adam"), 1.25),
        ("adamw", spec("adamw"), 1.25),
        ("amsgrad", spec("amsgrad"), 1.25),
        ("amsgrad-tf", spec("amsgrad").with("variant", "tf"), 1.25),
        // max-AdaShift as the authors ran it (lr 1e-2, keep_num 10).
        ("adashift", spec("adashift").with("lr", 1e-2), 2.0),
        ("adashift-pytorch-optimizer", spec("adashift").with("lr", 1e-2).with("variant", "pytorch-optimizer"), 2.0),
        ("adashift-none", spec("adashift").with("lr", 1e-2).with("phi", "none"), 2.0),
        // The Adai paper's CIFAR setting: lr 0.1 (Adai), weight decay 5e-4 (L2) / 5e-2 (AdaiW).
        ("adai", spec("adai").with("lr", 0.1).with("weight_decay", 5e-4), 1.5),
        ("adaiw", spec("adaiw").with("lr", 0.1).with("weight_decay", 5e-2), 1.5),
        // adabelief-pytorch 0.2.1's defaults (decoupled, rectify) and the paper's CIFAR setting.
        ("adabelief", spec("adabelief"), 1.25),
        (
            "adabelief-cifar",
            spec("adabelief")
                .with("eps", 1e-8)
                .with("weight_decay", 5e-4)
                .with("decoupled", false)
                .with("rectify", false),
            1.25,
        ),
        ("adamod", spec("adamod"), 1.25),
        ("adabound", spec("adabound"), 1.25),
        ("amsbound", spec("adabound").with("amsbound", true), 1.25),
        ("radam", spec("radam"), 1.25),
        ("diffgrad", spec("diffgrad"), 1.25),
    ]
    .into_iter()
    .map(|(label, spec, target)| (label.to_string(), spec, target))
    .collect()
}

/// Median of durations.
pub fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[]), Duration::ZERO);
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(median(&[ms(4), ms(1), ms(2), ms(3)]), Duration::from_micros(2500));
    }

    #[test]
    fn every_registry_optimizer_has_a_valid_bench_spec() {
        let specs = bench_specs();
        for info in crate::REGISTRY {
            assert!(specs.iter().any(|(_, spec, _)| spec.name == info.name), "{} has no bench spec", info.name);
        }
        for (label, spec, _) in &specs {
            spec.resolve().unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(time_optimizer_step(spec, 100, 1, 2).map(|t| t.len()).ok(), Some(2), "{label}");
        }
        assert_eq!(time_adam_shaped_pass(PARALLEL_FROM + 3, 1, 2).len(), 2);
    }
}
