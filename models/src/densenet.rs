//! DenseNets (Huang et al., "Densely Connected Convolutional Networks", CVPR 2017) in the three
//! forms the papers trained:
//!
//! - [`DenseNet::densenet121`]: DenseNet-121 for CIFAR as kuangliu/pytorch-cifar
//!   `models/densenet.py` defines it (AdaBelief, Adai, AdaMod): growth 32, bottleneck layers
//!   (BN ReLU conv1x1 to 4k, BN ReLU conv3x3 to k), blocks [6, 12, 24, 16], transitions
//!   compressing by 0.5 (BN ReLU conv1x1, 2x2 average pool), a 3x3 stem of 2k channels;
//!   6,956,298 parameters with 10 classes.
//! - [`DenseNet::adashift_cifar`]: AdaShift's CIFAR-10 DenseNet (the authors' TensorFlow code,
//!   `Densenet-Tensorflow/Cifar10`): growth 24, a 7x7 stride-2 stem of 2k channels, bottleneck
//!   blocks [6, 12, 48, 32], transitions to k channels, dropout 0.2 after every convolution.
//!   Padding is symmetric here where TensorFlow's `SAME` pads the 7x7 stride-2 stem 2 / 3.
//! - [`DenseNet::adashift_tiny_imagenet`]: AdaShift's Tiny-ImageNet DenseNet (`densenet_tiny_imagenet`,
//!   ikhlestov's vision_networks): depth 28, growth 12, three blocks of 8 plain layers
//!   (BN ReLU conv3x3 to k, dropout 0.2), transitions keeping the channels, a 3x3 stem of 2k.
//!
//! New features are concatenated after the input in the last two (as the TensorFlow code
//! does) and before it in DenseNet-121 (as kuangliu's `torch.cat([out, x], 1)`); the order
//! changes only which channels the next 1x1 convolution's weights meet.

use candle::{Module, ModuleT, Result, Tensor};
use candle_nn::Linear;

use crate::conv::Conv2d;
use crate::norm::BatchNorm2d as BatchNorm;

use crate::init::{batch_norm, conv2d, linear, ParamBuilder};
use crate::layers::{global_avg_pool, Dropout};
use crate::scaled;

/// How a DenseNet is laid out.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseNetConfig {
    pub growth: usize,
    pub blocks: Vec<usize>,
    /// Bottleneck layers (1x1 to 4k, then 3x3 to k) or plain ones (3x3 to k).
    pub bottleneck: bool,
    /// Channels after a transition, from the channels before it.
    pub transition: Transition,
    pub stem_kernel: usize,
    pub stem_stride: usize,
    pub dropout: f64,
    /// New features before the input in a concatenation (kuangliu) or after it (TensorFlow).
    pub new_first: bool,
}

/// The channels a transition layer outputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transition {
    /// `floor(channels * factor)`.
    Compress(f64),
    /// The growth rate (AdaShift's CIFAR DenseNet).
    Growth,
}

#[derive(Debug)]
struct Composite {
    bn: BatchNorm,
    conv: Conv2d,
}

impl Composite {
    fn new(b: &ParamBuilder, inputs: usize, outputs: usize, kernel: usize) -> Result<Self> {
        Ok(Self {
            bn: batch_norm(&b.pp("bn"), inputs)?,
            conv: conv2d(&b.pp("conv"), inputs, outputs, kernel, 1, kernel / 2, false)?,
        })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.conv.forward(&self.bn.forward_relu_t(xs, train, true)?)
    }
}

#[derive(Debug)]
struct DenseLayer {
    parts: Vec<Composite>,
}

#[derive(Debug)]
enum Stage {
    Dense(Vec<DenseLayer>),
    Transition(Composite),
}

/// A DenseNet classifier.
#[derive(Debug)]
pub struct DenseNet {
    stem: Conv2d,
    stages: Vec<Stage>,
    bn: BatchNorm,
    linear: Linear,
    dropout: Dropout,
    new_first: bool,
}

impl DenseNet {
    pub fn new(b: &ParamBuilder, config: &DenseNetConfig, classes: usize) -> Result<Self> {
        let k = config.growth;
        let mut channels = 2 * k;
        let stem =
            conv2d(&b.pp("conv1"), 3, channels, config.stem_kernel, config.stem_stride, config.stem_kernel / 2, false)?;
        let mut stages = Vec::new();
        for (i, &layers) in config.blocks.iter().enumerate() {
            let block = b.pp(format!("dense{}", i + 1));
            let mut dense = Vec::new();
            for l in 0..layers {
                let lb = block.pp(l);
                let parts = if config.bottleneck {
                    vec![Composite::new(&lb.pp("a"), channels, 4 * k, 1)?, Composite::new(&lb.pp("b"), 4 * k, k, 3)?]
                } else {
                    vec![Composite::new(&lb.pp("a"), channels, k, 3)?]
                };
                dense.push(DenseLayer { parts });
                channels += k;
            }
            stages.push(Stage::Dense(dense));
            if i + 1 < config.blocks.len() {
                let outputs = match config.transition {
                    Transition::Compress(f) => ((channels as f64 * f).floor() as usize).max(1),
                    Transition::Growth => k,
                };
                stages.push(Stage::Transition(Composite::new(&b.pp(format!("trans{}", i + 1)), channels, outputs, 1)?));
                channels = outputs;
            }
        }
        Ok(Self {
            stem,
            stages,
            bn: batch_norm(&b.pp("bn"), channels)?,
            linear: linear(&b.pp("linear"), channels, classes, true)?,
            dropout: b.dropout("dropout", config.dropout)?,
            new_first: config.new_first,
        })
    }

    /// DenseNet-121 for CIFAR; `width` scales the growth rate (32).
    pub fn densenet121(b: &ParamBuilder, classes: usize, width: f64) -> Result<Self> {
        let config = DenseNetConfig {
            growth: scaled(32, width),
            blocks: vec![6, 12, 24, 16],
            bottleneck: true,
            transition: Transition::Compress(0.5),
            stem_kernel: 3,
            stem_stride: 1,
            dropout: 0.0,
            new_first: true,
        };
        Self::new(b, &config, classes)
    }

    /// AdaShift's CIFAR-10 DenseNet with growth `growth` (24 in the paper).
    pub fn adashift_cifar(b: &ParamBuilder, classes: usize, growth: usize, dropout: f64) -> Result<Self> {
        let config = DenseNetConfig {
            growth,
            blocks: vec![6, 12, 48, 32],
            bottleneck: true,
            transition: Transition::Growth,
            stem_kernel: 7,
            stem_stride: 2,
            dropout,
            new_first: false,
        };
        Self::new(b, &config, classes)
    }

    /// AdaShift's Tiny-ImageNet DenseNet: `depth` 28 and growth 12 in the paper.
    pub fn adashift_tiny_imagenet(
        b: &ParamBuilder,
        classes: usize,
        depth: usize,
        growth: usize,
        dropout: f64,
    ) -> Result<Self> {
        if depth < 7 || !(depth - 4).is_multiple_of(3) {
            candle::bail!("DenseNet depth {depth}: must be 3n + 4 with n >= 1")
        }
        let per_block = (depth - 4) / 3;
        let config = DenseNetConfig {
            growth,
            blocks: vec![per_block; 3],
            bottleneck: false,
            transition: Transition::Compress(1.0),
            stem_kernel: 3,
            stem_stride: 1,
            dropout,
            new_first: false,
        };
        Self::new(b, &config, classes)
    }
}

impl ModuleT for DenseNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = self.stem.forward(xs)?;
        for stage in &self.stages {
            x = match stage {
                Stage::Dense(layers) => {
                    for layer in layers {
                        let mut out = x.clone();
                        for part in &layer.parts {
                            out = self.dropout.forward_t(&part.forward_t(&out, train)?, train)?;
                        }
                        x = if self.new_first { Tensor::cat(&[&out, &x], 1)? } else { Tensor::cat(&[&x, &out], 1)? };
                    }
                    x
                }
                Stage::Transition(t) => self.dropout.forward_t(&t.forward_t(&x, train)?, train)?.avg_pool2d(2)?,
            };
        }
        let x = global_avg_pool(&self.bn.forward_relu_t(&x, train, true)?)?;
        self.linear.forward(&x)
    }
}
