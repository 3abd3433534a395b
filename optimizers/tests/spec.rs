//! Optimizer specs: one shape in JSON, TOML and YAML, defaults filled in by `resolve`, and an
//! error per kind of bad spec that names what is wrong and what would be right.

use candle::{Device, Tensor, Var};
use optimizers::{HyperValue, OptimizerSpec, SpecError, REGISTRY};

fn json(text: &str) -> OptimizerSpec {
    serde_json::from_str(text).unwrap()
}

fn error(text: &str) -> String {
    let spec = json(text);
    let err = spec.resolve().expect_err("the spec should be rejected");
    // Building must refuse it the same way.
    let x = Var::from_tensor(&Tensor::zeros(2, candle::DType::F32, &Device::Cpu).unwrap()).unwrap();
    let built = spec.build(vec![x]).err().expect("build should fail too");
    assert_eq!(built.to_string(), err.to_string());
    err.to_string()
}

#[test]
fn json_toml_and_yaml_give_the_same_spec() {
    let from_json = json(r#"{"name": "adashift", "lr": 0.01, "keep_num": 10, "phi": "max", "beta1": 0}"#);
    let from_toml: OptimizerSpec =
        toml::from_str("name = \"adashift\"\nlr = 1e-2\nkeep_num = 10\nphi = \"max\"\nbeta1 = 0\n").unwrap();
    let from_yaml: OptimizerSpec =
        serde_yaml::from_str("name: adashift\nlr: 1.0e-2\nkeep_num: 10\nphi: max\nbeta1: 0\n").unwrap();
    assert_eq!(from_json, from_toml);
    assert_eq!(from_json, from_yaml);
    assert_eq!(from_json.resolve().unwrap(), from_toml.resolve().unwrap());
    // A round trip through JSON keeps the flat shape.
    let text = serde_json::to_string(&from_json).unwrap();
    assert!(text.starts_with(r#"{"name":"adashift","#), "{text}");
    assert_eq!(json(&text), from_json);
}

#[test]
fn resolve_fills_in_the_reference_defaults() {
    let adamw = json(r#"{"name": "adamw"}"#).resolve().unwrap();
    assert_eq!(adamw.hyperparameters["decoupled"], HyperValue::Bool(true));
    assert_eq!(adamw.hyperparameters["weight_decay"], HyperValue::Float(1e-2));
    assert_eq!(adamw.hyperparameters["lr"], HyperValue::Float(1e-3));
    let belief = json(r#"{"name": "adabelief", "lr": 3}"#).resolve().unwrap();
    assert_eq!(belief.hyperparameters["eps"], HyperValue::Float(1e-16));
    assert_eq!(belief.hyperparameters["rectify"], HyperValue::Bool(true));
    assert_eq!(belief.hyperparameters["lr"], HyperValue::Float(3.0));
    let shift = json(r#"{"name": "adashift"}"#).resolve().unwrap();
    assert_eq!(shift.hyperparameters["keep_num"], HyperValue::Int(10));
    assert_eq!(shift.hyperparameters["phi"], HyperValue::Str("max".into()));
    let adai = json(r#"{"name": "adai", "lr": 0.1}"#).resolve().unwrap();
    assert_eq!(adai.hyperparameters["beta0"], HyperValue::Float(0.1));
    assert_eq!(adai.hyperparameters["eps"], HyperValue::Float(1e-3));
}

#[test]
fn every_registered_optimizer_builds_from_its_defaults() {
    for info in REGISTRY {
        let spec = info.required.iter().fold(OptimizerSpec::new(info.name), |s, k| s.with(*k, 0.1));
        let resolved = spec.resolve().unwrap();
        assert_eq!(resolved.hyperparameters.len(), info.hyperparameters().len(), "{}", info.name);
        let x = Var::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
        let opt = resolved.build(vec![x]).unwrap();
        assert_eq!(opt.learning_rate(), resolved.lr().unwrap());
    }
}

#[test]
fn unknown_optimizer_lists_the_valid_names() {
    let err = error(r#"{"name": "adamx"}"#);
    assert!(err.contains("unknown optimizer `adamx`"), "{err}");
    assert!(err.contains("adam, adamw, amsgrad, adashift, adai, adaiw, adabelief"), "{err}");
}

#[test]
fn unknown_hyperparameter_lists_the_valid_ones() {
    let err = error(r#"{"name": "adam", "betas": [0.9, 0.99]}"#.replace("[0.9, 0.99]", "0.9").as_str());
    assert_eq!(
        err,
        "unknown hyperparameter `betas` for optimizer `adam`; valid hyperparameters: \
         lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad"
    );
    let err = error(r#"{"name": "adashift", "weight_decay": 0.1}"#);
    assert!(err.contains("`weight_decay`") && err.contains("keep_num, phi, variant"), "{err}");
}

#[test]
fn missing_name_is_an_error_that_lists_the_names() {
    let err = serde_json::from_str::<OptimizerSpec>(r#"{"lr": 0.1}"#).unwrap_err().to_string();
    assert!(err.contains("needs a `name`") && err.contains("sgd, adam"), "{err}");
}

#[test]
fn required_learning_rate() {
    assert_eq!(
        error(r#"{"name": "sgd"}"#),
        "optimizer `sgd` needs `lr`: its reference implementation has no default for it"
    );
    assert!(error(r#"{"name": "adai", "beta0": 0.2}"#).contains("`adai` needs `lr`"));
}

#[test]
fn negative_learning_rate() {
    let err = error(r#"{"name": "adam", "lr": -0.001}"#);
    assert_eq!(err, "hyperparameter `lr` of optimizer `adam` is out of range: -0.001 (must be a finite number >= 0)");
}

#[test]
fn beta_outside_the_unit_interval() {
    for (spec, key) in [
        (r#"{"name": "adam", "beta1": 1.0}"#, "beta1"),
        (r#"{"name": "adabelief", "beta2": -0.1}"#, "beta2"),
        (r#"{"name": "adamod", "beta3": 1.5}"#, "beta3"),
        (r#"{"name": "adai", "lr": 1, "beta2": 1}"#, "beta2"),
    ] {
        let err = error(spec);
        assert!(err.contains(&format!("`{key}`")) && err.contains("must be in [0, 1)"), "{err}");
    }
}

#[test]
fn keep_num_must_be_a_positive_whole_number() {
    assert_eq!(
        error(r#"{"name": "adashift", "keep_num": 0}"#),
        "hyperparameter `keep_num` of optimizer `adashift` is out of range: 0 (must be at least 1)"
    );
    assert_eq!(
        error(r#"{"name": "adashift", "keep_num": 2.5}"#),
        "hyperparameter `keep_num` of optimizer `adashift` must be a whole number >= 0, not the number 2.5"
    );
    assert!(error(r#"{"name": "adashift", "keep_num": -3}"#).contains("whole number"));
}

#[test]
fn phi_must_be_max_mean_or_none() {
    let err = error(r#"{"name": "adashift", "phi": "median"}"#);
    assert!(err.contains("`phi`") && err.contains("median") && err.contains("`max`, `mean`, `none`"), "{err}");
}

#[test]
fn variants_must_be_one_of_the_choices() {
    let err = error(r#"{"name": "adashift", "variant": "torch"}"#);
    assert!(err.contains("`variant`") && err.contains("torch") && err.contains("`tf` or `pytorch-optimizer`"), "{err}");
    let err = error(r#"{"name": "amsgrad", "variant": "pytorch"}"#);
    assert!(err.contains("`variant`") && err.contains("pytorch") && err.contains("`torch` or `tf`"), "{err}");
    let shift = json(r#"{"name": "adashift"}"#).resolve().unwrap();
    assert_eq!(shift.hyperparameters["variant"], HyperValue::Str("tf".into()));
    let ams = json(r#"{"name": "amsgrad"}"#).resolve().unwrap();
    assert_eq!(ams.hyperparameters["variant"], HyperValue::Str("torch".into()));
    assert!(json(r#"{"name": "adam", "variant": "tf"}"#).resolve().is_err(), "adam has no variant");
}

#[test]
fn the_tf_amsgrad_has_no_weight_decay() {
    let err = error(r#"{"name": "amsgrad", "variant": "tf", "weight_decay": 0.01}"#);
    assert_eq!(
        err,
        "hyperparameter `weight_decay` of optimizer `amsgrad` is out of range: 0.01 (must be 0 with \
         variant = \"tf\": the authors' TensorFlow AMSGrad has no weight decay)"
    );
    let err = error(r#"{"name": "amsgrad", "variant": "tf", "decoupled": true}"#);
    assert!(err.contains("`decoupled`") && err.contains("variant = \"tf\""), "{err}");
    let err = error(r#"{"name": "amsgrad", "variant": "tf", "amsgrad": false}"#);
    assert!(err.contains("`amsgrad`") && err.contains("always takes the maximum"), "{err}");
    // The torch variant keeps Adam's weight decay.
    assert!(json(r#"{"name": "amsgrad", "weight_decay": 0.01}"#).resolve().is_ok());
}

#[test]
fn the_tf_adashift_needs_a_positive_eps() {
    let err = error(r#"{"name": "adashift", "eps": 0}"#);
    assert!(err.contains("`eps`") && err.contains("must be > 0 with variant = \"tf\""), "{err}");
    assert!(json(r#"{"name": "adashift", "eps": 0, "variant": "pytorch-optimizer"}"#).resolve().is_ok());
}

#[test]
fn wrong_value_types() {
    assert_eq!(
        error(r#"{"name": "adam", "lr": "fast"}"#),
        "hyperparameter `lr` of optimizer `adam` must be a number, not the string \"fast\""
    );
    assert_eq!(
        error(r#"{"name": "adam", "amsgrad": 1}"#),
        "hyperparameter `amsgrad` of optimizer `adam` must be true or false, not the integer 1"
    );
    assert!(error(r#"{"name": "adashift", "phi": 3}"#).contains("must be a string"));
}

#[test]
fn nesterov_needs_momentum() {
    let err = error(r#"{"name": "sgd", "lr": 0.1, "nesterov": true}"#);
    assert!(err.contains("`nesterov`") && err.contains("momentum > 0"), "{err}");
}

#[test]
fn params_structs_reject_bad_values_when_built_directly() {
    use candle_nn::optim::Optimizer;
    let x = Var::new(&[1.0f32], &Device::Cpu).unwrap();
    let params = optimizers::ParamsAdam { beta2: 1.0, ..Default::default() };
    let err = optimizers::Adam::new(vec![x], params).unwrap_err().to_string();
    assert!(err.contains("`beta2`") && err.contains("[0, 1)"), "{err}");
}

#[test]
fn slugs_name_the_non_default_hyperparameters() {
    assert_eq!(OptimizerSpec::new("adam").slug(), "default");
    let spec = json(r#"{"name": "adashift", "lr": 0.01, "phi": "mean", "keep_num": 10}"#);
    assert_eq!(spec.slug(), "keep_num-10_lr-0.01_phi-mean");
    let _ = SpecError::MissingName { valid: String::new() };
}
