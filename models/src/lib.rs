//! Models of the optbench suite, each created with PyTorch's default initialisation from the
//! suite's seeded random generator (see [`init`]).
//!
//! - [`mlp`]: MLPs and logistic regression for MNIST-sized inputs (AdaShift's MNIST setups).

pub mod init;
pub mod mlp;
pub mod rng;

pub use init::{ParamBuilder, Params};
pub use rng::SeededRng;
