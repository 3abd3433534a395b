//! Every model: its parameter count equals the PyTorch definition it follows, and after one
//! backward pass EVERY trainable variable has a non-zero gradient (candle drops gradients
//! silently through some fused ops). BatchNorm's running statistics are buffers, never
//! trainable, and they move in training mode only.
//!
//! The counts come from `scripts/models/param_counts.py` (PyTorch 2.15):
//!
//! ```text
//! resnet18  10 classes w 1: 11,173,962   w 0.125: 176,402   100 classes w 1: 11,220,132
//! resnet34  10 classes w 1: 21,282,122   w 0.125: 335,154   100 classes w 1: 21,328,292
//! vgg11     10 classes w 1:  9,231,114   w 0.125: 145,898   100 classes w 1: 9,277,284
//! vgg11-adabelief 10 classes w 1: 9,750,922  w 0.125: 153,530  100 classes w 1: 9,797,092
//! vgg16     10 classes w 1: 14,728,266   w 0.125: 232,274   100 classes w 0.25: 935,796
//! densenet121 10 classes w 1: 6,956,298  w 0.125: 119,146   100 classes w 1: 7,048,548
//! googlenet 10 classes w 1: 6,166,250   w 0.125: 100,638   100 classes w 1: 6,258,500
//! adashift-resnet18 (TensorFlow, `models/tests/fixtures/fidelity/resnet18_adashift.json`): 2,799,114
//! adashift-densenet-cifar k 24, 10 classes: 6,365,962   k 4: 194,282
//! adashift-densenet-tiny depth 28, k 12, 200 classes: 553,280   k 4, 200 classes: 77,680
//! ```

use candle::{DType, Device, ModuleT, Result, Tensor};
use models::densenet::DenseNet;
use models::googlenet::{GoogLeNet, GoogLeNetConfig};
use models::resnet::ResNet;
use models::resnet_tf::AdaShiftResNet;
use models::vgg::Vgg;
use models::{LayerSetup, Params, SeededRng};

/// PyTorch's initialisation and BatchNorm constants.
fn pytorch() -> LayerSetup {
    LayerSetup::default()
}

fn tf_resnet() -> LayerSetup {
    AdaShiftResNet::tensorflow_setup()
}

type Build = fn(&models::ParamBuilder) -> Result<Box<dyn ModuleT>>;

fn count(build: Build) -> Result<usize> {
    let params = Params::new(SeededRng::new(0), DType::F32, &Device::Cpu);
    build(&params.root())?;
    Ok(params.count())
}

#[test]
fn parameter_counts_equal_pytorch() -> Result<()> {
    let cases: Vec<(&str, Build, usize)> = vec![
        ("resnet18", |b| Ok(Box::new(ResNet::resnet18(b, 10, 1.0, &pytorch())?)), 11_173_962),
        ("resnet18 w1/8", |b| Ok(Box::new(ResNet::resnet18(b, 10, 0.125, &pytorch())?)), 176_402),
        ("resnet18 c100", |b| Ok(Box::new(ResNet::resnet18(b, 100, 1.0, &pytorch())?)), 11_220_132),
        ("resnet34", |b| Ok(Box::new(ResNet::resnet34(b, 10, 1.0, &pytorch())?)), 21_282_122),
        ("adashift resnet18", |b| Ok(Box::new(AdaShiftResNet::resnet18(b, 10, 1.0, &tf_resnet())?)), 2_799_114),
        ("resnet34 w1/8", |b| Ok(Box::new(ResNet::resnet34(b, 10, 0.125, &pytorch())?)), 335_154),
        ("resnet34 c100", |b| Ok(Box::new(ResNet::resnet34(b, 100, 1.0, &pytorch())?)), 21_328_292),
        ("vgg11", |b| Ok(Box::new(Vgg::vgg11(b, 10, 1.0, &pytorch())?)), 9_231_114),
        ("vgg11 w1/8", |b| Ok(Box::new(Vgg::vgg11(b, 10, 0.125, &pytorch())?)), 145_898),
        ("vgg11 c100", |b| Ok(Box::new(Vgg::vgg11(b, 100, 1.0, &pytorch())?)), 9_277_284),
        ("vgg11 adabelief", |b| Ok(Box::new(Vgg::vgg11_adabelief(b, 10, 1.0, &Vgg::adabelief_setup())?)), 9_750_922),
        (
            "vgg11 adabelief c100",
            |b| Ok(Box::new(Vgg::vgg11_adabelief(b, 100, 1.0, &Vgg::adabelief_setup())?)),
            9_797_092,
        ),
        (
            "vgg11 adabelief w1/8",
            |b| Ok(Box::new(Vgg::vgg11_adabelief(b, 10, 0.125, &Vgg::adabelief_setup())?)),
            153_530,
        ),
        ("vgg16", |b| Ok(Box::new(Vgg::vgg16(b, 10, 1.0, &pytorch())?)), 14_728_266),
        ("vgg16 w1/8", |b| Ok(Box::new(Vgg::vgg16(b, 10, 0.125, &pytorch())?)), 232_274),
        ("vgg16 c100 w1/4", |b| Ok(Box::new(Vgg::vgg16(b, 100, 0.25, &pytorch())?)), 935_796),
        ("densenet121", |b| Ok(Box::new(DenseNet::densenet121(b, 10, 1.0, &LayerSetup::default())?)), 6_956_298),
        ("densenet121 w1/8", |b| Ok(Box::new(DenseNet::densenet121(b, 10, 0.125, &LayerSetup::default())?)), 119_146),
        ("densenet121 c100", |b| Ok(Box::new(DenseNet::densenet121(b, 100, 1.0, &LayerSetup::default())?)), 7_048_548),
        ("googlenet", |b| Ok(Box::new(GoogLeNet::new(b, 10, &GoogLeNetConfig::width(1.0), &pytorch())?)), 6_166_250),
        (
            "googlenet w1/8",
            |b| Ok(Box::new(GoogLeNet::new(b, 10, &GoogLeNetConfig::width(0.125), &pytorch())?)),
            100_638,
        ),
        (
            "googlenet c100",
            |b| Ok(Box::new(GoogLeNet::new(b, 100, &GoogLeNetConfig::width(1.0), &pytorch())?)),
            6_258_500,
        ),
        (
            "adashift densenet k24",
            |b| Ok(Box::new(DenseNet::adashift_cifar(b, 10, 24, 0.2, &DenseNet::adashift_cifar_setup())?)),
            6_365_962,
        ),
        (
            "adashift densenet k4",
            |b| Ok(Box::new(DenseNet::adashift_cifar(b, 10, 4, 0.2, &DenseNet::adashift_cifar_setup())?)),
            194_282,
        ),
        (
            "tiny densenet k12",
            |b| {
                Ok(Box::new(DenseNet::adashift_tiny_imagenet(
                    b,
                    200,
                    28,
                    12,
                    0.2,
                    &DenseNet::adashift_tiny_imagenet_setup(),
                )?))
            },
            553_280,
        ),
        (
            "tiny densenet k4",
            |b| {
                Ok(Box::new(DenseNet::adashift_tiny_imagenet(
                    b,
                    200,
                    28,
                    4,
                    0.2,
                    &DenseNet::adashift_tiny_imagenet_setup(),
                )?))
            },
            77_680,
        ),
    ];
    for (name, build, expected) in cases {
        assert_eq!(count(build)?, expected, "{name}");
    }
    Ok(())
}

/// The values of every buffer (running statistics).
fn buffer_values(params: &Params) -> Result<Vec<Vec<f32>>> {
    params.buffers().iter().map(|(_, v)| v.as_tensor().flatten_all()?.to_vec1()).collect()
}

/// One forward and backward pass in training mode: every trainable variable gets a non-zero
/// gradient, the running statistics move, and evaluation mode uses them.
fn gradient_flow(name: &str, build: Build, size: usize, classes: usize) -> Result<()> {
    let params = Params::new(SeededRng::new(3), DType::F32, &Device::Cpu);
    let model = build(&params.root())?;
    let mut rng = SeededRng::new(4);
    let x = Tensor::from_vec(rng.normal_vec(4 * 3 * size * size, 0.0, 1.0), (4, 3, size, size), &Device::Cpu)?;
    let y = Tensor::from_vec(vec![0u32, 1, 2, (classes - 1) as u32], 4, &Device::Cpu)?;
    let before = buffer_values(&params)?;
    let logits = model.forward_t(&x, true)?;
    assert_eq!(logits.dims(), &[4, classes], "{name}");
    let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
    let grads = loss.backward()?;
    let trainable = params.named_trainable();
    assert!(!trainable.is_empty());
    for (pname, var) in &trainable {
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient for {pname}"));
        let norm = g.abs()?.sum_all()?.to_scalar::<f32>()?;
        assert!(norm > 0.0 && norm.is_finite(), "{name}: gradient of {pname} is {norm}");
    }
    for (bname, var) in params.buffers() {
        assert!(grads.get(var.as_tensor()).is_none(), "{name}: {bname} is a buffer and gets no gradient");
        assert!(!trainable.iter().any(|(n, _)| *n == bname), "{name}: {bname} is trainable");
    }
    let after = buffer_values(&params)?;
    assert!(before.iter().zip(&after).all(|(a, b)| a != b), "{name}: every running statistic moves in training mode");
    // Evaluation: deterministic (no dropout, running statistics) and leaves the buffers alone.
    let e1 = model.forward_t(&x, false)?.flatten_all()?.to_vec1::<f32>()?;
    let e2 = model.forward_t(&x, false)?.flatten_all()?.to_vec1::<f32>()?;
    assert_eq!(e1, e2, "{name}");
    let again = buffer_values(&params)?;
    assert_eq!(after, again, "{name}: evaluation must not update running statistics");
    Ok(())
}

#[test]
fn every_trainable_variable_gets_a_gradient() -> Result<()> {
    gradient_flow("resnet18", |b| Ok(Box::new(ResNet::resnet18(b, 10, 0.0625, &pytorch())?)), 32, 10)?;
    gradient_flow(
        "adashift resnet18",
        |b| Ok(Box::new(AdaShiftResNet::resnet18(b, 10, 0.125, &tf_resnet())?)),
        32,
        10,
    )?;
    gradient_flow("resnet34", |b| Ok(Box::new(ResNet::resnet34(b, 100, 0.0625, &pytorch())?)), 32, 100)?;
    gradient_flow("vgg11", |b| Ok(Box::new(Vgg::vgg11(b, 10, 0.0625, &pytorch())?)), 32, 10)?;
    gradient_flow(
        "vgg11 adabelief",
        |b| Ok(Box::new(Vgg::vgg11_adabelief(b, 10, 0.0625, &Vgg::adabelief_setup())?)),
        32,
        10,
    )?;
    gradient_flow("vgg16", |b| Ok(Box::new(Vgg::vgg16(b, 10, 0.0625, &pytorch())?)), 32, 10)?;
    gradient_flow(
        "densenet121",
        |b| Ok(Box::new(DenseNet::densenet121(b, 10, 0.125, &LayerSetup::default())?)),
        32,
        10,
    )?;
    gradient_flow(
        "googlenet",
        |b| Ok(Box::new(GoogLeNet::new(b, 10, &GoogLeNetConfig::width(0.0625), &pytorch())?)),
        32,
        10,
    )?;
    gradient_flow(
        "adashift densenet",
        |b| Ok(Box::new(DenseNet::adashift_cifar(b, 10, 4, 0.2, &DenseNet::adashift_cifar_setup())?)),
        32,
        10,
    )?;
    gradient_flow(
        "tiny densenet",
        |b| {
            Ok(Box::new(DenseNet::adashift_tiny_imagenet(
                b,
                200,
                10,
                4,
                0.2,
                &DenseNet::adashift_tiny_imagenet_setup(),
            )?))
        },
        64,
        200,
    )?;
    Ok(())
}

#[test]
fn initialisation_follows_pytorch_and_the_seed() -> Result<()> {
    let make = |seed| -> Result<Vec<(String, Vec<f32>)>> {
        let params = Params::new(SeededRng::new(seed), DType::F32, &Device::Cpu);
        ResNet::resnet18(&params.root(), 10, 0.125, &pytorch())?;
        params
            .named_trainable()
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().flatten_all()?.to_vec1::<f32>()?)))
            .collect()
    };
    let a = make(1)?;
    assert_eq!(a, make(1)?, "the same seed gives the same weights");
    assert_ne!(a, make(2)?);
    for (name, values) in &a {
        if name.ends_with("bn1.weight") {
            assert!(values.iter().all(|&v| v == 1.0), "{name}");
        }
        if name == "conv1.weight" {
            // Conv2d(3, 8, 3): U(-1/sqrt(27), 1/sqrt(27)).
            let bound = 1.0 / 27f32.sqrt();
            assert!(values.iter().all(|v| v.abs() <= bound) && values.iter().any(|v| v.abs() > 0.9 * bound), "{name}");
        }
    }
    Ok(())
}
