//! An object-safe face of candle's `Optimizer` trait (which is `Sized`), so that a runner can
//! hold any optimizer chosen by name at run time, and save and restore its state.

use candle::backprop::GradStore;
use candle::{Result, Tensor};
use candle_nn::optim::Optimizer;

use crate::core::{Optim, Rule};
use crate::state::OptimizerState;

/// What a training loop needs from an optimizer, callable through `Box<dyn DynOptimizer>`.
/// Every optimizer of the crate ([`Optim`]) is one.
pub trait DynOptimizer: Send {
    /// Applies one update from the gradients in `grads`; variables without a gradient are left
    /// untouched.
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate used from the next step on (what a schedule calls).
    fn set_learning_rate(&mut self, lr: f64);
    /// Back-propagates `loss` and steps.
    fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }
    /// The optimizer's whole state (every variable's step count and state tensors, the
    /// learning rate).
    fn state(&self) -> Result<OptimizerState>;
    /// Restores a state saved by `state()` of an optimizer of the same kind and
    /// hyperparameters over variables of the same shapes (errors name what does not fit: the
    /// variable index, the slot, the shapes).
    fn load_state(&mut self, state: &OptimizerState) -> Result<()>;
    /// How many variables the fused CPU kernel updates (after their first step); 0 for an
    /// optimizer that does not say.
    fn fused_variables(&self) -> usize {
        0
    }
}

/// An optimizer chosen at run time.
pub type BoxedOptimizer = Box<dyn DynOptimizer>;

impl<R: Rule> DynOptimizer for Optim<R> {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        Optimizer::step(self, grads)
    }

    fn learning_rate(&self) -> f64 {
        Optimizer::learning_rate(self)
    }

    fn set_learning_rate(&mut self, lr: f64) {
        Optimizer::set_learning_rate(self, lr)
    }

    fn state(&self) -> Result<OptimizerState> {
        Optim::state(self)
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        Optim::load_state(self, state)
    }

    fn fused_variables(&self) -> usize {
        Optim::fused_variables(self)
    }
}
