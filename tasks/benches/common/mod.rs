//! What the benchmarks share: their command-line flags and medians.
// Each bench uses some of these (a module compiled into every bench separately).
#![allow(dead_code)]

/// The value after flag `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// The value after flag `name`, parsed, or `default`.
pub fn parsed<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(arg(name).map(|v| v.parse()).transpose()?.unwrap_or(default))
}

/// The median (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The parts of timed training steps: forward (to the loss), backward, optimizer update, each
/// measured after the device finished it.
#[derive(Default)]
pub struct StepTimes {
    forward: Vec<f64>,
    backward: Vec<f64>,
    update: Vec<f64>,
    total: Vec<f64>,
}

impl StepTimes {
    /// Runs one step: `forward` makes the loss (and anything the caller keeps), then its
    /// backward pass and `update` with the gradients. Recorded unless it is a warm-up.
    pub fn step<T>(
        &mut self,
        device: &candle::Device,
        warm_up: bool,
        forward: impl FnOnce() -> anyhow::Result<(candle::Tensor, T)>,
        update: impl FnOnce(&candle::backprop::GradStore) -> candle::Result<()>,
    ) -> anyhow::Result<T> {
        let t0 = std::time::Instant::now();
        let (loss, kept) = forward()?;
        device.synchronize()?;
        let t1 = std::time::Instant::now();
        let grads = loss.backward()?;
        device.synchronize()?;
        let t2 = std::time::Instant::now();
        update(&grads)?;
        device.synchronize()?;
        let t3 = std::time::Instant::now();
        if !warm_up {
            self.forward.push((t1 - t0).as_secs_f64());
            self.backward.push((t2 - t1).as_secs_f64());
            self.update.push((t3 - t2).as_secs_f64());
            self.total.push((t3 - t0).as_secs_f64());
        }
        Ok(kept)
    }

    /// `median T s (forward F s, backward B s, <update> U s) over N steps`: the scripts under
    /// `scripts/bench/` read the first number.
    pub fn summary(&self, update: &str) -> String {
        format!(
            "median {:.3} s (forward {:.3} s, backward {:.3} s, {update} {:.4} s) over {} steps",
            median(self.total.clone()),
            median(self.forward.clone()),
            median(self.backward.clone()),
            median(self.update.clone()),
            self.total.len()
        )
    }
}
