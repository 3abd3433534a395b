//! DenseNets (Huang et al., "Densely Connected Convolutional Networks", CVPR 2017) in the three
//! forms the papers trained:
//!
//! - [`DenseNet::densenet121`]: DenseNet-121 for CIFAR as kuangliu/pytorch-cifar
//!   `models/densenet.py` defines it (AdaBelief, Adai, AdaMod): growth 32, bottleneck layers
//!   (BN ReLU conv1x1 to 4k, BN ReLU conv3x3 to k), blocks [6, 12, 24, 16], transitions
//!   compressing by 0.5 (BN ReLU conv1x1, 2x2 average pool), a 3x3 stem of 2k channels;
//!   6,956,298 parameters with 10 classes. PyTorch's initialisation and BatchNorm
//!   ([`LayerSetup::default`]).
//! - [`DenseNet::adashift_cifar`]: AdaShift's CIFAR-10 DenseNet, `mknbv/adashift` at commit
//!   `bf86b021d42e922078a39246770f0f875300a6f3`,
//!   `author_code_base/Densenet-Tensorflow/Cifar10/Densenet_Cifar10.py` (`DenseNet`, lines
//!   153-235): growth 24, a 7x7 stride-2 stem of 2k channels with TensorFlow's `SAME` padding
//!   (2 before, 3 after), bottleneck blocks [6, 12, 48, 32], transitions to k channels, dropout
//!   0.2 after every convolution; 6,365,962 parameters with 10 classes. Its setup
//!   ([`DenseNet::adashift_cifar_setup`]): `tf.layers.conv2d` / `tf.layers.dense` with their
//!   default kernel initialiser, Glorot uniform (lines 78, 123), no conv bias, zero dense bias;
//!   `tf.contrib.layers.batch_norm(decay=0.9)` with its default epsilon 1e-3 (lines 94-104).
//! - [`DenseNet::adashift_tiny_imagenet`]: AdaShift's Tiny-ImageNet DenseNet, the same commit,
//!   `author_code_base/densenet_tiny_imagenet/models/dense_net.py` (ikhlestov's
//!   vision_networks; `_build_graph`, lines 346-366): depth 28, growth 12, three blocks of 8
//!   plain layers (BN ReLU conv3x3 to k, dropout 0.2), transitions keeping the channels, a 3x3
//!   stem of 2k; 553,280 parameters with 200 classes. Its setup
//!   ([`DenseNet::adashift_tiny_imagenet_setup`]): kernels from
//!   `tf.contrib.layers.variance_scaling_initializer()` (`weight_variable_msra`, lines
//!   330-334: [`Init::TfVarianceScaling`]`(Fan::In)`), the classifier from
//!   `xavier_initializer()` (Glorot uniform, lines 291, 336-340) with a zero bias;
//!   `tf.contrib.layers.batch_norm` with its defaults, decay 0.999 and epsilon 1e-3 (lines
//!   313-317).
//!
//! New features are concatenated after the input in the last two (as the TensorFlow code
//! does) and before it in DenseNet-121 (as kuangliu's `torch.cat([out, x], 1)`); the order
//! changes only which channels the next 1x1 convolution's weights meet.
//!
//! Where the suite cannot follow the TensorFlow code (the rest is checked against a
//! transcription of it by `models/tests/fidelity_tf.rs`):
//! - The CIFAR DenseNet's BatchNorm has `zero_debias_moving_mean=True`: TensorFlow keeps a
//!   biased running mean b_t and reports b_t / (1 - 0.9^t), so that the running mean starts at
//!   the first batch's mean instead of moving from 0. The suite's running mean starts at 0;
//!   after 50 steps the two differ by less than 0.9^50 = 0.5% of the initial gap, so only
//!   evaluations in the first hundred steps see it. The running variance is not debiased in
//!   TensorFlow either.
//! - Dropout draws other masks than TensorFlow's (the same distribution). TensorFlow's
//!   `tf.layers.dropout` and `tf.nn.dropout` scale kept values by 1 / keep_prob, as here.
//! - Weights come from the suite's seeded generator: the same distributions, not TensorFlow's
//!   numbers.

use candle::{Module, ModuleT, Result, Tensor};
use candle_nn::Linear;

use crate::conv::Conv2d;
use crate::norm::{BatchNorm2d as BatchNorm, BnConfig};

use crate::init::{Fan, Init, LayerSetup, ParamBuilder};
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
    /// TensorFlow's `padding='SAME'` for every convolution (it differs from symmetric padding
    /// only for the strided stem) instead of PyTorch's `kernel / 2`.
    pub tf_padding: bool,
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
    fn new(b: &ParamBuilder, setup: &LayerSetup, inputs: usize, outputs: usize, kernel: usize) -> Result<Self> {
        Ok(Self {
            bn: setup.batch_norm(&b.pp("bn"), inputs)?,
            conv: setup.conv2d(&b.pp("conv"), inputs, outputs, kernel, 1, kernel / 2, false)?,
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
    /// A DenseNet laid out by `config`, its layers initialised and normalised by `setup`.
    pub fn new(b: &ParamBuilder, config: &DenseNetConfig, classes: usize, setup: &LayerSetup) -> Result<Self> {
        let k = config.growth;
        let mut channels = 2 * k;
        let (kernel, stride) = (config.stem_kernel, config.stem_stride);
        let stem = setup.conv2d(&b.pp("conv1"), 3, channels, kernel, stride, kernel / 2, false)?;
        let stem = if config.tf_padding { stem.tf_same() } else { stem };
        let mut stages = Vec::new();
        for (i, &layers) in config.blocks.iter().enumerate() {
            let block = b.pp(format!("dense{}", i + 1));
            let mut dense = Vec::new();
            for l in 0..layers {
                let lb = block.pp(l);
                let parts = if config.bottleneck {
                    vec![
                        Composite::new(&lb.pp("a"), setup, channels, 4 * k, 1)?,
                        Composite::new(&lb.pp("b"), setup, 4 * k, k, 3)?,
                    ]
                } else {
                    vec![Composite::new(&lb.pp("a"), setup, channels, k, 3)?]
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
                let name = format!("trans{}", i + 1);
                stages.push(Stage::Transition(Composite::new(&b.pp(name), setup, channels, outputs, 1)?));
                channels = outputs;
            }
        }
        Ok(Self {
            stem,
            stages,
            bn: setup.batch_norm(&b.pp("bn"), channels)?,
            linear: setup.linear(&b.pp("linear"), channels, classes, true)?,
            dropout: b.dropout("dropout", config.dropout)?,
            new_first: config.new_first,
        })
    }

    /// DenseNet-121 for CIFAR; `width` scales the growth rate (32). kuangliu's model uses
    /// PyTorch's defaults, [`LayerSetup::default`].
    pub fn densenet121(b: &ParamBuilder, classes: usize, width: f64, setup: &LayerSetup) -> Result<Self> {
        let config = DenseNetConfig {
            growth: scaled(32, width),
            blocks: vec![6, 12, 24, 16],
            bottleneck: true,
            transition: Transition::Compress(0.5),
            stem_kernel: 3,
            stem_stride: 1,
            dropout: 0.0,
            new_first: true,
            tf_padding: false,
        };
        Self::new(b, &config, classes, setup)
    }

    /// The CIFAR DenseNet's TensorFlow setup: Glorot uniform kernels (`tf.layers`' default),
    /// `batch_norm(decay=0.9)` with epsilon 1e-3.
    pub fn adashift_cifar_setup() -> LayerSetup {
        LayerSetup { conv: Init::GlorotUniform, linear: Init::GlorotUniform, bn: BnConfig::tensorflow(0.9, 1e-3) }
    }

    /// The Tiny-ImageNet DenseNet's TensorFlow setup: MSRA kernels (TF 1's variance scaling,
    /// fan in, truncated normal), a Glorot uniform classifier, `batch_norm`'s defaults (decay
    /// 0.999, epsilon 1e-3).
    pub fn adashift_tiny_imagenet_setup() -> LayerSetup {
        LayerSetup {
            conv: Init::TfVarianceScaling(Fan::In),
            linear: Init::GlorotUniform,
            bn: BnConfig::tensorflow(0.999, 1e-3),
        }
    }

    /// AdaShift's CIFAR-10 DenseNet with growth `growth` (24 in the paper); the authors' setup
    /// is [`DenseNet::adashift_cifar_setup`].
    pub fn adashift_cifar(
        b: &ParamBuilder,
        classes: usize,
        growth: usize,
        dropout: f64,
        setup: &LayerSetup,
    ) -> Result<Self> {
        let config = DenseNetConfig {
            growth,
            blocks: vec![6, 12, 48, 32],
            bottleneck: true,
            transition: Transition::Growth,
            stem_kernel: 7,
            stem_stride: 2,
            dropout,
            new_first: false,
            tf_padding: true,
        };
        Self::new(b, &config, classes, setup)
    }

    /// AdaShift's Tiny-ImageNet DenseNet: `depth` 28 and growth 12 in the paper; the authors'
    /// setup is [`DenseNet::adashift_tiny_imagenet_setup`].
    pub fn adashift_tiny_imagenet(
        b: &ParamBuilder,
        classes: usize,
        depth: usize,
        growth: usize,
        dropout: f64,
        setup: &LayerSetup,
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
            tf_padding: true,
        };
        Self::new(b, &config, classes, setup)
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
