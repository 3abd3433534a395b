//! AdaiW: [`Adai`](crate::Adai) with decoupled weight decay (`decoupled = True` in the official Adai).
//!
//! ```text
//! p <- p (1 - lr wd);   v <- beta2 v + (1 - beta2) g²;   vbar = mean over all params of v / bc2
//! beta1 = clamp(1 - beta0 (v / bc2) / vbar, 0, 1 - eps);   beta1_prod <- beta1_prod beta1
//! m <- beta1 m + (1 - beta1) g;   p <- p - lr m / (1 - beta1_prod)
//! ```
//! Fused CPU kernel: Adai's, `fused::adai` (both passes).

use serde::{Deserialize, Serialize};

use crate::adai::{AdaiRule, ParamsAdai};
use crate::core::{Optim, Variant, VariantOf};
use crate::hyper::{Hyperparameters, Invalid};

/// Hyperparameters of [`AdaiW`]: those of [`ParamsAdai`] with `decoupled = true`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParamsAdaiW(pub ParamsAdai);

impl Default for ParamsAdaiW {
    fn default() -> Self {
        Self(ParamsAdai { decoupled: true, ..ParamsAdai::default() })
    }
}

impl Hyperparameters for ParamsAdaiW {
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

impl AsRef<ParamsAdai> for ParamsAdaiW {
    fn as_ref(&self) -> &ParamsAdai {
        &self.0
    }
}

impl VariantOf<AdaiRule> for ParamsAdaiW {
    const NAME: &'static str = "adaiw";
}

/// The rule of [`AdaiW`]: [`AdaiRule`] with other defaults.
pub type AdaiWRule = Variant<AdaiRule, ParamsAdaiW>;

/// AdaiW: [`Adai`](crate::Adai) with `decoupled = true`.
pub type AdaiW = Optim<AdaiWRule>;
