//! RAdam's variance rectification (Liu et al., "On the Variance of the Adaptive Learning Rate
//! and Beyond", ICLR 2020, Algorithm 2), shared by RAdam and AdaBelief's `rectify` option.
//!
//! ```text
//! rho_inf = 2 / (1 - beta2) - 1
//! rho_t   = rho_inf - 2 t beta2^t / (1 - beta2^t)
//! r_t     = sqrt(bc2 (rho_t - 4)/(rho_inf - 4) (rho_t - 2)/rho_t rho_inf/(rho_inf - 2)) / bc1
//! ```
//! The adaptive step is taken only while `rho_t >= 5` (the variance is tractable); before that
//! the references either take an un-normalised momentum step (`degenerated_to_sgd`) or none.

use super::bias_correction;

/// The two quantities of the rectification at step `t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rectification {
    pub rho_inf: f64,
    pub rho_t: f64,
}

/// What a rectified optimizer does at one step, with the step-size factor that multiplies `lr`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RectifiedStep {
    /// `p -= lr * factor * m / (sqrt(v) + eps)`.
    Adaptive(f64),
    /// `p -= lr * factor * m` (`factor = 1 / bc1`).
    Sgd(f64),
    /// No update.
    Skip,
}

impl Rectification {
    pub fn new(beta2: f64, t: u64) -> Self {
        let beta2_t = beta2.powf(t as f64);
        let rho_inf = 2.0 / (1.0 - beta2) - 1.0;
        let rho_t = rho_inf - 2.0 * t as f64 * beta2_t / (1.0 - beta2_t);
        Self { rho_inf, rho_t }
    }

    /// The step to take at step `t`, as the official RAdam and AdaBelief compute it (same
    /// order of operations, in f64).
    pub fn step(beta1: f64, beta2: f64, t: u64, degenerated_to_sgd: bool) -> RectifiedStep {
        let Self { rho_inf, rho_t } = Self::new(beta2, t);
        let bc1 = bias_correction(beta1, t);
        if rho_t >= 5.0 {
            let bc2 = bias_correction(beta2, t);
            let r = (bc2 * (rho_t - 4.0) / (rho_inf - 4.0) * (rho_t - 2.0) / rho_t * rho_inf / (rho_inf - 2.0)).sqrt();
            RectifiedStep::Adaptive(r / bc1)
        } else if degenerated_to_sgd {
            RectifiedStep::Sgd(1.0 / bc1)
        } else {
            RectifiedStep::Skip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rho_grows_towards_rho_inf() {
        let first = Rectification::new(0.999, 1);
        assert!((first.rho_inf - 1999.0).abs() < 1e-9);
        assert!((first.rho_t - 1.0).abs() < 1e-9, "rho_1 = {}", first.rho_t);
        let late = Rectification::new(0.999, 100_000);
        assert!((late.rho_t - late.rho_inf).abs() < 1e-6);
    }

    #[test]
    fn tractable_from_step_six_with_default_betas() {
        // rho_t ~ t for small t: the first adaptive step of RAdam with beta2 = 0.999 is t = 6.
        assert_eq!(Rectification::step(0.9, 0.999, 5, false), RectifiedStep::Skip);
        assert!(matches!(Rectification::step(0.9, 0.999, 5, true), RectifiedStep::Sgd(_)));
        assert!(matches!(Rectification::step(0.9, 0.999, 6, false), RectifiedStep::Adaptive(_)));
    }
}
