//! `optbench optimizers --check-kernels [--device D]`: the fused kernels of a device against the
//! tensor path on that device, for every optimizer and flag (`optimizers::fused::cuda::check`),
//! from the built binary: how the CUDA kernels are checked on a GPU machine, which has no Rust
//! toolchain to run `optimizers/tests/cuda.rs`.

use optimizers::fused::cuda::check;

use crate::plan;
use crate::runner::execute::open_device;

/// Runs the check on `device`, prints one line per optimizer, flags and type; false when a
/// fused path differs from the tensor path.
pub fn run(device: &str) -> anyhow::Result<bool> {
    plan::check_device_usable(device).map_err(anyhow::Error::msg)?;
    let dev = open_device(device)?;
    println!("fused kernels vs the tensor path on {device} (12 steps; launches: CUDA kernel launches)");
    println!("diffGrad's f32 exp on the CPU: {} (optimizers::fused::exp)", optimizers::fused::exp::choice());
    println!(
        "{:<6} {:<4} {:>8} {:>9} {:>12} {:>12} {:>8}  optimizer",
        "result", "type", "elements", "differing", "max |diff|", "max rel", "launches"
    );
    let mut all_ok = true;
    let mut untested = Vec::new();
    for spec in check::specs() {
        for dtype in [candle::DType::F32, candle::DType::F64] {
            let c = check::check(&spec, dtype, &dev)?;
            let verdict = if !c.ok() {
                "DIFF"
            } else if dev.is_cuda() && c.cuda_launches == 0 {
                "tensor"
            } else {
                "ok"
            };
            if verdict == "tensor" && !untested.contains(&spec.name) {
                untested.push(spec.name.clone());
            }
            all_ok &= c.ok();
            println!(
                "{verdict:<6} {:<4} {:>8} {:>9} {:>12.3e} {:>12.3e} {:>8}  {spec}",
                format!("{dtype:?}").to_lowercase(),
                c.elements,
                c.differing,
                c.max_abs_diff,
                c.max_rel_diff,
                c.cuda_launches
            );
        }
    }
    if !untested.is_empty() {
        println!("no CUDA kernel yet (the tensor path ran both times): {}", untested.join(", "));
    }
    println!(
        "{}",
        if all_ok { "all fused paths equal the tensor path" } else { "some fused paths differ: DIFF above" }
    );
    Ok(all_ok)
}
