//! Bias correction of exponential moving averages started at zero.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_steps() {
        assert_eq!(bias_correction(0.9, 1), 1.0 - 0.9);
        assert!((bias_correction(0.999, 2) - (1.0 - 0.999 * 0.999)).abs() < 1e-16);
        assert_eq!(bias_correction(0.0, 3), 1.0);
    }
}
