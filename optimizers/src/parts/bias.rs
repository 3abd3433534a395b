//! Bias correction of exponential moving averages started at zero: `1 - beta^t` computed in
//! f64 as the PyTorch references do ([`bias_correction`]), or from TensorFlow's beta-power
//! variables, a running product rounded to the parameter's precision at every step
//! ([`RunningPower`]).

use std::sync::Mutex;

/// `1 - beta^t`: the total weight an EMA with factor `beta`, started at zero, has put on its
/// inputs after `t` updates. Computed in f64 like the references (Python's `beta ** t`).
pub fn bias_correction(beta: f64, t: u64) -> f64 {
    1.0 - beta.powf(t as f64)
}

/// The step size of Adam's relatives that put the bias corrections into it rather than into
/// the moments: `lr sqrt(bc2) / bc1` (AdaMod, AdaBound, DiffGrad), in this order of operations.
pub fn adam_step_size(lr: f64, beta1: f64, beta2: f64, t: u64) -> f64 {
    lr * bias_correction(beta2, t).sqrt() / bias_correction(beta1, t)
}

/// `beta^t` as TensorFlow's beta-power variables hold it at step `t` (1-based): `beta` at the
/// first step, multiplied by `beta` after each, in f32 and in f64 (rounded at every
/// multiplication, so not `powf`: in f32, `1 - beta^t` cancels and the difference shows).
///
/// The value is a function of `t` alone, so a variable's step count (which the core keeps and
/// saves) is all the state it needs; the products are cached (every [`Self::EVERY`]-th one and
/// the last), so that a step costs O(1) and any `t` at most `EVERY` multiplications.
#[derive(Debug)]
pub struct RunningPower {
    beta: f64,
    cache: Mutex<PowerCache>,
}

#[derive(Debug)]
struct PowerCache {
    /// `checkpoints[k]` is the product at `t = 1 + k * EVERY`.
    checkpoints: Vec<(f32, f64)>,
    /// The last product asked for, and its `t`.
    last: (u64, f32, f64),
}

impl RunningPower {
    /// Steps between cached products.
    pub const EVERY: u64 = 1024;

    pub fn new(beta: f64) -> Self {
        let first = (beta as f32, beta);
        Self { beta, cache: Mutex::new(PowerCache { checkpoints: vec![first], last: (1, first.0, first.1) }) }
    }

    /// The products at step `t >= 1`, in f32 and in f64.
    pub fn at(&self, t: u64) -> (f32, f64) {
        let t = t.max(1);
        let (b32, b64) = (self.beta as f32, self.beta);
        let advance = |(mut p32, mut p64): (f32, f64), steps: u64| {
            for _ in 0..steps {
                p32 *= b32;
                p64 *= b64;
            }
            (p32, p64)
        };
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let k = ((t - 1) / Self::EVERY) as usize;
        while cache.checkpoints.len() <= k {
            let previous = *cache.checkpoints.last().expect("the first product");
            cache.checkpoints.push(advance(previous, Self::EVERY));
        }
        let checkpoint_t = 1 + k as u64 * Self::EVERY;
        let (last_t, l32, l64) = cache.last;
        let (from_t, from) = if (checkpoint_t..=t).contains(&last_t) {
            (last_t, (l32, l64))
        } else {
            (checkpoint_t, cache.checkpoints[k])
        };
        let (p32, p64) = advance(from, t - from_t);
        cache.last = (t, p32, p64);
        (p32, p64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_powers_are_repeated_products_in_any_order_of_steps() {
        let powers = RunningPower::new(0.999);
        let (mut p32, mut p64) = (0.999f32, 0.999f64);
        let mut expected = vec![(0, 0.0, 0.0), (1, p32, p64)];
        for t in 2..=3000u64 {
            p32 *= 0.999f32;
            p64 *= 0.999;
            expected.push((t, p32, p64));
        }
        for t in (1..=3000).chain([2999, 5, 1025, 1024, 2048, 7]) {
            assert_eq!(powers.at(t), (expected[t as usize].1, expected[t as usize].2), "t = {t}");
        }
    }

    #[test]
    fn first_steps() {
        assert_eq!(bias_correction(0.9, 1), 1.0 - 0.9);
        assert!((bias_correction(0.999, 2) - (1.0 - 0.999 * 0.999)).abs() < 1e-16);
        assert_eq!(bias_correction(0.0, 3), 1.0);
    }
}
