//! The CIFAR and Tiny-ImageNet tasks behind the papers' tables: `<data set>-<model>` for
//! CIFAR-10 and CIFAR-100 with ResNet-18/34, VGG-11/16 and DenseNet-121 (AdaBelief, Adai,
//! AdaMod), AdaShift's DenseNet and AdaShift's TensorFlow ResNet-18 (`cifar10-resnet18-adashift`),
//! and `tinyimagenet-densenet` (AdaShift). Random crop with
//! zero padding and horizontal flip (seeded), per-channel normalisation, test loss and top-1
//! accuracy every epoch. The input pipeline's options (normalisation, crop padding fill and
//! offsets, data order, dropping the partial batch, Tiny-ImageNet's 2x2 downsampling) default
//! to that PyTorch pipeline; the AdaShift configs set their authors' (see
//! [`crate::data::batches`]).

use candle::ModuleT;
use models::densenet::DenseNet;
use models::googlenet::GoogLeNet;
use models::resnet::ResNet;
use models::resnet_tf::AdaShiftResNet;
use models::vgg::Vgg;
use models::{LayerSetup, ParamBuilder};

use super::classify::{
    count_parameters, metrics, pipeline_options, shared_images, Augment, Classifier, ClassifierSetup, CropFill,
    CropOffsets, Normalize, NORMALIZATIONS,
};
use super::{Budget, Family, OptionSpec, Task, TaskContext, TaskInfo, MAIN_ONLY};
use crate::schedule::Schedule;

/// A data set with its normalisation (the statistics the papers' code used).
struct Dataset {
    prefix: &'static str,
    name: &'static str,
    title: &'static str,
    /// Classes, for counting a model's parameters without loading the data.
    classes: usize,
    mean: [f32; 3],
    std: [f32; 3],
}

static CIFAR10: Dataset = Dataset {
    prefix: "cifar10",
    name: "cifar10",
    title: "CIFAR-10",
    classes: 10,
    mean: [0.4914, 0.4822, 0.4465],
    std: [0.2023, 0.1994, 0.2010],
};
static CIFAR100: Dataset = Dataset {
    prefix: "cifar100",
    name: "cifar100",
    title: "CIFAR-100",
    classes: 100,
    mean: [0.5071, 0.4865, 0.4409],
    std: [0.2673, 0.2564, 0.2762],
};
static TINY: Dataset = Dataset {
    prefix: "tinyimagenet",
    name: "tiny-imagenet",
    title: "Tiny-ImageNet",
    classes: 200,
    mean: [0.4802, 0.4481, 0.3975],
    std: [0.2302, 0.2265, 0.2262],
};

/// The models, by the suffix of their task names.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Model {
    ResNet18,
    ResNet34,
    Vgg11,
    Vgg16,
    DenseNet121,
    GoogLeNet,
    /// AdaShift's CIFAR DenseNet (growth 24, 7x7 stem, blocks 6-12-48-32, dropout 0.2).
    AdaShiftDenseNet,
    /// AdaShift's Tiny-ImageNet DenseNet (depth 28, growth 12, dropout 0.2).
    TinyDenseNet,
    /// AdaShift's TensorFlow ResNet-18 (pre-activation, widths 32-256, biased convolutions).
    AdaShiftResNet18,
}

impl Model {
    fn suffix(self) -> &'static str {
        match self {
            Model::ResNet18 => "resnet18",
            Model::ResNet34 => "resnet34",
            Model::Vgg11 => "vgg11",
            Model::Vgg16 => "vgg16",
            Model::DenseNet121 => "densenet121",
            Model::GoogLeNet => "googlenet",
            Model::AdaShiftDenseNet => "densenet-adashift",
            Model::TinyDenseNet => "densenet",
            Model::AdaShiftResNet18 => "resnet18-adashift",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Model::ResNet18 => "ResNet-18",
            Model::ResNet34 => "ResNet-34",
            Model::Vgg11 => "VGG-11 (BN)",
            Model::Vgg16 => "VGG-16 (BN)",
            Model::DenseNet121 => "DenseNet-121",
            Model::GoogLeNet => "GoogLeNet",
            Model::AdaShiftDenseNet => "AdaShift's DenseNet (k 24, blocks 6-12-48-32, dropout 0.2)",
            Model::TinyDenseNet => "AdaShift's DenseNet (depth 28, k 12, dropout 0.2)",
            Model::AdaShiftResNet18 => "AdaShift's ResNet-18 (TensorFlow, pre-activation, widths 32-256)",
        }
    }

    fn options(self) -> Vec<OptionSpec> {
        match self {
            Model::AdaShiftDenseNet => vec![
                OptionSpec::new("growth", 24i64, "growth rate k (channels each layer adds)").at_least(1.0),
                OptionSpec::new("dropout", 0.2, "dropout rate after every convolution").at_least(0.0).below(1.0),
            ],
            Model::TinyDenseNet => vec![
                OptionSpec::new("depth", 28i64, "depth 3n + 4 (n layers per block)").at_least(7.0),
                OptionSpec::new("growth", 12i64, "growth rate k").at_least(1.0),
                OptionSpec::new("dropout", 0.2, "dropout rate after every convolution").at_least(0.0).below(1.0),
            ],
            _ => vec![OptionSpec::new("width", 1.0, "channel multiplier (1 = the paper's model)").at_least(1e-3)],
        }
    }

    fn build(
        self,
        b: &ParamBuilder,
        classes: usize,
        ctx: &TaskContext,
    ) -> anyhow::Result<Box<dyn ModuleT + Send + Sync>> {
        // Ranges checked at plan time (the options' declarations above).
        let width = || -> anyhow::Result<f64> { Ok(ctx.f64("width")) };
        let positive = |key: &str| -> anyhow::Result<usize> { Ok(ctx.count(key)) };
        let dropout = || -> anyhow::Result<f64> { Ok(ctx.f64("dropout")) };
        Ok(match self {
            Model::ResNet18 => Box::new(ResNet::resnet18(b, classes, width()?)?),
            Model::ResNet34 => Box::new(ResNet::resnet34(b, classes, width()?)?),
            Model::Vgg11 => Box::new(Vgg::vgg11(b, classes, width()?)?),
            Model::Vgg16 => Box::new(Vgg::vgg16(b, classes, width()?)?),
            Model::DenseNet121 => Box::new(DenseNet::densenet121(b, classes, width()?, &LayerSetup::default())?),
            Model::GoogLeNet => Box::new(GoogLeNet::new(b, classes, width()?)?),
            Model::AdaShiftDenseNet => Box::new(DenseNet::adashift_cifar(
                b,
                classes,
                positive("growth")?,
                dropout()?,
                &DenseNet::adashift_cifar_setup(),
            )?),
            Model::TinyDenseNet => Box::new(DenseNet::adashift_tiny_imagenet(
                b,
                classes,
                positive("depth")?,
                positive("growth")?,
                dropout()?,
                &DenseNet::adashift_tiny_imagenet_setup(),
            )?),
            Model::AdaShiftResNet18 => {
                Box::new(AdaShiftResNet::resnet18(b, classes, width()?, &AdaShiftResNet::tensorflow_setup())?)
            }
        })
    }
}

const CIFAR_MODELS: [Model; 7] = [
    Model::ResNet18,
    Model::ResNet34,
    Model::Vgg11,
    Model::Vgg16,
    Model::DenseNet121,
    Model::GoogLeNet,
    Model::AdaShiftDenseNet,
];

fn common_options(dataset: &Dataset) -> Vec<OptionSpec> {
    let mut options = vec![
        OptionSpec::new("train_subset", 0i64, "train on the first N images (0: all)"),
        OptionSpec::new("test_subset", 0i64, "evaluate on the first N test images (0: all)"),
        OptionSpec::new("crop_padding", 4i64, "random crop after zero padding of this many pixels (0: none)"),
        OptionSpec::new("flip", true, "random horizontal flip"),
        OptionSpec::choice(
            "crop_fill",
            "input",
            &["input", "normalized"],
            "the crop's padding: input: black pixels before normalisation (torchvision, AdaShift's ResNet); \
             normalized: 0 after normalisation (AdaShift's DenseNets pad the standardised images)",
        ),
        OptionSpec::choice(
            "crop_offsets",
            "inclusive",
            &["inclusive", "exclusive"],
            "inclusive: offsets -p..=p; exclusive: -p..p after the flip (np.random.randint(0, 2p) in \
             AdaShift's Tiny-ImageNet DenseNet)",
        ),
        OptionSpec::new(
            "weight_decay",
            0.0,
            "an L2 term wd/2 sum(w^2) in the loss, for every optimizer (as TensorFlow's l2_loss)",
        )
        .at_least(0.0),
    ];
    options.extend(pipeline_options(NORMALIZATIONS, "constants"));
    if std::ptr::eq(dataset, &TINY) {
        options.push(
            OptionSpec::new(
                "downsample",
                1i64,
                "average k x k pixel blocks before everything else (2: 32x32 images, as AdaShift's \
                 Tiny-ImageNet code)",
            )
            .at_least(1.0),
        );
    }
    options
}

/// Builds the task of one (data set, model) pair.
fn build(ctx: &TaskContext, dataset: &'static Dataset, model: Model) -> anyhow::Result<Box<dyn Task>> {
    let l2 = ctx.f64("weight_decay");
    let padding = ctx.count("crop_padding");
    let flip = ctx.flag("flip");
    let fill = if ctx.string("crop_fill") == "normalized" { CropFill::Normalized } else { CropFill::Input };
    let offsets =
        if ctx.string("crop_offsets") == "exclusive" { CropOffsets::Exclusive } else { CropOffsets::Inclusive };
    let setup = ClassifierSetup {
        data: shared_images(dataset.name, ctx.data)?,
        default_batch_size: 128,
        augment: (padding > 0 || flip).then_some(Augment { crop_padding: padding, flip, fill, offsets }),
        normalize: Normalize { mean: dataset.mean.to_vec(), std: dataset.std.to_vec() },
        train_images: None,
        downsample: if std::ptr::eq(dataset, &TINY) { ctx.count("downsample") } else { 1 },
        l2,
    };
    let classifier = Classifier::new(ctx, setup, &|b, data| model.build(b, data.classes, ctx))?;
    Ok(Box::new(classifier))
}

fn info(dataset: &'static Dataset, model: Model, batch: usize, epochs: u64) -> TaskInfo {
    let mut options = model.options();
    options.extend(common_options(dataset));
    TaskInfo {
        name: format!("{}-{}", dataset.prefix, model.suffix()),
        family: Family::Classifier,
        summary: format!("{}: {}", dataset.title, model.title()),
        options,
        budget: Budget::Epochs(epochs),
        batch_size: Some(batch),
        eval_every: None,
        log_every: 10,
        schedule: Schedule::Constant,
        metrics: metrics(),
        optimizers: MAIN_ONLY,
        clip_norm: None,
        build: Box::new(move |ctx| build(ctx, dataset, model)),
        parameters: Some(Box::new(move |ctx| count_parameters(|b| model.build(b, dataset.classes, ctx)))),
    }
}

pub fn tasks() -> Vec<TaskInfo> {
    let mut out = Vec::new();
    for dataset in [&CIFAR10, &CIFAR100] {
        for model in CIFAR_MODELS {
            let (batch, epochs) = if model == Model::AdaShiftDenseNet { (64, 150) } else { (128, 200) };
            out.push(info(dataset, model, batch, epochs));
        }
    }
    out.push(info(&TINY, Model::TinyDenseNet, 64, 300));
    // `ResNet-CIFAR10/main.py`: `--batch_size 128`, `epoch_num = 50` (the learning rate x0.1 at
    // 0-based epochs 25 and 37, `ResNet.py` line 203: a config's schedule).
    out.push(info(&CIFAR10, Model::AdaShiftResNet18, 128, 50));
    out
}
