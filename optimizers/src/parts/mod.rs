//! The pieces that many optimizers share, written once (in the spirit of optax's combinators):
//! moment EMAs and Adam's moments with the AMSGrad maximum, bias correction and Adam's step
//! size, the weight-decay styles and RAdam's rectification. The walk over variables is the
//! core's ([`crate::core`]).

pub mod bias;
pub mod decay;
pub mod moments;
pub mod rectify;

pub use bias::{adam_step_size, bias_correction, RunningPower};
pub use decay::WeightDecay;
pub use moments::AdamMoments;
pub use rectify::{Rectification, RectifiedStep};
