//! AMSGrad (Reddi et al., "On the Convergence of Adam and Beyond", ICLR 2018): [`Adam`](crate::Adam)
//! normalised by the running maximum of its second moment. Matches
//! `torch.optim.Adam(amsgrad=True)`.
//!
//! ```text
//! m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g²;   vmax <- max(vmax, v)
//! p <- p - (lr / bc1) m / (sqrt(vmax) / sqrt(bc2) + eps)
//! ```

use serde::{Deserialize, Serialize};

use crate::adam::{AdamRule, ParamsAdam};
use crate::core::{Optim, Variant, VariantOf};
use crate::hyper::{Hyperparameters, Invalid};

/// Hyperparameters of [`AmsGrad`]: those of [`ParamsAdam`] with `amsgrad = true`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParamsAmsGrad(pub ParamsAdam);

impl Default for ParamsAmsGrad {
    fn default() -> Self {
        Self(ParamsAdam { amsgrad: true, ..ParamsAdam::default() })
    }
}

impl Hyperparameters for ParamsAmsGrad {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        self.0.validate()
    }

    fn lr(&self) -> f64 {
        self.0.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.0.lr = lr;
    }
}

impl AsRef<ParamsAdam> for ParamsAmsGrad {
    fn as_ref(&self) -> &ParamsAdam {
        &self.0
    }
}

impl VariantOf<AdamRule> for ParamsAmsGrad {
    const NAME: &'static str = "amsgrad";
}

/// The rule of [`AmsGrad`]: [`AdamRule`] with other defaults.
pub type AmsGradRule = Variant<AdamRule, ParamsAmsGrad>;

/// AMSGrad: [`Adam`](crate::Adam) with `amsgrad = true`.
pub type AmsGrad = Optim<AmsGradRule>;
