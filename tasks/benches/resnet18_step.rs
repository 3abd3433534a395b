//! One training step of ResNet-18 (CIFAR, full width) at batch 128 on 32x32 inputs with SGD
//! (momentum 0.9): forward in training mode, cross-entropy, backward, optimizer step. The
//! same work as `scripts/bench/resnet18_step.py` in PyTorch; `scripts/bench/resnet18.sh` runs
//! both and prints the ratio.
//!
//!     cargo bench -p tasks --bench resnet18_step -- [--steps N] [--batch B] [--device cpu|cuda]
//!         [--model resnet18|resnet34|vgg11|densenet121|googlenet] [--width W]
//!
//! Prints the median step time after a warm-up step, split into forward, backward and
//! optimizer step.

mod common;

use candle::{DType, ModuleT, Tensor};
use models::resnet::ResNet;
use models::{LayerSetup, Params, SeededRng};
use optimizers::OptimizerSpec;

use common::{arg, parsed};

fn main() -> anyhow::Result<()> {
    tasks::init_process();
    let steps: usize = parsed("--steps", 5)?;
    let batch: usize = parsed("--batch", 128)?;
    let device = tasks::runner::execute::open_device(&arg("--device").unwrap_or_else(|| "cpu".into()))?;
    let width: f64 = parsed("--width", 1.0)?;
    let model = arg("--model").unwrap_or_else(|| "resnet18".into());
    let params = Params::new(SeededRng::new(0), DType::F32, &device);
    let root = params.root();
    let net: Box<dyn ModuleT> = match model.as_str() {
        "resnet18" => Box::new(ResNet::resnet18(&root, 10, width, &LayerSetup::default())?),
        "resnet34" => Box::new(ResNet::resnet34(&root, 10, width, &LayerSetup::default())?),
        "vgg11" => Box::new(models::vgg::Vgg::vgg11(&root, 10, width, &LayerSetup::default())?),
        "densenet121" => Box::new(models::densenet::DenseNet::densenet121(&root, 10, width, &LayerSetup::default())?),
        "googlenet" => Box::new(models::googlenet::GoogLeNet::new(
            &root,
            10,
            &models::googlenet::GoogLeNetConfig::width(width),
            &LayerSetup::default(),
        )?),
        other => anyhow::bail!("--model {other}: resnet18, resnet34, vgg11, densenet121 or googlenet"),
    };
    let spec = OptimizerSpec::new("sgd").with("lr", 0.1).with("momentum", 0.9).with("weight_decay", 5e-4);
    let mut opt = spec.build(params.trainable())?;
    let mut rng = SeededRng::new(1);
    let x = Tensor::from_vec(rng.normal_vec(batch * 3 * 32 * 32, 0.0, 1.0), (batch, 3, 32, 32), &device)?;
    let y = Tensor::from_vec((0..batch as u32).map(|i| i % 10).collect::<Vec<_>>(), batch, &device)?;
    let mut times = common::StepTimes::default();
    for i in 0..=steps {
        let loss = || Ok((candle_nn::loss::cross_entropy(&net.forward_t(&x, true)?, &y)?, ()));
        times.step(&device, i == 0, loss, |grads| opt.step(grads))?;
    }
    println!(
        "optbench {model} (width {width}) step, batch {batch}, {:?}: {}",
        device.location(),
        times.summary("SGD step")
    );
    Ok(())
}
