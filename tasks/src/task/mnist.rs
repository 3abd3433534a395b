//! The MNIST family (AdaShift's MNIST experiments, Zhou et al., ICLR 2019):
//! `mnist-logreg` and `mnist-mlp`, and the same on Fashion-MNIST. Pixels scaled to [0, 1], no
//! augmentation. The MLP has two hidden layers of 256 with ReLU by default; `activation =
//! "none"` is the authors' deep linear network. `init = "normal"` initialises as the authors'
//! TensorFlow files do: every weight and bias `N(0, 1)` for the MLP
//! (`MulitiLayer_MNIST/neural_network_raw.py`), weights `N(0, 0.01²)` and zero biases for the
//! logistic regression (`TF_MNIST_Logistic/mnist_logistic.py`); the default is PyTorch's
//! `nn.Linear` initialisation.

use models::mlp::{Activation, Init, Mlp};

use super::classify::{count_parameters, metrics, shared_images, Classifier, ClassifierSetup, Normalize};
use super::{Budget, Family, OptionSpec, Task, TaskContext, TaskInfo, MAIN_ONLY};
use crate::schedule::Schedule;

const ACTIVATIONS: &[&str] = &["relu", "none", "tanh", "sigmoid"];
const INITS: &[&str] = &["pytorch", "normal"];

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
            options: [
                vec![OptionSpec::choice(
                    "init",
                    "pytorch",
                    INITS,
                    "pytorch: nn.Linear's uniform; normal: weights N(0, 0.01²), biases 0, as mnist_logistic.py",
                )],
                subsets(),
            ]
            .concat(),
            budget: Budget::Epochs(20),
            batch_size: Some(128),
            eval_every: None,
            log_every: 10,
            schedule: Schedule::Constant,
            metrics: metrics(),
            optimizers: MAIN_ONLY,
            clip_norm: None,
            build: Box::new(move |ctx| build(ctx, dataset, Model::LogReg)),
            parameters: Some(Box::new(|ctx| count_parameters(|b| net(ctx, b, Model::LogReg, MNIST_INPUTS, 10)))),
        });
        let mut options = vec![
            OptionSpec::choice("activation", "relu", ACTIVATIONS, "between layers; the authors' code had none"),
            OptionSpec::new("hidden", 256i64, "units per hidden layer").at_least(1.0),
            OptionSpec::new("hidden_layers", 2i64, "hidden layers"),
            OptionSpec::choice(
                "init",
                "pytorch",
                INITS,
                "pytorch: nn.Linear's uniform; normal: every weight and bias N(0, 1), as neural_network_raw.py",
            ),
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
            optimizers: MAIN_ONLY,
            clip_norm: None,
            build: Box::new(move |ctx| build(ctx, dataset, Model::Mlp)),
            parameters: Some(Box::new(|ctx| count_parameters(|b| net(ctx, b, Model::Mlp, MNIST_INPUTS, 10)))),
        });
    }
    out
}

#[derive(Clone, Copy)]
enum Model {
    LogReg,
    Mlp,
}

/// Pixels of an MNIST or Fashion-MNIST image (1 x 28 x 28), for counting parameters without
/// the data; both have 10 classes.
const MNIST_INPUTS: usize = 28 * 28;

/// The network of `<data set>-logreg` or `<data set>-mlp` for `inputs` pixels and `classes`.
fn net(
    ctx: &TaskContext,
    b: &models::ParamBuilder,
    model: Model,
    inputs: usize,
    classes: usize,
) -> anyhow::Result<Box<dyn candle::ModuleT + Send + Sync>> {
    let mut sizes = vec![inputs];
    let activation = if let Model::Mlp = model {
        let (hidden, layers) = (ctx.count("hidden"), ctx.count("hidden_layers"));
        sizes.extend(std::iter::repeat_n(hidden, layers));
        Activation::parse(ctx.string("activation")).expect("checked against the choices")
    } else {
        Activation::None
    };
    sizes.push(classes);
    let init = match (ctx.string("init"), model) {
        ("normal", Model::Mlp) => Init::AUTHORS_MLP,
        ("normal", Model::LogReg) => Init::AUTHORS_LOGREG,
        _ => Init::PyTorch,
    };
    Ok(Box::new(Mlp::with_init(b, &sizes, activation, init)?))
}

/// Builds `<data set>-logreg` or `<data set>-mlp`.
fn build(ctx: &TaskContext, dataset: &str, model: Model) -> anyhow::Result<Box<dyn Task>> {
    let data = shared_images(dataset, ctx.data)?;
    let setup = ClassifierSetup {
        normalize: Normalize::unit(data.channels),
        data,
        default_batch_size: 64,
        augment: None,
        l2: 0.0,
    };
    let classifier =
        Classifier::new(ctx, setup, &|b, d| net(ctx, b, model, d.channels * d.height * d.width, d.classes))?;
    Ok(Box::new(classifier))
}
