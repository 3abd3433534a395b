//! The time of one training-mode dropout forward (and forward + backward) on the CPU, for the
//! shapes of a classifier head (128, 512) and a convolutional feature map (64, 256, 16, 16).
//!
//! `cargo run --release -p models --example dropout_speed` (set `RAYON_NUM_THREADS` to pin
//! the threads); prints the median of 30 calls after 3 warm-up calls.

use std::time::Instant;

use candle::{DType, Device, ModuleT, Tensor, Var};
use models::{Dropout, SeededRng};

fn median_ms(mut f: impl FnMut() -> candle::Result<()>) -> candle::Result<f64> {
    for _ in 0..3 {
        f()?;
    }
    let mut times = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn main() -> candle::Result<()> {
    let shapes: [&[usize]; 2] = [&[128, 512], &[64, 256, 16, 16]];
    for dims in shapes {
        let x = Var::from_tensor(&Tensor::ones(dims, DType::F32, &Device::Cpu)?)?;
        let dropout = Dropout::new(0.5, SeededRng::new(1));
        let forward = median_ms(|| dropout.forward_t(x.as_tensor(), true).map(drop))?;
        let both = median_ms(|| dropout.forward_t(x.as_tensor(), true)?.sum_all()?.backward().map(drop))?;
        println!("{dims:?}: forward {forward:.3} ms, forward + backward {both:.3} ms");
    }
    Ok(())
}
