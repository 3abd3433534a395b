//! AMSGrad (Reddi et al., "On the Convergence of Adam and Beyond", ICLR 2018): [`Adam`]
//! normalised by the running maximum of its second moment. Matches
//! `torch.optim.Adam(amsgrad=True)`.
//!
//! ```text
//! m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g²;   vmax <- max(vmax, v)
//! p <- p - (lr / bc1) m / (sqrt(vmax) / sqrt(bc2) + eps)
//! ```

use crate::adam::{Adam, ParamsAdam};
use crate::macros::variant;
use crate::registry::OptimizerInfo;

pub(crate) const INFO: OptimizerInfo = OptimizerInfo::of::<AmsGrad>(
    "amsgrad",
    "Adam normalised by the running maximum of the second moment",
    "torch.optim.Adam(amsgrad=True)",
    &[],
);

variant! {
    /// AMSGrad: [`Adam`] with `amsgrad = true`.
    AmsGrad(Adam),
    /// Hyperparameters of [`AmsGrad`]: those of [`ParamsAdam`] with `amsgrad = true`.
    ParamsAmsGrad(ParamsAdam) = ParamsAdam { amsgrad: true, ..ParamsAdam::default() }
}
