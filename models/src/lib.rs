//! Models of the optbench suite, each created with PyTorch's default initialisation from the
//! suite's seeded random generator (see [`init`]).
//!
//! - [`mlp`]: MLPs and logistic regression for MNIST-sized inputs (AdaShift's MNIST setups).
//! - [`resnet`]: ResNet-18 / 34 for CIFAR.
//! - [`resnet_tf`]: AdaShift's TensorFlow ResNet-18 (pre-activation, widths 32-256).
//! - [`vgg`]: VGG-11 / 16 with BatchNorm for CIFAR, and AdaBelief's VGG-11 (no BatchNorm).
//! - [`densenet`]: DenseNet-121 for CIFAR, and AdaShift's smaller DenseNets.
//! - [`googlenet`]: GoogLeNet for CIFAR (Adai's, with its dropout and optional BatchNorm quirk).
//! - [`lstm`]: AWD-LSTM word language models (PTB, WikiText-2), with a fused CPU LSTM layer.
//! - [`transformer`]: the encoder-decoder Transformer of fairseq's `transformer_iwslt_de_en`.
//! - [`dcgan`]: DCGAN generator and critic for WGAN / WGAN-GP (AdaBelief's GAN experiments).
//! - [`inception`]: pytorch-fid's Inception-v3 feature network of FID (inference only).
//!
//! Each takes a `width` (or growth) that scales its channels, so that tests and CPU runs can use
//! small versions of the same architecture.

pub mod activation;
pub mod conv;
mod cpu;
pub mod dcgan;
pub mod densenet;
pub mod googlenet;
pub mod inception;
pub mod init;
pub mod layers;
pub mod linear;
pub mod lstm;
pub mod mlp;
pub mod norm;
pub mod resnet;
pub mod resnet_tf;
pub mod rng;
pub mod transformer;
pub mod vgg;

/// `channels * width`, rounded, at least 1.
pub fn scaled(channels: usize, width: f64) -> usize {
    ((channels as f64 * width).round() as usize).max(1)
}

pub use init::{Fan, Init, LayerSetup, ParamBuilder, Params};
pub use layers::{Dropout, DropoutState};
pub use norm::BnConfig;
pub use rng::{RngState, SeededRng};
