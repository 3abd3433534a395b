//! GoogLeNet for CIFAR (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015), as
//! kuangliu/pytorch-cifar `models/googlenet.py` defines it (the Adai repository's copy): a 3x3
//! stem of 192 channels, nine Inception blocks with two 3x3 stride-2 max-pools (padding 1)
//! between the groups, global average pooling and a linear classifier.
//!
//! ```text
//! Inception(in, n1, n3r, n3, n5r, n5, pool): concatenation of
//!   conv1x1(n1) | conv1x1(n3r) conv3x3(n3) | conv1x1(n5r) conv3x3(n5) conv3x3(n5) | maxpool3x3/1 conv1x1(pool)
//!   every convolution with bias, then BatchNorm and ReLU
//! 6,166,250 parameters with 10 classes (6,258,500 with 100)
//! ```
//! `width` scales every channel count.

use candle::{Module, ModuleT, Result, Tensor};
use candle_nn::Linear;

use crate::conv::Conv2d;
use crate::init::{batch_norm, conv2d, linear, ParamBuilder};
use crate::layers::{global_avg_pool, max_pool2d};
use crate::norm::BatchNorm2d;
use crate::scaled;

#[derive(Debug)]
struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm2d,
}

impl ConvBn {
    fn new(b: &ParamBuilder, inputs: usize, outputs: usize, kernel: usize) -> Result<Self> {
        Ok(Self {
            conv: conv2d(&b.pp("conv"), inputs, outputs, kernel, 1, kernel / 2, true)?,
            bn: batch_norm(&b.pp("bn"), outputs)?,
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
    fn new(b: &ParamBuilder, inputs: usize, config: [usize; 6], width: f64) -> Result<Self> {
        let [n1, n3r, n3, n5r, n5, pool] = config.map(|c| scaled(c, width));
        Ok(Self {
            branches: [
                vec![ConvBn::new(&b.pp("b1.0"), inputs, n1, 1)?],
                vec![ConvBn::new(&b.pp("b2.0"), inputs, n3r, 1)?, ConvBn::new(&b.pp("b2.1"), n3r, n3, 3)?],
                vec![
                    ConvBn::new(&b.pp("b3.0"), inputs, n5r, 1)?,
                    ConvBn::new(&b.pp("b3.1"), n5r, n5, 3)?,
                    ConvBn::new(&b.pp("b3.2"), n5, n5, 3)?,
                ],
                vec![ConvBn::new(&b.pp("b4.0"), inputs, pool, 1)?],
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

/// The Inception configurations of the nine blocks, and after which a pool comes.
const BLOCKS: [[usize; 6]; 9] = [
    [64, 96, 128, 16, 32, 32],
    [128, 128, 192, 32, 96, 64],
    [192, 96, 208, 16, 48, 64],
    [160, 112, 224, 24, 64, 64],
    [128, 128, 256, 24, 64, 64],
    [112, 144, 288, 32, 64, 64],
    [256, 160, 320, 32, 128, 128],
    [256, 160, 320, 32, 128, 128],
    [384, 192, 384, 48, 128, 128],
];
const POOL_AFTER: [usize; 2] = [1, 6];

/// A CIFAR GoogLeNet.
#[derive(Debug)]
pub struct GoogLeNet {
    stem: ConvBn,
    blocks: Vec<Inception>,
    linear: Linear,
}

impl GoogLeNet {
    pub fn new(b: &ParamBuilder, classes: usize, width: f64) -> Result<Self> {
        let stem_channels = scaled(192, width);
        let stem = ConvBn::new(&b.pp("pre_layers"), 3, stem_channels, 3)?;
        let mut inputs = stem_channels;
        let mut blocks = Vec::new();
        for (i, config) in BLOCKS.iter().enumerate() {
            let block = Inception::new(&b.pp(format!("inception{i}")), inputs, *config, width)?;
            inputs = block.outputs;
            blocks.push(block);
        }
        Ok(Self { stem, blocks, linear: linear(&b.pp("linear"), inputs, classes, true)? })
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
        self.linear.forward(&global_avg_pool(&x)?)
    }
}
