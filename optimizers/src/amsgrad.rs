//! AMSGrad (Reddi et al., "On the Convergence of Adam and Beyond", ICLR 2018): Adam normalised
//! by a running maximum of its second moment, in two variants.
//!
//! `variant = "torch"` (the default) is [`Adam`](crate::Adam) with `amsgrad = true` and matches
//! `torch.optim.Adam(amsgrad=True)`: the maximum is kept apart from the EMA.
//!
//! ```text
//! m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g²;   vmax <- max(vmax, v)
//! p <- p - (lr / bc1) m / (sqrt(vmax) / sqrt(bc2) + eps)                bc_i = 1 - beta_i^t
//! ```
//!
//! `variant = "tf"` matches the `AMSGrad` of the AdaShift authors' TensorFlow code
//! (`author_code_base/optimizer_all.py` of `mknbv/adashift`, lines 161-231), the baseline of
//! every AdaShift experiment: the maximum is fed back into the recursion, and everything is
//! computed in the parameter's precision (TF casts the hyperparameters to the variable's dtype
//! and keeps `beta1^t`, `beta2^t` as running products of that dtype):
//!
//! ```text
//! m <- beta1 m + g (1 - beta1)
//! v <- max(beta2 v + g² (1 - beta2), v)
//! p <- p - (lr (m / bc1)) / (sqrt(v / bc2) + eps)     bc_i = 1 - beta_i^t (running products)
//! ```
//! It has no weight decay (`weight_decay` must be 0, `decoupled` and `amsgrad` keep their
//! defaults). One deviation, required by the suite's contract: TF advances one pair of beta
//! powers per `apply_gradients`, this implementation counts the steps of each variable, so a
//! variable that had no gradient in some steps is not affected by them (identical otherwise).
//! Both variants have the fused CPU kernel of `fused::adam`.

use candle::{Result, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::adam::{AdamRule, ParamsAdam};
use crate::core::{value, Optim, Rule, Step};
use crate::fused::adam::{AdamStep, TfAmsGradStep};
use crate::fused::{self, HostVecs};
use crate::hyper::{Hyperparameters, Invalid};
use crate::parts::{AdamMoments, RunningPower};
use crate::state::{SlotReader, SlotWriter};

/// Which AMSGrad [`AmsGrad`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AmsGradVariant {
    /// `torch.optim.Adam(amsgrad=True)`: the maximum apart from the EMA.
    #[serde(rename = "torch")]
    Torch,
    /// The AdaShift authors' TensorFlow `AMSGrad`: the maximum fed back into the EMA.
    #[serde(rename = "tf")]
    Tf,
}

/// Hyperparameters of [`AmsGrad`]: those of [`ParamsAdam`] with `amsgrad = true`, and the
/// variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamsAmsGrad {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
    pub amsgrad: bool,
    pub variant: AmsGradVariant,
}

impl Default for ParamsAmsGrad {
    fn default() -> Self {
        Self::from_adam(ParamsAdam { amsgrad: true, ..ParamsAdam::default() }, AmsGradVariant::Torch)
    }
}

impl ParamsAmsGrad {
    /// `adam`'s hyperparameters with a variant.
    pub fn from_adam(p: ParamsAdam, variant: AmsGradVariant) -> Self {
        let ParamsAdam { lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad } = p;
        Self { lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, variant }
    }

    /// The same as [`Adam`](crate::Adam)'s hyperparameters (what `variant = "torch"` runs).
    pub fn adam(&self) -> ParamsAdam {
        let Self { lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, .. } = *self;
        ParamsAdam { lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad }
    }
}

impl Hyperparameters for ParamsAmsGrad {
    fn validate(&self) -> std::result::Result<(), Invalid> {
        self.adam().validate()?;
        if self.variant == AmsGradVariant::Tf {
            let invalid = |key, value: String, reason| Err(Invalid { key, value, reason });
            if self.weight_decay != 0.0 {
                return invalid(
                    "weight_decay",
                    self.weight_decay.to_string(),
                    "must be 0 with variant = \"tf\": the authors' TensorFlow AMSGrad has no weight decay",
                );
            }
            if self.decoupled {
                return invalid(
                    "decoupled",
                    "true".to_string(),
                    "must be false with variant = \"tf\": the authors' TensorFlow AMSGrad has no weight decay",
                );
            }
            if !self.amsgrad {
                return invalid(
                    "amsgrad",
                    "false".to_string(),
                    "must be true with variant = \"tf\": the authors' TensorFlow AMSGrad always takes the maximum",
                );
            }
        }
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// AMSGrad, see the module documentation.
pub type AmsGrad = Optim<AmsGradRule>;

/// The rule of [`AmsGrad`]: [`AdamRule`] for `variant = "torch"`, TF's AMSGrad for `"tf"`.
#[derive(Debug)]
pub struct AmsGradRule {
    /// TF's `beta1_power` and `beta2_power` (used by `variant = "tf"`).
    powers: (RunningPower, RunningPower),
}

/// The scalars of one step of either variant.
#[derive(Clone, Copy, Debug)]
pub enum AmsGradStep {
    Torch(AdamStep),
    Tf(TfAmsGradStep),
}

/// The slots of the TF variant's state: `v` holds the maximum.
const TF_SLOTS: [&str; 2] = ["m", "v"];

impl Rule for AmsGradRule {
    const NAME: &'static str = "amsgrad";
    type Params = ParamsAmsGrad;
    type State = AdamMoments;
    type Scalars = AmsGradStep;
    type Global = ();

    fn new(p: &ParamsAmsGrad) -> Self {
        Self { powers: (RunningPower::new(p.beta1), RunningPower::new(p.beta2)) }
    }

    fn init(&self, p: &ParamsAmsGrad, var: &Var) -> Result<AdamMoments> {
        match p.variant {
            AmsGradVariant::Torch => AdamRule.init(&p.adam(), var),
            AmsGradVariant::Tf => AdamMoments::zeros(var, false),
        }
    }

    fn scalars(&self, p: &ParamsAmsGrad, t: u64) -> AmsGradStep {
        match p.variant {
            AmsGradVariant::Torch => AmsGradStep::Torch(AdamRule.scalars(&p.adam(), t)),
            AmsGradVariant::Tf => AmsGradStep::Tf(TfAmsGradStep {
                lr: p.lr,
                beta1: p.beta1,
                beta2: p.beta2,
                eps: p.eps,
                beta1_power: self.powers.0.at(t),
                beta2_power: self.powers.1.at(t),
            }),
        }
    }

    fn update(&self, p: &ParamsAmsGrad, step: Step<'_, AdamMoments, AmsGradStep>, _: &()) -> Result<()> {
        let Step { t, scalars, var, grad, state } = step;
        let s = match scalars {
            AmsGradStep::Torch(scalars) => {
                return AdamRule.update(&p.adam(), Step { t, scalars, var, grad, state }, &())
            }
            AmsGradStep::Tf(s) => s,
        };
        let dtype = var.dtype();
        let [beta1, one_minus_beta1, beta2, one_minus_beta2, bc1, bc2, lr, eps] = s.consts_for(dtype);
        let scalar = |x: f64| Tensor::new(x, var.device())?.to_dtype(dtype);
        state.m = (state.m.affine(beta1, 0.0)? + grad.affine(one_minus_beta1, 0.0)?)?;
        let candidate = (state.v.affine(beta2, 0.0)? + grad.sqr()?.affine(one_minus_beta2, 0.0)?)?;
        state.v = candidate.maximum(&state.v)?;
        let numerator = state.m.broadcast_div(&scalar(bc1)?)?.affine(lr, 0.0)?;
        let denominator = state.v.broadcast_div(&scalar(bc2)?)?.sqrt()?.affine(1.0, eps)?;
        var.set(&(value(var) - (numerator / denominator)?)?)
    }

    fn save(&self, _: &ParamsAmsGrad, state: &AdamMoments, out: &mut SlotWriter<'_>) -> Result<()> {
        state.save(out)
    }

    fn load(&self, p: &ParamsAmsGrad, _: &Var, _: u64, input: &mut SlotReader<'_>) -> Result<AdamMoments> {
        AdamMoments::load(input, p.variant == AmsGradVariant::Torch && p.amsgrad)
    }

    fn fused_slots(&self, p: &ParamsAmsGrad) -> Option<&'static [&'static str]> {
        match p.variant {
            AmsGradVariant::Torch => AdamRule.fused_slots(&p.adam()),
            AmsGradVariant::Tf => Some(&TF_SLOTS),
        }
    }

    fn fused_update(
        &self,
        p: &ParamsAmsGrad,
        s: &AmsGradStep,
        var: &Var,
        grad: &Tensor,
        host: &mut HostVecs,
    ) -> Result<()> {
        match s {
            AmsGradStep::Torch(s) => AdamRule.fused_update(&p.adam(), s, var, grad, host),
            AmsGradStep::Tf(s) => fused::apply("amsgrad-tf", var, grad, s, host),
        }
    }
}
