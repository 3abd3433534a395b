//! Layers the models share that candle lacks or that must draw from the suite's generator.

use std::sync::Mutex;

use candle::{DType, ModuleT, Result, Tensor, D};

use crate::rng::SeededRng;

/// Dropout with seeded masks. candle's `ops::dropout` draws from an unseeded generator; here a
/// random keep-mask (scaled by `1 / (1 - p)`) is drawn once per layer from the run's generator,
/// uploaded, and every training step reads it at a random offset from that generator: the
/// same seed gives the same masks, each element is kept with probability `1 - p`, and no host
/// random numbers are made per step (which would dominate a step on a GPU). Masks of
/// consecutive steps are shifts of one another rather than independent.
#[derive(Debug)]
pub struct Dropout {
    p: f64,
    state: Mutex<DropState>,
}

#[derive(Debug)]
struct DropState {
    rng: SeededRng,
    /// The mask twice over, so that any window of `len / 2` elements is contiguous.
    doubled: Option<Tensor>,
}

impl Dropout {
    pub fn new(p: f64, rng: SeededRng) -> Self {
        Self { p, state: Mutex::new(DropState { rng, doubled: None }) }
    }
}

impl ModuleT for Dropout {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(xs.clone());
        }
        let n = xs.elem_count();
        let mut state = self.state.lock().expect("dropout lock");
        let stale = state
            .doubled
            .as_ref()
            .is_none_or(|d| d.elem_count() < 2 * n || d.device().location() != xs.device().location());
        if stale {
            let scale = 1.0 / (1.0 - self.p) as f32;
            let keep: Vec<f32> = (0..n).map(|_| if state.rng.bernoulli(self.p) { 0.0 } else { scale }).collect();
            let mask = Tensor::from_vec(keep, n, xs.device())?;
            state.doubled = Some(Tensor::cat(&[&mask, &mask], 0)?);
        }
        let doubled = state.doubled.clone().expect("made above");
        let offset = state.rng.below(doubled.elem_count() / 2);
        let mask = doubled.narrow(0, offset, n)?.reshape(xs.shape())?.to_dtype(xs.dtype())?;
        xs * mask
    }
}

/// Mean over the spatial dimensions: (N, C, H, W) -> (N, C).
pub fn global_avg_pool(xs: &Tensor) -> Result<Tensor> {
    xs.flatten_from(2)?.mean(D::Minus1)
}

/// Counts the elements of a tensor equal to zero (for tests of masks).
pub fn zeros(xs: &Tensor) -> Result<usize> {
    Ok(xs.eq(0.0)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()? as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    #[test]
    fn seeded_dropout_keeps_the_rate_and_repeats_with_the_seed() -> Result<()> {
        let x = Tensor::ones((8, 16, 10, 10), DType::F32, &Device::Cpu)?;
        let d = Dropout::new(0.2, SeededRng::new(5));
        let a = d.forward_t(&x, true)?;
        let dropped = zeros(&a)? as f64 / x.elem_count() as f64;
        assert!((dropped - 0.2).abs() < 0.02, "{dropped}");
        let mean = a.mean_all()?.to_scalar::<f32>()?;
        assert!((mean - 1.0).abs() < 0.05, "inverted scaling keeps the mean: {mean}");
        let b = d.forward_t(&x, true)?;
        assert_ne!(a.flatten_all()?.to_vec1::<f32>()?, b.flatten_all()?.to_vec1::<f32>()?, "a new mask per step");
        let d2 = Dropout::new(0.2, SeededRng::new(5));
        assert_eq!(d2.forward_t(&x, true)?.flatten_all()?.to_vec1::<f32>()?, a.flatten_all()?.to_vec1::<f32>()?);
        assert_eq!(d.forward_t(&x, false)?.flatten_all()?.to_vec1::<f32>()?, x.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }
}
