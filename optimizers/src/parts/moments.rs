//! Exponential moving averages of gradients and their squares, and the running maximum of
//! AMSGrad-style methods. Tensor-op versions: each returns a new tensor.

use candle::{Result, Tensor};

/// `beta * avg + (1 - beta) * x`.
pub fn ema(avg: &Tensor, x: &Tensor, beta: f64) -> Result<Tensor> {
    avg.affine(beta, 0.0)? + x.affine(1.0 - beta, 0.0)?
}

/// `beta * avg + (1 - beta) * x²`.
pub fn ema_sq(avg: &Tensor, x: &Tensor, beta: f64) -> Result<Tensor> {
    avg.affine(beta, 0.0)? + x.sqr()?.affine(1.0 - beta, 0.0)?
}

/// Element-wise `max(a, b)`: the AMSGrad / AMSBound running maximum.
pub fn running_max(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.maximum(b)
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
