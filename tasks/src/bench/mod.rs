//! Benchmarks shared by `optbench bench` and the `cargo bench` binaries under `tasks/benches/`
//! (thin wrappers that parse their flags into the configurations here): the machine
//! ([`machine`]), the model steps ([`models`]: MNIST MLP epoch, ResNet-18 CIFAR step,
//! Transformer step, AWD-LSTM step, WGAN-GP round) and the PyTorch halves under
//! `scripts/bench/*.py` ([`torch`]). Timing primitives of the optimizer steps live in
//! `optimizers::bench`. These are benchmarks: nothing here asserts a time.

pub mod machine;
pub mod models;
pub mod torch;

use std::time::Instant;

/// The median of `v` (the upper one of an even count); NaN for an empty `v`.
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One measured benchmark: seconds of each timed unit (an epoch, a step, a round) and the
/// seconds of its named parts (forward, backward, ...), each unit's in the same order.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Seconds of each timed unit.
    pub seconds: Vec<f64>,
    /// `(part, seconds of that part in each unit)`.
    pub parts: Vec<(String, Vec<f64>)>,
    /// What was measured, beyond the benchmark's name (sizes, data, extrapolation).
    pub note: String,
}

impl Measured {
    /// The median unit.
    pub fn median(&self) -> f64 {
        median(&self.seconds)
    }

    /// Adds another run's units and parts (same part names) to these.
    pub fn extend(&mut self, other: Measured) {
        self.seconds.extend(other.seconds);
        for (name, values) in other.parts {
            match self.parts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, mine)) => mine.extend(values),
                None => self.parts.push((name, values)),
            }
        }
        if self.note.is_empty() {
            self.note = other.note;
        }
    }

    /// `forward 0.120 s, backward 0.300 s, ...`: the median of each part.
    pub fn parts_summary(&self) -> String {
        let parts: Vec<String> = self.parts.iter().map(|(name, v)| format!("{name} {}", seconds(median(v)))).collect();
        parts.join(", ")
    }
}

/// Seconds with three significant-ish decimals (`0.0012 s`, `1.234 s`).
pub fn seconds(s: f64) -> String {
    if s < 0.01 {
        format!("{s:.4} s")
    } else {
        format!("{s:.3} s")
    }
}

/// The parts of timed training steps: forward (to the loss), backward, optimizer update, each
/// measured after the device finished it.
#[derive(Debug, Default)]
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
        let t0 = Instant::now();
        let (loss, kept) = forward()?;
        device.synchronize()?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        device.synchronize()?;
        let t2 = Instant::now();
        update(&grads)?;
        device.synchronize()?;
        let t3 = Instant::now();
        if !warm_up {
            self.forward.push((t1 - t0).as_secs_f64());
            self.backward.push((t2 - t1).as_secs_f64());
            self.update.push((t3 - t2).as_secs_f64());
            self.total.push((t3 - t0).as_secs_f64());
        }
        Ok(kept)
    }

    /// The steps as a [`Measured`], the update part named `update`.
    pub fn measured(self, update: &str, note: String) -> Measured {
        Measured {
            seconds: self.total,
            parts: vec![
                ("forward".into(), self.forward),
                ("backward".into(), self.backward),
                (update.into(), self.update),
            ],
            note,
        }
    }
}

/// `median T s (forward F s, backward B s, <update> U s) over N steps`: the line the scripts
/// under `scripts/bench/` read the first number of.
pub fn summary_line(m: &Measured, unit: &str) -> String {
    format!("median {:.3} s ({}) over {} {unit}s", m.median(), m.parts_summary(), m.seconds.len())
}
