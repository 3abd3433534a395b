//! The model benchmarks, one implementation each for `optbench bench` and the `cargo bench`
//! binaries: the same work as the PyTorch halves under `scripts/bench/` (`mnist_mlp.py`,
//! `resnet18_step.py`, `transformer_step.py`, `lstm_step.py`, `wgan_round.py`).
//!
//! Each configuration has the paper-sized defaults (`Default`) and `quick()` sizes that run in
//! well under a second, for the command's `--quick` and its test.

use std::path::PathBuf;
use std::time::Instant;

use candle::{DType, Device, ModuleT, Tensor};
use models::dcgan::{gradient_penalty, Critic, CriticHead, CriticNorm, DcganConfig, Generator, Penalty};
use models::lstm::{activation_regularizers, LstmKernel, LstmLm, LstmLmConfig};
use models::mlp::{Activation, Mlp};
use models::resnet::ResNet;
use models::transformer::{Transformer, TransformerConfig};
use models::{LayerSetup, Params, SeededRng};
use optimizers::{HyperValue, OptimizerSpec};

use super::{median, Measured, StepTimes};
use crate::data::DataSettings;
use crate::task::{self, TaskContext};

/// The MNIST MLP (784-256-256-10, ReLU), Adam lr 1e-3, batch 64: the time of one epoch.
#[derive(Debug, Clone)]
pub struct MnistConfig {
    /// A folder holding `mnist/`: the suite's task then trains on the real, shuffled data
    /// (offline). Without one, or when the task cannot load it, the same steps run on random
    /// batches of MNIST's shape (the note says which).
    pub data_dir: Option<PathBuf>,
    /// Steps timed; the epoch's time is extrapolated from them when fewer than an epoch.
    /// `None`: the whole epoch (938 steps).
    pub steps: Option<u64>,
    /// Epochs (or truncated epochs) timed.
    pub repeats: usize,
}

impl Default for MnistConfig {
    fn default() -> Self {
        MnistConfig { data_dir: None, steps: None, repeats: 1 }
    }
}

impl MnistConfig {
    pub fn quick() -> Self {
        MnistConfig { steps: Some(20), ..Default::default() }
    }
}

/// Steps in an MNIST epoch at batch 64 (60,000 images, the last batch partial).
pub const MNIST_EPOCH_STEPS: u64 = 938;

/// One MNIST epoch (or its extrapolation from `steps`), `repeats` times, with the seed of each
/// repeat its index.
pub fn mnist_mlp(config: &MnistConfig, device: &Device) -> anyhow::Result<Measured> {
    let spec = OptimizerSpec::new("adam").with("lr", 1e-3).resolve()?;
    let mut out = Measured::default();
    for r in 0..config.repeats {
        let (seconds, note) = match mnist_task_epoch(config, &spec, r as u64, device) {
            Ok(done) => done,
            Err(why) => {
                let steps = config.steps.unwrap_or(MNIST_EPOCH_STEPS).min(MNIST_EPOCH_STEPS);
                let secs =
                    mnist_random_steps(&spec, steps, r as u64, device)? * MNIST_EPOCH_STEPS as f64 / steps as f64;
                let why = match &config.data_dir {
                    None => "no --data-dir".to_string(),
                    Some(_) => format!("{why:#}"),
                };
                (secs, format!("random batches of MNIST's shape ({why}), {}", steps_note(steps)))
            }
        };
        out.seconds.push(seconds);
        out.note = note;
    }
    Ok(out)
}

fn steps_note(steps: u64) -> String {
    if steps >= MNIST_EPOCH_STEPS {
        format!("{MNIST_EPOCH_STEPS} steps")
    } else {
        format!("{steps} steps extrapolated to {MNIST_EPOCH_STEPS}")
    }
}

/// The suite's `mnist-mlp` task (shuffled batches prepared on its background thread), trained
/// for `config.steps` steps; the seconds extrapolated to an epoch.
fn mnist_task_epoch(
    config: &MnistConfig,
    spec: &OptimizerSpec,
    seed: u64,
    device: &Device,
) -> anyhow::Result<(f64, String)> {
    let dir = config.data_dir.clone().ok_or_else(|| anyhow::anyhow!("no --data-dir"))?;
    let settings = DataSettings { data_dirs: vec![dir], offline: true, ..Default::default() }.with_system_dirs();
    let info = task::find("mnist-mlp").ok_or_else(|| anyhow::anyhow!("the mnist-mlp task is not registered"))?;
    // The whole training set, as the PyTorch half trains on all 60,000 images.
    let given = [("valid_size".to_string(), HyperValue::Int(0))].into();
    let options = info.resolve_options(&given).map_err(|e| anyhow::anyhow!("mnist-mlp options: {e:?}"))?;
    let ctx = TaskContext {
        info,
        options: &options,
        optimizer: spec,
        roles: &Default::default(),
        clip_norm: None,
        batch_size: Some(64),
        seed,
        device,
        data: &settings,
    };
    let mut t = (info.build)(&ctx)?;
    let epoch = t.steps_per_epoch().unwrap_or(MNIST_EPOCH_STEPS);
    let steps = config.steps.unwrap_or(epoch).clamp(1, epoch);
    let started = Instant::now();
    for step in 1..=steps {
        t.train_step(step)?;
    }
    let seconds = started.elapsed().as_secs_f64() * epoch as f64 / steps as f64;
    Ok((seconds, format!("the mnist-mlp task on MNIST, {}", steps_note(steps))))
}

/// `steps` MLP steps on random batches made before the clock starts; their seconds.
fn mnist_random_steps(spec: &OptimizerSpec, steps: u64, seed: u64, device: &Device) -> anyhow::Result<f64> {
    let params = Params::new(SeededRng::new(seed), DType::F32, device);
    let net = Mlp::new(&params.root(), &[784, 256, 256, 10], Activation::Relu)?;
    let mut opt = spec.build(params.trainable())?;
    let mut rng = SeededRng::new(seed + 1);
    let batches = 8;
    let xs: Vec<Tensor> = (0..batches)
        .map(|_| Tensor::from_vec(rng.uniform_vec(64 * 784, 0.0, 1.0), (64, 784), device))
        .collect::<candle::Result<_>>()?;
    let y = Tensor::from_vec((0..64u32).map(|i| i % 10).collect::<Vec<_>>(), 64, device)?;
    let started = Instant::now();
    for step in 0..steps {
        let loss = candle_nn::loss::cross_entropy(&net.forward_t(&xs[step as usize % batches], true)?, &y)?;
        opt.step(&loss.backward()?)?;
    }
    device.synchronize()?;
    Ok(started.elapsed().as_secs_f64())
}

/// One MLP step split into forward + backward and the Adam step (fused kernel, then candle
/// tensor ops), medians of `n` steps in milliseconds: `(forward+backward, fused, tensor ops)`.
pub fn mnist_step_breakdown(n: usize, device: &Device) -> anyhow::Result<(f64, f64, f64)> {
    let spec = OptimizerSpec::new("adam").with("lr", 1e-3).resolve()?;
    let params = Params::new(SeededRng::new(0), DType::F32, device);
    let net = Mlp::new(&params.root(), &[784, 256, 256, 10], Activation::Relu)?;
    let mut opt = spec.build(params.trainable())?;
    let mut rng = SeededRng::new(1);
    let x = Tensor::from_vec(rng.uniform_vec(64 * 784, 0.0, 1.0), (64, 784), device)?;
    let y = Tensor::from_vec((0..64u32).map(|i| i % 10).collect::<Vec<_>>(), 64, device)?;
    let mut fb = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let loss = candle_nn::loss::cross_entropy(&net.forward_t(&x, true)?, &y)?;
        let grads = loss.backward()?;
        fb.push(t0.elapsed().as_secs_f64() * 1e3);
        opt.step(&grads)?;
    }
    let loss = candle_nn::loss::cross_entropy(&net.forward_t(&x, true)?, &y)?;
    let grads = loss.backward()?;
    let mut tensor_ops = spec.build_with_kernels(params.trainable(), optimizers::Kernels::TensorOps)?;
    let (mut fused, mut composed) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t0 = Instant::now();
        opt.step(&grads)?;
        fused.push(t0.elapsed().as_secs_f64() * 1e3);
        let t0 = Instant::now();
        tensor_ops.step(&grads)?;
        composed.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    Ok((median(&fb), median(&fused), median(&composed)))
}

/// A CIFAR classifier's training step (32x32 inputs, 10 classes), SGD lr 0.1, momentum 0.9,
/// weight decay 5e-4, on a fixed random batch.
#[derive(Debug, Clone)]
pub struct ResnetConfig {
    /// resnet18, resnet34, vgg11, densenet121 or googlenet.
    pub model: String,
    /// Channel width multiplier (1 = the paper's).
    pub width: f64,
    pub batch: usize,
    /// Timed steps, after one warm-up step.
    pub steps: usize,
}

impl Default for ResnetConfig {
    fn default() -> Self {
        ResnetConfig { model: "resnet18".into(), width: 1.0, batch: 128, steps: 3 }
    }
}

impl ResnetConfig {
    pub fn quick() -> Self {
        ResnetConfig { width: 0.125, batch: 8, steps: 1, ..Default::default() }
    }
}

/// Times [`ResnetConfig`]'s steps: forward in training mode, cross-entropy, backward, SGD.
pub fn resnet_step(config: &ResnetConfig, device: &Device) -> anyhow::Result<Measured> {
    let params = Params::new(SeededRng::new(0), DType::F32, device);
    let root = params.root();
    let (width, setup) = (config.width, LayerSetup::default());
    let net: Box<dyn ModuleT> = match config.model.as_str() {
        "resnet18" => Box::new(ResNet::resnet18(&root, 10, width, &setup)?),
        "resnet34" => Box::new(ResNet::resnet34(&root, 10, width, &setup)?),
        "vgg11" => Box::new(models::vgg::Vgg::vgg11(&root, 10, width, &setup)?),
        "densenet121" => Box::new(models::densenet::DenseNet::densenet121(&root, 10, width, &setup)?),
        "googlenet" => Box::new(models::googlenet::GoogLeNet::new(
            &root,
            10,
            &models::googlenet::GoogLeNetConfig::width(width),
            &setup,
        )?),
        other => anyhow::bail!("model {other}: resnet18, resnet34, vgg11, densenet121 or googlenet"),
    };
    let spec = OptimizerSpec::new("sgd").with("lr", 0.1).with("momentum", 0.9).with("weight_decay", 5e-4);
    let mut opt = spec.build(params.trainable())?;
    let batch = config.batch;
    let mut rng = SeededRng::new(1);
    let x = Tensor::from_vec(rng.normal_vec(batch * 3 * 32 * 32, 0.0, 1.0), (batch, 3, 32, 32), device)?;
    let y = Tensor::from_vec((0..batch as u32).map(|i| i % 10).collect::<Vec<_>>(), batch, device)?;
    let mut times = StepTimes::default();
    for i in 0..=config.steps {
        let loss = || Ok((candle_nn::loss::cross_entropy(&net.forward_t(&x, true)?, &y)?, ()));
        times.step(device, i == 0, loss, |grads| opt.step(grads))?;
    }
    let note = format!("{} (width {width}), batch {batch}, {:?}", config.model, device.location());
    Ok(times.measured("SGD step", note))
}

/// A step of fairseq's `transformer_iwslt_de_en` (post-LN, d 512, FFN 1024, 4 heads, 6 + 6
/// layers, dropout 0.3, shared decoder embeddings) on random tokens, label smoothing 0.1,
/// Adam lr 5e-4 beta2 0.98.
#[derive(Debug, Clone)]
pub struct TransformerBenchConfig {
    pub steps: usize,
    pub sentences: usize,
    pub len: usize,
    pub vocab: usize,
    pub d: usize,
    pub ffn: usize,
    pub layers: usize,
}

impl Default for TransformerBenchConfig {
    fn default() -> Self {
        TransformerBenchConfig { steps: 2, sentences: 128, len: 32, vocab: 10_000, d: 512, ffn: 1024, layers: 6 }
    }
}

impl TransformerBenchConfig {
    pub fn quick() -> Self {
        TransformerBenchConfig { steps: 1, sentences: 4, len: 8, vocab: 200, d: 32, ffn: 64, layers: 1 }
    }
}

pub fn transformer_step(config: &TransformerBenchConfig, device: &Device) -> anyhow::Result<Measured> {
    let model_config = TransformerConfig {
        d_model: config.d,
        ffn: config.ffn,
        encoder_layers: config.layers,
        decoder_layers: config.layers,
        ..TransformerConfig::iwslt_de_en(config.vocab, config.vocab)
    };
    let params = Params::new(SeededRng::new(0), DType::F32, device);
    let model = Transformer::new(&params.root(), &model_config)?;
    let spec = OptimizerSpec::new("adam").with("lr", 5e-4).with("beta2", 0.98);
    let mut opt = spec.build(params.trainable())?;
    let mut rng = SeededRng::new(1);
    let (sentences, vocab) = (config.sentences, config.vocab);
    let mut tokens = |n: usize| -> Vec<Vec<u32>> {
        (0..sentences).map(|_| (0..n).map(|_| 4 + rng.below(vocab - 4) as u32).collect()).collect()
    };
    let (src, prev, gold) = (tokens(config.len), tokens(config.len), tokens(config.len));
    let mut times = StepTimes::default();
    for i in 0..=config.steps {
        let loss = || {
            let logits = model.forward(&src, &prev, true)?;
            let (loss, _, n) = crate::task::translation::label_smoothed_loss(&logits, &gold, 0.1)?;
            Ok(((loss / n as f64)?, ()))
        };
        times.step(device, i == 0, loss, |grads| opt.step(grads))?;
    }
    let note = format!(
        "{} parameters, {sentences} x {} tokens, d {}, {} + {} layers, {:?}",
        params.count(),
        config.len,
        config.d,
        config.layers,
        config.layers,
        device.location()
    );
    Ok(times.measured("Adam step", note))
}

/// A step of AdaBelief's PTB AWD-LSTM (tied, AdaBelief's dropouts) on random tokens: forward,
/// cross-entropy plus AR / TAR, backward, clipping to 0.25 and SGD (lr 30, weight decay 1.2e-6).
#[derive(Debug, Clone)]
pub struct LstmBenchConfig {
    pub steps: usize,
    pub batch: usize,
    pub bptt: usize,
    pub vocab: usize,
    pub emsize: usize,
    pub nhid: usize,
    pub layers: usize,
    pub kernel: LstmKernel,
}

impl Default for LstmBenchConfig {
    fn default() -> Self {
        LstmBenchConfig {
            steps: 2,
            batch: 20,
            bptt: 70,
            vocab: 10_000,
            emsize: 400,
            nhid: 1150,
            layers: 3,
            kernel: LstmKernel::Auto,
        }
    }
}

impl LstmBenchConfig {
    pub fn quick() -> Self {
        LstmBenchConfig {
            steps: 1,
            batch: 4,
            bptt: 8,
            vocab: 100,
            emsize: 16,
            nhid: 32,
            layers: 2,
            ..Default::default()
        }
    }
}

pub fn lstm_step(config: &LstmBenchConfig, device: &Device) -> anyhow::Result<Measured> {
    let lm = LstmLmConfig {
        vocab: config.vocab,
        emsize: config.emsize,
        nhid: config.nhid,
        layers: config.layers,
        ..LstmLmConfig::default()
    };
    let params = Params::new(SeededRng::new(0), DType::F32, device);
    let model = LstmLm::new(&params.root(), &lm)?.with_kernel(config.kernel);
    let vars = params.trainable();
    let spec = OptimizerSpec::new("sgd").with("lr", 30.0).with("weight_decay", 1.2e-6);
    let mut opt = crate::task::clip::Clipped::new(spec.build(vars.clone())?, vars, 0.25);
    let (batch, bptt) = (config.batch, config.bptt);
    let mut rng = SeededRng::new(1);
    let ids: Vec<u32> = (0..(bptt + 1) * batch).map(|_| rng.below(lm.vocab) as u32).collect();
    let x = Tensor::from_slice(&ids[..bptt * batch], (bptt, batch), device)?;
    let y = Tensor::from_slice(&ids[batch..], bptt * batch, device)?;
    let mut state = model.zero_state(batch)?;
    let mut times = StepTimes::default();
    for i in 0..=config.steps {
        let loss = || {
            let out = model.forward(&x, &state, true)?;
            let ce = out.loss(&y)?;
            let reg = activation_regularizers(&out, 2.0, 1.0)?
                .ok_or_else(|| anyhow::anyhow!("AR/TAR with alpha 2, beta 1 gave no term"))?;
            Ok(((&ce + reg)?, out))
        };
        let out = times.step(device, i == 0, loss, |grads| optimizers::DynOptimizer::step(&mut opt, grads))?;
        state = out.state.iter().map(|s| s.detach()).collect();
    }
    let note = format!(
        "{} layers, emsize {}, nhid {}, vocab {}, batch {batch}, bptt {bptt}, {:?}, {:?}",
        lm.layers,
        lm.emsize,
        lm.nhid,
        lm.vocab,
        config.kernel,
        device.location()
    );
    Ok(times.measured("clip + SGD step", note))
}

/// A WGAN-GP round of AdaBelief's CIFAR-10 DCGAN (64x64, nz 100): 5 critic steps with the
/// gradient penalty (lambda 10) and one generator step, Adam lr 2e-4 beta1 0.5.
#[derive(Debug, Clone)]
pub struct WganConfig {
    /// Timed rounds, after one warm-up round.
    pub rounds: usize,
    pub batch: usize,
    /// ngf = ndf.
    pub width: usize,
}

impl Default for WganConfig {
    fn default() -> Self {
        WganConfig { rounds: 2, batch: 64, width: 64 }
    }
}

impl WganConfig {
    pub fn quick() -> Self {
        WganConfig { rounds: 1, batch: 2, width: 4 }
    }
}

pub fn wgan_round(config: &WganConfig, device: &Device) -> anyhow::Result<Measured> {
    let (batch, width) = (config.batch, config.width);
    let dc = DcganConfig { generator_width: width, critic_width: width, ..DcganConfig::adabelief_cifar() };
    let (gp, dp) =
        (Params::new(SeededRng::new(0), DType::F32, device), Params::new(SeededRng::new(1), DType::F32, device));
    let generator = Generator::new(&gp.root(), &dc)?;
    let critic = Critic::new(&dp.root(), &dc, CriticNorm::None, CriticHead::Linear)?;
    let adam = OptimizerSpec::new("adam").with("lr", 2e-4).with("beta1", 0.5);
    let (mut g_opt, mut d_opt) = (adam.build(gp.trainable())?, adam.build(dp.trainable())?);
    let mut rng = SeededRng::new(2);
    let real = Tensor::from_vec(rng.uniform_vec(batch * 3 * 64 * 64, -1.0, 1.0), (batch, 3, 64, 64), device)?;
    let (mut totals, mut critic_parts) = (Vec::new(), Vec::new());
    for i in 0..=config.rounds {
        let t0 = Instant::now();
        let mut z = Tensor::zeros((batch, 100), DType::F32, device)?;
        for _ in 0..5 {
            z = Tensor::from_vec(rng.normal_vec(batch * 100, 0.0, 1.0), (batch, 100), device)?;
            let fake = generator.forward_t(&z, true)?.detach();
            let eps = Tensor::from_vec(rng.uniform_vec(batch, 0.0, 1.0), batch, device)?;
            let (penalty, _) = gradient_penalty(&critic, &real, &fake, &eps, Penalty::Gp { lambda: 10.0 })?;
            let loss =
                ((critic.forward_t(&fake, true)?.mean_all()? - critic.forward_t(&real, true)?.mean_all()?)? + penalty)?;
            d_opt.backward_step(&loss)?;
        }
        device.synchronize()?;
        let t1 = Instant::now();
        let fake = generator.forward_t(&z, true)?;
        let loss = critic.forward_t(&fake, true)?.mean_all()?.neg()?;
        g_opt.step(&loss.backward()?)?;
        device.synchronize()?;
        let t2 = Instant::now();
        if i > 0 {
            totals.push((t2 - t0).as_secs_f64());
            critic_parts.push((t1 - t0).as_secs_f64());
        }
    }
    Ok(Measured {
        seconds: totals,
        parts: vec![("5 critic steps".into(), critic_parts)],
        note: format!("DCGAN 64x64, width {width}, batch {batch}, {:?}", device.location()),
    })
}
