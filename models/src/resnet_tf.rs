//! AdaShift's TensorFlow ResNet-18 for CIFAR-10: the network the AdaShift paper (Zhou et al.,
//! ICLR 2019) trained, as the authors' code builds it. Reference: `mknbv/adashift` at commit
//! `bf86b021d42e922078a39246770f0f875300a6f3`, `author_code_base/ResNet-CIFAR10/ResNet.py`
//! (`ResNet.network`, lines 65-111) and `ops.py` (`conv`, `fully_conneted`, `resblock`,
//! `batch_norm`), run with `--res_n 18` (`main.py`).
//!
//! A pre-activation ResNet (He et al., "Identity Mappings in Deep Residual Networks"), unlike
//! the suite's post-activation [`crate::resnet::ResNet`]:
//!
//! ```text
//! conv3x3(3 -> 32) + b                                              scope `conv`
//! 4 stages of 2 blocks, widths 32, 64, 128, 256; the first block of stages 2-4 halves the size:
//!   block(x):  h = relu(BN_0(x))
//!              h = conv3x3(h, stride s) + b          shortcut = x, or conv1x1(x, stride 2) + b
//!              h = conv3x3(relu(BN_1(h))) + b
//!              return h + shortcut
//! relu(BN(x)), global average pool, linear(256 -> 10) + b          scopes `batch_norm`, `logit`
//! ```
//!
//! The shortcut convolution reads the block's input before its BatchNorm (`conv(x_init, ..)`).
//! Every convolution has a bias, and TensorFlow's `padding='SAME'`: a 3x3 stride-2 convolution
//! of an even size pads (0, 1), so its windows are centred on odd pixels while the 1x1 stride-2
//! shortcut samples the even ones ([`crate::conv::tf_same_padding`]). 2,799,114 parameters with
//! 10 classes.
//!
//! [`AdaShiftResNet::tensorflow_setup`] is the authors' setup:
//! - kernels of convolutions and of the linear layer: `tf.contrib.layers.variance_scaling_initializer()`
//!   (factor 2, fan in, truncated normal of std sqrt(1.3 * 2 / fan_in)), i.e.
//!   [`Init::TfVarianceScaling`]`(Fan::In)`; biases zero (`tf.layers`' default);
//! - `tf.contrib.layers.batch_norm(decay=0.9, epsilon=1e-5, updates_collections=None)`: with
//!   `updates_collections=None` contrib takes its fused path, and TF 1.9's
//!   `tf.nn.fused_batch_norm` raises epsilon to at least 1.001e-5 (a cuDNN requirement), so the
//!   epsilon in effect is 1.001e-5; the running variance takes the unbiased batch variance, as
//!   here.
//!
//! Where the suite's model cannot follow the authors' graph:
//! - `ops.py` attaches `l2_regularizer(0.0001)` to every kernel, but `classification_loss` never
//!   adds the regularisation losses to the training loss: the weight decay the code seems to ask
//!   for is not applied, and the suite's task applies none by default either.
//! - The authors evaluate on the whole 10,000-image test set as one batch in inference mode
//!   (running statistics), which equals batched evaluation.
//! - The weights are drawn from the suite's seeded generator, not TensorFlow's: the same
//!   distributions, not the same numbers.
//!
//! The training set-up around the model (for the task `cifar10-resnet18-adashift` and its
//! configs; `main.py`, `ResNet.py` `train`, `utils.py`): batch 128, 50 epochs, the learning rate
//! x0.1 at the start of 0-based epochs 25 and 37 (`epoch == int(self.epoch * 0.5)` or
//! `int(self.epoch * 0.75)`); inputs divided by 255 only, no mean / std (`load_cifar10`); one
//! permutation of the training set drawn once (`np.random.seed(777)`), then the same order every
//! epoch; the partial last batch dropped (`len(train_x) // batch_size` = 390 steps); random
//! horizontal flip and a random 32x32 crop of the zero-padded (4) image; optimizer epsilon 1e-8
//! (`main.py` line 65); AdaShift lr 0.01, `keep_num` 10, `pred_g_op` max, Adam and AMSGrad 1e-3;
//! the test accuracy is logged every 20 steps (`test_span`), on the whole test set.

use candle::{Module, ModuleT, Result, Tensor};
use candle_nn::Linear;

use crate::conv::Conv2d;
use crate::init::{Fan, Init, LayerSetup, ParamBuilder};
use crate::layers::global_avg_pool;
use crate::norm::{BatchNorm2d, BnConfig};
use crate::scaled;

/// One pre-activation residual block (`ops.resblock`).
#[derive(Debug)]
struct Block {
    bn0: BatchNorm2d,
    conv0: Conv2d,
    bn1: BatchNorm2d,
    conv1: Conv2d,
    /// `conv_init`, the 1x1 stride-2 projection of a downsampling block.
    shortcut: Option<Conv2d>,
}

impl Block {
    fn new(b: &ParamBuilder, setup: &LayerSetup, inputs: usize, outputs: usize, downsample: bool) -> Result<Self> {
        let stride = if downsample { 2 } else { 1 };
        let conv = |name: &str, cin: usize, k: usize, s: usize| -> Result<Conv2d> {
            Ok(setup.conv2d(&b.pp(name), cin, outputs, k, s, k / 2, true)?.tf_same())
        };
        if !downsample && inputs != outputs {
            candle::bail!("AdaShift ResNet block {inputs} -> {outputs} channels without downsampling has no shortcut")
        }
        Ok(Self {
            bn0: setup.batch_norm(&b.pp("batch_norm_0"), inputs)?,
            conv0: conv("conv_0", inputs, 3, stride)?,
            bn1: setup.batch_norm(&b.pp("batch_norm_1"), outputs)?,
            conv1: conv("conv_1", outputs, 3, 1)?,
            shortcut: if downsample { Some(conv("conv_init", inputs, 1, 2)?) } else { None },
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.conv0.forward(&self.bn0.forward_relu_t(x, train, true)?)?;
        let h = self.conv1.forward(&self.bn1.forward_relu_t(&h, train, true)?)?;
        let shortcut = match &self.shortcut {
            Some(conv) => conv.forward(x)?,
            None => x.clone(),
        };
        h + shortcut
    }
}

/// AdaShift's pre-activation ResNet (`ResNet-CIFAR10/ResNet.py`).
#[derive(Debug)]
pub struct AdaShiftResNet {
    stem: Conv2d,
    blocks: Vec<Block>,
    bn: BatchNorm2d,
    logit: Linear,
}

impl AdaShiftResNet {
    /// The authors' initialisation and BatchNorm constants (see the module's documentation).
    pub fn tensorflow_setup() -> LayerSetup {
        LayerSetup {
            conv: Init::TfVarianceScaling(Fan::In),
            linear: Init::TfVarianceScaling(Fan::In),
            bn: BnConfig::tensorflow(0.9, 1.001e-5),
        }
    }

    /// A network of `blocks` per stage (`get_residual_layer`: [2, 2, 2, 2] for ResNet-18,
    /// [3, 4, 6, 3] for ResNet-34) with widths `32 width` x 1, 2, 4, 8. Parameter names follow
    /// the TensorFlow scopes: `conv`, `resblock{stage}_{i}.{batch_norm_0, conv_0, conv_init,
    /// batch_norm_1, conv_1}`, `batch_norm`, `logit` (the authors' stage 3 is `resblock_3_{i}`).
    pub fn new(b: &ParamBuilder, blocks: &[usize], classes: usize, width: f64, setup: &LayerSetup) -> Result<Self> {
        if blocks.is_empty() || blocks.contains(&0) {
            candle::bail!("AdaShift ResNet: blocks per stage {blocks:?} must be non-empty and positive")
        }
        let ch = scaled(32, width);
        let stem = setup.conv2d(&b.pp("conv"), 3, ch, 3, 1, 1, true)?.tf_same();
        let mut layers = Vec::new();
        let mut inputs = ch;
        for (stage, &n) in blocks.iter().enumerate() {
            let outputs = ch << stage;
            for i in 0..n {
                let downsample = stage > 0 && i == 0;
                layers.push(Block::new(&b.pp(format!("resblock{stage}_{i}")), setup, inputs, outputs, downsample)?);
                inputs = outputs;
            }
        }
        Ok(Self {
            stem,
            blocks: layers,
            bn: setup.batch_norm(&b.pp("batch_norm"), inputs)?,
            logit: setup.linear(&b.pp("logit"), inputs, classes, true)?,
        })
    }

    /// `--res_n 18`: 2,799,114 parameters with 10 classes and `width` 1.
    pub fn resnet18(b: &ParamBuilder, classes: usize, width: f64, setup: &LayerSetup) -> Result<Self> {
        Self::new(b, &[2, 2, 2, 2], classes, width, setup)
    }
}

impl ModuleT for AdaShiftResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = self.stem.forward(xs)?;
        for block in &self.blocks {
            x = block.forward_t(&x, train)?;
        }
        let x = global_avg_pool(&self.bn.forward_relu_t(&x, train, true)?)?;
        self.logit.forward(&x)
    }
}
