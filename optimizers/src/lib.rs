//! Adaptive optimizers for [candle](https://github.com/huggingface/candle), each proven equal,
//! step for step, to the implementation of its authors (see `../shared/spec/optimizers.md`
//! and the golden trajectories under `tests/fixtures/golden/`).
//!
//! Every optimizer implements [`candle_nn::optim::Optimizer`] with a params struct as its
//! `Config`, whose `Default` is the reference's defaults:
//!
//! | name | type | reference |
//! |---|---|---|
//! | `sgd` | [`Sgd`] | `torch.optim.SGD` |
//! | `adam`, `adamw` | [`Adam`], [`AdamW`] | `torch.optim.Adam` / `AdamW` |
//! | `amsgrad` | [`AmsGrad`] | `torch.optim.Adam(amsgrad=True)` (`variant = "torch"`), or the AdaShift authors' TensorFlow `AMSGrad` (`"tf"`) |
//! | `adashift` | [`AdaShift`] | the authors' TensorFlow `optimizer_all.py` (`variant = "tf"`), or `pytorch-optimizer` 4.1.0 (`"pytorch-optimizer"`) |
//! | `adai`, `adaiw` | [`Adai`], [`AdaiW`] | official Adai |
//! | `adabelief` | [`AdaBelief`] | `adabelief-pytorch` 0.2.1 |
//! | `adamod` | [`AdaMod`] | `adamod` 0.0.3 |
//! | `adabound` | [`AdaBound`] | `adabound` 0.0.5 |
//! | `radam` | [`RAdam`] | official RAdam |
//! | `diffgrad` | [`DiffGrad`] | `torch-optimizer` 0.3.0 |
//!
//! A runner picks one by name with an [`OptimizerSpec`] and holds it as a [`BoxedOptimizer`]:
//!
//! ```
//! use candle::{Device, Tensor, Var};
//! use optimizers::OptimizerSpec;
//!
//! let x = Var::new(&[3.0f64, -2.0], &Device::Cpu)?;
//! let spec: OptimizerSpec = serde_json::from_str(r#"{"name": "adabelief", "lr": 0.1}"#)?;
//! let mut opt = spec.build(vec![x.clone()])?;
//! for _ in 0..200 {
//!     let loss = x.as_tensor().sqr()?.sum_all()?;
//!     opt.backward_step(&loss)?;
//! }
//! assert!(x.as_tensor().sqr()?.sum_all()?.to_scalar::<f64>()? < 1e-2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every update is written with candle tensor ops, so it runs for f32 and f64 on any device.
//!
//! # One core, one rule per optimizer
//!
//! There is one optimizer type, [`Optim<R>`](Optim), generic over a [`Rule`]; `Adam` is
//! `Optim<AdamRule>`, and so on. `Optim` implements candle's `Optimizer` (the params struct is
//! its `Config`), [`WithKernels`] and [`DynOptimizer`], and saves and restores its state
//! ([`OptimizerState`]), once for all. It also owns the walk over the variables: a variable
//! without a gradient in a step is not visited at all (no decay, no state change, no step
//! count), each variable counts its own steps, and its state is created on its first gradient.
//!
//! A rule ([`core`]) is what one optimizer does to one variable: its state, the scalars of one
//! step (bias corrections, bounds, rectification, computed once per variable and step), the
//! element-wise update, how its state is saved, and optionally a whole-model pre-pass (Adai's
//! mean over all parameters). The pieces that rules share are written once in [`parts`]:
//! Adam's moments with the AMSGrad maximum, bias corrections and Adam's step size
//! `lr sqrt(bc2) / bc1`, the weight-decay styles, RAdam's rectification. A variant that is
//! another optimizer with other defaults (AdamW, AdaiW) is a [`Variant`] of that
//! rule with its own params struct. AMSGrad is a rule of its own ([`amsgrad`]), for its
//! `variant`: it hands `variant = "torch"` to Adam's rule and computes `"tf"` itself.
//!
//! The element-wise update is what a fused kernel replaces: a rule may name the host state
//! vectors of one and run it ([`Rule::fused_slots`], [`Rule::fused_update`]), fed with the same
//! scalars. Every optimizer has one on the CPU (see [`fused`]), bit-identical to the
//! tensor path; [`Kernels::Auto`] takes it where it applies, [`Kernels::TensorOps`] never.
//!
//! [`hyper`] (hyperparameter values, the params structs' trait, range checks and spec errors)
//! uses nothing else of the crate, so the optimizer files, the [`registry`] and the [`spec`]s
//! depend on one another in one direction only: optimizer files -> `core`, `parts`, `hyper`;
//! `registry` -> optimizer files; `spec` -> `registry`.
//!
//! Adding an optimizer touches three places: its own file (its equations and reference, its
//! params struct, its rule; declared below), one entry of [`REGISTRY`], and the golden
//! generator `scripts/golden/generate.py`, whose trajectories `tests/golden.rs` replays; the
//! table-driven tests (convergence, untouched variables, state round trips) then cover it.
//!
//! # Saving and restoring
//!
//! ```
//! use candle::{Device, Var};
//! use optimizers::{OptimizerSpec, OptimizerState};
//!
//! let x = Var::new(&[3.0f64, -2.0], &Device::Cpu)?;
//! let spec: OptimizerSpec = serde_json::from_str(r#"{"name": "adam", "lr": 0.1}"#)?;
//! let mut opt = spec.build(vec![x.clone()])?;
//! opt.backward_step(&x.as_tensor().sqr()?.sum_all()?)?;
//!
//! let dir = std::env::temp_dir().join(format!("optbench-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let (tensors, meta) = (dir.join("optimizer.safetensors"), dir.join("optimizer.json"));
//! opt.state()?.save(&tensors, &meta)?;
//!
//! // Later: fresh variables with the saved values (the caller's job), a fresh optimizer.
//! let y = Var::from_tensor(x.as_tensor())?;
//! let mut resumed = spec.build(vec![y])?;
//! resumed.load_state(&OptimizerState::load(&tensors, &meta)?)?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bench;
pub mod core;
pub mod dynamic;
pub mod fused;
pub mod golden;
pub mod hyper;
pub mod parts;
pub mod registry;
pub mod spec;
pub mod state;

pub mod adabelief;
pub mod adabound;
pub mod adai;
pub mod adaiw;
pub mod adam;
pub mod adamod;
pub mod adamw;
pub mod adashift;
pub mod amsgrad;
pub mod diffgrad;
pub mod radam;
pub mod sgd;

pub use self::core::{Optim, Rule, Variant, VariantOf};
pub use adabelief::{AdaBelief, ParamsAdaBelief};
pub use adabound::{AdaBound, ParamsAdaBound};
pub use adai::{Adai, ParamsAdai};
pub use adaiw::{AdaiW, ParamsAdaiW};
pub use adam::{Adam, ParamsAdam};
pub use adamod::{AdaMod, ParamsAdaMod};
pub use adamw::{AdamW, ParamsAdamW};
pub use adashift::{AdaShift, AdaShiftVariant, ParamsAdaShift, Phi};
pub use amsgrad::{AmsGrad, AmsGradVariant, ParamsAmsGrad};
pub use diffgrad::{DiffGrad, ParamsDiffGrad};
pub use dynamic::{BoxedOptimizer, DynOptimizer};
pub use fused::{Kernels, WithKernels};
pub use radam::{ParamsRAdam, RAdam};
pub use registry::{OptimizerInfo, REGISTRY};
pub use sgd::{ParamsSgd, Sgd};
pub use spec::{HyperValue, Hyperparameters, OptimizerSpec, SpecError};
pub use state::OptimizerState;
