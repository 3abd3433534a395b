//! VGG-11 and VGG-16 with batch normalisation for CIFAR (Simonyan & Zisserman, ICLR 2015), as
//! kuangliu/pytorch-cifar `models/vgg.py` defines them (the AdaBelief and Adai repositories'
//! copy): 3x3 convolutions with bias, each followed by BatchNorm and ReLU, 2x2 max-pools, and
//! one linear layer from the 512 features.
//!
//! ```text
//! VGG-11: 64 M 128 M 256 256 M 512 512 M 512 512 M          9,231,114 parameters (10 classes)
//! VGG-16: 64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M   14,728,266 (10 classes)
//! ```
//! `width` scales every channel count.

use candle::{Module, ModuleT, Result, Tensor};
use candle_nn::Linear;

use crate::conv::Conv2d;
use crate::norm::BatchNorm2d as BatchNorm;

use crate::init::{batch_norm, conv2d, linear, ParamBuilder};
use crate::scaled;

/// A layer of the feature extractor.
#[derive(Debug)]
enum Layer {
    Conv(Conv2d, BatchNorm),
    MaxPool,
}

pub const VGG11: &[usize] = &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];
pub const VGG16: &[usize] = &[64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];

/// A CIFAR VGG; in a configuration, 0 is a max-pool.
#[derive(Debug)]
pub struct Vgg {
    features: Vec<Layer>,
    classifier: Linear,
}

impl Vgg {
    pub fn new(b: &ParamBuilder, config: &[usize], classes: usize, width: f64) -> Result<Self> {
        let mut features = Vec::new();
        let mut inputs = 3;
        for (i, &c) in config.iter().enumerate() {
            if c == 0 {
                features.push(Layer::MaxPool);
                continue;
            }
            let outputs = scaled(c, width);
            let conv = conv2d(&b.pp(format!("features.{}", 3 * i)), inputs, outputs, 3, 1, 1, true)?;
            let bn = batch_norm(&b.pp(format!("features.{}", 3 * i + 1)), outputs)?;
            features.push(Layer::Conv(conv, bn));
            inputs = outputs;
        }
        Ok(Self { features, classifier: linear(&b.pp("classifier"), inputs, classes, true)? })
    }

    pub fn vgg11(b: &ParamBuilder, classes: usize, width: f64) -> Result<Self> {
        Self::new(b, VGG11, classes, width)
    }

    pub fn vgg16(b: &ParamBuilder, classes: usize, width: f64) -> Result<Self> {
        Self::new(b, VGG16, classes, width)
    }
}

impl ModuleT for Vgg {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = xs.clone();
        for layer in &self.features {
            x = match layer {
                Layer::Conv(conv, bn) => bn.forward_relu_t(&conv.forward(&x)?, train, true)?,
                Layer::MaxPool => x.max_pool2d(2)?,
            };
        }
        // After five 2x2 pools a 32x32 input is 1x1 (kuangliu's AvgPool2d(1) is the identity).
        self.classifier.forward(&x.flatten_from(1)?)
    }
}
