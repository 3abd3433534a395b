//! AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019): [`Adam`](crate::Adam)
//! with decoupled weight decay, default `weight_decay = 1e-2`. Matches `torch.optim.AdamW`.
//!
//! ```text
//! p <- p (1 - lr wd)
//! m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g²
//! p <- p - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
//! ```
//! Fused CPU kernel: Adam's, `fused::adam`.

use serde::{Deserialize, Serialize};

use crate::adam::{AdamRule, ParamsAdam};
use crate::core::{Optim, Variant, VariantOf};
use crate::hyper::{Hyperparameters, Invalid};

/// Hyperparameters of [`AdamW`]: those of [`ParamsAdam`] with `torch.optim.AdamW`'s defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParamsAdamW(pub ParamsAdam);

impl Default for ParamsAdamW {
    fn default() -> Self {
        Self(ParamsAdam { decoupled: true, weight_decay: 1e-2, ..ParamsAdam::default() })
    }
}

impl Hyperparameters for ParamsAdamW {
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

impl AsRef<ParamsAdam> for ParamsAdamW {
    fn as_ref(&self) -> &ParamsAdam {
        &self.0
    }
}

impl VariantOf<AdamRule> for ParamsAdamW {
    const NAME: &'static str = "adamw";
}

/// The rule of [`AdamW`]: [`AdamRule`] with other defaults.
pub type AdamWRule = Variant<AdamRule, ParamsAdamW>;

/// AdamW: [`Adam`](crate::Adam) with `decoupled = true`, `weight_decay = 1e-2`.
pub type AdamW = Optim<AdamWRule>;
