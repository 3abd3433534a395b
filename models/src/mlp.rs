//! Multi-layer perceptrons for MNIST-sized inputs, as in AdaShift's MNIST experiments (Zhou et
//! al., ICLR 2019; `author_code_base/MulitiLayer_MNIST`): inputs flattened, `hidden_layers`
//! fully connected layers of `hidden` units with an activation, then a linear output layer.
//! With no hidden layer it is multinomial logistic regression (`TF_MNIST_Logistic`).
//! The authors' MLP has no activation (a deep linear network); ReLU is the usual choice.
//!
//! Initialisation ([`Init`]): PyTorch's `nn.Linear` default (uniform in `±1/sqrt(inputs)`), or
//! normal as the authors' TensorFlow files draw it: every weight and bias `N(0, 1)` in
//! `neural_network_raw.py` (`tf.random_normal`, lines 94-102), weights `N(0, 0.01²)` and zero
//! biases in `mnist_logistic.py` (lines 72-73).
//!
//! Parameter count: `(inputs + 1) hidden + (layers - 1)(hidden + 1) hidden + (hidden + 1) classes`;
//! for 784-256-256-10 that is 269,322 (`sum(p.numel() for p in nn.Sequential(nn.Linear(784, 256),
//! nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)).parameters())`).

use candle::{Module, ModuleT, Result, Tensor};
use candle_nn::Linear;

use crate::init::{linear as init_linear, ParamBuilder};
use crate::linear::linear;

/// The activation between layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Tanh,
    Sigmoid,
    /// None: a deep linear network (AdaShift's authors' MLP).
    None,
}

impl Activation {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "relu" => Some(Self::Relu),
            "tanh" => Some(Self::Tanh),
            "sigmoid" => Some(Self::Sigmoid),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    fn apply(self, x: Tensor) -> Result<Tensor> {
        match self {
            Self::Relu => x.relu(),
            Self::Tanh => x.tanh(),
            Self::Sigmoid => candle_nn::ops::sigmoid(&x),
            Self::None => Ok(x),
        }
    }
}

/// How the layers are initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// `nn.Linear`'s default: weights and biases uniform in `±1/sqrt(inputs)`.
    PyTorch,
    /// Weights `N(0, weight_std²)`; biases `N(0, bias_std²)`, or zeros when `bias_std` is 0.
    Normal { weight_std: f64, bias_std: f64 },
}

impl Init {
    /// The authors' MLP (`neural_network_raw.py`): every weight and bias `N(0, 1)`.
    pub const AUTHORS_MLP: Self = Self::Normal { weight_std: 1.0, bias_std: 1.0 };
    /// The authors' logistic regression (`mnist_logistic.py`): weights `N(0, 0.01²)`, biases 0.
    pub const AUTHORS_LOGREG: Self = Self::Normal { weight_std: 0.01, bias_std: 0.0 };

    fn linear(self, b: &ParamBuilder, inputs: usize, outputs: usize) -> Result<Linear> {
        match self {
            Self::PyTorch => init_linear(b, inputs, outputs, true),
            Self::Normal { weight_std, bias_std } => {
                let weight = b.normal("weight", (outputs, inputs), weight_std)?;
                let bias = if bias_std > 0.0 {
                    b.normal("bias", outputs, bias_std)?
                } else {
                    b.constant("bias", outputs, 0.0)?
                };
                Ok(Linear::new(weight, Some(bias)))
            }
        }
    }
}

/// An MLP classifier.
#[derive(Clone, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    activation: Activation,
}

impl Mlp {
    /// `sizes` = [inputs, hidden..., classes]; layers are named `fc1`, `fc2`, ...; PyTorch's
    /// initialisation.
    pub fn new(b: &ParamBuilder, sizes: &[usize], activation: Activation) -> Result<Self> {
        Self::with_init(b, sizes, activation, Init::PyTorch)
    }

    /// [`new`](Self::new) with the chosen initialisation.
    pub fn with_init(b: &ParamBuilder, sizes: &[usize], activation: Activation, init: Init) -> Result<Self> {
        if sizes.len() < 2 {
            candle::bail!("an MLP needs an input and an output size, got {sizes:?}")
        }
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| init.linear(&b.pp(format!("fc{}", i + 1)), w[0], w[1]))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers, activation })
    }
}

impl ModuleT for Mlp {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        let mut x = xs.flatten_from(1)?;
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let activate = i < last;
            x = match layer.bias() {
                // The fused layer ([`crate::linear`]) applies ReLU itself.
                Some(bias) => {
                    let relu = activate && self.activation == Activation::Relu;
                    let y = linear(&x, layer.weight(), bias, relu)?;
                    if activate && !relu {
                        self.activation.apply(y)?
                    } else {
                        y
                    }
                }
                None if activate => self.activation.apply(layer.forward(&x)?)?,
                None => layer.forward(&x)?,
            };
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Params;
    use crate::rng::SeededRng;
    use candle::{DType, Device};

    #[test]
    fn adashift_mlp_has_pytorchs_parameter_count_and_every_gradient() -> Result<()> {
        // PyTorch: sum(p.numel() for p in nn.Sequential(nn.Linear(784, 256), nn.ReLU(),
        //     nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)).parameters()) == 269322
        let params = Params::new(SeededRng::new(1), DType::F32, &Device::Cpu);
        let mlp = Mlp::new(&params.root(), &[784, 256, 256, 10], Activation::Relu)?;
        assert_eq!(params.count(), 269_322);
        let x =
            Tensor::new(&SeededRng::new(2).normal_vec(4 * 784, 0.0, 1.0)[..], &Device::Cpu)?.reshape((4, 1, 28, 28))?;
        let loss = mlp.forward_t(&x, true)?.sqr()?.sum_all()?;
        let grads = loss.backward()?;
        for (name, var) in params.named_trainable() {
            let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}"));
            assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0, "zero gradient for {name}");
        }
        // Logistic regression: 784 * 10 + 10.
        let params = Params::new(SeededRng::new(1), DType::F32, &Device::Cpu);
        Mlp::new(&params.root(), &[784, 10], Activation::None)?;
        assert_eq!(params.count(), 7_850);
        Ok(())
    }

    #[test]
    fn fused_layers_give_candles_outputs_and_gradients() -> Result<()> {
        // The same network through candle's `Linear` and activation ops: the reference.
        for activation in [Activation::Relu, Activation::Tanh] {
            let params = Params::new(SeededRng::new(4), DType::F64, &Device::Cpu);
            let mlp = Mlp::new(&params.root(), &[784, 256, 256, 10], activation)?;
            let x = Tensor::new(&SeededRng::new(5).normal_vec(64 * 784, 0.0, 1.0)[..], &Device::Cpu)?
                .to_dtype(DType::F64)?
                .reshape((64, 1, 28, 28))?;
            let reference = {
                let mut h = x.flatten_from(1)?;
                for (i, layer) in mlp.layers.iter().enumerate() {
                    h = layer.forward(&h)?;
                    if i + 1 < mlp.layers.len() {
                        h = activation.apply(h)?;
                    }
                }
                h
            };
            let ours = mlp.forward_t(&x, true)?;
            let diff = (&ours - &reference)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()?;
            assert!(diff < 1e-12, "{activation:?}: logits differ by {diff}");
            let labels = Tensor::new(&(0..64u32).map(|i| i % 10).collect::<Vec<_>>()[..], &Device::Cpu)?;
            let g_ours = candle_nn::loss::cross_entropy(&ours, &labels)?.backward()?;
            let g_ref = candle_nn::loss::cross_entropy(&reference, &labels)?.backward()?;
            for (name, var) in params.named_trainable() {
                let (a, e) = (g_ours.get(var.as_tensor()).unwrap(), g_ref.get(var.as_tensor()).unwrap());
                let diff = (a - e)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()?;
                assert!(diff < 1e-12, "{activation:?}: d{name} differs by {diff}");
            }
        }
        Ok(())
    }

    #[test]
    fn the_authors_normal_initialisations() -> Result<()> {
        let stats = |init: Init, sizes: &[usize]| -> Result<Vec<(String, f64, f64, f64)>> {
            let params = Params::new(SeededRng::new(3), DType::F32, &Device::Cpu);
            Mlp::with_init(&params.root(), sizes, Activation::None, init)?;
            params
                .named_trainable()
                .into_iter()
                .map(|(name, var)| {
                    let v = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                    let n = v.len() as f64;
                    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
                    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
                    Ok((name, n, mean, var.sqrt()))
                })
                .collect()
        };
        // Sample mean and std of n draws of N(0, 1): within 5 standard errors.
        for (name, n, mean, std) in stats(Init::AUTHORS_MLP, &[784, 256, 256, 10])? {
            let se = 1.0 / n.sqrt();
            assert!(mean.abs() < 5.0 * se && (std - 1.0).abs() < 5.0 * se, "{name}: mean {mean}, std {std}");
        }
        for (name, _, mean, std) in stats(Init::AUTHORS_LOGREG, &[784, 10])? {
            if name.ends_with("bias") {
                assert_eq!((mean, std), (0.0, 0.0), "{name}");
            } else {
                assert!(mean.abs() < 1e-3 && (std - 0.01).abs() < 1e-3, "{name}: mean {mean}, std {std}");
            }
        }
        Ok(())
    }
}
