//! The time of each operation of a ResNet-18 CIFAR training step (batch 128, f32) on the CPU,
//! one row per distinct shape: the convolution forward, its input gradient and its kernel
//! gradient, and the BatchNorm (+ ReLU) forward and backward, each with how many times a step
//! runs it and that many times its median. `resnet18_ops.py` (beside this file) prints the same
//! rows for PyTorch; run the two alternately and compare ratios.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p models --example resnet18_ops [-- --batch 128 --reps 5]`
//! (`OPTBENCH_CONV_GROUP_COLUMNS=1` times the convolutions with one image per GEMM).

use std::time::Instant;

use candle::{DType, Device, Tensor, Var};
use models::conv::{conv2d, conv2d_input_gradient, conv2d_kernel_gradient};
use models::norm::BatchNorm2d;
use models::SeededRng;

/// (input channels, input size, output channels, kernel, stride, times per step).
const CONVS: [(usize, usize, usize, usize, usize, usize); 11] = [
    (3, 32, 64, 3, 1, 1),
    (64, 32, 64, 3, 1, 4),
    (64, 32, 128, 3, 2, 1),
    (128, 16, 128, 3, 1, 3),
    (64, 32, 128, 1, 2, 1),
    (128, 16, 256, 3, 2, 1),
    (256, 8, 256, 3, 1, 3),
    (128, 16, 256, 1, 2, 1),
    (256, 8, 512, 3, 2, 1),
    (512, 4, 512, 3, 1, 3),
    (256, 8, 512, 1, 2, 1),
];

/// (channels, size, times per step with ReLU, times without).
const NORMS: [(usize, usize, usize, usize); 4] = [(64, 32, 3, 2), (128, 16, 2, 3), (256, 8, 2, 3), (512, 4, 2, 3)];

fn median_ms(reps: usize, mut f: impl FnMut() -> candle::Result<()>) -> candle::Result<f64> {
    f()?;
    let mut times = Vec::new();
    for _ in 0..reps {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() -> candle::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (n, reps) = (arg(&args, "--batch", 128), arg(&args, "--reps", 5));
    let mut rng = SeededRng::new(1);
    let mut random = |dims: &[usize]| -> candle::Result<Tensor> {
        let len = dims.iter().product();
        Tensor::from_vec(rng.normal_vec(len, 0.0, 1.0), dims, &Device::Cpu)?.to_dtype(DType::F32)
    };
    let mut totals = [0.0f64; 5];
    println!("op shape (batch {n}): count x median ms = ms per step");
    for &(ci, h, co, k, s, count) in &CONVS {
        let p = k / 2;
        let ho = (h + 2 * p - k) / s + 1;
        let (x, w, dout) = (random(&[n, ci, h, h])?, random(&[co, ci, k, k])?, random(&[n, co, ho, ho])?);
        let fwd = median_ms(reps, || conv2d(&x, &w, s, p).map(drop))?;
        let dx = median_ms(reps, || conv2d_input_gradient(&dout, &w, s, p, (h, h)).map(drop))?;
        let dw = median_ms(reps, || conv2d_kernel_gradient(&x, &dout, k, s, p).map(drop))?;
        let c = count as f64;
        let shape = format!("{ci}x{h}x{h} -> {co} k{k} s{s}");
        println!("conv forward      {shape:<24} {count} x {fwd:8.2} = {:8.1}", c * fwd);
        println!("conv input grad   {shape:<24} {count} x {dx:8.2} = {:8.1}", c * dx);
        println!("conv kernel grad  {shape:<24} {count} x {dw:8.2} = {:8.1}", c * dw);
        totals[0] += c * fwd;
        totals[1] += c * dx;
        totals[2] += c * dw;
    }
    for &(ch, h, with_relu, without) in &NORMS {
        for (relu, count) in [(true, with_relu), (false, without)] {
            let x = Var::from_tensor(&random(&[n, ch, h, h])?)?;
            let bn = BatchNorm2d::new(
                Var::ones(ch, DType::F32, &Device::Cpu)?.as_tensor().clone(),
                Var::zeros(ch, DType::F32, &Device::Cpu)?.as_tensor().clone(),
                Tensor::zeros(ch, DType::F32, &Device::Cpu)?,
                Tensor::ones(ch, DType::F32, &Device::Cpu)?,
            )?;
            let fwd = median_ms(reps, || bn.forward_relu_t(x.as_tensor(), true, relu).map(drop))?;
            let both =
                median_ms(reps, || bn.forward_relu_t(x.as_tensor(), true, relu)?.sum_all()?.backward().map(drop))?;
            let c = count as f64;
            let shape = format!("{ch}x{h}x{h} relu {relu}");
            println!("bn forward        {shape:<24} {count} x {fwd:8.2} = {:8.1}", c * fwd);
            println!("bn fwd + backward {shape:<24} {count} x {both:8.2} = {:8.1}", c * both);
            totals[3] += c * fwd;
            totals[4] += c * (both - fwd);
        }
    }
    println!(
        "per step: conv forward {:.0} ms, input grad {:.0} ms, kernel grad {:.0} ms, bn forward {:.0} ms, bn \
         backward (+ a sum) {:.0} ms",
        totals[0], totals[1], totals[2], totals[3], totals[4]
    );
    Ok(())
}
