//! ResNet-18 and ResNet-34 for CIFAR (He et al., "Deep Residual Learning for Image
//! Recognition", CVPR 2016), as the PyTorch CIFAR code of the AdaBound, AdaBelief and Adai
//! repositories defines them (kuangliu/pytorch-cifar `models/resnet.py`): a 3x3 stem of 64
//! channels with no max-pool, four stages of BasicBlocks (64, 128, 256, 512 channels; stride 2
//! from the second), 4x4 average pooling and a linear classifier.
//!
//! ```text
//! BasicBlock(in, out, stride): conv3x3(in, out, stride) BN ReLU conv3x3(out, out) BN
//!                              + shortcut (identity, or conv1x1(in, out, stride) BN) -> ReLU
//! ResNet-18: [2, 2, 2, 2] blocks, 11,173,962 parameters with 10 classes (11,220,132 with 100)
//! ResNet-34: [3, 4, 6, 3] blocks, 21,282,122 parameters with 10 classes (21,328,292 with 100)
//! ```
//! `width` scales every channel count (for tests and CPU runs); a [`LayerSetup`] sets the
//! initialisation and the BatchNorm constants (`LayerSetup::default()`: PyTorch's, as the
//! authors' code). Parameters are named as in the authors' `state_dict`.

use candle::{Module, ModuleT, Result, Tensor};
use candle_nn::Linear;

use crate::conv::Conv2d;
use crate::norm::BatchNorm2d as BatchNorm;

use crate::init::{LayerSetup, ParamBuilder};
use crate::scaled;

fn conv(
    s: &LayerSetup,
    b: &ParamBuilder,
    inputs: usize,
    outputs: usize,
    kernel: usize,
    stride: usize,
) -> Result<Conv2d> {
    s.conv2d(b, inputs, outputs, kernel, stride, kernel / 2, false)
}

#[derive(Debug)]
struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    shortcut: Option<(Conv2d, BatchNorm)>,
}

impl BasicBlock {
    fn new(s: &LayerSetup, b: &ParamBuilder, inputs: usize, outputs: usize, stride: usize) -> Result<Self> {
        let shortcut = if stride != 1 || inputs != outputs {
            Some((
                conv(s, &b.pp("shortcut.0"), inputs, outputs, 1, stride)?,
                s.batch_norm(&b.pp("shortcut.1"), outputs)?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: conv(s, &b.pp("conv1"), inputs, outputs, 3, stride)?,
            bn1: s.batch_norm(&b.pp("bn1"), outputs)?,
            conv2: conv(s, &b.pp("conv2"), outputs, outputs, 3, 1)?,
            bn2: s.batch_norm(&b.pp("bn2"), outputs)?,
            shortcut,
        })
    }
}

impl ModuleT for BasicBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let out = self.bn1.forward_relu_t(&self.conv1.forward(xs)?, train, true)?;
        let out = self.bn2.forward_t(&self.conv2.forward(&out)?, train)?;
        let short = match &self.shortcut {
            Some((c, bn)) => bn.forward_t(&c.forward(xs)?, train)?,
            None => xs.clone(),
        };
        crate::activation::add_relu(&out, &short)
    }
}

/// A CIFAR ResNet.
#[derive(Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    blocks: Vec<BasicBlock>,
    linear: Linear,
}

impl ResNet {
    /// A ResNet of BasicBlocks with `blocks` per stage.
    pub fn new(b: &ParamBuilder, blocks: [usize; 4], classes: usize, width: f64, setup: &LayerSetup) -> Result<Self> {
        let stem = scaled(64, width);
        let mut inputs = stem;
        let mut layers = Vec::new();
        for (stage, &count) in blocks.iter().enumerate() {
            let outputs = scaled(64 << stage, width);
            for i in 0..count {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                layers.push(BasicBlock::new(setup, &b.pp(format!("layer{}.{i}", stage + 1)), inputs, outputs, stride)?);
                inputs = outputs;
            }
        }
        Ok(Self {
            conv1: conv(setup, &b.pp("conv1"), 3, stem, 3, 1)?,
            bn1: setup.batch_norm(&b.pp("bn1"), stem)?,
            blocks: layers,
            linear: setup.linear(&b.pp("linear"), inputs, classes, true)?,
        })
    }

    pub fn resnet18(b: &ParamBuilder, classes: usize, width: f64, setup: &LayerSetup) -> Result<Self> {
        Self::new(b, [2, 2, 2, 2], classes, width, setup)
    }

    pub fn resnet34(b: &ParamBuilder, classes: usize, width: f64, setup: &LayerSetup) -> Result<Self> {
        Self::new(b, [3, 4, 6, 3], classes, width, setup)
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = self.bn1.forward_relu_t(&self.conv1.forward(xs)?, train, true)?;
        for block in &self.blocks {
            x = block.forward_t(&x, train)?;
        }
        // avg_pool2d(4) on the 4x4 maps of 32x32 inputs: the global mean, for any input size.
        let x = crate::layers::global_avg_pool(&x)?;
        self.linear.forward(&x)
    }
}
