//! Bias correction of exponential moving averages started at zero.

/// `1 - beta^t`: the total weight an EMA with factor `beta`, started at zero, has put on its
/// inputs after `t` updates. Computed in f64 like the references (Python's `beta ** t`).
pub fn bias_correction(beta: f64, t: u64) -> f64 {
    1.0 - beta.powf(t as f64)
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
