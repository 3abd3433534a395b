//! AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019): [`Adam`]
//! with decoupled weight decay, default `weight_decay = 1e-2`. Matches `torch.optim.AdamW`.
//!
//! ```text
//! p <- p (1 - lr wd)
//! m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g²
//! p <- p - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
//! ```

use crate::adam::{Adam, ParamsAdam};
use crate::macros::variant;
use crate::registry::OptimizerInfo;

pub(crate) const INFO: OptimizerInfo =
    OptimizerInfo::of::<AdamW>("adamw", "Adam with decoupled weight decay", "torch.optim.AdamW", &[]);

variant! {
    /// AdamW: [`Adam`] with `decoupled = true`, `weight_decay = 1e-2`.
    AdamW(Adam),
    /// Hyperparameters of [`AdamW`]: those of [`ParamsAdam`] with `torch.optim.AdamW`'s defaults.
    ParamsAdamW(ParamsAdam) = ParamsAdam { decoupled: true, weight_decay: 1e-2, ..ParamsAdam::default() }
}
