//! AdaShift's TensorFlow networks: the suite's models compute what the authors' graphs
//! compute. `scripts/fidelity/tf_models.py` transcribes the authors' TensorFlow 1 code
//! (`mknbv/adashift@bf86b02`, `author_code_base/`: `ResNet-CIFAR10/ResNet.py` + `ops.py`,
//! `Densenet-Tensorflow/Cifar10/Densenet_Cifar10.py`, `densenet_tiny_imagenet/models/dense_net.py`)
//! into TensorFlow 2 ops, runs it on deterministic weights and inputs and writes
//! `tests/fixtures/fidelity/<model>.json`: every tensor's TensorFlow name, the suite's name for
//! it, its shape and the rule of its values, the parameter count, and the logits in inference
//! mode (running statistics) and training mode (batch statistics), and two BatchNorms' running
//! statistics after that training pass. Regenerate with
//!
//! ```text
//! /work/tfvenv/bin/python scripts/fidelity/tf_models.py --out models/tests/fixtures/fidelity
//! ```
//!
//! The fixtures hold the f64 outputs (the script checks that TensorFlow's fused f32 graph agrees
//! with them to f32 accuracy), and the models here run in f64, so a tolerance of 1e-9 leaves no
//! room for a wrong padding, epsilon, or layer order. Here each model is built, every parameter and buffer is set by name from the same rule
//! (kernels moved from TensorFlow's HWIO / [in, out] layouts to the suite's), and the outputs
//! are compared. The names must cover the model exactly, both ways. Dropout is built with rate
//! 0, as the transcription has none.
//!
//! The one difference the suite keeps: the CIFAR DenseNet's `zero_debias_moving_mean=True`
//! (TensorFlow's running mean after one step is the batch mean; the suite's moves 10% of the
//! way from its initial value). The test checks that this is the only difference in the
//! running mean.

use std::collections::BTreeMap;

use candle::{DType, Device, ModuleT, Result, Tensor, Var};
use models::densenet::DenseNet;
use models::resnet_tf::AdaShiftResNet;
use models::{ParamBuilder, Params, SeededRng};
use serde::Deserialize;

#[derive(Deserialize)]
struct TensorSpec {
    tf: String,
    suite: String,
    shape: Vec<usize>,
    layout: String,
    phase: f64,
    offset: f64,
    scale: f64,
    #[serde(default)]
    buffer: bool,
}

#[derive(Deserialize)]
struct Input {
    shape: Vec<usize>,
    phase: f64,
    offset: f64,
    scale: f64,
}

#[derive(Deserialize)]
struct Running {
    suite: String,
    running_mean: Vec<f64>,
    running_var: Vec<f64>,
}

/// Relative to 1 + |value|, in f64 (the f32 graphs differ by up to 2e-4; see the script).
const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct Fixture {
    model: String,
    dtype: String,
    parameters: usize,
    tensors: Vec<TensorSpec>,
    input: Input,
    logits_shape: Vec<usize>,
    eval_logits: Vec<f64>,
    train_logits: Vec<f64>,
    running_after_train: Vec<Running>,
    running_mean_zero_debiased: bool,
}

fn load(name: &str) -> Fixture {
    let path = format!("{}/tests/fixtures/fidelity/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; regenerate it with scripts/fidelity/tf_models.py"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not a fidelity fixture: {e}"))
}

/// `offset + scale * sin(0.37 i + 0.0011 i^2 + phase)` (the script's rule).
fn wave(n: usize, phase: f64, offset: f64, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let i = i as f64;
            offset + scale * (0.37 * i + 0.0011 * (i * i) + phase).sin()
        })
        .collect()
}

/// A fixture tensor in the suite's layout: HWIO kernels to (out, in, kh, kw), [in, out] dense
/// kernels to (out, in).
fn suite_tensor(spec: &TensorSpec) -> Result<Tensor> {
    let n = spec.shape.iter().product();
    let t = Tensor::from_vec(wave(n, spec.phase, spec.offset, spec.scale), spec.shape.as_slice(), &Device::Cpu)?;
    match spec.layout.as_str() {
        "hwio" => t.permute((3, 2, 0, 1))?.contiguous(),
        "in_out" => t.t()?.contiguous(),
        "vector" => Ok(t),
        other => candle::bail!("{}: unknown layout `{other}`", spec.tf),
    }
}

/// Sets every parameter and buffer of `params` from the fixture, by name; the fixture must
/// name each exactly once, with its shape.
fn assign(params: &Params, fixture: &Fixture) -> Result<()> {
    let trainable: BTreeMap<String, Var> = params.named_trainable().into_iter().collect();
    let buffers: BTreeMap<String, Var> = params.buffers().into_iter().collect();
    let mut seen = std::collections::BTreeSet::new();
    for spec in &fixture.tensors {
        let list = if spec.buffer { &buffers } else { &trainable };
        let kind = if spec.buffer { "buffer" } else { "trainable parameter" };
        let var = list.get(&spec.suite).unwrap_or_else(|| {
            panic!("{}: the model has no {kind} `{}` (TensorFlow `{}`)", fixture.model, spec.suite, spec.tf)
        });
        let value = suite_tensor(spec)?;
        assert_eq!(var.dims(), value.dims(), "{}: shape of `{}` (TensorFlow `{}`)", fixture.model, spec.suite, spec.tf);
        var.set(&value)?;
        assert!(seen.insert(spec.suite.clone()), "{}: `{}` named twice", fixture.model, spec.suite);
    }
    for name in trainable.keys().chain(buffers.keys()) {
        assert!(seen.contains(name), "{}: the fixture does not set `{name}`", fixture.model);
    }
    Ok(())
}

/// max |a - b| <= tol (1 + |b|) elementwise.
fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0.0f64, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / (1.0 + w.abs());
        if err > worst.0 {
            worst = (err, i);
        }
    }
    let i = worst.1;
    assert!(
        worst.0 <= tol,
        "{what}: element {i} is {} where TensorFlow gives {} (error {:e})",
        got[i],
        want[i],
        worst.0
    );
}

fn flat(t: &Tensor) -> Result<Vec<f64>> {
    t.flatten_all()?.to_vec1::<f64>()
}

fn check(name: &str, build: impl Fn(&ParamBuilder) -> Result<Box<dyn ModuleT>>) -> Result<()> {
    let fixture = load(name);
    if fixture.dtype != "f64" {
        panic!("{name}: fixture of dtype {}, expected f64", fixture.dtype)
    }
    let params = Params::new(SeededRng::new(0), DType::F64, &Device::Cpu);
    let model = build(&params.root())?;
    assert_eq!(params.count(), fixture.parameters, "{name}: parameters, suite vs the TensorFlow graph");
    assign(&params, &fixture)?;
    let input = &fixture.input;
    let n = input.shape.iter().product();
    let x = Tensor::from_vec(wave(n, input.phase, input.offset, input.scale), input.shape.as_slice(), &Device::Cpu)?
        .permute((0, 3, 1, 2))?
        .contiguous()?;

    let eval = model.forward_t(&x, false)?;
    assert_eq!(eval.dims(), fixture.logits_shape.as_slice(), "{name}: logits shape");
    assert_close(&format!("{name}: inference-mode logits"), &flat(&eval)?, &fixture.eval_logits, TOLERANCE);
    let train = model.forward_t(&x, true)?;
    assert_close(&format!("{name}: training-mode logits"), &flat(&train)?, &fixture.train_logits, TOLERANCE);

    let buffers: BTreeMap<String, Var> = params.buffers().into_iter().collect();
    for running in &fixture.running_after_train {
        let get = |stat: &str| flat(buffers[&format!("{}.{stat}", running.suite)].as_tensor());
        assert_close(
            &format!("{name}: {}.running_var", running.suite),
            &get("running_var")?,
            &running.running_var,
            TOLERANCE,
        );
        let mean = get("running_mean")?;
        let want = if fixture.running_mean_zero_debiased {
            // TensorFlow's debiased running mean is the batch mean after one step; the suite's
            // is 0.9 of the initial value plus 0.1 of the batch mean.
            let spec = fixture.tensors.iter().find(|t| t.suite == format!("{}.running_mean", running.suite)).unwrap();
            let initial = wave(running.running_mean.len(), spec.phase, spec.offset, spec.scale);
            initial.iter().zip(&running.running_mean).map(|(&m0, &batch)| 0.9 * m0 + 0.1 * batch).collect()
        } else {
            running.running_mean.clone()
        };
        assert_close(&format!("{name}: {}.running_mean", running.suite), &mean, &want, TOLERANCE);
    }
    Ok(())
}

#[test]
fn adashift_resnet18_equals_the_tensorflow_graph() -> Result<()> {
    check("resnet18_adashift", |b| {
        Ok(Box::new(AdaShiftResNet::resnet18(b, 10, 1.0, &AdaShiftResNet::tensorflow_setup())?))
    })
}

#[test]
fn adashift_cifar_densenet_equals_the_tensorflow_graph() -> Result<()> {
    check("densenet_adashift_cifar10", |b| {
        Ok(Box::new(DenseNet::adashift_cifar(b, 10, 24, 0.0, &DenseNet::adashift_cifar_setup())?))
    })
}

#[test]
fn adashift_tiny_imagenet_densenet_equals_the_tensorflow_graph() -> Result<()> {
    check("densenet_tiny_imagenet", |b| {
        Ok(Box::new(DenseNet::adashift_tiny_imagenet(b, 200, 28, 12, 0.0, &DenseNet::adashift_tiny_imagenet_setup())?))
    })
}
