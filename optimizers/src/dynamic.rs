//! An object-safe face of candle's `Optimizer` trait (which is `Sized`), so that a runner can
//! hold any optimizer chosen by name at run time.

use candle::backprop::GradStore;
use candle::{Result, Tensor};
use candle_nn::optim::Optimizer;

/// What a training loop needs from an optimizer, callable through `Box<dyn DynOptimizer>`.
/// Every [`Optimizer`] is one.
pub trait DynOptimizer: Send {
    /// Applies one update from the gradients in `grads`; variables without a gradient are left
    /// untouched.
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate used from the next step on (what a schedule calls).
    fn set_learning_rate(&mut self, lr: f64);
    /// Back-propagates `loss` and steps.
    fn state(&self) -> Result<crate::OptimizerState> {
        candle::bail!("not yet")
    }
    fn load_state(&mut self, _state: &crate::OptimizerState) -> Result<()> {
        candle::bail!("not yet")
    }
    fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }
}

/// An optimizer chosen at run time.
pub type BoxedOptimizer = Box<dyn DynOptimizer>;

impl<O: Optimizer + Send> DynOptimizer for O {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        Optimizer::step(self, grads)
    }

    fn learning_rate(&self) -> f64 {
        Optimizer::learning_rate(self)
    }

    fn set_learning_rate(&mut self, lr: f64) {
        Optimizer::set_learning_rate(self, lr)
    }
}
