//! GANs: WGAN-GP and WGAN with DCGAN models (`models::dcgan`), as AdaBelief's GAN experiments
//! (`juntang-zhuang/Adabelief-Optimizer`, `PyTorch_Experiments/wgan-gp/main.py` and
//! `PyTorch_Experiments/wgan/main.py`, commit 2855178e), and AdaShift's critic-only experiment
//! (`mknbv/adashift:author_code_base/WGAN/wgan_gp-master/gan_realdata4.py`, bf86b021).
//!
//! One `train_step` is a round: `n_critic` critic steps, each on a new real batch and new
//! noise, then one generator step on the noise of the last critic step (their loop trains the
//! generator after every `n_critic`-th critic step with that step's `z`, `main.py:307-354`):
//! ```text
//! critic:    L_D = mean D(G(z)) - mean D(x)  [+ penalty at x_hat = eps x + (1 - eps) G(z)]
//!            [then every critic weight clamped to [-clip_value, clip_value]: WGAN]
//! generator: L_G = -mean D(G(z))
//! ```
//! `critic_loss` (the first loss: divergence and `train_loss`) and `generator_loss` are the
//! means over the round. Images are scaled to [-1, 1] (`Normalize((0.5,), (0.5,))`); CIFAR-10 at
//! 64x64 is upsampled bilinearly as their `transforms.Resize(64)`. The critic-only task keeps
//! the generator at its random initialisation (AdaShift's `iTrainG = 0`: their generator is
//! never trained, nor loaded), in evaluation mode.
//!
//! Metrics at each evaluation: `fid` (see [`features`] and [`fid`]; on CIFAR-10 pytorch-fid's
//! Inception features, [`inception`], when the options name its weights, else `fid` is missing
//! and a note says so) and `wasserstein`,
//! the critic's estimate `mean D(x) - mean D(G(z))` on a fixed batch of test images and fixed
//! noise. A PNG grid of the generator's images of fixed noise is written beside the result at
//! each evaluation ([`Task::artifacts`]).

pub mod features;
pub mod fid;
pub mod inception;
pub mod png;

use std::sync::Arc;

use candle::{DType, Device, ModuleT, Tensor};
use models::dcgan::{gradient_penalty, Critic, CriticHead, CriticNorm, DcganConfig, Generator, Penalty};
use models::{Params, SeededRng};
use optimizers::BoxedOptimizer;

use super::classify::shared_images;
use super::{Budget, Family, Goal, Losses, MetricInfo, Metrics, OptionSpec, Task, TaskContext, TaskInfo, TaskState};
use crate::data::batches::{Normalize, Order, Prefetcher, Sampler};
use crate::data::ImageData;
use crate::schedule::Schedule;

/// The roles of a GAN's optimizers.
pub const CRITIC_AND_GENERATOR: &[&str] = &["critic", "generator"];
/// The role of the critic-only task's optimizer.
pub const CRITIC_ONLY: &[&str] = &["critic"];

/// Real images of the fixed batch that `wasserstein` is measured on.
const WASSERSTEIN_IMAGES: usize = 500;
/// Images of the sample grid (8 x 8).
const GRID: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// WGAN-GP: the penalty, no clipping, critic without BatchNorm, linear head.
    WganGp,
    /// WGAN: weight clipping, BatchNorm in the critic and the sigmoid head (AdaBelief's).
    Wgan,
    /// AdaShift's: the critic trained against a fixed generator, maxGP.
    CriticOnly,
}

struct Defaults {
    image_size: i64,
    penalty: &'static str,
    penalty_weight: f64,
    clip_value: f64,
    critic_norm: &'static str,
    critic_head: &'static str,
}

impl Kind {
    fn defaults(self, image_size: i64) -> Defaults {
        match self {
            Kind::WganGp => Defaults {
                image_size,
                penalty: "gp",
                penalty_weight: 10.0,
                clip_value: 0.0,
                critic_norm: "none",
                critic_head: "linear",
            },
            Kind::Wgan => Defaults {
                image_size,
                penalty: "none",
                penalty_weight: 10.0,
                clip_value: 0.01,
                critic_norm: "batch",
                critic_head: "conv-sigmoid",
            },
            Kind::CriticOnly => Defaults {
                image_size,
                penalty: "max-gp",
                penalty_weight: 0.1,
                clip_value: 0.0,
                critic_norm: "none",
                critic_head: "linear",
            },
        }
    }
}

fn options(d: Defaults, sizes: &'static [&'static str]) -> Vec<OptionSpec> {
    let mut out = vec![
        OptionSpec::new("latent", 100i64, "the latent dimension nz (main.py:29)").at_least(1.0),
        OptionSpec::new("generator_width", 64i64, "the generator's base width ngf (main.py:30)").at_least(1.0),
        OptionSpec::new("critic_width", 64i64, "the critic's base width ndf (main.py:31)").at_least(1.0),
        OptionSpec::new("n_critic", 5i64, "critic steps per round (AdaBelief main.py:50; AdaShift iTrainD)")
            .at_least(1.0),
        OptionSpec::choice(
            "penalty",
            d.penalty,
            &["gp", "max-gp", "none"],
            "gp: lambda mean (||grad D(x_hat)|| - 1)²; max-gp: AdaShift's weight max ||grad D(x_hat)||²; none",
        ),
        OptionSpec::new(
            "penalty_weight",
            d.penalty_weight,
            "lambda of gp (10, main.py:21) or the weight of max-gp (0.1)",
        )
        .at_least(0.0),
        OptionSpec::new(
            "clip_value",
            d.clip_value,
            "WGAN: clamp every critic weight to [-c, c] after each critic step (0: off; 0.01, main.py:51)",
        )
        .at_least(0.0),
        OptionSpec::choice(
            "critic_norm",
            d.critic_norm,
            &["none", "batch"],
            "BatchNorm after the critic's 2nd.. convolutions (AdaBelief's); not with a penalty",
        ),
        OptionSpec::choice(
            "critic_head",
            d.critic_head,
            &["linear", "conv-sigmoid"],
            "linear: Linear(features, 1) (WGAN-GP); conv-sigmoid: Conv(features, 1, 4) and a sigmoid (their WGAN)",
        ),
        OptionSpec::new("train_subset", 0i64, "train on the first N training images (0: all)"),
        OptionSpec::new(
            "fid_samples",
            10000i64,
            "generated and real images of each FID (their code: 64,000 generated)",
        )
        .at_least(2.0),
    ];
    if sizes.len() > 1 {
        out.push(OptionSpec::new(
            "fid_weights",
            "",
            "pytorch-fid's Inception weights as safetensors (scripts/fid/export_inception.py); empty: no FID",
        ));
        out.push(OptionSpec::new(
            "fid_weights_repo",
            "",
            "a Hub repository (owner/name[/file]) holding those weights, when fid_weights is empty",
        ));
        out.push(OptionSpec::choice(
            "image_size",
            if d.image_size == 64 { "64" } else { "32" },
            sizes,
            "64: CIFAR-10 upsampled bilinearly (their Resize(64)); 32: as stored",
        ));
    }
    out
}

fn metrics(kind: Kind) -> Vec<MetricInfo> {
    match kind {
        // A better critic of a fixed generator estimates a larger distance.
        Kind::CriticOnly => vec![MetricInfo::new("wasserstein", Goal::Max)],
        _ => vec![MetricInfo::new("fid", Goal::Min), MetricInfo::new("wasserstein", Goal::Min)],
    }
}

struct Dataset {
    name: &'static str,
    title: &'static str,
    image_size: usize,
    channels: usize,
}

const MNIST: Dataset = Dataset { name: "mnist", title: "MNIST", image_size: 28, channels: 1 };
const FASHION: Dataset = Dataset { name: "fashion-mnist", title: "Fashion-MNIST", image_size: 28, channels: 1 };
const CIFAR10: Dataset = Dataset { name: "cifar10", title: "CIFAR-10", image_size: 32, channels: 3 };

fn info(dataset: &'static Dataset, kind: Kind, name: &str, summary: String, budget: Budget, size: i64) -> TaskInfo {
    let sizes: &'static [&'static str] = if dataset.channels == 3 { &["32", "64"] } else { &["28"] };
    TaskInfo {
        name: name.to_string(),
        family: Family::Gan,
        summary,
        options: options(kind.defaults(size), sizes),
        budget,
        batch_size: Some(64),
        eval_every: None,
        log_every: 10,
        schedule: Schedule::Constant,
        metrics: metrics(kind),
        optimizers: if kind == Kind::CriticOnly { CRITIC_ONLY } else { CRITIC_AND_GENERATOR },
        clip_norm: None,
        build: Box::new(move |ctx| Ok(Box::new(Gan::new(ctx, dataset, kind)?) as Box<dyn Task>)),
        parameters: Some(Box::new(move |ctx| {
            let params = Params::new(SeededRng::new(0), DType::F32, &Device::Cpu);
            let setup = Setup::of(ctx, dataset)?;
            Critic::new(&params.root().pp("critic"), &setup.config, setup.norm, setup.head)?;
            if kind != Kind::CriticOnly {
                Generator::new(&params.root().pp("generator"), &setup.config)?;
            }
            Ok(params.count())
        })),
    }
}

pub fn tasks() -> Vec<TaskInfo> {
    let mut out = Vec::new();
    for dataset in [&MNIST, &FASHION] {
        out.push(info(
            dataset,
            Kind::WganGp,
            &format!("{}-wgan-gp", dataset.name),
            format!("{}: WGAN-GP, DCGAN generator and critic at 28x28 (trained-classifier FID)", dataset.title),
            Budget::Epochs(20),
            28,
        ));
    }
    // `main.py:32`: 100 epochs (`--niter`), a round per n_critic batches.
    out.push(info(
        &CIFAR10,
        Kind::WganGp,
        "cifar10-wgan-gp",
        "CIFAR-10: WGAN-GP, DCGAN 64x64 (AdaBelief Fig. 6)".into(),
        Budget::Epochs(100),
        64,
    ));
    out.push(info(
        &CIFAR10,
        Kind::Wgan,
        "cifar10-wgan",
        "CIFAR-10: WGAN with weight clipping, DCGAN 64x64 (AdaBelief Fig. 6)".into(),
        Budget::Epochs(100),
        64,
    ));
    out.push(info(
        &CIFAR10,
        Kind::CriticOnly,
        "cifar10-wgan-critic",
        "CIFAR-10: a WGAN critic with maxGP trained against a fixed random generator (AdaShift)".into(),
        Budget::Steps(10000),
        32,
    ));
    out
}

/// What the options make of the models.
struct Setup {
    config: DcganConfig,
    norm: CriticNorm,
    head: CriticHead,
    penalty: Option<Penalty>,
}

impl Setup {
    fn of(ctx: &TaskContext, dataset: &Dataset) -> anyhow::Result<Self> {
        let image_size = if dataset.channels == 3 {
            ctx.string("image_size").parse().expect("checked against the choices")
        } else {
            dataset.image_size
        };
        let config = DcganConfig {
            image_size,
            channels: dataset.channels,
            latent: ctx.count("latent"),
            generator_width: ctx.count("generator_width"),
            critic_width: ctx.count("critic_width"),
        };
        let norm = if ctx.string("critic_norm") == "batch" { CriticNorm::Batch } else { CriticNorm::None };
        let head = if ctx.string("critic_head") == "linear" { CriticHead::Linear } else { CriticHead::ConvSigmoid };
        let weight = ctx.f64("penalty_weight");
        let penalty = match ctx.string("penalty") {
            "gp" => Some(Penalty::Gp { lambda: weight }),
            "max-gp" => Some(Penalty::MaxGp { weight }),
            _ => None,
        };
        if penalty.is_some() {
            anyhow::ensure!(
                norm == CriticNorm::None && head == CriticHead::Linear,
                "task `{}`: penalty = \"{}\" needs critic_norm = \"none\" and critic_head = \"linear\" (a BatchNorm \
                 critic mixes the samples whose gradients are penalised); set penalty = \"none\" for that critic",
                ctx.info.name,
                ctx.string("penalty")
            );
        }
        Ok(Self { config, norm, head, penalty })
    }
}

/// Bilinear upsampling by an integer factor with half-pixel centres (PIL's and torchvision's
/// `Resize` when enlarging), on one CHW image.
fn upsample_bilinear(image: &[f32], channels: usize, side: usize, factor: usize) -> Vec<f32> {
    let out_side = side * factor;
    let mut out = Vec::with_capacity(channels * out_side * out_side);
    let coord = |o: usize| {
        let src = ((o as f64 + 0.5) / factor as f64 - 0.5).clamp(0.0, (side - 1) as f64);
        let lo = src.floor() as usize;
        (lo, (lo + 1).min(side - 1), (src - lo as f64) as f32)
    };
    for c in 0..channels {
        let plane = &image[c * side * side..(c + 1) * side * side];
        for oy in 0..out_side {
            let (y0, y1, fy) = coord(oy);
            for ox in 0..out_side {
                let (x0, x1, fx) = coord(ox);
                let top = plane[y0 * side + x0] * (1.0 - fx) + plane[y0 * side + x1] * fx;
                let bottom = plane[y1 * side + x0] * (1.0 - fx) + plane[y1 * side + x1] * fx;
                out.push(top * (1.0 - fy) + bottom * fy);
            }
        }
    }
    out
}

/// How FID is measured on this data set.
enum FidSetup {
    /// The trained classifier's features, and the real images' statistics.
    Classifier { net: features::FeatureNet, real: fid::Statistics },
    /// pytorch-fid's Inception-v3 (CIFAR-10 with its weights).
    Inception(Box<inception::InceptionFid>),
    /// Not available (CIFAR-10 without the Inception weights): `fid` is NaN.
    Unavailable,
}

/// A GAN being trained.
pub struct Gan {
    generator: Generator,
    critic: Critic,
    generator_params: Params,
    critic_params: Params,
    critic_optimizer: BoxedOptimizer,
    /// `None`: the generator is fixed (critic-only).
    generator_optimizer: Option<BoxedOptimizer>,
    penalty: Option<Penalty>,
    clip_value: f64,
    n_critic: usize,
    latent: usize,
    /// Image side the models see (CIFAR-10 upsampled to 64 when asked).
    side: usize,
    factor: usize,
    channels: usize,
    batches: Prefetcher,
    train: Sampler,
    order: SeededRng,
    /// The noise of the latent vectors and the penalty's interpolation weights.
    noise: SeededRng,
    seed: u64,
    steps_per_epoch: u64,
    /// The fixed evaluation batch of real images (already at `side`) for `wasserstein`.
    eval_real: Tensor,
    fid: FidSetup,
    fid_samples: usize,
    data: Arc<ImageData>,
    device: Device,
}

impl Gan {
    fn new(ctx: &TaskContext, dataset: &'static Dataset, kind: Kind) -> anyhow::Result<Self> {
        let setup = Setup::of(ctx, dataset)?;
        let data = shared_images(dataset.name, ctx.data)?;
        anyhow::ensure!(
            data.height == dataset.image_size && data.width == dataset.image_size && data.channels == dataset.channels,
            "task `{}`: {} has {}x{}x{} images, the task expects {}x{}x{}",
            ctx.info.name,
            data.name,
            data.channels,
            data.height,
            data.width,
            dataset.channels,
            dataset.image_size,
            dataset.image_size
        );
        let side = setup.config.image_size;
        let factor = side / dataset.image_size;
        let generator_params = Params::new(SeededRng::new(ctx.seed).fork("generator-init"), DType::F32, ctx.device);
        let critic_params = Params::new(SeededRng::new(ctx.seed).fork("critic-init"), DType::F32, ctx.device);
        let generator = Generator::new(&generator_params.root(), &setup.config)?;
        let critic = Critic::new(&critic_params.root(), &setup.config, setup.norm, setup.head)?;
        let critic_optimizer = ctx.build_optimizer("critic", critic_params.trainable())?;
        let generator_optimizer = if kind == Kind::CriticOnly {
            None
        } else {
            Some(ctx.build_optimizer("generator", generator_params.trainable())?)
        };
        let batch_size = ctx.batch_size.unwrap_or(64);
        let train_count = match ctx.count("train_subset") {
            0 => data.train.count,
            n => n.min(data.train.count),
        };
        anyhow::ensure!(
            train_count >= batch_size,
            "task `{}`: {train_count} training images make no batch of {batch_size}",
            ctx.info.name
        );
        let n_critic = ctx.count("n_critic");
        let half = Normalize { mean: vec![0.5; data.channels], std: vec![0.5; data.channels] };
        let train = Sampler {
            order: Order::Stream,
            drop_last: true,
            ..Sampler::new(data.clone(), false, train_count, batch_size, half.clone())
        };
        let order = SeededRng::new(ctx.seed).fork("data-order");
        let steps_per_epoch = (train.steps_per_epoch() / n_critic as u64).max(1);
        let eval = Sampler::new(data.clone(), true, WASSERSTEIN_IMAGES.min(data.test.count), 1, half);
        let mut images = Vec::new();
        for i in 0..eval.count {
            let mut one = Vec::new();
            eval.image_into(i, None, &mut one);
            images.extend(if factor > 1 {
                upsample_bilinear(&one, data.channels, dataset.image_size, factor)
            } else {
                one
            });
        }
        let eval_real = Tensor::from_vec(images, (eval.count, data.channels, side, side), ctx.device)?;
        let fid_samples = ctx.count("fid_samples");
        let fid = if dataset.channels == 1 {
            let cache = ctx.data.cache_dir.clone().unwrap_or_else(crate::data::cache::default_cache_dir);
            let net = features::FeatureNet::for_data(&data, &cache)?;
            eprintln!(
                "{}: FID features from the suite's {} classifier (test accuracy {:.2}%, {}); not comparable with Inception FID",
                ctx.info.name,
                data.name,
                100.0 * net.test_accuracy,
                net.path.display()
            );
            let indices: Vec<usize> = (0..fid_samples.min(data.train.count)).collect();
            let real = fid::Statistics::of(&net.real_features(&data, &indices)?, features::FEATURES)?;
            FidSetup::Classifier { net, real }
        } else if kind == Kind::CriticOnly {
            FidSetup::Unavailable
        } else {
            let located =
                inception::locate_weights(ctx.string("fid_weights"), ctx.string("fid_weights_repo"), ctx.data);
            match located {
                Ok(Some(weights)) => {
                    let cache = ctx.data.cache_dir.clone().unwrap_or_else(crate::data::cache::default_cache_dir);
                    let fid = inception::InceptionFid::new(&weights, &data, fid_samples, &cache)?;
                    eprintln!(
                        "{}: FID from pytorch-fid's Inception-v3 ({}), {} generated images at each evaluation \
                         against {} real ones ({})",
                        ctx.info.name,
                        weights.display(),
                        fid_samples,
                        fid.real.stats.count,
                        fid.cache.display()
                    );
                    FidSetup::Inception(Box::new(fid))
                }
                Ok(None) => {
                    eprintln!(
                        "{}: no FID: no Inception weights (options `fid_weights` / `fid_weights_repo` are empty); \
                         `fid` is recorded as missing, `wasserstein` as usual. To measure it: {}",
                        ctx.info.name,
                        inception::HOW_TO_GET
                    );
                    FidSetup::Unavailable
                }
                Err(e) if e.starts_with("fid_weights_repo") => {
                    eprintln!("{}: no FID: {e}; `fid` is recorded as missing, `wasserstein` as usual", ctx.info.name);
                    FidSetup::Unavailable
                }
                Err(e) => anyhow::bail!("task `{}`: {e}", ctx.info.name),
            }
        };
        Ok(Self {
            generator,
            critic,
            generator_params,
            critic_params,
            critic_optimizer,
            generator_optimizer,
            penalty: setup.penalty,
            clip_value: ctx.f64("clip_value"),
            n_critic,
            latent: setup.config.latent,
            side,
            factor,
            channels: data.channels,
            batches: train.clone().spawn(order.clone(), 0),
            train,
            order,
            noise: SeededRng::new(ctx.seed).fork("noise"),
            seed: ctx.seed,
            steps_per_epoch,
            eval_real,
            fid,
            fid_samples,
            data,
            device: ctx.device.clone(),
        })
    }

    fn real_batch(&mut self) -> anyhow::Result<Tensor> {
        let batch = self.batches.batches.recv().map_err(|_| anyhow::anyhow!("the batch thread stopped"))?;
        let n = batch.labels.len();
        let (c, s) = (self.channels, self.side / self.factor);
        let images = if self.factor > 1 {
            batch.images.chunks(c * s * s).flat_map(|im| upsample_bilinear(im, c, s, self.factor)).collect()
        } else {
            batch.images
        };
        Ok(Tensor::from_vec(images, (n, c, self.side, self.side), &self.device)?)
    }

    fn generator_trains(&self) -> bool {
        self.generator_optimizer.is_some()
    }

    /// Generated images of `n` latent vectors from `rng`, in evaluation mode, in batches.
    fn generate(&self, rng: &mut SeededRng, n: usize) -> anyhow::Result<Vec<Tensor>> {
        let mut out = Vec::new();
        let mut left = n;
        while left > 0 {
            let m = left.min(500);
            out.push(self.generator.forward_t(&normal(rng, m, self.latent, &self.device)?, false)?);
            left -= m;
        }
        Ok(out)
    }

    fn clip(&self) -> anyhow::Result<()> {
        if self.clip_value > 0.0 {
            for var in self.critic_params.trainable() {
                var.set(&var.as_tensor().clamp(-self.clip_value, self.clip_value)?)?;
            }
        }
        Ok(())
    }

    fn fid(&self) -> anyhow::Result<f64> {
        if matches!(self.fid, FidSetup::Unavailable) {
            return Ok(f64::NAN);
        }
        let mut rng = SeededRng::new(self.seed).fork("fid-noise");
        let mut feats = Vec::new();
        for images in self.generate(&mut rng, self.fid_samples)? {
            match &self.fid {
                FidSetup::Classifier { net, .. } => {
                    feats.extend(net.features(&images.affine(0.5, 0.5)?)?.flatten_all()?.to_vec1::<f32>()?)
                }
                FidSetup::Inception(fid) => feats.extend(fid.features(&images)?),
                FidSetup::Unavailable => unreachable!("returned above"),
            }
        }
        match &self.fid {
            FidSetup::Classifier { real, .. } => {
                fid::frechet_distance(real, &fid::Statistics::of(&feats, features::FEATURES)?)
            }
            FidSetup::Inception(fid) => fid.distance(&feats),
            FidSetup::Unavailable => unreachable!("returned above"),
        }
    }
}

/// `n` latent vectors N(0, I) from `rng`.
fn normal(rng: &mut SeededRng, n: usize, latent: usize, device: &Device) -> candle::Result<Tensor> {
    Tensor::from_vec(rng.normal_vec(n * latent, 0.0, 1.0), (n, latent), device)
}

fn scalar(t: &Tensor) -> anyhow::Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

impl Task for Gan {
    fn steps_per_epoch(&self) -> Option<u64> {
        Some(self.steps_per_epoch)
    }

    fn optimizers(&mut self) -> Vec<(&'static str, &mut BoxedOptimizer)> {
        let mut out = vec![("critic", &mut self.critic_optimizer)];
        if let Some(g) = self.generator_optimizer.as_mut() {
            out.push(("generator", g));
        }
        out
    }

    fn train_step(&mut self, _step: u64) -> anyhow::Result<Losses> {
        let train_generator = self.generator_trains();
        let mut critic_sum = 0.0;
        let mut z = None;
        for _ in 0..self.n_critic {
            let real = self.real_batch()?;
            let n = real.dim(0)?;
            let zi = normal(&mut self.noise, n, self.latent, &self.device)?;
            let fake = self.generator.forward_t(&zi, train_generator)?.detach();
            let mut loss =
                (self.critic.forward_t(&fake, true)?.mean_all()? - self.critic.forward_t(&real, true)?.mean_all()?)?;
            if let Some(penalty) = self.penalty {
                let eps: Vec<f32> = (0..n).map(|_| self.noise.uniform() as f32).collect();
                let eps = Tensor::from_vec(eps, n, &self.device)?;
                let (value, _) = gradient_penalty(&self.critic, &real, &fake, &eps, penalty)?;
                loss = (loss + value)?;
            }
            self.critic_optimizer.backward_step(&loss)?;
            self.clip()?;
            critic_sum += scalar(&loss)?;
            z = Some(zi);
        }
        let mut losses = vec![("critic_loss", critic_sum / self.n_critic as f64)];
        if let (Some(optimizer), Some(z)) = (self.generator_optimizer.as_mut(), z) {
            let fake = self.generator.forward_t(&z, true)?;
            let loss = self.critic.forward_t(&fake, true)?.mean_all()?.neg()?;
            let grads = loss.backward()?;
            optimizer.step(&grads)?;
            losses.push(("generator_loss", scalar(&loss)?));
        }
        Ok(losses)
    }

    fn evaluate(&mut self) -> anyhow::Result<Metrics> {
        let n = self.eval_real.dim(0)?;
        let mut rng = SeededRng::new(self.seed).fork("wasserstein-noise");
        let fake = Tensor::cat(&self.generate(&mut rng, n)?, 0)?;
        let real_score = scalar(&self.critic.forward_t(&self.eval_real, false)?.mean_all()?)?;
        let fake_score = scalar(&self.critic.forward_t(&fake, false)?.mean_all()?)?;
        let wasserstein = real_score - fake_score;
        if matches!(self.fid, FidSetup::Unavailable) && !self.generator_trains() {
            return Ok(vec![("wasserstein".into(), wasserstein)]);
        }
        Ok(vec![("fid".into(), self.fid()?), ("wasserstein".into(), wasserstein)])
    }

    fn artifacts(&mut self, step: u64) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let mut rng = SeededRng::new(self.seed).fork("sample-grid");
        let images = Tensor::cat(&self.generate(&mut rng, GRID)?, 0)?;
        let bytes = png::grid(&images)?;
        Ok(vec![(format!("samples-{step:06}.png"), bytes)])
    }

    fn state(&self, _step: u64) -> anyhow::Result<TaskState> {
        let mut state = TaskState::default();
        let mut meta = serde_json::Map::new();
        for (prefix, params) in [("critic", &self.critic_params), ("generator", &self.generator_params)] {
            let part = super::model_state(params);
            for (name, t) in part.tensors {
                state.tensors.insert(format!("{prefix}.{name}"), t);
            }
            meta.insert(prefix.to_string(), part.meta);
        }
        meta.insert("noise".into(), serde_json::to_value(self.noise.state())?);
        state.meta = serde_json::Value::Object(meta);
        Ok(state)
    }

    fn restore(&mut self, state: &TaskState, step: u64) -> anyhow::Result<()> {
        for (prefix, params) in [("critic", &self.critic_params), ("generator", &self.generator_params)] {
            let part = TaskState {
                tensors: state
                    .tensors
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix(&format!("{prefix}.")).map(|k| (k.to_string(), v.clone())))
                    .collect(),
                meta: state.meta[prefix].clone(),
            };
            super::restore_model(params, &part)?;
        }
        let noise = serde_json::from_value(state.meta["noise"].clone())
            .map_err(|e| anyhow::anyhow!("the checkpoint's noise generator: {e}"))?;
        self.noise = SeededRng::from_state(noise);
        // The data position: n_critic batches a round.
        self.batches = self.train.clone().spawn(self.order.clone(), step * self.n_critic as u64);
        Ok(())
    }

    fn data(&self) -> Vec<super::DataRecord> {
        vec![self.data.record.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_upsampling_keeps_constant_images_and_interpolates_between_pixels() {
        let image = vec![0.0, 1.0, 2.0, 3.0]; // 1 x 2 x 2
        let up = upsample_bilinear(&image, 1, 2, 2);
        assert_eq!(up.len(), 16);
        // Row 0: x 0, 0.25, 0.75, 1 (edges clamped, half-pixel centres).
        assert_eq!(&up[..4], &[0.0, 0.25, 0.75, 1.0]);
        let flat = upsample_bilinear(&[0.5; 12], 3, 2, 2);
        assert!(flat.iter().all(|&v| v == 0.5));
    }
}
