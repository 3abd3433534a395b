//! One WGAN-GP round at AdaBelief's CIFAR-10 size: 5 critic steps (each: a generator forward
//! of new noise, the critic on real and generated images, the gradient penalty, backward, Adam
//! step) and one generator step, DCGAN 64x64 (ngf = ndf = 64, nz 100), batch 64, Adam lr 2e-4
//! beta1 0.5. The same work as `scripts/bench/wgan_round.py` in PyTorch; `scripts/bench/wgan.sh`
//! runs both and prints the ratio.
//!
//!     cargo bench -p tasks --bench wgan_round -- [--rounds N] [--batch B] [--width W] [--device cpu|cuda]
//!
//! Prints the median round time after a warm-up round, and the part of the critic steps.

mod common;

use std::time::Instant;

use candle::{DType, ModuleT, Tensor};
use models::dcgan::{gradient_penalty, Critic, CriticHead, CriticNorm, DcganConfig, Generator, Penalty};
use models::{Params, SeededRng};
use optimizers::OptimizerSpec;

use common::{arg, median, parsed};

fn main() -> anyhow::Result<()> {
    tasks::init_process();
    let rounds: usize = parsed("--rounds", 3)?;
    let batch: usize = parsed("--batch", 64)?;
    let width: usize = parsed("--width", 64)?;
    let device = tasks::runner::execute::open_device(&arg("--device").unwrap_or_else(|| "cpu".into()))?;
    let config = DcganConfig { generator_width: width, critic_width: width, ..DcganConfig::adabelief_cifar() };
    let (gp, dp) =
        (Params::new(SeededRng::new(0), DType::F32, &device), Params::new(SeededRng::new(1), DType::F32, &device));
    let generator = Generator::new(&gp.root(), &config)?;
    let critic = Critic::new(&dp.root(), &config, CriticNorm::None, CriticHead::Linear)?;
    let adam = OptimizerSpec::new("adam").with("lr", 2e-4).with("beta1", 0.5);
    let (mut g_opt, mut d_opt) = (adam.build(gp.trainable())?, adam.build(dp.trainable())?);
    let mut rng = SeededRng::new(2);
    let real = Tensor::from_vec(rng.uniform_vec(batch * 3 * 64 * 64, -1.0, 1.0), (batch, 3, 64, 64), &device)?;
    let (mut totals, mut critic_parts) = (Vec::new(), Vec::new());
    for i in 0..=rounds {
        let t0 = Instant::now();
        let mut z = None;
        for _ in 0..5 {
            let zi = Tensor::from_vec(rng.normal_vec(batch * 100, 0.0, 1.0), (batch, 100), &device)?;
            let fake = generator.forward_t(&zi, true)?.detach();
            let eps = Tensor::from_vec(rng.uniform_vec(batch, 0.0, 1.0), batch, &device)?;
            let (penalty, _) = gradient_penalty(&critic, &real, &fake, &eps, Penalty::Gp { lambda: 10.0 })?;
            let loss =
                ((critic.forward_t(&fake, true)?.mean_all()? - critic.forward_t(&real, true)?.mean_all()?)? + penalty)?;
            d_opt.backward_step(&loss)?;
            z = Some(zi);
        }
        device.synchronize()?;
        let t1 = Instant::now();
        let fake = generator.forward_t(&z.expect("5 critic steps"), true)?;
        let loss = critic.forward_t(&fake, true)?.mean_all()?.neg()?;
        g_opt.step(&loss.backward()?)?;
        device.synchronize()?;
        let t2 = Instant::now();
        if i > 0 {
            totals.push((t2 - t0).as_secs_f64());
            critic_parts.push((t1 - t0).as_secs_f64());
        }
    }
    println!(
        "optbench WGAN-GP round (DCGAN 64x64, width {width}), batch {batch}, {:?}: median {:.3} s (5 critic steps {:.3} s) over {rounds} rounds",
        device.location(),
        median(totals),
        median(critic_parts),
    );
    Ok(())
}
