//! The three weight-decay styles of the references.
//!
//! ```text
//! L2 (coupled):          g <- g + wd * p                 (SGD, Adam, AdaBound, DiffGrad, Adai)
//! decoupled (AdamW):     p <- p * (1 - lr * wd)          (AdamW, AdaBelief, AdaMod, RAdam, AdaiW)
//! fixed (AdaBelief):     p <- p * (1 - wd)               (independent of the learning rate)
//! ```
//! Decoupled decay follows Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (2019).

use candle::{Result, Tensor};

/// How `weight_decay` enters an update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightDecay {
    /// No decay.
    None,
    /// Coupled L2 penalty: `wd * p` is added to the gradient.
    L2(f64),
    /// Decoupled: the parameter shrinks by `lr * wd` before the update.
    Decoupled(f64),
    /// Decoupled with a fixed factor: the parameter shrinks by `wd`, whatever the learning rate.
    Fixed(f64),
}

impl WeightDecay {
    /// The usual choice between L2 and decoupled decay; a zero coefficient means no decay.
    pub fn new(weight_decay: f64, decoupled: bool) -> Self {
        if weight_decay == 0.0 {
            Self::None
        } else if decoupled {
            Self::Decoupled(weight_decay)
        } else {
            Self::L2(weight_decay)
        }
    }

    /// Whether the decay shrinks the parameter itself (decoupled styles), so that it has to be
    /// written back even when an optimizer skips its update.
    pub fn shrinks_param(self) -> bool {
        matches!(self, Self::Decoupled(_) | Self::Fixed(_))
    }

    /// The factor a decoupled style multiplies the parameter by at learning rate `lr`
    /// (`None` for the styles that leave the parameter alone).
    pub fn shrink_factor(self, lr: f64) -> Option<f64> {
        match self {
            Self::Decoupled(wd) => Some(1.0 - lr * wd),
            Self::Fixed(wd) => Some(1.0 - wd),
            Self::None | Self::L2(_) => None,
        }
    }

    /// Applies the decay to a parameter and its gradient: returns `(param, grad)` to use in the
    /// rest of the update. Only one of the two differs from its input.
    pub fn apply(self, param: &Tensor, grad: &Tensor, lr: f64) -> Result<(Tensor, Tensor)> {
        Ok((self.param(param, lr)?, self.grad(param, grad)?))
    }

    /// The parameter after the decay's shrinking (decoupled styles), at learning rate `lr`.
    pub fn param(self, param: &Tensor, lr: f64) -> Result<Tensor> {
        match self.shrink_factor(lr) {
            Some(factor) => param.affine(factor, 0.0),
            None => Ok(param.clone()),
        }
    }

    /// The gradient with the decay's L2 term.
    pub fn grad(self, param: &Tensor, grad: &Tensor) -> Result<Tensor> {
        match self {
            Self::L2(wd) => grad + param.affine(wd, 0.0)?,
            _ => Ok(grad.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    #[test]
    fn styles() -> Result<()> {
        let p = Tensor::new(&[2.0f64], &Device::Cpu)?;
        let g = Tensor::new(&[1.0f64], &Device::Cpu)?;
        let out = |wd: WeightDecay| -> Result<(f64, f64)> {
            let (p, g) = wd.apply(&p, &g, 0.5)?;
            Ok((p.to_vec1::<f64>()?[0], g.to_vec1::<f64>()?[0]))
        };
        assert_eq!(out(WeightDecay::None)?, (2.0, 1.0));
        assert_eq!(out(WeightDecay::L2(0.1))?, (2.0, 1.2));
        assert_eq!(out(WeightDecay::Decoupled(0.1))?, (2.0 * 0.95, 1.0));
        assert_eq!(out(WeightDecay::Fixed(0.1))?, (2.0 * 0.9, 1.0));
        assert_eq!(WeightDecay::new(0.0, true), WeightDecay::None);
        Ok(())
    }
}
