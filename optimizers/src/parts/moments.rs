//! Exponential moving averages of gradients and their squares, and the running maximum of
//! AMSGrad-style methods. Tensor-op versions: each returns a new tensor.
//!
//! [`AdamMoments`] is the state they make together, shared by Adam, AdaBound, AdaMod, RAdam and
//! diffGrad:
//!
//! ```text
//! m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g²;   amsgrad: vmax <- max(vmax, v)
//! ```

use candle::{DType, Result, Tensor, Var};

use crate::state::{SlotReader, SlotWriter};

/// `beta * avg + (1 - beta) * x`.
pub fn ema(avg: &Tensor, x: &Tensor, beta: f64) -> Result<Tensor> {
    avg.affine(beta, 0.0)? + x.affine(1.0 - beta, 0.0)?
}

/// `beta * avg + (1 - beta) * x²`.
pub fn ema_sq(avg: &Tensor, x: &Tensor, beta: f64) -> Result<Tensor> {
    avg.affine(beta, 0.0)? + x.sqr()?.affine(1.0 - beta, 0.0)?
}

/// Elements per block of [`blocked_sum`], a multiple of the 32 running sums of candle's f32
/// `sum_all`.
pub const SUM_BLOCK: usize = 1 << 16;

/// The sum of all elements of `x` (f32 or f64), as an f64 scalar, in a fixed order that threads
/// can share: each block of [`SUM_BLOCK`] elements (the last one shorter) is summed by candle's
/// `sum` over it in `x`'s type, then the blocks' sums are added in f64, in order. A tensor of at
/// most one block is candle's `sum_all`. Adai's global mean is this sum, so that its fused kernel
/// (`fused::adai`) sums the blocks in parallel and still gives the same bits.
pub fn blocked_sum(x: &Tensor) -> Result<Tensor> {
    let x = x.flatten_all()?;
    let n = x.elem_count();
    let full = n / SUM_BLOCK;
    let rest = n - full * SUM_BLOCK;
    if full == 0 {
        return x.sum_all()?.to_dtype(DType::F64);
    }
    let mut sums = vec![x.narrow(0, 0, full * SUM_BLOCK)?.reshape((full, SUM_BLOCK))?.sum(1)?.to_dtype(DType::F64)?];
    if rest > 0 {
        sums.push(x.narrow(0, full * SUM_BLOCK, rest)?.sum_all()?.to_dtype(DType::F64)?.reshape(1)?);
    }
    Tensor::cat(&sums, 0)?.sum_all()
}

/// Element-wise `max(a, b)`: the AMSGrad / AMSBound running maximum.
pub fn running_max(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.maximum(b)
}

/// Adam's first and second moments, with the AMSGrad running maximum of the second when it is
/// on. Saved as the slots `m`, `v` and `vmax`.
#[derive(Debug)]
pub struct AdamMoments {
    pub m: Tensor,
    pub v: Tensor,
    pub vmax: Option<Tensor>,
}

impl AdamMoments {
    /// Zeros for `var`, with the maximum if `amsgrad`.
    pub fn zeros(var: &Var, amsgrad: bool) -> Result<Self> {
        let vmax = if amsgrad { Some(var.zeros_like()?) } else { None };
        Ok(Self { m: var.zeros_like()?, v: var.zeros_like()?, vmax })
    }

    /// Updates the moments from `grad`; returns the second moment to normalise by (the
    /// maximum with AMSGrad).
    pub fn update(&mut self, grad: &Tensor, beta1: f64, beta2: f64) -> Result<&Tensor> {
        self.m = ema(&self.m, grad, beta1)?;
        self.v = ema_sq(&self.v, grad, beta2)?;
        Ok(match &mut self.vmax {
            Some(vmax) => {
                *vmax = running_max(vmax, &self.v)?;
                vmax
            }
            None => &self.v,
        })
    }

    pub fn save(&self, out: &mut SlotWriter<'_>) -> Result<()> {
        out.put("m", &self.m)?;
        out.put("v", &self.v)?;
        match &self.vmax {
            Some(vmax) => out.put("vmax", vmax),
            None => Ok(()),
        }
    }

    pub fn load(input: &mut SlotReader<'_>, amsgrad: bool) -> Result<Self> {
        let vmax = if amsgrad { Some(input.take_like_var("vmax")?) } else { None };
        Ok(Self { m: input.take_like_var("m")?, v: input.take_like_var("v")?, vmax })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    #[test]
    fn ema_and_ema_sq() -> Result<()> {
        let avg = Tensor::new(&[1.0f64, -2.0], &Device::Cpu)?;
        let x = Tensor::new(&[3.0f64, 4.0], &Device::Cpu)?;
        assert_eq!(ema(&avg, &x, 0.75)?.to_vec1::<f64>()?, [1.5, -0.5]);
        assert_eq!(ema_sq(&avg, &x, 0.75)?.to_vec1::<f64>()?, [3.0, 2.5]);
        assert_eq!(running_max(&avg, &x)?.to_vec1::<f64>()?, [3.0, 4.0]);
        Ok(())
    }
}
