//! The MNIST family (AdaShift's MNIST experiments, Zhou et al., ICLR 2019):
//! `mnist-logreg` and `mnist-mlp`, and the same on Fashion-MNIST. Pixels scaled to [0, 1], no
//! augmentation. The MLP has two hidden layers of 256 with ReLU by default; `activation =
//! "none"` is the authors' deep linear network.

use models::mlp::{Activation, Mlp};
use models::{Params, SeededRng};

use super::classify::{shared_images, Classifier, ClassifierSetup, Normalize};
use super::{Budget, Family, Goal, MetricInfo, OptionSpec, Task, TaskContext, TaskInfo};
use crate::schedule::Schedule;

const ACTIVATIONS: &[&str] = &["relu", "none", "tanh", "sigmoid"];

fn metrics() -> Vec<MetricInfo> {
    vec![MetricInfo::new("test_accuracy", Goal::Max), MetricInfo::new("test_loss", Goal::Min)]
}

fn subsets() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new("train_subset", 0i64, "train on the first N images (0: all 60000)"),
        OptionSpec::new("test_subset", 0i64, "evaluate on the first N test images (0: all 10000)"),
    ]
}

pub fn tasks() -> Vec<TaskInfo> {
    let mut out = Vec::new();
    for (dataset, title) in [("mnist", "MNIST"), ("fashion-mnist", "Fashion-MNIST")] {
        out.push(TaskInfo {
            name: format!("{dataset}-logreg"),
            family: Family::Classifier,
            summary: format!("{title}: multinomial logistic regression (AdaShift Sec. 5)"),
            options: subsets(),
            budget: Budget::Epochs(20),
            batch_size: Some(128),
            eval_every: None,
            log_every: 10,
            schedule: Schedule::Constant,
            metrics: metrics(),
            build: if dataset == "mnist" { build_mnist_logreg } else { build_fashion_logreg },
        });
        let mut options = vec![
            OptionSpec::choice("activation", "relu", ACTIVATIONS, "between layers; the authors' code had none"),
            OptionSpec::new("hidden", 256i64, "units per hidden layer"),
            OptionSpec::new("hidden_layers", 2i64, "hidden layers"),
        ];
        options.extend(subsets());
        out.push(TaskInfo {
            name: format!("{dataset}-mlp"),
            family: Family::Classifier,
            summary: format!("{title}: MLP with two hidden layers of 256 (AdaShift Sec. 5)"),
            options,
            budget: Budget::Epochs(10),
            batch_size: Some(64),
            eval_every: None,
            log_every: 10,
            schedule: Schedule::Constant,
            metrics: metrics(),
            build: if dataset == "mnist" { build_mnist_mlp } else { build_fashion_mlp },
        });
    }
    out
}

fn build_mnist_logreg(ctx: &TaskContext) -> anyhow::Result<Box<dyn Task>> {
    build(ctx, "mnist", false)
}
fn build_fashion_logreg(ctx: &TaskContext) -> anyhow::Result<Box<dyn Task>> {
    build(ctx, "fashion-mnist", false)
}
fn build_mnist_mlp(ctx: &TaskContext) -> anyhow::Result<Box<dyn Task>> {
    build(ctx, "mnist", true)
}
fn build_fashion_mlp(ctx: &TaskContext) -> anyhow::Result<Box<dyn Task>> {
    build(ctx, "fashion-mnist", true)
}

fn count(ctx: &TaskContext, key: &str, min: i64) -> anyhow::Result<usize> {
    let v = ctx.int(key);
    anyhow::ensure!(v >= min, "option `{key}` must be at least {min}, not {v}");
    Ok(v as usize)
}

fn build(ctx: &TaskContext, dataset: &str, mlp: bool) -> anyhow::Result<Box<dyn Task>> {
    let data = shared_images(dataset, ctx.data)?;
    let inputs = data.channels * data.height * data.width;
    let mut sizes = vec![inputs];
    let activation = if mlp {
        let (hidden, layers) = (count(ctx, "hidden", 1)?, count(ctx, "hidden_layers", 0)?);
        sizes.extend(std::iter::repeat_n(hidden, layers));
        Activation::parse(ctx.string("activation")).expect("checked against the choices")
    } else {
        Activation::None
    };
    sizes.push(data.classes);
    let params = Params::new(SeededRng::new(ctx.seed).fork("init"), candle::DType::F32, ctx.device);
    let net = Mlp::new(&params.root(), &sizes, activation)?;
    let optimizer = ctx.build_optimizer(params.trainable())?;
    let classifier = Classifier::new(ClassifierSetup {
        net: Box::new(net),
        optimizer,
        train_subset: count(ctx, "train_subset", 0)?,
        test_subset: count(ctx, "test_subset", 0)?,
        batch_size: ctx.batch_size.unwrap_or(64),
        augment: None,
        normalize: Normalize::unit(data.channels),
        l2: 0.0,
        seed: ctx.seed,
        device: ctx.device.clone(),
        params,
        data,
    })?;
    Ok(Box::new(classifier))
}
