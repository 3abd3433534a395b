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
//! | `adam`, `adamw`, `amsgrad` | [`Adam`], [`AdamW`], [`AmsGrad`] | `torch.optim.Adam` / `AdamW` |
//! | `adashift` | [`AdaShift`] | `pytorch-optimizer` 4.1.0 |
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
//! Each optimizer keeps the per-step scalars (bias corrections, rectification, bounds) apart
//! from the element-wise update, so that a fused in-place kernel can replace the latter: see
//! [`fused`] (Adam, AdamW and AMSGrad have one on the CPU, bit-identical to the tensor path).

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
pub use adashift::{AdaShift, ParamsAdaShift, Phi};
pub use amsgrad::{AmsGrad, ParamsAmsGrad};
pub use diffgrad::{DiffGrad, ParamsDiffGrad};
pub use dynamic::{BoxedOptimizer, DynOptimizer};
pub use fused::{Kernels, WithKernels};
pub use radam::{ParamsRAdam, RAdam};
pub use registry::{OptimizerInfo, REGISTRY};
pub use sgd::{ParamsSgd, Sgd};
pub use spec::{HyperValue, Hyperparameters, OptimizerSpec, SpecError};
pub use state::OptimizerState;
