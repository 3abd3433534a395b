//! VGG for CIFAR (Simonyan & Zisserman, ICLR 2015) in the two forms the papers trained:
//!
//! - [`Vgg::vgg11`], [`Vgg::vgg16`]: with batch normalisation, as kuangliu/pytorch-cifar
//!   `models/vgg.py` defines them (Adai's copy, `zeke-xie/adaptive-inertia-adai` `model/vgg.py`
//!   at e6c1b9d0): 3x3 convolutions with bias, each followed by BatchNorm and ReLU, 2x2
//!   max-pools, and one linear layer from the 512 features.
//! - [`Vgg::vgg11_adabelief`]: AdaBelief's VGG-11 (`juntang-zhuang/Adabelief-Optimizer`
//!   `PyTorch_Experiments/classification_cifar10/models/vgg.py` at 2855178e, `vgg11()` as
//!   `main.py` builds it; torchvision's VGG cut to 32x32 inputs): no BatchNorm, convolution then
//!   ReLU, and a head Dropout(0.5) Linear(512, 512) ReLU Dropout(0.5) Linear(512, 512) ReLU
//!   Linear(512, classes). Convolutions start N(0, 2 / (9 C_out)) with zero bias
//!   ([`Vgg::adabelief_setup`]: He normal, fan out); the linear layers keep PyTorch's default.
//!   The authors' file hard-codes 10 classes (their code has no CIFAR-100 run); with 100 the
//!   last layer is Linear(512, 100).
//!
//! ```text
//! VGG-11: 64 M 128 M 256 256 M 512 512 M 512 512 M
//! VGG-16: 64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M
//! VGG-11 (BN)           9,231,114 parameters with 10 classes (9,277,284 with 100)
//! VGG-16 (BN)          14,728,266 with 10 classes
//! AdaBelief's VGG-11    9,750,922 with 10 classes (9,797,092 with 100)
//! ```
//! Parameters are named as in the authors' `state_dict` (`features.<index in the Sequential>`,
//! `classifier.<index>` in AdaBelief's head). `width` scales every channel count, the head's
//! hidden width too.

use candle::{Module, ModuleT, Result, Tensor};
use candle_nn::Linear;

use crate::conv::Conv2d;
use crate::init::{Fan, Init, LayerSetup, ParamBuilder};
use crate::layers::Dropout;
use crate::norm::BatchNorm2d as BatchNorm;
use crate::scaled;

/// A layer of the feature extractor.
#[derive(Debug)]
enum Layer {
    Conv(Conv2d, Option<BatchNorm>),
    MaxPool,
}

pub const VGG11: &[usize] = &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];
pub const VGG16: &[usize] = &[64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];

/// The layout of a VGG: the feature configuration (0 is a max-pool), whether each convolution
/// is followed by a BatchNorm, and the head.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VggConfig {
    pub layers: &'static [usize],
    pub batch_norm: bool,
    pub head: Head,
}

/// What follows the 512 features.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Head {
    /// One linear layer (kuangliu).
    Linear,
    /// Dropout(p) Linear(512, 512) ReLU, twice, then the linear classifier (torchvision's
    /// CIFAR cut, AdaBelief).
    Mlp { dropout: f64 },
}

#[derive(Debug)]
enum Classifier {
    Linear(Linear),
    Mlp { dropouts: [Dropout; 2], hidden: [Linear; 2], out: Linear },
}

/// A CIFAR VGG.
#[derive(Debug)]
pub struct Vgg {
    features: Vec<Layer>,
    classifier: Classifier,
}

impl Vgg {
    pub fn new(b: &ParamBuilder, config: VggConfig, classes: usize, width: f64, setup: &LayerSetup) -> Result<Self> {
        let mut features = Vec::new();
        let mut inputs = 3;
        // The index of the next module in the authors' `nn.Sequential`.
        let mut index = 0;
        for &c in config.layers {
            if c == 0 {
                features.push(Layer::MaxPool);
                index += 1;
                continue;
            }
            let outputs = scaled(c, width);
            let conv = setup.conv2d(&b.pp(format!("features.{index}")), inputs, outputs, 3, 1, 1, true)?;
            let bn = if config.batch_norm {
                Some(setup.batch_norm(&b.pp(format!("features.{}", index + 1)), outputs)?)
            } else {
                None
            };
            index += if config.batch_norm { 3 } else { 2 };
            features.push(Layer::Conv(conv, bn));
            inputs = outputs;
        }
        let classifier = match config.head {
            Head::Linear => Classifier::Linear(setup.linear(&b.pp("classifier"), inputs, classes, true)?),
            Head::Mlp { dropout } => {
                let hidden = scaled(512, width);
                let head = b.pp("classifier");
                Classifier::Mlp {
                    dropouts: [head.dropout("0", dropout)?, head.dropout("3", dropout)?],
                    hidden: [
                        setup.linear(&head.pp(1), inputs, hidden, true)?,
                        setup.linear(&head.pp(4), hidden, hidden, true)?,
                    ],
                    out: setup.linear(&head.pp(6), hidden, classes, true)?,
                }
            }
        };
        Ok(Self { features, classifier })
    }

    /// VGG-11 with BatchNorm (kuangliu).
    pub fn vgg11(b: &ParamBuilder, classes: usize, width: f64, setup: &LayerSetup) -> Result<Self> {
        Self::new(b, VggConfig { layers: VGG11, batch_norm: true, head: Head::Linear }, classes, width, setup)
    }

    /// VGG-16 with BatchNorm (kuangliu).
    pub fn vgg16(b: &ParamBuilder, classes: usize, width: f64, setup: &LayerSetup) -> Result<Self> {
        Self::new(b, VggConfig { layers: VGG16, batch_norm: true, head: Head::Linear }, classes, width, setup)
    }

    /// AdaBelief's VGG-11: no BatchNorm, the dropout MLP head (pass [`Vgg::adabelief_setup`]
    /// for the authors' initialisation).
    pub fn vgg11_adabelief(b: &ParamBuilder, classes: usize, width: f64, setup: &LayerSetup) -> Result<Self> {
        let config = VggConfig { layers: VGG11, batch_norm: false, head: Head::Mlp { dropout: 0.5 } };
        Self::new(b, config, classes, width, setup)
    }

    /// AdaBelief's initialisation: `m.weight.data.normal_(0, math.sqrt(2. / n))` with
    /// `n = k k C_out` and `m.bias.data.zero_()` for every convolution (He normal, fan out);
    /// the linear layers keep PyTorch's default.
    pub fn adabelief_setup() -> LayerSetup {
        LayerSetup { conv: Init::HeNormal(Fan::Out), ..LayerSetup::default() }
    }
}

impl ModuleT for Vgg {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = xs.clone();
        for layer in &self.features {
            x = match layer {
                Layer::Conv(conv, Some(bn)) => bn.forward_relu_t(&conv.forward(&x)?, train, true)?,
                Layer::Conv(conv, None) => conv.forward(&x)?.relu()?,
                Layer::MaxPool => x.max_pool2d(2)?,
            };
        }
        // After five 2x2 pools a 32x32 input is 1x1 (kuangliu's AvgPool2d(1) is the identity).
        let x = x.flatten_from(1)?;
        match &self.classifier {
            Classifier::Linear(linear) => linear.forward(&x),
            Classifier::Mlp { dropouts, hidden, out } => {
                let mut x = x;
                for (dropout, linear) in dropouts.iter().zip(hidden) {
                    x = linear.forward(&dropout.forward_t(&x, train)?)?.relu()?;
                }
                out.forward(&x)
            }
        }
    }
}
