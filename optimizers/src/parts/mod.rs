//! The pieces that many optimizers share, written once (in the spirit of optax's combinators):
//! moment EMAs, bias correction, the weight-decay styles, RAdam's rectification, and the walk
//! over variables that skips the ones without a gradient.

pub mod bias;
pub mod decay;
pub mod moments;
pub mod rectify;
pub mod slots;

pub use bias::bias_correction;
pub use decay::WeightDecay;
pub use rectify::{Rectification, RectifiedStep};
pub(crate) use slots::{value, SlotStep, Slots};
