//! The walk over an optimizer's variables, kept apart from the per-tensor update (as in
//! burn-optim): skips variables without a gradient, keeps each variable's own step counter, and
//! creates its state on its first gradient, as PyTorch's lazily initialised `state[p]` does.

use candle::backprop::GradStore;
use candle::{Result, Tensor, Var};

/// One variable, the number of steps in which it had a gradient, and its optimizer state.
#[derive(Debug)]
pub(crate) struct Slot<S> {
    pub var: Var,
    pub step: u64,
    pub state: Option<S>,
}

impl<S> Slot<S> {
    /// Counts one more step for this variable and returns the step, with its state created by
    /// `init` on the first step.
    pub fn advance(&mut self, init: impl FnOnce(&Var) -> Result<S>) -> Result<SlotStep<'_, S>> {
        self.step += 1;
        if self.state.is_none() {
            self.state = Some(init(&self.var)?);
        }
        let state = self.state.as_mut().expect("state was just initialised");
        Ok(SlotStep { t: self.step, var: &self.var, state })
    }
}

/// One variable's view of the current step: its 1-based step number `t`, the variable and its
/// state.
pub(crate) struct SlotStep<'a, S> {
    pub t: u64,
    pub var: &'a Var,
    pub state: &'a mut S,
}

/// The current value of a variable, detached from any graph, to compute its update from.
pub(crate) fn value(var: &Var) -> Tensor {
    var.as_tensor().detach()
}

/// All the variables of an optimizer with their state.
#[derive(Debug)]
pub(crate) struct Slots<S> {
    slots: Vec<Slot<S>>,
}

impl<S> Slots<S> {
    /// Keeps the floating-point variables (integer variables cannot be optimised).
    pub fn new(vars: Vec<Var>) -> Self {
        let slots = vars
            .into_iter()
            .filter(|var| var.dtype().is_float())
            .map(|var| Slot { var, step: 0, state: None })
            .collect();
        Self { slots }
    }

    /// The states created so far.
    pub fn states(&self) -> impl Iterator<Item = &S> {
        self.slots.iter().filter_map(|s| s.state.as_ref())
    }

    /// The slots whose variable has a gradient in `grads`, with that gradient. Variables
    /// without one are not visited at all: no decay, no state change, no step count. A gradient
    /// whose shape or dtype does not fit its variable is an error.
    pub fn with_grads<'a>(
        &'a mut self,
        grads: &'a GradStore,
    ) -> impl Iterator<Item = Result<(&'a mut Slot<S>, &'a Tensor)>> + 'a {
        self.slots.iter_mut().filter_map(move |slot| {
            let grad = grads.get(slot.var.as_tensor())?;
            Some(check_grad(&slot.var, grad).map(|()| (slot, grad)))
        })
    }
}

/// Checks that a gradient fits its variable, so that a wrong `GradStore` is an error that says
/// so instead of a shape mismatch deep inside an update.
fn check_grad(var: &Var, grad: &Tensor) -> Result<()> {
    if grad.shape() != var.shape() || grad.dtype() != var.dtype() {
        candle::bail!(
            "gradient of shape {:?} ({:?}) given for a variable of shape {:?} ({:?})",
            grad.dims(),
            grad.dtype(),
            var.dims(),
            var.dtype()
        )
    }
    Ok(())
}
