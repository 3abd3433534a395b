//! GoogLeNet for CIFAR (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015), as Adai's
//! code defines it (`zeke-xie/adaptive-inertia-adai` `model/googlenet.py` at e6c1b9d0, from
//! weiaicunzai/pytorch-cifar100): a 3x3 stem of 192 channels, nine Inception blocks with 3x3
//! stride-2 max-pools (padding 1) after the second and the seventh, global average pooling,
//! dropout and a linear classifier.
//!
//! ```text
//! Inception(in, n1, n3r, n3, n5r, n5, pool): concatenation of
//!   conv1x1(n1) | conv1x1(n3r) conv3x3(n3) | conv1x1(n5r) conv3x3(n5) conv3x3(n5) | maxpool3x3/1 conv1x1(pool)
//!   every convolution with bias, then BatchNorm and ReLU
//! stem conv3x3(192) BN ReLU, a3 b3, pool, a4 b4 c4 d4 e4, pool, a5 b5, mean, Dropout2d(0.4), linear
//! 6,166,250 parameters with 10 classes (6,258,500 with 100)
//! ```
//!
//! Two details of the authors' file that a parameter count cannot see:
//! - `nn.Dropout2d(p=0.4)` acts on the pooled (N, 1024, 1, 1) tensor, where a channel is one
//!   element: channel dropout there is element dropout, which is what [`Dropout`] does on the
//!   (N, 1024) features. [`GoogLeNetConfig::dropout`] is 0.4 by default: the only paper of the
//!   suite that trains this GoogLeNet is Adai (CIFAR-100), and its model has the dropout;
//!   kuangliu's GoogLeNet (the same network otherwise) has none, which `dropout = 0` gives.
//! - The second BatchNorm of each 5x5 branch is `nn.BatchNorm2d(n5x5, n5x5)`: its second
//!   argument is `eps`, so in the network Adai trained these nine BatchNorms add 32 to 128 to
//!   the variance and barely normalise. [`GoogLeNetConfig::bn_eps_quirk`] reproduces it (eps =
//!   the branch's channel count, after `width` scaling); it is off by default, because it is a
//!   slip in the authors' code rather than the architecture, and Adai's config turns it on.
//!
//! Parameters are named as in the authors' `state_dict` (`prelayer.0`, `a3.b3.4`, ...). `width`
//! scales every channel count.

use candle::{Module, ModuleT, Result, Tensor};
use candle_nn::Linear;

use crate::conv::Conv2d;
use crate::init::{batch_norm_with, LayerSetup, ParamBuilder};
use crate::layers::{global_avg_pool, max_pool2d, Dropout};
use crate::norm::{BatchNorm2d, BnConfig};
use crate::scaled;

/// The GoogLeNet's size and the two details of Adai's file (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GoogLeNetConfig {
    /// Channel multiplier (1: the paper's model).
    pub width: f64,
    /// The dropout rate before the classifier (Adai: 0.4).
    pub dropout: f64,
    /// eps = n5x5 in the middle BatchNorm of every 5x5 branch, as Adai's code.
    pub bn_eps_quirk: bool,
}

impl Default for GoogLeNetConfig {
    fn default() -> Self {
        Self { width: 1.0, dropout: 0.4, bn_eps_quirk: false }
    }
}

impl GoogLeNetConfig {
    /// The default layout at another width.
    pub fn width(width: f64) -> Self {
        Self { width, ..Self::default() }
    }
}

#[derive(Debug)]
struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl ConvBn {
    /// Conv, BN and ReLU at positions `index`, `index + 1`, `index + 2` of the Sequential `b`;
    /// `bn` overrides the setup's BatchNorm constants.
    fn new(
        s: &LayerSetup,
        b: &ParamBuilder,
        index: usize,
        (inputs, outputs, kernel): (usize, usize, usize),
        bn: Option<BnConfig>,
    ) -> Result<Self> {
        Ok(Self {
            conv: s.conv2d(&b.pp(index), inputs, outputs, kernel, 1, kernel / 2, true)?,
            bn: batch_norm_with(&b.pp(index + 1), outputs, bn.unwrap_or(s.bn))?,
        })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward_relu_t(&self.conv.forward(xs)?, train, true)
    }
}

#[derive(Debug)]
struct Inception {
    branches: [Vec<ConvBn>; 4],
    outputs: usize,
}

impl Inception {
    fn new(s: &LayerSetup, b: &ParamBuilder, inputs: usize, c: &GoogLeNetConfig, block: [usize; 6]) -> Result<Self> {
        let [n1, n3r, n3, n5r, n5, pool] = block.map(|ch| scaled(ch, c.width));
        let quirk = c.bn_eps_quirk.then_some(BnConfig { eps: n5 as f64, ..s.bn });
        Ok(Self {
            branches: [
                vec![ConvBn::new(s, &b.pp("b1"), 0, (inputs, n1, 1), None)?],
                vec![
                    ConvBn::new(s, &b.pp("b2"), 0, (inputs, n3r, 1), None)?,
                    ConvBn::new(s, &b.pp("b2"), 3, (n3r, n3, 3), None)?,
                ],
                vec![
                    ConvBn::new(s, &b.pp("b3"), 0, (inputs, n5r, 1), None)?,
                    ConvBn::new(s, &b.pp("b3"), 3, (n5r, n5, 3), quirk)?,
                    ConvBn::new(s, &b.pp("b3"), 6, (n5, n5, 3), None)?,
                ],
                // Position 0 of `b4` is the max-pool.
                vec![ConvBn::new(s, &b.pp("b4"), 1, (inputs, pool, 1), None)?],
            ],
            outputs: n1 + n3 + n5 + pool,
        })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut outs = Vec::with_capacity(4);
        for (i, branch) in self.branches.iter().enumerate() {
            let mut x = if i == 3 { max_pool2d(xs, 3, 1, 1)? } else { xs.clone() };
            for layer in branch {
                x = layer.forward_t(&x, train)?;
            }
            outs.push(x);
        }
        Tensor::cat(&outs, 1)
    }
}

/// The nine Inception blocks: name and (n1, n3r, n3, n5r, n5, pool).
const BLOCKS: [(&str, [usize; 6]); 9] = [
    ("a3", [64, 96, 128, 16, 32, 32]),
    ("b3", [128, 128, 192, 32, 96, 64]),
    ("a4", [192, 96, 208, 16, 48, 64]),
    ("b4", [160, 112, 224, 24, 64, 64]),
    ("c4", [128, 128, 256, 24, 64, 64]),
    ("d4", [112, 144, 288, 32, 64, 64]),
    ("e4", [256, 160, 320, 32, 128, 128]),
    ("a5", [256, 160, 320, 32, 128, 128]),
    ("b5", [384, 192, 384, 48, 128, 128]),
];
/// The blocks after which a 3x3 stride-2 max-pool comes.
const POOL_AFTER: [usize; 2] = [1, 6];

/// A CIFAR GoogLeNet.
#[derive(Debug)]
pub struct GoogLeNet {
    stem: ConvBn,
    blocks: Vec<Inception>,
    dropout: Option<Dropout>,
    linear: Linear,
}

impl GoogLeNet {
    pub fn new(b: &ParamBuilder, classes: usize, config: &GoogLeNetConfig, setup: &LayerSetup) -> Result<Self> {
        if !(0.0..1.0).contains(&config.dropout) {
            candle::bail!("GoogLeNet: dropout rate {} must be in [0, 1)", config.dropout)
        }
        let stem_channels = scaled(192, config.width);
        let stem = ConvBn::new(setup, &b.pp("prelayer"), 0, (3, stem_channels, 3), None)?;
        let mut inputs = stem_channels;
        let mut blocks = Vec::new();
        for (name, block) in BLOCKS {
            let block = Inception::new(setup, &b.pp(name), inputs, config, block)?;
            inputs = block.outputs;
            blocks.push(block);
        }
        let linear = setup.linear(&b.pp("linear"), inputs, classes, true)?;
        let dropout = if config.dropout > 0.0 { Some(b.dropout("dropout", config.dropout)?) } else { None };
        Ok(Self { stem, blocks, dropout, linear })
    }
}

impl ModuleT for GoogLeNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = self.stem.forward_t(xs, train)?;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward_t(&x, train)?;
            if POOL_AFTER.contains(&i) {
                x = max_pool2d(&x, 3, 2, 1)?;
            }
        }
        let mut x = global_avg_pool(&x)?;
        if let Some(dropout) = &self.dropout {
            x = dropout.forward_t(&x, train)?;
        }
        self.linear.forward(&x)
    }
}
