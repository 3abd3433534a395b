//! The one optimizer of the crate: [`Optim`] implements candle's `Optimizer` (and
//! [`WithKernels`], [`DynOptimizer`](crate::DynOptimizer), state save and restore) once, over
//! a per-optimizer [`Rule`].
//!
//! The core owns the walk over the variables, as burn-optim keeps it apart from the per-tensor
//! step: variables without a gradient are not visited at all (no decay, no state change, no
//! step count), each variable counts its own steps, and its state is created on its first
//! gradient, as PyTorch's lazily initialised `state[p]` is. A rule says what one variable's
//! update is:
//!
//! - its state ([`Rule::State`], created by [`Rule::init`], saved and restored by
//!   [`Rule::save`] / [`Rule::load`]);
//! - the scalars of one step ([`Rule::Scalars`]: bias corrections, bounds, rectification),
//!   computed once per variable and step by [`Rule::scalars`];
//! - the element-wise update ([`Rule::update`]), written with candle tensor ops;
//! - optionally a whole-model pre-pass ([`Rule::WHOLE_MODEL`], [`Rule::pre_pass`]) that sees
//!   every variable with a gradient before any is updated (Adai's mean over all parameters);
//! - optionally a fused in-place kernel for the element-wise update ([`Rule::fused_slots`],
//!   [`Rule::fused_update`]), fed with the same scalars, whose state lives in host vectors
//!   ([`Kernels::Auto`] takes it where it applies); a whole-model rule's kernel has its own
//!   pre-pass ([`Rule::fused_pre_pass`], [`Rule::fused_update_with`]), and takes either every
//!   variable or none, so that one pre-pass sees them all.
//!
//! [`Variant`] is a rule with other default hyperparameters (AdamW is Adam with decoupled
//! weight decay on).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use candle::backprop::GradStore;
use candle::{Result, Tensor, Var};

use crate::fused::{HostSlot, HostVecs, Kernels, WithKernels};
use crate::hyper::Hyperparameters;
use crate::state::{dtype_name, Meta, OptimizerState, SlotReader, SlotWriter, VarMeta};

/// One variable in one step, as a rule's update sees it.
#[derive(Debug)]
pub struct Step<'a, S, C> {
    /// The 1-based step number of this variable (steps without its gradient do not count).
    pub t: u64,
    /// The scalars [`Rule::scalars`] computed for `t`.
    pub scalars: C,
    pub var: &'a Var,
    /// The gradient (a whole-model pre-pass may replace it, e.g. with the L2 term added).
    pub grad: Tensor,
    pub state: &'a mut S,
}

/// One variable in one step of a whole-model rule's fused kernel.
#[derive(Debug)]
pub struct FusedStep<'a, C> {
    /// The scalars [`Rule::scalars`] computed for this variable's step.
    pub scalars: C,
    pub var: &'a Var,
    pub grad: Tensor,
    pub host: &'a mut HostVecs,
}

/// What one optimizer does to one variable; [`Optim`] does the rest.
pub trait Rule: Sized + Send + fmt::Debug + 'static {
    /// The canonical name, as the registry and a saved state name it.
    const NAME: &'static str;
    /// Whether [`pre_pass`](Rule::pre_pass) must see every variable with a gradient before
    /// any is updated. Otherwise each variable is updated as soon as it is visited.
    const WHOLE_MODEL: bool = false;

    /// The hyperparameters (the optimizer's `Config`).
    type Params: Hyperparameters;
    /// The state of one variable.
    type State: Send + fmt::Debug;
    /// The per-step scalars of one variable.
    type Scalars: Copy + fmt::Debug + 'static;
    /// What the whole-model pre-pass hands to every update (`()` without one).
    type Global: Default;

    /// The rule for valid `params`, with any constants derived from them.
    fn new(params: &Self::Params) -> Self;

    /// The state of `var` before its first step.
    fn init(&self, p: &Self::Params, var: &Var) -> Result<Self::State>;

    /// The scalars of step `t` (at the current learning rate).
    fn scalars(&self, p: &Self::Params, t: u64) -> Self::Scalars;

    /// The whole-model pre-pass over every variable that has a gradient in this step (only
    /// called when [`WHOLE_MODEL`](Rule::WHOLE_MODEL)).
    fn pre_pass(&self, p: &Self::Params, steps: &mut [Step<'_, Self::State, Self::Scalars>]) -> Result<Self::Global> {
        let _ = (p, steps);
        Ok(Self::Global::default())
    }

    /// Updates one variable and its state.
    fn update(&self, p: &Self::Params, step: Step<'_, Self::State, Self::Scalars>, global: &Self::Global)
        -> Result<()>;

    /// Writes the state of one variable, one tensor per slot.
    fn save(&self, p: &Self::Params, state: &Self::State, out: &mut SlotWriter<'_>) -> Result<()>;

    /// Reads back what [`save`](Rule::save) wrote, for variable `var` after `t` steps.
    fn load(&self, p: &Self::Params, var: &Var, t: u64, input: &mut SlotReader<'_>) -> Result<Self::State>;

    /// Scalars of the rule that a saved state must carry (AdaBound's `base_lr`).
    fn saved_scalars(&self) -> BTreeMap<String, f64> {
        BTreeMap::new()
    }

    /// Restores what [`saved_scalars`](Rule::saved_scalars) gave.
    fn restore_scalars(&mut self, scalars: &BTreeMap<String, f64>) -> Result<()> {
        let _ = scalars;
        Ok(())
    }

    /// The slot names of the host state vectors of the rule's fused CPU kernel, in the order
    /// [`fused_update`](Rule::fused_update) takes them, or `None` without a kernel. They are
    /// also the names [`save`](Rule::save) uses, so that a state moves between the paths.
    fn fused_slots(&self, p: &Self::Params) -> Option<&'static [&'static str]> {
        let _ = p;
        None
    }

    /// The host vectors of the fused kernel's state of `var` after `t` steps, in the order
    /// [`fused_update`](Rule::fused_update) takes them: each one's shape (its length is the
    /// shape's element count) and the slot it is saved as, if it is part of the saved state at
    /// `t`. By default one vector of the variable's shape per name of
    /// [`fused_slots`](Rule::fused_slots). AdaShift keeps per-tensor scalars (shape `()`) and a
    /// window of gradients that is saved only as far as it is filled; a vector without a slot is
    /// restored as zeros.
    fn fused_layout(&self, p: &Self::Params, var: &Var, t: u64) -> Vec<HostSlot> {
        let _ = t;
        let names = self.fused_slots(p).unwrap_or_default();
        names.iter().map(|name| HostSlot::saved(name, var.shape().clone())).collect()
    }

    /// The fused update of one variable in place, bit-identical to [`update`](Rule::update).
    fn fused_update(
        &self,
        p: &Self::Params,
        scalars: &Self::Scalars,
        var: &Var,
        grad: &Tensor,
        host: &mut HostVecs,
    ) -> Result<()> {
        let _ = (p, scalars, var, grad, host);
        candle::bail!("{} has no fused kernel", Self::NAME)
    }

    /// The fused kernel's whole-model pre-pass (only for [`WHOLE_MODEL`](Rule::WHOLE_MODEL)
    /// rules with a kernel), over every variable with a gradient in visit order, all of which
    /// take the kernel; what it returns goes to [`fused_update_with`](Rule::fused_update_with).
    fn fused_pre_pass(&self, p: &Self::Params, steps: &mut [FusedStep<'_, Self::Scalars>]) -> Result<Self::Global> {
        let _ = (p, steps);
        candle::bail!("{} has no fused pre-pass", Self::NAME)
    }

    /// [`fused_update`](Rule::fused_update) after the fused pre-pass, with what it returned.
    fn fused_update_with(
        &self,
        p: &Self::Params,
        scalars: &Self::Scalars,
        var: &Var,
        grad: &Tensor,
        host: &mut HostVecs,
        global: &Self::Global,
    ) -> Result<()> {
        let _ = global;
        self.fused_update(p, scalars, var, grad, host)
    }
}

/// The state of one variable: tensors for the rule's update, or host vectors for its kernel.
#[derive(Debug)]
enum SlotState<S> {
    Tensors(S),
    Host(HostVecs),
    /// The state of the rule's CUDA kernel, on the variable's GPU (`fused::cuda`).
    #[cfg(feature = "cuda")]
    Device(crate::fused::cuda::launch::DeviceVecs),
}

/// One variable, its position in the list the optimizer was built over, the number of steps
/// in which it had a gradient, and its state (from its first step on).
#[derive(Debug)]
struct Slot<S> {
    index: usize,
    var: Var,
    step: u64,
    state: Option<SlotState<S>>,
}

/// An optimizer: a [`Rule`] applied to every variable, see the module documentation.
#[derive(Debug)]
pub struct Optim<R: Rule> {
    params: R::Params,
    rule: R,
    slots: Vec<Slot<R::State>>,
    kernels: Kernels,
}

impl<R: Rule> Optim<R> {
    /// How many variables are updated by the fused CPU kernel (after their first step).
    pub fn fused_variables(&self) -> usize {
        self.slots.iter().filter(|s| matches!(s.state, Some(SlotState::Host(_)))).count()
    }

    /// How many variables are updated by a CUDA kernel (after their first step).
    #[cfg(feature = "cuda")]
    pub fn cuda_variables(&self) -> usize {
        self.slots.iter().filter(|s| matches!(s.state, Some(SlotState::Device(_)))).count()
    }

    /// Whether `var` gets the rule's CUDA kernel.
    #[cfg(feature = "cuda")]
    fn cuda_for(&self, var: &Var) -> bool {
        use crate::fused::cuda::launch;
        launch::takes(self.kernels, var)
            && launch::supports::<R::Params, R::Scalars>()
            && self.rule.fused_slots(&self.params).is_some()
    }

    /// The hyperparameters (with the current learning rate).
    pub fn params(&self) -> &R::Params {
        &self.params
    }

    /// Whether `var` gets the rule's fused kernel.
    fn fused_for(&self, var: &Var) -> bool {
        self.kernels.fused_for(var) && self.rule.fused_slots(&self.params).is_some()
    }

    /// The whole state: every variable's step count and state tensors, the learning rate.
    pub fn state(&self) -> Result<OptimizerState> {
        let mut tensors = BTreeMap::new();
        let mut variables = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            variables.push(VarMeta {
                index: slot.index,
                shape: slot.var.dims().to_vec(),
                dtype: dtype_name(slot.var.dtype()),
                step: slot.step,
            });
            let mut out = SlotWriter::new(slot.index, &mut tensors);
            match &slot.state {
                None => {}
                Some(SlotState::Tensors(state)) => self.rule.save(&self.params, state, &mut out)?,
                Some(SlotState::Host(host)) => {
                    let layout = self.rule.fused_layout(&self.params, &slot.var, slot.step);
                    let shapes: Vec<_> = layout.iter().map(|s| s.shape.clone()).collect();
                    for (host_slot, tensor) in layout.iter().zip(host.to_tensors_shaped(&shapes)?) {
                        if let Some(name) = &host_slot.name {
                            out.put(name, &tensor)?;
                        }
                    }
                }
                #[cfg(feature = "cuda")]
                Some(SlotState::Device(buffers)) => {
                    let names = self.rule.fused_slots(&self.params).unwrap_or_default();
                    for (name, tensor) in names.iter().zip(buffers.to_tensors(slot.var.shape())?) {
                        out.put(name, &tensor)?;
                    }
                }
            }
        }
        let hyperparameters = serde_json::to_value(&self.params).map_err(candle::Error::wrap)?;
        let meta = Meta::new(R::NAME, self.params.lr(), hyperparameters, self.rule.saved_scalars(), variables);
        Ok(OptimizerState { tensors, meta: serde_json::to_value(meta).map_err(candle::Error::wrap)? })
    }

    /// Restores a state saved by [`state`](Self::state) of an optimizer of the same kind and
    /// hyperparameters over variables of the same shapes. Nothing changes when it fails.
    pub fn load_state(&mut self, saved: &OptimizerState) -> Result<()> {
        let meta = Meta::parse(&saved.meta, R::NAME)?;
        self.check_hyperparameters(&meta)?;
        if meta.variables.len() != self.slots.len() {
            candle::bail!(
                "optimizer state: saved for {} variables, this optimizer has {}",
                meta.variables.len(),
                self.slots.len()
            )
        }
        let mut used = BTreeSet::new();
        let mut states = Vec::with_capacity(self.slots.len());
        for (slot, saved_var) in self.slots.iter().zip(&meta.variables) {
            let (index, var) = (slot.index, &slot.var);
            if saved_var.index != index {
                candle::bail!(
                    "optimizer state: has variable {} where this optimizer has variable {index}",
                    saved_var.index
                )
            }
            if saved_var.shape != var.dims() || saved_var.dtype != dtype_name(var.dtype()) {
                candle::bail!(
                    "optimizer state: variable {index} was saved with shape {:?} ({}), this one has shape {:?} ({})",
                    saved_var.shape,
                    saved_var.dtype,
                    var.dims(),
                    dtype_name(var.dtype())
                )
            }
            let mut input = SlotReader::new(index, var, &saved.tensors, &mut used);
            let state = match saved_var.step {
                0 => None,
                #[cfg(feature = "cuda")]
                t if self.cuda_for(var) => {
                    let names = self.rule.fused_slots(&self.params).unwrap_or_default();
                    let tensors = names.iter().map(|name| input.take_like_var(name)).collect::<Result<Vec<_>>>()?;
                    Some(SlotState::Device(
                        crate::fused::cuda::launch::DeviceVecs::from_tensors(var, &tensors).map_err(|e| {
                            candle::Error::Msg(format!("optimizer state: variable {index} after {t} steps: {e}"))
                        })?,
                    ))
                }
                t if self.fused_for(var) => {
                    let layout = self.rule.fused_layout(&self.params, var, t);
                    let tensors = layout
                        .iter()
                        .map(|slot| match &slot.name {
                            Some(name) => input.take(name, slot.shape.clone()),
                            None => Tensor::zeros(slot.shape.clone(), var.dtype(), &candle::Device::Cpu),
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Some(SlotState::Host(HostVecs::from_tensors(&tensors).map_err(|e| {
                        candle::Error::Msg(format!("optimizer state: variable {index} after {t} steps: {e}"))
                    })?))
                }
                t => Some(SlotState::Tensors(self.rule.load(&self.params, var, t, &mut input)?)),
            };
            states.push((saved_var.step, state));
        }
        if let Some(extra) = saved.tensors.keys().find(|key| !used.contains(*key)) {
            candle::bail!(
                "optimizer state: unexpected tensor `{extra}`, which this {} optimizer does not keep",
                R::NAME
            )
        }
        self.rule.restore_scalars(&meta.scalars)?;
        self.params.set_lr(meta.lr);
        for (slot, (step, state)) in self.slots.iter_mut().zip(states) {
            slot.step = step;
            slot.state = state;
        }
        Ok(())
    }

    /// The saved hyperparameters must be this optimizer's, but for the learning rate.
    fn check_hyperparameters(&self, meta: &Meta) -> Result<()> {
        let ours = serde_json::to_value(&self.params).map_err(candle::Error::wrap)?;
        let (Some(ours), Some(saved)) = (ours.as_object(), meta.hyperparameters.as_object()) else {
            candle::bail!("optimizer state: `hyperparameters` is not an object")
        };
        for (key, value) in ours {
            if key == "lr" {
                continue;
            }
            match saved.get(key) {
                Some(saved) if same(saved, value) => {}
                Some(saved) => candle::bail!(
                    "optimizer state: saved with {} = {saved}, this {} optimizer has {key} = {value}",
                    key,
                    R::NAME
                ),
                None => candle::bail!("optimizer state: has no hyperparameter `{key}`"),
            }
        }
        if let Some(key) = saved.keys().find(|key| !ours.contains_key(*key)) {
            candle::bail!("optimizer state: unknown hyperparameter `{key}` for {}", R::NAME)
        }
        Ok(())
    }
}

/// Whether two hyperparameter values are the same. Numbers may differ in their last bits: a
/// decimal JSON number need not parse back to the same double.
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-15 * x.abs().max(y.abs()),
        _ => a == b,
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

impl<R: Rule> WithKernels for Optim<R> {
    fn new_with_kernels(vars: Vec<Var>, params: R::Params, kernels: Kernels) -> Result<Self> {
        params.validate()?;
        // Integer variables cannot be optimised: they are left out (and keep their index).
        let slots: Vec<Slot<R::State>> = vars
            .into_iter()
            .enumerate()
            .filter(|(_, var)| var.dtype().is_float())
            .map(|(index, var)| Slot { index, var, step: 0, state: None })
            .collect();
        // A whole-model pre-pass runs on one path: the kernel's where every variable takes it.
        let all = |takes: &dyn Fn(&Var) -> bool| slots.iter().all(|slot| takes(&slot.var));
        #[cfg(feature = "cuda")]
        let on_cuda = crate::fused::cuda::launch::supports_whole_model::<R::Scalars>()
            && all(&|var| crate::fused::cuda::launch::takes(kernels, var));
        #[cfg(not(feature = "cuda"))]
        let on_cuda = false;
        let kernels = if R::WHOLE_MODEL && !on_cuda && !all(&|var| kernels.fused_for(var)) {
            Kernels::TensorOps
        } else {
            kernels
        };
        Ok(Self { rule: R::new(&params), params, slots, kernels })
    }
}

impl<R: Rule> candle_nn::optim::Optimizer for Optim<R> {
    type Config = R::Params;

    fn new(vars: Vec<Var>, params: R::Params) -> Result<Self> {
        Self::new_with_kernels(vars, params, Kernels::Auto)
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let fused = self.rule.fused_slots(&self.params);
        #[cfg(feature = "cuda")]
        let cuda = crate::fused::cuda::launch::supports::<R::Params, R::Scalars>();
        let Self { params, rule, slots, kernels } = self;
        let visits = slots.iter_mut().filter_map(|slot| {
            let grad = grads.get(slot.var.as_tensor())?;
            Some(check_grad(&slot.var, grad).map(|()| (slot, grad)))
        });
        let mut whole_model = Vec::new();
        let mut whole_model_fused = Vec::new();
        #[cfg(feature = "cuda")]
        let mut whole_model_device = Vec::new();
        for visit in visits {
            let (Slot { var, step, state, .. }, grad) = visit?;
            *step += 1;
            let t = *step;
            let state = match state {
                Some(state) => state,
                None => state.insert(match fused {
                    #[cfg(feature = "cuda")]
                    Some(names) if cuda && crate::fused::cuda::launch::takes(*kernels, var) => {
                        SlotState::Device(crate::fused::cuda::launch::DeviceVecs::zeros(var, names.len())?)
                    }
                    Some(_) if kernels.fused_for(var) => {
                        let lens: Vec<usize> =
                            rule.fused_layout(params, var, 0).iter().map(|slot| slot.shape.elem_count()).collect();
                        SlotState::Host(HostVecs::zeros_of(var.dtype(), &lens)?)
                    }
                    _ => SlotState::Tensors(rule.init(params, var)?),
                }),
            };
            let scalars = rule.scalars(params, t);
            match state {
                SlotState::Host(host) => {
                    if R::WHOLE_MODEL {
                        whole_model_fused.push(FusedStep { scalars, var: &*var, grad: grad.clone(), host })
                    } else {
                        rule.fused_update(params, &scalars, var, grad, host)?
                    }
                }
                #[cfg(feature = "cuda")]
                SlotState::Device(buffers) => {
                    if R::WHOLE_MODEL {
                        whole_model_device.push((scalars, &*var, grad.clone(), buffers))
                    } else {
                        crate::fused::cuda::launch::update(R::NAME, &*params, &scalars, t, var, grad, buffers)?
                    }
                }
                SlotState::Tensors(state) => {
                    // Detached: a gradient that carries a graph (a GAN's penalty is built from
                    // gradients) would chain every step's state to the previous step's graph,
                    // which then is never freed.
                    let step = Step { t, scalars, var, grad: grad.detach(), state };
                    if R::WHOLE_MODEL {
                        whole_model.push(step);
                    } else {
                        rule.update(params, step, &R::Global::default())?;
                    }
                }
            }
        }
        if R::WHOLE_MODEL && !whole_model.is_empty() {
            let global = rule.pre_pass(params, &mut whole_model)?;
            for step in whole_model {
                rule.update(params, step, &global)?;
            }
        }
        #[cfg(feature = "cuda")]
        if R::WHOLE_MODEL && !whole_model_device.is_empty() {
            crate::fused::cuda::launch::whole_model_update(R::NAME, &mut whole_model_device)?;
        }
        if R::WHOLE_MODEL && !whole_model_fused.is_empty() {
            let global = rule.fused_pre_pass(params, &mut whole_model_fused)?;
            for FusedStep { scalars, var, grad, host } in whole_model_fused {
                rule.fused_update_with(params, &scalars, var, &grad, host, &global)?;
            }
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr()
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.set_lr(lr);
    }
}

/// The hyperparameters of an optimizer that is another one with other defaults (AdamW is Adam
/// with decoupled weight decay on): a newtype over the base's params whose `Default` differs.
pub trait VariantOf<R: Rule>: Hyperparameters + AsRef<R::Params> {
    /// The variant's canonical name.
    const NAME: &'static str;
}

/// The rule of a variant: its base rule, with params `P`.
pub struct Variant<R, P> {
    base: R,
    params: PhantomData<fn() -> P>,
}

impl<R: Rule, P: VariantOf<R>> fmt::Debug for Variant<R, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple(P::NAME).field(&self.base).finish()
    }
}

impl<R: Rule, P: VariantOf<R>> Rule for Variant<R, P> {
    const NAME: &'static str = P::NAME;
    const WHOLE_MODEL: bool = R::WHOLE_MODEL;
    type Params = P;
    type State = R::State;
    type Scalars = R::Scalars;
    type Global = R::Global;

    fn new(p: &P) -> Self {
        Self { base: R::new(p.as_ref()), params: PhantomData }
    }
    fn init(&self, p: &P, var: &Var) -> Result<Self::State> {
        self.base.init(p.as_ref(), var)
    }
    fn scalars(&self, p: &P, t: u64) -> Self::Scalars {
        self.base.scalars(p.as_ref(), t)
    }
    fn pre_pass(&self, p: &P, steps: &mut [Step<'_, Self::State, Self::Scalars>]) -> Result<Self::Global> {
        self.base.pre_pass(p.as_ref(), steps)
    }
    fn update(&self, p: &P, step: Step<'_, Self::State, Self::Scalars>, global: &Self::Global) -> Result<()> {
        self.base.update(p.as_ref(), step, global)
    }
    fn save(&self, p: &P, state: &Self::State, out: &mut SlotWriter<'_>) -> Result<()> {
        self.base.save(p.as_ref(), state, out)
    }
    fn load(&self, p: &P, var: &Var, t: u64, input: &mut SlotReader<'_>) -> Result<Self::State> {
        self.base.load(p.as_ref(), var, t, input)
    }
    fn saved_scalars(&self) -> BTreeMap<String, f64> {
        self.base.saved_scalars()
    }
    fn restore_scalars(&mut self, scalars: &BTreeMap<String, f64>) -> Result<()> {
        self.base.restore_scalars(scalars)
    }
    fn fused_slots(&self, p: &P) -> Option<&'static [&'static str]> {
        self.base.fused_slots(p.as_ref())
    }
    fn fused_layout(&self, p: &P, var: &Var, t: u64) -> Vec<HostSlot> {
        self.base.fused_layout(p.as_ref(), var, t)
    }
    fn fused_update(&self, p: &P, s: &Self::Scalars, var: &Var, grad: &Tensor, host: &mut HostVecs) -> Result<()> {
        self.base.fused_update(p.as_ref(), s, var, grad, host)
    }
    fn fused_pre_pass(&self, p: &P, steps: &mut [FusedStep<'_, Self::Scalars>]) -> Result<Self::Global> {
        self.base.fused_pre_pass(p.as_ref(), steps)
    }
    fn fused_update_with(
        &self,
        p: &P,
        s: &Self::Scalars,
        var: &Var,
        grad: &Tensor,
        host: &mut HostVecs,
        global: &Self::Global,
    ) -> Result<()> {
        self.base.fused_update_with(p.as_ref(), s, var, grad, host, global)
    }
}

/// The current value of a variable, detached from any graph, to compute its update from.
pub fn value(var: &Var) -> Tensor {
    var.as_tensor().detach()
}
