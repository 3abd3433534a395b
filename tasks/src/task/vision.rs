//! The CIFAR and Tiny-ImageNet tasks behind the papers' tables: `<data set>-<model>` for
//! CIFAR-10 and CIFAR-100 with ResNet-18/34, VGG-11/16 and DenseNet-121 (AdaBelief, Adai,
//! AdaMod), AdaShift's DenseNet and AdaShift's TensorFlow ResNet-18 (`cifar10-resnet18-adashift`),
//! AdaBelief's own VGG-11 (`<data set>-vgg11-adabelief`), and `tinyimagenet-densenet` (AdaShift).
//! Random crop with zero padding and horizontal flip (seeded), per-channel normalisation, test
//! loss and top-1 accuracy every epoch. The input pipeline's options (normalisation, crop padding
//! fill and offsets, data order, dropping the partial batch, Tiny-ImageNet's 2x2 downsampling)
//! default to that PyTorch pipeline; the AdaShift configs set their authors' (see
//! [`crate::data::batches`]).
//!
//! Every model takes the layer options `init`, `init_std`, `bn_eps` and `bn_momentum` (see
//! [`layer_options`]); left at their defaults, the model's own setup is used (PyTorch's;
//! AdaBelief's He initialisation for its VGG; TensorFlow's for AdaShift's ResNet and DenseNets).

use candle::ModuleT;
use models::densenet::DenseNet;
use models::googlenet::{GoogLeNet, GoogLeNetConfig};
use models::resnet::ResNet;
use models::resnet_tf::AdaShiftResNet;
use models::vgg::Vgg;
use models::{BnConfig, Fan, Init, LayerSetup, ParamBuilder};

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
    /// AdaBelief's VGG-11: no BatchNorm, a dropout MLP head, He (fan out) convolutions.
    Vgg11AdaBelief,
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
            Model::Vgg11AdaBelief => "vgg11-adabelief",
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
            Model::Vgg11AdaBelief => "AdaBelief's VGG-11 (no BN, dropout MLP head)",
            Model::DenseNet121 => "DenseNet-121",
            Model::GoogLeNet => "GoogLeNet",
            Model::AdaShiftDenseNet => "AdaShift's DenseNet (k 24, blocks 6-12-48-32, dropout 0.2)",
            Model::TinyDenseNet => "AdaShift's DenseNet (depth 28, k 12, dropout 0.2)",
            Model::AdaShiftResNet18 => "AdaShift's ResNet-18 (TensorFlow, pre-activation, widths 32-256)",
        }
    }

    fn options(self) -> Vec<OptionSpec> {
        let mut options = match self {
            Model::AdaShiftDenseNet => vec![
                OptionSpec::new("growth", 24i64, "growth rate k (channels each layer adds)").at_least(1.0),
                OptionSpec::new("dropout", 0.2, "dropout rate after every convolution").at_least(0.0).below(1.0),
            ],
            Model::TinyDenseNet => vec![
                OptionSpec::new("depth", 28i64, "depth 3n + 4 (n layers per block)").at_least(7.0),
                OptionSpec::new("growth", 12i64, "growth rate k").at_least(1.0),
                OptionSpec::new("dropout", 0.2, "dropout rate after every convolution").at_least(0.0).below(1.0),
            ],
            Model::GoogLeNet => vec![
                width_option(),
                OptionSpec::new("dropout", 0.4, "dropout rate before the classifier (Adai's GoogLeNet: 0.4)")
                    .at_least(0.0)
                    .below(1.0),
                OptionSpec::new(
                    "bn_eps_quirk",
                    false,
                    "Adai's BatchNorm2d(n5x5, n5x5): eps = n5x5 in the middle BN of each 5x5 branch",
                ),
            ],
            Model::ResNet18
            | Model::ResNet34
            | Model::Vgg11
            | Model::Vgg16
            | Model::Vgg11AdaBelief
            | Model::DenseNet121
            | Model::AdaShiftResNet18 => vec![width_option()],
        };
        options.extend(layer_options());
        options
    }

    /// The model's own initialisation and BatchNorm constants (what the layer options
    /// override).
    fn default_setup(self) -> LayerSetup {
        match self {
            Model::Vgg11AdaBelief => Vgg::adabelief_setup(),
            Model::AdaShiftResNet18 => AdaShiftResNet::tensorflow_setup(),
            Model::AdaShiftDenseNet => DenseNet::adashift_cifar_setup(),
            Model::TinyDenseNet => DenseNet::adashift_tiny_imagenet_setup(),
            Model::ResNet18 | Model::ResNet34 | Model::Vgg11 | Model::Vgg16 | Model::DenseNet121 | Model::GoogLeNet => {
                LayerSetup::default()
            }
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
        let setup = || layer_setup(ctx, self.default_setup());
        Ok(match self {
            Model::ResNet18 => Box::new(ResNet::resnet18(b, classes, width()?, &setup())?),
            Model::ResNet34 => Box::new(ResNet::resnet34(b, classes, width()?, &setup())?),
            Model::Vgg11 => Box::new(Vgg::vgg11(b, classes, width()?, &setup())?),
            Model::Vgg16 => Box::new(Vgg::vgg16(b, classes, width()?, &setup())?),
            Model::Vgg11AdaBelief => Box::new(Vgg::vgg11_adabelief(b, classes, width()?, &setup())?),
            Model::DenseNet121 => Box::new(DenseNet::densenet121(b, classes, width()?, &setup())?),
            Model::GoogLeNet => {
                let config =
                    GoogLeNetConfig { width: width()?, dropout: dropout()?, bn_eps_quirk: ctx.flag("bn_eps_quirk") };
                Box::new(GoogLeNet::new(b, classes, &config, &setup())?)
            }
            Model::AdaShiftDenseNet => {
                Box::new(DenseNet::adashift_cifar(b, classes, positive("growth")?, dropout()?, &setup())?)
            }
            Model::TinyDenseNet => Box::new(DenseNet::adashift_tiny_imagenet(
                b,
                classes,
                positive("depth")?,
                positive("growth")?,
                dropout()?,
                &setup(),
            )?),
            Model::AdaShiftResNet18 => Box::new(AdaShiftResNet::resnet18(b, classes, width()?, &setup())?),
        })
    }
}

const CIFAR_MODELS: [Model; 8] = [
    Model::ResNet18,
    Model::ResNet34,
    Model::Vgg11,
    Model::Vgg16,
    Model::Vgg11AdaBelief,
    Model::DenseNet121,
    Model::GoogLeNet,
    Model::AdaShiftDenseNet,
];

fn width_option() -> OptionSpec {
    OptionSpec::new("width", 1.0, "channel multiplier (1 = the paper's model)").at_least(1e-3)
}

/// The values of the `init` option: `model` (the model's own scheme), `torch` (PyTorch's
/// default: U(±1/sqrt(fan_in)) weights and biases), `he` (He normal N(0, 2 / fan_out), as
/// `kaiming_normal_(mode='fan_out')` in torchvision's ResNet and VGG and AdaBelief's VGG),
/// `he_in` (N(0, 2 / fan_in), `kaiming_normal_`'s default mode), `glorot` (Glorot uniform,
/// TensorFlow's default) and `normal` (N(0, init_std²)). Any scheme but `torch` and `model`
/// starts biases at zero. The scheme applies to every convolution and linear layer.
const INIT_CHOICES: &[&str] = &["model", "torch", "he", "he_in", "glorot", "normal"];

/// The options that set a model's initialisation and BatchNorm constants (see
/// [`INIT_CHOICES`]); the defaults (`model`, 0) keep the model's own.
fn layer_options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::choice(
            "init",
            "model",
            INIT_CHOICES,
            "initialisation of every conv and linear layer (model: the model's own; he is fan-out)",
        ),
        OptionSpec::new("init_std", 0.01, "standard deviation of init = \"normal\"").at_least(0.0),
        OptionSpec::new("bn_eps", 0.0, "BatchNorm eps (0: the model's own, PyTorch's 1e-5)").at_least(0.0),
        OptionSpec::new("bn_momentum", 0.0, "BatchNorm momentum, PyTorch's convention (0: the model's own, 0.1)")
            .at_least(0.0)
            .at_most(1.0),
    ]
}

/// The [`LayerSetup`] of a model whose own is `model`, with the layer options applied.
fn layer_setup(ctx: &TaskContext, model: LayerSetup) -> LayerSetup {
    let layers = LayerOptions {
        init: ctx.string("init"),
        init_std: ctx.f64("init_std"),
        bn_eps: ctx.f64("bn_eps"),
        bn_momentum: ctx.f64("bn_momentum"),
    };
    layers.apply(model)
}

/// The values of the layer options (checked at plan time).
struct LayerOptions<'a> {
    init: &'a str,
    init_std: f64,
    bn_eps: f64,
    bn_momentum: f64,
}

impl LayerOptions<'_> {
    /// `model` with what the options set (`model` and 0 keep the model's own).
    fn apply(&self, model: LayerSetup) -> LayerSetup {
        let init = match self.init {
            "model" => None,
            "torch" => Some(Init::Torch),
            "he" => Some(Init::HeNormal(Fan::Out)),
            "he_in" => Some(Init::HeNormal(Fan::In)),
            "glorot" => Some(Init::GlorotUniform),
            "normal" => Some(Init::Normal(self.init_std)),
            other => unreachable!("`init` = {other:?} passed the plan-time check of {INIT_CHOICES:?}"),
        };
        let given = |value: f64, own: f64| if value > 0.0 { value } else { own };
        LayerSetup {
            conv: init.unwrap_or(model.conv),
            linear: init.unwrap_or(model.linear),
            bn: BnConfig {
                eps: given(self.bn_eps, model.bn.eps),
                momentum: given(self.bn_momentum, model.bn.momentum),
            },
        }
    }
}

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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use optimizers::HyperValue;

    use super::*;

    fn task(name: &str) -> &'static TaskInfo {
        crate::task::find(name).unwrap_or_else(|| panic!("no task {name}"))
    }

    #[test]
    fn the_papers_vgg_and_googlenet_tasks_exist_with_their_options() {
        for name in ["cifar10-vgg11-adabelief", "cifar100-vgg11-adabelief", "cifar100-googlenet", "cifar10-resnet18"] {
            let names: Vec<&str> = task(name).options.iter().map(|o| o.name).collect();
            for option in ["width", "init", "init_std", "bn_eps", "bn_momentum"] {
                assert!(names.contains(&option), "{name} has no option {option}: {names:?}");
            }
        }
        let googlenet = task("cifar100-googlenet").resolve_options(&BTreeMap::new()).unwrap();
        assert_eq!(googlenet["dropout"], HyperValue::Float(0.4));
        assert_eq!(googlenet["bn_eps_quirk"], HyperValue::Bool(false));
        // Every model takes them, the TensorFlow ones with their own setup as the default.
        for name in
            ["cifar10-densenet121", "cifar10-densenet-adashift", "tinyimagenet-densenet", "cifar10-resnet18-adashift"]
        {
            assert!(task(name).options.iter().any(|o| o.name == "init"), "{name}");
        }
        assert_eq!(Model::AdaShiftDenseNet.default_setup().bn.eps, 1e-3);
    }

    #[test]
    fn layer_options_are_checked_at_plan_time() {
        let info = task("cifar10-vgg11");
        let bad = |key: &str, value: HyperValue| {
            let given = BTreeMap::from([(key.to_string(), value.clone())]);
            let err = info.resolve_options(&given).expect_err(&format!("{key} = {value:?} is refused"));
            assert_eq!(err.0, key);
            err.1
        };
        assert!(bad("init", HyperValue::Str("kaiming".into())).contains("one of model, torch, he"));
        assert!(bad("bn_eps", HyperValue::Float(-1e-3)).contains("at least"));
        assert!(bad("bn_momentum", HyperValue::Float(1.5)).contains("at most"));
        assert!(bad("init_std", HyperValue::Str("0.1".into())).contains("must be"));
        let given = BTreeMap::from([("init".to_string(), HyperValue::Str("glorot".into()))]);
        assert_eq!(info.resolve_options(&given).unwrap()["init"], HyperValue::Str("glorot".into()));
    }

    #[test]
    fn layer_options_override_the_models_own_setup_only_when_given() {
        let options = |init, bn_eps, bn_momentum| LayerOptions { init, init_std: 0.05, bn_eps, bn_momentum };
        let adabelief = Model::Vgg11AdaBelief.default_setup();
        assert_eq!(adabelief.conv, Init::HeNormal(Fan::Out));
        assert_eq!(adabelief.linear, Init::Torch);
        assert_eq!(options("model", 0.0, 0.0).apply(adabelief), adabelief, "the defaults keep the model's");
        assert_eq!(Model::ResNet18.default_setup(), LayerSetup::default());
        let torch = options("torch", 0.0, 0.0).apply(adabelief);
        assert_eq!((torch.conv, torch.linear), (Init::Torch, Init::Torch));
        let he_in = options("he_in", 1e-3, 0.0).apply(LayerSetup::default());
        assert_eq!((he_in.conv, he_in.linear), (Init::HeNormal(Fan::In), Init::HeNormal(Fan::In)));
        assert_eq!(he_in.bn, BnConfig { eps: 1e-3, momentum: 0.1 });
        let normal = options("normal", 0.0, 0.01).apply(LayerSetup::default());
        assert_eq!(normal.conv, Init::Normal(0.05));
        assert_eq!(normal.bn, BnConfig { eps: 1e-5, momentum: 0.01 });
        assert_eq!(options("he", 0.0, 0.0).apply(LayerSetup::default()).conv, Init::HeNormal(Fan::Out));
        assert_eq!(options("glorot", 0.0, 0.0).apply(LayerSetup::default()).linear, Init::GlorotUniform);
    }
}
