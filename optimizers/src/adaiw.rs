//! AdaiW: [`Adai`] with decoupled weight decay (`decoupled = True` in the official Adai).
//!
//! ```text
//! p <- p (1 - lr wd);   v <- beta2 v + (1 - beta2) g²;   vbar = mean over all params of v / bc2
//! beta1 = clamp(1 - beta0 (v / bc2) / vbar, 0, 1 - eps);   beta1_prod <- beta1_prod beta1
//! m <- beta1 m + (1 - beta1) g;   p <- p - lr m / (1 - beta1_prod)
//! ```

use crate::adai::{Adai, ParamsAdai};
use crate::macros::variant;
use crate::registry::OptimizerInfo;

pub(crate) const INFO: OptimizerInfo = OptimizerInfo::of::<AdaiW>(
    "adaiw",
    "Adai with decoupled weight decay",
    "official adai_optim.Adai(decoupled=True)",
    &["lr"],
);

variant! {
    /// AdaiW: [`Adai`] with `decoupled = true`.
    AdaiW(Adai),
    /// Hyperparameters of [`AdaiW`]: those of [`ParamsAdai`] with `decoupled = true`.
    ParamsAdaiW(ParamsAdai) = ParamsAdai { decoupled: true, ..ParamsAdai::default() }
}
