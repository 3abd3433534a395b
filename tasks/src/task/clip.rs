//! Gradient clipping by global norm, in front of an optimizer, as PyTorch's
//! `torch.nn.utils.clip_grad_norm_` (which AWD-LSTM and fairseq call before every step):
//!
//! ```text
//! total = sqrt(sum over the optimizer's variables of ||g||²)
//! coef  = max_norm / (total + 1e-6);   if coef < 1: every g <- coef g
//! ```
//! The runner puts it in front of every optimizer of a task whose config (or default) sets
//! `clip_norm`; the task does not see it.

use candle::backprop::GradStore;
use candle::{DType, Result, Tensor, Var};
use optimizers::{BoxedOptimizer, DynOptimizer, OptimizerState};

/// An optimizer whose gradients are clipped to a global norm first.
pub struct Clipped {
    inner: BoxedOptimizer,
    vars: Vec<Var>,
    max_norm: f64,
}

impl Clipped {
    pub fn new(inner: BoxedOptimizer, vars: Vec<Var>, max_norm: f64) -> Self {
        Self { inner, vars, max_norm }
    }
}

/// The global norm of the gradients in `grads` of `vars`, in f64.
pub fn global_norm(vars: &[Var], grads: &GradStore) -> Result<f64> {
    let mut sum = 0.0;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            sum += g.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()?;
        }
    }
    Ok(sum.sqrt())
}

impl DynOptimizer for Clipped {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let coef = self.max_norm / (global_norm(&self.vars, grads)? + 1e-6);
        if coef >= 1.0 {
            return self.inner.step(grads);
        }
        let mut clipped = GradStore::default();
        for var in &self.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                let scaled: Tensor = g.affine(coef, 0.0)?;
                clipped.insert(var.as_tensor(), scaled);
            }
        }
        self.inner.step(&clipped)
    }

    fn learning_rate(&self) -> f64 {
        self.inner.learning_rate()
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.inner.set_learning_rate(lr)
    }

    fn state(&self) -> Result<OptimizerState> {
        self.inner.state()
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.inner.load_state(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;
    use optimizers::OptimizerSpec;

    fn sgd_step(max_norm: f64, grad: [f64; 2]) -> Vec<f64> {
        let x = Var::new(&[1.0f64, 1.0], &Device::Cpu).unwrap();
        let inner = OptimizerSpec::new("sgd").with("lr", 1.0).build(vec![x.clone()]).unwrap();
        let mut opt = Clipped::new(inner, vec![x.clone()], max_norm);
        let mut grads = GradStore::default();
        grads.insert(x.as_tensor(), Tensor::new(&grad, &Device::Cpu).unwrap());
        opt.step(&grads).unwrap();
        x.as_tensor().to_vec1::<f64>().unwrap()
    }

    #[test]
    fn clips_to_the_global_norm_as_pytorch() {
        // ||(3, 4)|| = 5 > 1: the gradient becomes (3, 4) / (5 + 1e-6).
        let x = sgd_step(1.0, [3.0, 4.0]);
        let coef = 1.0 / (5.0 + 1e-6);
        assert_eq!(x, vec![1.0 - 3.0 * coef, 1.0 - 4.0 * coef]);
        // Below the bound nothing changes.
        assert_eq!(sgd_step(10.0, [3.0, 4.0]), vec![-2.0, -3.0]);
    }
}
