//! The DCGAN generator and critic (`models/src/dcgan.rs`) against PyTorch, and the gradient
//! penalty against PyTorch's `autograd.grad(create_graph=True)` and finite differences.
//! Fixtures: `scripts/fidelity/gan_penalty.py` (its docstring says how to regenerate).

use std::collections::BTreeMap;

use candle::{DType, Device, ModuleT, Tensor};
use models::dcgan::{gradient_penalty, Critic, CriticHead, CriticNorm, DcganConfig, Generator, Penalty};
use models::{Params, SeededRng};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/gan/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}

/// The fixture script's `fill`: `scale sin(0.37 i + 1.3 k + 0.1)`.
fn fill(shape: &[usize], k: f64, scale: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|i| scale * (0.37 * i as f64 + 1.3 * k + 0.1).sin()).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let values: Vec<f64> = v["values"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap()
}

fn max_abs(a: &Tensor) -> f64 {
    a.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

fn load(params: &Params, weights: &Value) {
    let names: Vec<String> = params.named_trainable().into_iter().map(|(n, _)| n).collect();
    let given: Vec<&String> = weights.as_object().unwrap().keys().collect();
    assert_eq!(names.len(), given.len(), "parameters {names:?} vs the fixture's {given:?}");
    for (name, value) in weights.as_object().unwrap() {
        params.set(name, &tensor(value)).unwrap();
    }
}

fn config(case: &Value, latent: usize) -> DcganConfig {
    let n = |k: &str| case[k].as_u64().unwrap() as usize;
    DcganConfig {
        image_size: n("size"),
        channels: n("channels"),
        latent,
        generator_width: n("width"),
        critic_width: n("width"),
    }
}

/// A critic of a fixture case with its weights, in f64.
fn critic_of(case: &Value) -> (Params, Critic) {
    let params = Params::new(SeededRng::new(0), DType::F64, &Device::Cpu);
    let critic = Critic::new(&params.root(), &config(case, 1), CriticNorm::None, CriticHead::Linear).unwrap();
    load(&params, &case["weights"]);
    (params, critic)
}

fn inputs(case: &Value) -> (Tensor, Tensor, Tensor) {
    let n = |k: &str| case[k].as_u64().unwrap() as usize;
    let shape = [n("batch"), n("channels"), n("size"), n("size")];
    (fill(&shape, 50.0, 1.0), fill(&shape, 51.0, 1.0), (fill(&[n("batch")], 52.0, 0.45) + 0.5).unwrap())
}

#[test]
fn parameter_counts_equal_pytorchs() {
    for case in fixture("param_counts.json").as_array().unwrap() {
        let n = |k: &str| case[k].as_u64().unwrap() as usize;
        let config = DcganConfig {
            image_size: n("size"),
            channels: n("channels"),
            latent: n("latent"),
            generator_width: n("generator_width"),
            critic_width: n("critic_width"),
        };
        let count = |f: &dyn Fn(&Params)| {
            let params = Params::new(SeededRng::new(0), DType::F32, &Device::Cpu);
            f(&params);
            params.count()
        };
        let generator = count(&|p| {
            Generator::new(&p.root(), &config).unwrap();
        });
        assert_eq!(generator, n("generator"), "generator {config:?}");
        for (norm, head, key) in [
            (CriticNorm::None, CriticHead::Linear, "critic"),
            (CriticNorm::Batch, CriticHead::Linear, "critic_batch_norm"),
            (CriticNorm::Batch, CriticHead::ConvSigmoid, "critic_wgan"),
        ] {
            let critic = count(&|p| {
                Critic::new(&p.root(), &config, norm, head).unwrap();
            });
            assert_eq!(critic, n(key), "{key} {config:?}");
        }
    }
}

#[test]
fn the_penalty_and_its_weight_gradients_equal_pytorchs() {
    let fixture = fixture("penalty.json");
    for case in fixture["critics"].as_array().unwrap() {
        let (params, critic) = critic_of(case);
        let (real, fake, eps) = inputs(case);
        let scores = critic.forward_t(&real, true).unwrap();
        assert!(max_diff(&scores, &tensor(&case["scores_real"])) < 1e-12, "critic scores");
        for (kind, penalty) in [
            ("gp", Penalty::Gp { lambda: case["gp"]["coefficient"].as_f64().unwrap() }),
            ("max_gp", Penalty::MaxGp { weight: case["max_gp"]["coefficient"].as_f64().unwrap() }),
        ] {
            let expected = &case[kind];
            let (value, slopes) = gradient_penalty(&critic, &real, &fake, &eps, penalty).unwrap();
            let v = value.to_scalar::<f64>().unwrap();
            let want = expected["value"].as_f64().unwrap();
            assert!((v - want).abs() < 1e-10 * want.abs().max(1.0), "{kind}: {v} vs PyTorch {want}");
            let want_slopes: Vec<f64> =
                expected["slopes"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            for (a, b) in slopes.to_vec1::<f64>().unwrap().iter().zip(&want_slopes) {
                assert!((a - b).abs() < 1e-10, "{kind} slopes: {a} vs {b}");
            }
            let grads = value.backward().unwrap();
            for (name, var) in params.named_trainable() {
                let want = tensor(&expected["gradients"][&name]);
                let ours = grads.get(var.as_tensor()).cloned().unwrap_or_else(|| var.as_tensor().zeros_like().unwrap());
                let scale = max_abs(&want).max(1e-3);
                assert!(max_diff(&ours, &want) < 1e-9 * scale, "{kind} gradient of {name}");
            }
            // Every weight but the head's bias (on which the penalty does not depend) moves it.
            for (name, var) in params.named_trainable() {
                if name != "linear.bias" {
                    assert!(max_abs(grads.get(var.as_tensor()).unwrap()) > 0.0, "{kind}: {name} has no gradient");
                }
            }
        }
    }
}

#[test]
fn the_hand_written_input_gradient_equals_candles_autograd() {
    let fixture = fixture("penalty.json");
    let case = &fixture["critics"][1];
    let (_, critic) = critic_of(case);
    let (real, _, _) = inputs(case);
    let x = candle::Var::from_tensor(&real).unwrap();
    let (score, g) = critic.with_input_gradient(x.as_tensor()).unwrap();
    assert!(max_diff(&score, &critic.forward_t(&real, true).unwrap()) < 1e-12);
    let autograd = score.sum_all().unwrap().backward().unwrap();
    assert!(max_diff(&g, autograd.get(x.as_tensor()).unwrap()) < 1e-12);
}

#[test]
fn the_penalty_gradient_equals_finite_differences() {
    let fixture = fixture("penalty.json");
    let case = &fixture["critics"][1];
    let (params, critic) = critic_of(case);
    let (real, fake, eps) = inputs(case);
    for penalty in [Penalty::Gp { lambda: 10.0 }, Penalty::MaxGp { weight: 0.1 }] {
        let value = |critic: &Critic| {
            gradient_penalty(critic, &real, &fake, &eps, penalty).unwrap().0.to_scalar::<f64>().unwrap()
        };
        let grads = gradient_penalty(&critic, &real, &fake, &eps, penalty).unwrap().0.backward().unwrap();
        for (name, var) in params.named_trainable() {
            let original = var.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let analytic = match grads.get(var.as_tensor()) {
                Some(g) => g.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
                None => vec![0.0; original.len()],
            };
            let h = 1e-6;
            for i in (0..original.len()).step_by(original.len() / 5 + 1) {
                let at = |delta: f64| {
                    let mut w = original.clone();
                    w[i] += delta;
                    var.set(&Tensor::from_vec(w, var.dims(), &Device::Cpu).unwrap()).unwrap();
                    value(&critic)
                };
                let numeric = (at(h) - at(-h)) / (2.0 * h);
                var.set(&Tensor::from_vec(original.clone(), var.dims(), &Device::Cpu).unwrap()).unwrap();
                let tolerance = 1e-6 * numeric.abs().max(analytic[i].abs()).max(1e-2);
                assert!(
                    (numeric - analytic[i]).abs() < tolerance,
                    "{penalty:?} {name}[{i}]: analytic {} vs finite difference {numeric}",
                    analytic[i]
                );
            }
        }
    }
}

#[test]
fn the_generator_equals_pytorchs_in_training_mode() {
    let fixture = fixture("penalty.json");
    let case = &fixture["generator"];
    let latent = case["latent"].as_u64().unwrap() as usize;
    let params = Params::new(SeededRng::new(0), DType::F64, &Device::Cpu);
    let generator = Generator::new(&params.root(), &config(case, latent)).unwrap();
    load(&params, &case["weights"]);
    let z = fill(&[2, latent], 99.0, 1.0);
    let out = generator.forward_t(&z, true).unwrap();
    let sum = out.sum_all().unwrap().to_scalar::<f64>().unwrap();
    assert!((sum - case["output_sum"].as_f64().unwrap()).abs() < 1e-10, "output sum {sum}");
    let flat = out.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let sampled: Vec<f64> = flat.iter().step_by(37).copied().collect();
    let want = tensor(&case["output"]).to_vec1::<f64>().unwrap();
    assert_eq!(sampled.len(), want.len());
    for (a, b) in sampled.iter().zip(&want) {
        assert!((a - b).abs() < 1e-12, "output {a} vs {b}");
    }
    let r = fill(out.dims(), 77.0, 1.0);
    let grads = (out * r).unwrap().sum_all().unwrap().backward().unwrap();
    for (name, var) in params.named_trainable() {
        let want = tensor(&case["gradients"][&name]);
        let ours = grads.get(var.as_tensor()).expect("every generator weight gets a gradient");
        assert!(max_diff(ours, &want) < 1e-9 * max_abs(&want).max(1e-3), "gradient of {name}");
    }
}

#[test]
fn every_weight_of_both_models_gets_a_gradient_in_a_wgan_gp_step() {
    let config = DcganConfig { image_size: 32, channels: 3, latent: 8, generator_width: 4, critic_width: 4 };
    let gp = Params::new(SeededRng::new(1).fork("g"), DType::F32, &Device::Cpu);
    let dp = Params::new(SeededRng::new(1).fork("d"), DType::F32, &Device::Cpu);
    let generator = Generator::new(&gp.root(), &config).unwrap();
    let critic = Critic::new(&dp.root(), &config, CriticNorm::None, CriticHead::Linear).unwrap();
    let z = Tensor::from_vec(SeededRng::new(2).normal_vec(4 * 8, 0.0, 1.0), (4, 8), &Device::Cpu).unwrap();
    let real =
        Tensor::from_vec(SeededRng::new(3).uniform_vec(4 * 3 * 32 * 32, -1.0, 1.0), (4, 3, 32, 32), &Device::Cpu)
            .unwrap();
    let fake = generator.forward_t(&z, true).unwrap();
    let eps = Tensor::from_vec(vec![0.1f32, 0.4, 0.6, 0.9], 4, &Device::Cpu).unwrap();
    let (penalty, _) = gradient_penalty(&critic, &real, &fake, &eps, Penalty::Gp { lambda: 10.0 }).unwrap();
    let loss = (critic.forward_t(&fake.detach(), true).unwrap().mean_all().unwrap()
        - critic.forward_t(&real, true).unwrap().mean_all().unwrap()
        + penalty)
        .unwrap();
    let grads = loss.backward().unwrap();
    let mut missing = BTreeMap::new();
    // The head's bias cancels in mean D(fake) - mean D(real) and is absent from the penalty.
    for (name, var) in dp.named_trainable().into_iter().filter(|(name, _)| name != "linear.bias") {
        if grads.get(var.as_tensor()).map(max_abs).unwrap_or(0.0) == 0.0 {
            missing.insert(format!("critic {name}"), ());
        }
    }
    let generator_loss = critic.forward_t(&fake, true).unwrap().mean_all().unwrap().neg().unwrap();
    let grads = generator_loss.backward().unwrap();
    for (name, var) in gp.named_trainable() {
        if grads.get(var.as_tensor()).map(max_abs).unwrap_or(0.0) == 0.0 {
            missing.insert(format!("generator {name}"), ());
        }
    }
    assert!(missing.is_empty(), "no gradient: {:?}", missing.keys().collect::<Vec<_>>());
}
