//! One optimizer step over an f32 CPU parameter for every optimizer of the registry, beside
//! an Adam-shaped pass over the same number of elements that only moves the bytes, measured
//! alternately in the same run (so that a busy machine slows both alike):
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p optimizers --example step_times -- [numel] [rounds]
//! ```
//! Prints the label, the median step time, its ratio to the median Adam-shaped pass, the
//! target ratio, and whether the step ran the fused kernel. Defaults: 11 M elements, 5 rounds.

use optimizers::bench::{bench_specs, fused_on_cpu, median, time_adam_shaped_pass, time_optimizer_step};

fn main() -> candle::Result<()> {
    let mut args = std::env::args().skip(1);
    let parse = |arg: Option<String>, default: usize, what: &str| match arg {
        None => Ok(default),
        Some(s) => s.parse::<usize>().map_err(|e| candle::Error::Msg(format!("{what} `{s}`: {e}"))),
    };
    let numel = parse(args.next(), 11_000_000, "numel")?;
    let rounds = parse(args.next(), 5, "rounds")?.max(1);
    println!("{numel} f32 elements, {} threads, {rounds} rounds of 3 steps each", rayon::current_num_threads());
    println!("{:<28} {:>9} {:>9} {:>7} {:>7} fused", "optimizer", "ms", "pass ms", "ratio", "target");
    for (label, spec, target) in bench_specs() {
        let (mut steps, mut passes) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            passes.extend(time_adam_shaped_pass(numel, 1, 3));
            steps.extend(time_optimizer_step(&spec, numel, 1, 3)?);
        }
        let (step, pass) = (median(&steps), median(&passes));
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        let fused = if fused_on_cpu(&spec)? { "yes" } else { "no" };
        println!(
            "{label:<28} {:>9.2} {:>9.2} {:>7.2} {:>7.2} {fused}",
            ms(step),
            ms(pass),
            ms(step) / ms(pass),
            target
        );
    }
    Ok(())
}
