//! The MNIST family (AdaShift's MNIST experiments, Zhou et al., ICLR 2019):
//! `mnist-logreg` and `mnist-mlp`, and the same on Fashion-MNIST. Pixels scaled to [0, 1], no
//! augmentation. The MLP has two hidden layers of 256 with ReLU by default; `activation =
//! "none"` is the authors' deep linear network. `init = "normal"` initialises as the authors'
//! TensorFlow files do: every weight and bias `N(0, 1)` for the MLP
//! (`MulitiLayer_MNIST/neural_network_raw.py`), weights `N(0, 0.01²)` and zero biases for the
//! logistic regression (`TF_MNIST_Logistic/mnist_logistic.py`); the default is PyTorch's
//! `nn.Linear` initialisation.
//!
//! Both files read MNIST with TensorFlow's `input_data.read_data_sets`
//! (`tensorflow/contrib/learn/python/learn/datasets/mnist.py`): its validation set is the FIRST
//! 5,000 training images and its training set the remaining 55,000 (images 5,000..60,000, not the
//! first 55,000), batches come from `next_batch` (a permutation per epoch, batches across epoch
//! ends: `order = "stream"`), `int(55000 / batch_size)` steps an epoch, and the test accuracy is
//! of the 10,000 test images (`mnist.test`; the validation set is never used). `split =
//! "tensorflow"` trains on those 55,000; evaluation stays on the test set, as theirs.

use models::mlp::{Activation, Init, Mlp};

use super::classify::{
    count_parameters, metrics, pipeline_options, shared_images, Classifier, ClassifierSetup, Normalize,
};
use super::{Budget, Family, OptionSpec, Task, TaskContext, TaskInfo, MAIN_ONLY};
use crate::schedule::Schedule;

const ACTIVATIONS: &[&str] = &["relu", "none", "tanh", "sigmoid"];
const INITS: &[&str] = &["pytorch", "normal"];

/// The size of TensorFlow's MNIST validation set, the first images of the training split.
const TF_VALIDATION: usize = 5000;

/// The subsets, the split and the pipeline options of every MNIST task.
fn subsets() -> Vec<OptionSpec> {
    let mut options = vec![
        OptionSpec::new("train_subset", 0i64, "train on the first N images (0: all of the split)"),
        OptionSpec::new("test_subset", 0i64, "evaluate on the first N test images (0: all 10000)"),
        OptionSpec::choice(
            "split",
            "all",
            &["all", "tensorflow"],
            "all: the 60,000 training images; tensorflow: images 5,000..60,000, the 55,000 of TensorFlow's \
             read_data_sets (its validation set, the first 5,000, left out)",
        ),
    ];
    options.extend(pipeline_options(&["scale", "standardize"], "scale"));
    options
}

/// The training images of `split` in a training split of `count` images.
fn train_images(split: &str, count: usize) -> anyhow::Result<Option<std::ops::Range<usize>>> {
    if split != "tensorflow" {
        return Ok(None);
    }
    anyhow::ensure!(
        count > TF_VALIDATION,
        "split = \"tensorflow\" leaves out the first {TF_VALIDATION} training images, and this data set has \
         {count}; use split = \"all\""
    );
    Ok(Some(TF_VALIDATION..count))
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
        train_images: train_images(ctx.string("split"), data.train.count)?,
        downsample: 1,
        data,
        default_batch_size: 64,
        augment: None,
        l2: 0.0,
    };
    let classifier =
        Classifier::new(ctx, setup, &|b, d| net(ctx, b, model, d.channels * d.height * d.width, d.classes))?;
    Ok(Box::new(classifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tensorflow_split_trains_on_the_images_after_the_first_5000() {
        assert_eq!(train_images("all", 60000).unwrap(), None);
        assert_eq!(train_images("tensorflow", 60000).unwrap(), Some(5000..60000));
        let err = train_images("tensorflow", 5000).unwrap_err().to_string();
        assert!(err.contains("first 5000") && err.contains("split = \"all\""), "{err}");
    }
}
