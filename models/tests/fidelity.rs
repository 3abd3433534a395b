//! The papers' own models equal the authors' PyTorch definitions: on the same weights and
//! inputs, the suite's models give the logits the authors' files give, in evaluation mode and
//! (with BatchNorm) in one training-mode pass with its running statistics, in float64.
//!
//! The fixtures (`tests/fixtures/fidelity/*.json`) come from `scripts/fidelity/torch_models.py`,
//! which imports the authors' model files from their repositories: AdaBelief's VGG-11
//! (`juntang-zhuang/Adabelief-Optimizer` 2855178e), and Adai's GoogLeNet (with its
//! `BatchNorm2d(n5x5, n5x5)`), ResNet-18, VGG-16 and DenseNet-121 (`zeke-xie/adaptive-inertia-adai`
//! e6c1b9d0; AdaBelief's ResNet and DenseNet files define the same networks).
//! Weights and inputs are not stored: both sides compute them (see [`unit`]); a fixture holds
//! each tensor's name, shape and value rule, which the suite's names must match exactly.

use std::collections::BTreeSet;

use candle::{DType, Device, ModuleT, Result, Tensor};
use models::densenet::DenseNet;
use models::googlenet::{GoogLeNet, GoogLeNetConfig};
use models::resnet::ResNet;
use models::vgg::Vgg;
use models::{LayerSetup, ParamBuilder, Params, SeededRng};
use serde_json::Value;

/// `u(t, i)`, i < n: splitmix64 of `(t + 1) << 32 | i` mapped to [-1, 1) with 53 bits (the
/// generator's `unit`).
fn unit(t: u64, n: usize) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let mut z = (((t + 1) << 32) | i).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 * 2f64.powi(-52) - 1.0
        })
        .collect()
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/fidelity/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{path}: {e}; regenerate it with scripts/fidelity/torch_models.py (see its docstring)")
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number")).collect()
}

/// A (2, classes) array of the fixture, flattened.
fn logits(v: &Value) -> Vec<f64> {
    v.as_array().expect("rows").iter().flat_map(f64s).collect()
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let size = want.iter().fold(1f64, |m, v| m.max(v.abs()));
    let err = got.iter().zip(want).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= 1e-9 * size,
        "{what}: max difference {err:e} (values up to {size}):\n  got  {got:?}\n  want {want:?}"
    );
}

type Build = fn(&ParamBuilder) -> Result<Box<dyn ModuleT>>;

/// The suite's name of an authors' tensor.
type Rename = fn(&str) -> String;

fn same(name: &str) -> String {
    name.to_string()
}

/// The suite's model of `build` in float64 with the fixture's weights, after checking that its
/// parameters and buffers are exactly the fixture's, by name (through `rename`) and shape.
fn load(fx: &Value, build: Build, rename: Rename) -> Result<(Params, Box<dyn ModuleT>)> {
    let params = Params::new(SeededRng::new(0), DType::F64, &Device::Cpu);
    let model = build(&params.root())?;
    let model_name = fx["model"].as_str().unwrap();
    assert_eq!(params.count() as u64, fx["parameter_count"].as_u64().unwrap(), "{model_name}: parameter count");
    let tensors = fx["tensors"].as_array().unwrap();
    let theirs: BTreeSet<String> = tensors.iter().map(|t| rename(t["name"].as_str().unwrap())).collect();
    let theirs: BTreeSet<&str> = theirs.iter().map(String::as_str).collect();
    let named = params.named_trainable().into_iter().chain(params.buffers());
    let ours: BTreeSet<String> = named.map(|(n, _)| n).collect();
    let ours: BTreeSet<&str> = ours.iter().map(String::as_str).collect();
    assert_eq!(
        ours.difference(&theirs).collect::<Vec<_>>(),
        theirs.difference(&ours).collect::<Vec<_>>(),
        "{model_name}: the suite's names (left) against the authors' (right)"
    );
    for (t, tensor) in tensors.iter().enumerate() {
        let name = &rename(tensor["name"].as_str().unwrap());
        let shape: Vec<usize> = f64s(&tensor["shape"]).into_iter().map(|d| d as usize).collect();
        let (offset, scale) = (tensor["offset"].as_f64().unwrap(), tensor["scale"].as_f64().unwrap());
        let values: Vec<f64> = unit(t as u64, shape.iter().product()).into_iter().map(|u| offset + scale * u).collect();
        let sum: f64 = values.iter().sum();
        let want = tensor["sum"].as_f64().unwrap();
        assert!((sum - want).abs() <= 1e-9 * (1.0 + want.abs()), "{name}: generated values sum to {sum}, not {want}");
        params.set(name, &Tensor::from_vec(values, shape, &Device::Cpu)?)?;
    }
    Ok((params, model))
}

fn input() -> Result<Tensor> {
    Tensor::from_vec(unit(1000, 2 * 3 * 32 * 32), (2, 3, 32, 32), &Device::Cpu)
}

fn output(model: &dyn ModuleT, train: bool) -> Result<Vec<f64>> {
    model.forward_t(&input()?, train)?.flatten_all()?.to_vec1::<f64>()
}

/// Evaluation-mode logits of `eval`; with `train` (the same model without dropout), the
/// training-mode logits and the running statistics after that pass.
fn check(name: &str, eval: Build, train: Option<Build>, rename: Rename) -> Result<()> {
    let fx = fixture(name);
    let (_, model) = load(&fx, eval, rename)?;
    close(&output(model.as_ref(), false)?, &logits(&fx["logits_eval"]), &format!("{name}: evaluation logits"));
    let Some(train) = train else { return Ok(()) };
    let (params, model) = load(&fx, train, rename)?;
    close(&output(model.as_ref(), true)?, &logits(&fx["logits_train"]), &format!("{name}: training logits"));
    let buffers = params.buffers();
    let checks = fx["buffers_after_train"].as_array().unwrap();
    assert_eq!(checks.len(), buffers.len(), "{name}: buffers");
    for (k, check) in checks.iter().enumerate() {
        let bname = &rename(check["name"].as_str().unwrap());
        let var = &buffers.iter().find(|(n, _)| n == bname).unwrap_or_else(|| panic!("{name}: no buffer {bname}")).1;
        let values = var.as_tensor().flatten_all()?.to_vec1::<f64>()?;
        let dot: f64 = values.iter().zip(unit(5000 + k as u64, values.len())).map(|(a, b)| a * b).sum();
        let sum: f64 = values.iter().sum();
        let got = [sum, dot];
        close(&got, &[check["sum"].as_f64().unwrap(), check["dot"].as_f64().unwrap()], &format!("{name}: {bname}"));
    }
    Ok(())
}

fn pytorch() -> LayerSetup {
    LayerSetup::default()
}

#[test]
fn adabeliefs_vgg11_equals_the_authors() -> Result<()> {
    check("vgg11-adabelief", |b| Ok(Box::new(Vgg::vgg11_adabelief(b, 10, 1.0, &Vgg::adabelief_setup())?)), None, same)
}

#[test]
fn adais_googlenet_with_its_batch_norm_eps_equals_the_authors() -> Result<()> {
    // The dropout (0.4) is part of the model; training mode is compared without it.
    check(
        "googlenet-adai",
        |b| {
            let config = GoogLeNetConfig { bn_eps_quirk: true, ..GoogLeNetConfig::default() };
            Ok(Box::new(GoogLeNet::new(b, 100, &config, &pytorch())?))
        },
        Some(|b| {
            let config = GoogLeNetConfig { bn_eps_quirk: true, dropout: 0.0, ..GoogLeNetConfig::default() };
            Ok(Box::new(GoogLeNet::new(b, 100, &config, &pytorch())?))
        }),
        same,
    )?;
    assert_eq!(GoogLeNetConfig::default().dropout, 0.4, "Adai's Dropout2d(p=0.4) is the default");
    // Without the quirk: the authors' network with every eps at PyTorch's 1e-5, visibly another.
    let fx = fixture("googlenet-adai");
    assert_eq!(fx["quirk_batch_norms"].as_u64(), Some(9), "nine BatchNorms have eps = n5x5");
    let (_, model) =
        load(&fx, |b| Ok(Box::new(GoogLeNet::new(b, 100, &GoogLeNetConfig::default(), &pytorch())?)), same)?;
    let standard = logits(&fx["logits_eval_standard_eps"]);
    close(&output(model.as_ref(), false)?, &standard, "googlenet without the quirk");
    let quirky = logits(&fx["logits_eval"]);
    let gap = standard.iter().zip(&quirky).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(gap > 0.1, "the quirk changes the logits (by {gap})");
    Ok(())
}

#[test]
fn the_suites_resnet18_equals_adais() -> Result<()> {
    let build: Build = |b| Ok(Box::new(ResNet::resnet18(b, 10, 1.0, &pytorch())?));
    check("resnet18-adai", build, Some(build), same)
}

#[test]
fn the_suites_vgg16_equals_adais() -> Result<()> {
    let build: Build = |b| Ok(Box::new(Vgg::vgg16(b, 10, 1.0, &pytorch())?));
    check("vgg16-adai", build, Some(build), same)
}

/// kuangliu's `denseN.L.{bn1, conv1, bn2, conv2}` are the suite's `denseN.L.{a, b}.{bn, conv}`.
fn densenet_name(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        [block, layer, part, leaf] if block.starts_with("dense") => {
            let (composite, module) = match *part {
                "bn1" => ("a", "bn"),
                "conv1" => ("a", "conv"),
                "bn2" => ("b", "bn"),
                "conv2" => ("b", "conv"),
                other => panic!("{name}: unexpected part {other}"),
            };
            format!("{block}.{layer}.{composite}.{module}.{leaf}")
        }
        _ => name.to_string(),
    }
}

#[test]
fn the_suites_densenet121_equals_adais() -> Result<()> {
    let build: Build = |b| Ok(Box::new(DenseNet::densenet121(b, 100, 1.0, &LayerSetup::default())?));
    check("densenet121-adai", build, Some(build), densenet_name)
}
