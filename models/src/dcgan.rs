//! DCGAN generator and critic (Radford et al., 2016) for WGAN and WGAN-GP, as AdaBelief's GAN
//! experiments define them: `juntang-zhuang/Adabelief-Optimizer`,
//! `PyTorch_Experiments/wgan-gp/main.py` (WGAN-GP) and `PyTorch_Experiments/wgan/main.py`
//! (WGAN), commit 2855178eff6776762793f915ce2c615f776a1e4b.
//!
//! ```text
//! generator (64x64, width w = ngf = 64, latent nz = 100):
//!   z (N, nz, 1, 1) -> ConvT(nz, 8w, 4, 1, 0) BN ReLU        8w x 4 x 4
//!                   -> ConvT(8w, 4w, 4, 2, 1) BN ReLU        4w x 8 x 8
//!                   -> ConvT(4w, 2w, 4, 2, 1) BN ReLU        2w x 16 x 16
//!                   -> ConvT(2w,  w, 4, 2, 1) BN ReLU         w x 32 x 32
//!                   -> ConvT( w,  c, 4, 2, 1) tanh            c x 64 x 64
//! critic (64x64, width w = ndf = 64):
//!   x -> Conv(c, w, 4, 2, 1) LReLU(0.2) -> Conv(w, 2w, 4, 2, 1) [BN] LReLU -> ..
//!     -> Conv(4w, 8w, 4, 2, 1) [BN] LReLU                   8w x 4 x 4
//!     -> head: Linear(8w 4 4, 1) (WGAN-GP)  or  Conv(8w, 1, 4, 1, 0) sigmoid (their WGAN)
//! ```
//! No convolution has a bias; the linear head has one. Initialisation as their `weights_init`:
//! convolution weights `N(0, 0.02²)`, BatchNorm gamma `N(1, 0.02²)`, beta 0; the linear head
//! keeps PyTorch's default. 32x32 images drop the first generator stage and the last critic
//! one (start 4w x 4 x 4); 28x28 ones (MNIST, not in their code, which resizes MNIST to 64) start
//! at 2w x 7 x 7 with a 7x7 first transposed convolution and end the critic at 2w x 7 x 7.
//!
//! Where this differs from their code: their WGAN-GP critic has BatchNorm after its 2nd-4th
//! convolutions, which makes the penalty of one sample depend on the others in its batch (the
//! WGAN-GP paper, Gulrajani et al. 2017, Sec. 4, says not to); here the critic of the penalty
//! has none ([`CriticNorm::None`]), and BatchNorm is offered for the weight-clipping WGAN only.
//!
//! The gradient penalty needs `d D(x) / dx` as a function of the critic's weights. Instead of
//! candle's second-order autograd (which needs `CANDLE_GRAD_DO_NOT_DETACH=1` for the whole
//! process, read once per thread), [`Critic::with_input_gradient`] writes the input gradient out
//! as ordinary ops, the backward pass of the critic by hand:
//! ```text
//! z_l = conv(h_{l-1}, W_l),  h_l = lrelu(z_l),  D = <h_L, w_head> + b
//! g_L = w_head,  g_{l-1} = conv_input_gradient(g_l * lrelu'(z_l), W_l),  dD/dx = g_0
//! ```
//! whose own backward (first order) gives the penalty's gradient with respect to every weight;
//! [`crate::conv::conv2d_input_gradient`] is differentiable in both its arguments.
//! `models/tests/gan.rs` checks it against candle's double backward, finite differences and
//! PyTorch's `autograd.grad(create_graph=True)`.

use candle::{DType, Module, ModuleT, Result, Tensor, D};
use candle_nn::Linear;

use crate::conv::{conv2d, conv2d_input_gradient, conv_transpose2d};
use crate::init::{self, ParamBuilder};
use crate::norm::BatchNorm2d;

/// LeakyReLU's negative slope in the critic.
pub const LEAKY_SLOPE: f64 = 0.2;
/// The standard deviation of DCGAN's weight initialisation.
pub const INIT_STD: f64 = 0.02;

/// The sizes of a DCGAN pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DcganConfig {
    /// Image side: 28, 32 or 64.
    pub image_size: usize,
    /// Image channels (1 grey, 3 colour).
    pub channels: usize,
    /// The latent dimension `nz`.
    pub latent: usize,
    /// The base width `ngf` of the generator.
    pub generator_width: usize,
    /// The base width `ndf` of the critic.
    pub critic_width: usize,
}

impl DcganConfig {
    /// AdaBelief's CIFAR-10 setup: 64x64 colour, nz 100, ngf = ndf = 64.
    pub fn adabelief_cifar() -> Self {
        Self { image_size: 64, channels: 3, latent: 100, generator_width: 64, critic_width: 64 }
    }

    /// (side of the smallest feature map, number of stride-2 stages).
    fn stages(&self) -> Result<(usize, usize)> {
        Ok(match self.image_size {
            64 => (4, 4),
            32 => (4, 3),
            28 => (7, 2),
            other => candle::bail!("DCGAN: images of side {other}; the architectures are for 28, 32 and 64"),
        })
    }
}

/// Whether the critic normalises its hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CriticNorm {
    None,
    /// BatchNorm after every convolution but the first (AdaBelief's critics).
    Batch,
}

/// The critic's last layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CriticHead {
    /// `Linear(features, 1)`, an unbounded score (AdaBelief's WGAN-GP).
    Linear,
    /// `Conv(features, 1, s, 1, 0)` then a sigmoid (AdaBelief's WGAN, kept from their DCGAN).
    ConvSigmoid,
}

/// The DCGAN generator: latent vectors (N, nz) to images (N, c, s, s) in [-1, 1].
#[derive(Debug)]
pub struct Generator {
    /// (transposed-convolution weight (Cin, Cout, k, k), stride, padding, BatchNorm + ReLU).
    layers: Vec<(Tensor, usize, usize, Option<BatchNorm2d>)>,
    latent: usize,
}

fn bn_dcgan(b: &ParamBuilder, channels: usize) -> Result<BatchNorm2d> {
    let weight = b.normal_around("weight", channels, 1.0, INIT_STD)?;
    let bias = b.constant("bias", channels, 0.0)?;
    let mean = b.buffer("running_mean", channels, 0.0)?;
    let var = b.buffer("running_var", channels, 1.0)?;
    BatchNorm2d::new(weight, bias, mean, var)
}

impl Generator {
    pub fn new(b: &ParamBuilder, config: &DcganConfig) -> Result<Self> {
        let (side, stages) = config.stages()?;
        let w = config.generator_width;
        let mut channels = w << (stages - 1);
        let mut layers = Vec::new();
        let weight = b.pp("convt0").normal("weight", (config.latent, channels, side, side), INIT_STD)?;
        layers.push((weight, 1, 0, Some(bn_dcgan(&b.pp("bn0"), channels)?)));
        for i in 1..stages {
            let out = channels / 2;
            let weight = b.pp(format!("convt{i}")).normal("weight", (channels, out, 4, 4), INIT_STD)?;
            layers.push((weight, 2, 1, Some(bn_dcgan(&b.pp(format!("bn{i}")), out)?)));
            channels = out;
        }
        let weight = b.pp(format!("convt{stages}")).normal("weight", (channels, config.channels, 4, 4), INIT_STD)?;
        layers.push((weight, 2, 1, None));
        Ok(Self { layers, latent: config.latent })
    }

    pub fn latent(&self) -> usize {
        self.latent
    }
}

impl ModuleT for Generator {
    fn forward_t(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        let n = z.dim(0)?;
        let mut h = z.reshape((n, self.latent, 1, 1))?;
        for (weight, stride, padding, bn) in &self.layers {
            h = conv_transpose2d(&h, weight, *stride, *padding)?;
            h = match bn {
                Some(bn) => bn.forward_relu_t(&h, train, true)?,
                None => h.tanh()?,
            };
        }
        Ok(h)
    }
}

/// LeakyReLU as `x * s(x)`, `s = 1` where `x > 0` and `slope` elsewhere (PyTorch's choice at 0):
/// the factor is a constant of the graph, so the second derivative is 0, as it is almost
/// everywhere.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    x * leaky_relu_slope(x, slope)?
}

/// The derivative of [`leaky_relu`] at `x`, as a constant tensor.
fn leaky_relu_slope(x: &Tensor, slope: f64) -> Result<Tensor> {
    x.gt(0.0)?.to_dtype(x.dtype())?.affine(1.0 - slope, slope)
}

/// The DCGAN critic (discriminator): images (N, c, s, s) to scores (N).
#[derive(Debug)]
pub struct Critic {
    /// Stride-2 4x4 convolutions (Cout, Cin, 4, 4), each with an optional BatchNorm.
    convs: Vec<(Tensor, Option<BatchNorm2d>)>,
    head: Head,
}

#[derive(Debug)]
enum Head {
    Linear(Linear),
    ConvSigmoid(Tensor),
}

impl Critic {
    pub fn new(b: &ParamBuilder, config: &DcganConfig, norm: CriticNorm, head: CriticHead) -> Result<Self> {
        let (side, stages) = config.stages()?;
        let w = config.critic_width;
        let mut convs = Vec::new();
        let mut channels = config.channels;
        for i in 0..stages {
            let out = w << i;
            let weight = b.pp(format!("conv{i}")).normal("weight", (out, channels, 4, 4), INIT_STD)?;
            let bn =
                if i > 0 && norm == CriticNorm::Batch { Some(bn_dcgan(&b.pp(format!("bn{i}")), out)?) } else { None };
            convs.push((weight, bn));
            channels = out;
        }
        let head = match head {
            CriticHead::Linear => Head::Linear(init::linear(&b.pp("linear"), channels * side * side, 1, true)?),
            CriticHead::ConvSigmoid => {
                Head::ConvSigmoid(b.pp("head").normal("weight", (1, channels, side, side), INIT_STD)?)
            }
        };
        Ok(Self { convs, head })
    }

    /// The scores `D(x)` (N) and their gradients with respect to the input, `dD(x_n)/dx_n`
    /// (N, c, s, s), the latter as ordinary (differentiable) ops: see the module documentation.
    /// Only for a critic without BatchNorm and with the linear head.
    pub fn with_input_gradient(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let Head::Linear(linear) = &self.head else {
            candle::bail!("the gradient penalty needs the critic's linear head (WGAN-GP), not the sigmoid one")
        };
        let mut h = x.clone();
        let mut inputs = Vec::with_capacity(self.convs.len());
        let mut slopes = Vec::with_capacity(self.convs.len());
        for (weight, bn) in &self.convs {
            if bn.is_some() {
                candle::bail!("the gradient penalty needs a critic without BatchNorm (critic_norm = \"none\")")
            }
            let (_, _, hh, ww) = h.dims4()?;
            inputs.push((hh, ww));
            let z = conv2d(&h, weight, 2, 1)?;
            let slope = leaky_relu_slope(&z, LEAKY_SLOPE)?;
            h = (z * &slope)?;
            slopes.push(slope);
        }
        let n = h.dim(0)?;
        let features = h.dims()[1..].to_vec();
        let score = linear.forward(&h.flatten_from(1)?)?.squeeze(D::Minus1)?;
        let mut shape = vec![n];
        shape.extend(&features);
        let mut g = linear.weight().broadcast_as((n, linear.weight().dim(1)?))?.reshape(shape)?;
        for (((weight, _), input), slope) in self.convs.iter().zip(inputs).zip(slopes).rev() {
            g = conv2d_input_gradient(&(g * slope)?, weight, 2, 1, input)?;
        }
        Ok((score, g))
    }
}

impl ModuleT for Critic {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for (weight, bn) in &self.convs {
            h = conv2d(&h, weight, 2, 1)?;
            if let Some(bn) = bn {
                h = bn.forward_t(&h, train)?;
            }
            h = leaky_relu(&h, LEAKY_SLOPE)?;
        }
        match &self.head {
            Head::Linear(linear) => linear.forward(&h.flatten_from(1)?)?.squeeze(D::Minus1),
            Head::ConvSigmoid(weight) => candle_nn::ops::sigmoid(&conv2d(&h, weight, 1, 0)?.flatten_all()?),
        }
    }
}

/// Which penalty on the critic's input gradients.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Penalty {
    /// WGAN-GP (Gulrajani et al. 2017, Eq. 3): `lambda mean_n (||g_n||_2 - 1)²`.
    Gp { lambda: f64 },
    /// AdaShift's maxGP (`mknbv/adashift:author_code_base/WGAN/wgan_gp-master/gan_realdata4.py`,
    /// `bMaxGP`): `weight max_n ||g_n||_2²`.
    MaxGp { weight: f64 },
}

/// The penalty of `critic` at `x_hat = eps real + (1 - eps) fake`, one `eps` per sample
/// (`eps` of shape (N)), and the slopes `||g_n||_2` (N) at the interpolates. `real` and `fake`
/// are taken as constants.
pub fn gradient_penalty(
    critic: &Critic,
    real: &Tensor,
    fake: &Tensor,
    eps: &Tensor,
    penalty: Penalty,
) -> Result<(Tensor, Tensor)> {
    let n = real.dim(0)?;
    let eps = eps.reshape((n, 1, 1, 1))?.to_dtype(real.dtype())?;
    let (real, fake) = (real.detach(), fake.detach());
    let x_hat = (real.broadcast_mul(&eps)? + fake.broadcast_mul(&eps.affine(-1.0, 1.0)?)?)?;
    let (_, g) = critic.with_input_gradient(&x_hat)?;
    let squared = g.flatten_from(1)?.sqr()?.sum(1)?;
    let value = match penalty {
        Penalty::Gp { lambda } => (squared.sqrt()? - 1.0)?.sqr()?.mean_all()?.affine(lambda, 0.0)?,
        Penalty::MaxGp { weight } => squared.max(0)?.affine(weight, 0.0)?,
    };
    Ok((value, squared.sqrt()?.to_dtype(DType::F64)?))
}
