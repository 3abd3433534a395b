//! Throughput of each path of the vectorised f32 `exp` (`optimizers::fused::exp`) on one thread,
//! over a block of 512 floats in L1 (as diffGrad's kernel calls it), beside `f32::exp`:
//!
//! ```text
//! cargo run --release -p optimizers --example exp_times -- [millions of elements]
//! ```

use std::time::Instant;

use optimizers::fused::exp::{choice, exp_f32_with, ExpPath};

fn main() {
    let millions: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let block: Vec<f32> = (0..512).map(|i| -(i as f32) * 0.013).collect();
    println!("exp path in use: {}", choice());
    println!("{:<10} {:>10}", "path", "ns/elem");
    for path in ExpPath::ALL.into_iter().filter(|p| p.supported()) {
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let mut xs = block.clone();
            let start = Instant::now();
            for _ in 0..millions * 1_000_000 / block.len() {
                xs.copy_from_slice(&block);
                exp_f32_with(path, std::hint::black_box(&mut xs));
            }
            best = best.min(start.elapsed().as_secs_f64() * 1e9 / (millions * 1_000_000) as f64);
        }
        println!("{:<10} {:>10.3}", path.name(), best);
    }
}
