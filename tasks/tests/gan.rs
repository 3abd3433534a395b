//! The GAN tasks (`tasks/src/task/gan/`): the Fréchet distance against pytorch-fid's, short
//! runs of the real pipeline (tiny models, a few rounds) on the real MNIST (skipped without
//! `../shared/data`) and on made-up CIFAR-10 files, and the checkpoint round trip.

mod common;

use std::path::Path;

use candle::Device;
use common::cifar;
use serde_json::Value;
use tasks::task::gan::fid::{frechet_distance, Statistics};

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn the_frechet_distance_equals_pytorch_fids() {
    // scripts/fid/frechet.py: pytorch-fid 0.3.0's calculate_frechet_distance (scipy's sqrtm).
    let path = common::root().join("tasks/tests/fixtures/gan/frechet.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let d = fixture["dim"].as_u64().unwrap() as usize;
    let to_f32 = |k: &str| floats(&fixture[k]).into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let a = Statistics::of(&to_f32("a"), d).unwrap();
    let b = Statistics::of(&to_f32("b"), d).unwrap();
    for (ours, theirs) in a.mean.iter().zip(floats(&fixture["mean_a"])) {
        assert!((ours - theirs).abs() < 1e-12, "mean {ours} vs numpy {theirs}");
    }
    for (i, theirs) in floats(&fixture["cov_a_diagonal"]).into_iter().enumerate() {
        assert!((a.cov[i * d + i] - theirs).abs() < 1e-12, "covariance {i} vs numpy {theirs}");
    }
    assert!((a.cov[1] - fixture["cov_a_01"].as_f64().unwrap()).abs() < 1e-12);
    let fid = frechet_distance(&a, &b).unwrap();
    let theirs = fixture["fid"].as_f64().unwrap();
    assert!((fid - theirs).abs() < 1e-9 * theirs, "FID {fid} vs pytorch-fid {theirs}");
    assert!(frechet_distance(&a, &a).unwrap().abs() < 1e-9);
    assert!(fixture["fid_same"].as_f64().unwrap().abs() < 1e-6);
    // Symmetric, as a distance is.
    assert!((frechet_distance(&b, &a).unwrap() - fid).abs() < 1e-9 * fid);
}

fn mnist_settings() -> Option<tasks::data::DataSettings> {
    let Some(data) = common::shared_data() else {
        eprintln!("skipped: no ../shared/data/mnist");
        return None;
    };
    Some(tasks::data::DataSettings { data_dirs: vec![data], ..common::test_data_settings() })
}

const TINY_MNIST: &str = r#"
name = "gan-test"
seeds = [0]
[[tasks]]
name = "mnist-wgan-gp"
steps = 4
eval_every = 2
batch_size = 16
options = { latent = 8, generator_width = 4, critic_width = 4, fid_samples = 300, train_subset = 640, n_critic = 2 }
roles = { critic = { beta1 = 0.5 }, generator = { beta1 = 0.5, lr = 0.001 } }
[[optimizers]]
name = "adam"
lr = 0.0002
"#;

#[test]
fn a_short_wgan_gp_run_on_mnist_records_fid_and_writes_sample_grids() {
    let Some(data) = mnist_settings() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plan = common::load(&common::write_config(dir.path(), "gan.toml", TINY_MNIST), &dir.path().join("out"));
    assert_eq!(plan.runs[0].roles["generator"].lr(), Some(0.001), "the generator's own lr");
    assert_eq!(plan.runs[0].roles["critic"].lr(), Some(0.0002), "the arm's lr for the critic");
    let summary = common::sweep_with(&plan, 1, data);
    assert_eq!(summary.completed, 1, "{summary:?}");
    let results = common::results(&dir.path().join("out"));
    let r = &results[0];
    let fid = &r.history.metrics["fid"];
    assert_eq!(fid.len(), 2, "fid at both evaluations");
    assert!(fid.iter().all(|v| v.is_some_and(|v| v.is_finite() && v > 0.0)), "{fid:?}");
    assert!(r.history.metrics["wasserstein"].iter().all(|v| v.is_some()));
    assert_eq!(r.history.metrics["generator_loss"].len(), 2, "the generator's loss beside the critic's");
    let stem = tasks::runner::record::find_results(&dir.path().join("out"))[0].clone();
    for step in [2, 4] {
        let png = stem.with_extension(format!("samples-{step:06}.png"));
        let image = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display())).to_rgb8();
        // 8 x 8 images of 28 pixels with 2-pixel gaps.
        assert_eq!(image.dimensions(), (8 * 30 + 2, 8 * 30 + 2));
    }
}

/// A copy of a task's state: its tensors share storage with the live variables, which the
/// optimizers update in place (the runner serialises a state at once).
fn snapshot(state: tasks::task::TaskState) -> tasks::task::TaskState {
    let tensors = state.tensors.into_iter().map(|(k, t)| (k, t.copy().unwrap())).collect();
    tasks::task::TaskState { tensors, meta: state.meta }
}

fn first_run_task(toml: &str, dir: &Path, data: &tasks::data::DataSettings) -> Box<dyn tasks::task::Task> {
    std::fs::create_dir_all(dir).unwrap();
    let plan = common::load(&common::write_config(dir, "gan.toml", toml), &dir.join("out"));
    let spec = &plan.runs[0];
    let info = tasks::task::find(&spec.task.name).unwrap();
    (info.build)(&spec.context(info, &Device::Cpu, data)).unwrap()
}

#[test]
fn a_restored_gan_goes_on_exactly_as_the_uninterrupted_one() {
    let Some(data) = mnist_settings() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut a = first_run_task(TINY_MNIST, dir.path(), &data);
    a.train_step(1).unwrap();
    a.train_step(2).unwrap();
    let state = snapshot(a.state(2).unwrap());
    let optimizers: Vec<_> = a
        .optimizers()
        .into_iter()
        .map(|(role, o)| {
            let saved = o.state().unwrap();
            let tensors = saved.tensors.into_iter().map(|(k, t)| (k, t.copy().unwrap())).collect();
            (role, optimizers::state::OptimizerState { tensors, meta: saved.meta })
        })
        .collect();
    let next = a.train_step(3).unwrap();

    let mut b = first_run_task(TINY_MNIST, dir.path(), &data);
    b.restore(&state, 2).unwrap();
    for ((role, o), (saved_role, saved)) in b.optimizers().into_iter().zip(&optimizers) {
        assert_eq!(role, *saved_role);
        o.load_state(saved).unwrap();
    }
    assert_eq!(b.train_step(3).unwrap(), next, "critic and generator losses of the step after the restore");
}

/// CIFAR-10 binary files of `train` and `test` made-up images.
fn write_cifar(dir: &Path, train: usize, test: usize) {
    let c10 = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&c10).unwrap();
    let images = |n: usize, seed: usize| -> Vec<u8> {
        (0..n * cifar::PIXELS).map(|p| ((p * 7 + seed * 13 + (p / 97) * 31) % 256) as u8).collect()
    };
    for b in 1..=5 {
        let labels: Vec<u8> = (0..train / 5).map(|i| (i % 10) as u8).collect();
        std::fs::write(c10.join(format!("data_batch_{b}.bin")), cifar::encode(&images(train / 5, b), &labels, None))
            .unwrap();
    }
    let labels: Vec<u8> = (0..test).map(|i| (i % 10) as u8).collect();
    std::fs::write(c10.join("test_batch.bin"), cifar::encode(&images(test, 9), &labels, None)).unwrap();
}

#[test]
fn the_cifar_tasks_clip_the_critic_and_keep_the_fixed_generator_fixed() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path(), 80, 20);
    let data = tasks::data::DataSettings { data_dirs: vec![dir.path().to_path_buf()], ..common::test_data_settings() };
    let wgan = r#"
name = "wgan-test"
seeds = [0]
[[tasks]]
name = "cifar10-wgan"
steps = 2
batch_size = 8
options = { latent = 4, generator_width = 2, critic_width = 2, n_critic = 2 }
[[optimizers]]
name = "adam"
lr = 0.01
"#;
    // WGAN at 64x64: every critic weight within [-0.01, 0.01] after a round at a large lr;
    // no Inception network, so the metrics are wasserstein only (fid missing).
    let mut task = first_run_task(wgan, &dir.path().join("wgan"), &data);
    task.train_step(1).unwrap();
    let state = task.state(1).unwrap();
    let critic: Vec<_> = state.tensors.iter().filter(|(k, _)| k.starts_with("critic.param.")).collect();
    assert!(!critic.is_empty());
    for (name, t) in critic {
        let max = t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(max <= 0.01 + 1e-7, "{name}: {max}");
    }
    let metrics = task.evaluate().unwrap();
    assert_eq!(metrics[0].0, "fid");
    assert!(metrics[0].1.is_nan(), "no FID without Inception weights");
    assert!(metrics[1].1.is_finite());

    let critic_only = wgan.replace("cifar10-wgan\"", "cifar10-wgan-critic\"");
    let mut task = first_run_task(&critic_only, &dir.path().join("critic"), &data);
    assert_eq!(task.optimizers().len(), 1, "only the critic trains");
    let before = snapshot(task.state(0).unwrap());
    task.train_step(1).unwrap();
    let after = snapshot(task.state(1).unwrap());
    let generator = |s: &tasks::task::TaskState| -> Vec<Vec<f32>> {
        s.tensors
            .iter()
            .filter(|(k, _)| k.starts_with("generator."))
            .map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect()
    };
    assert_eq!(generator(&before), generator(&after), "the generator is fixed");
    let moved = before.tensors.iter().filter(|(k, _)| k.starts_with("critic.param.")).any(|(k, t)| {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            != after.tensors[k].flatten_all().unwrap().to_vec1::<f32>().unwrap()
    });
    assert!(moved, "the critic trains");
    let metrics = task.evaluate().unwrap();
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0].0, "wasserstein");
}

#[test]
fn a_penalty_on_a_batchnorm_critic_is_refused_when_planned() {
    let text = r#"
name = "bad"
seeds = [0]
[[tasks]]
name = "cifar10-wgan-gp"
steps = 1
options = { critic_norm = "batch" }
[[optimizers]]
name = "adam"
lr = 0.0002
"#;
    let dir = tempfile::tempdir().unwrap();
    let plan = common::load(&common::write_config(dir.path(), "bad.toml", text), &dir.path().join("out"));
    let spec = &plan.runs[0];
    let info = tasks::task::find(&spec.task.name).unwrap();
    let data = common::test_data_settings();
    let err = (info.parameters.as_ref().unwrap())(&spec.context(info, &Device::Cpu, &data)).unwrap_err().to_string();
    assert!(err.contains("critic_norm = \"none\"") && err.contains("penalty = \"none\""), "{err}");
}

/// pytorch-fid's Inception weights in the format `scripts/fid/export_inception.py` writes
/// (470 float32 tensors under torchvision's names), with made-up values: He-normal
/// convolutions, BatchNorm near identity.
fn write_inception_weights(path: &Path) {
    let mut tensors = std::collections::HashMap::new();
    for (t, (name, shape)) in models::inception::expected_tensors().into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let mut rng = models::SeededRng::new(t as u64);
        let values = match name.rsplit('.').next().unwrap() {
            "weight" if shape.len() == 4 => rng.normal_vec(n, 0.0, (2.0 / (n / shape[0]) as f64).sqrt()),
            "weight" | "running_var" => rng.uniform_vec(n, 0.8, 1.2),
            _ => rng.uniform_vec(n, -0.1, 0.1),
        };
        tensors.insert(name, candle::Tensor::from_vec(values, shape, &Device::Cpu).unwrap());
    }
    candle::safetensors::save(&tensors, path).unwrap();
}

#[test]
fn cifar10_fid_uses_the_inception_weights_caches_the_real_statistics_and_is_missing_without_them() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path(), 80, 20);
    let weights = dir.path().join("inception.safetensors");
    write_inception_weights(&weights);
    let cache = dir.path().join("cache");
    let data = tasks::data::DataSettings {
        data_dirs: vec![dir.path().to_path_buf()],
        cache_dir: Some(cache.clone()),
        ..common::test_data_settings()
    };
    let config = |options: &str| {
        format!(
            r#"
name = "fid-test"
seeds = [0]
[[tasks]]
name = "cifar10-wgan-gp"
steps = 1
batch_size = 8
options = {{ image_size = "32", latent = 4, generator_width = 2, critic_width = 2, n_critic = 1, fid_samples = 4{options} }}
[[optimizers]]
name = "adam"
lr = 0.001
"#
        )
    };
    let with_weights = config(&format!(", fid_weights = \"{}\"", weights.display()));
    let mut task = first_run_task(&with_weights, &dir.path().join("a"), &data);
    let cached: Vec<_> = std::fs::read_dir(cache.join("fid-inception")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let name = cached[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("cifar10-") && name.ends_with("-n4-v1.safetensors"), "{name}");
    let written = std::fs::metadata(&cached[0]).unwrap().modified().unwrap();
    let metrics = task.evaluate().unwrap();
    assert_eq!(metrics[0].0, "fid");
    let fid = metrics[0].1;
    assert!(fid.is_finite() && fid > 0.0, "fid {fid}");
    assert!(metrics[1].1.is_finite());

    // A second run reads the cached statistics (the file is not written again) and measures
    // the same FID of the same generator.
    let mut again = first_run_task(&with_weights, &dir.path().join("b"), &data);
    assert_eq!(std::fs::metadata(&cached[0]).unwrap().modified().unwrap(), written);
    assert_eq!(again.evaluate().unwrap()[0].1, fid);

    // A Hub repository that cannot be reached offline: a message, `fid` missing.
    let offline = tasks::data::DataSettings { offline: true, ..data.clone() };
    let mut hub =
        first_run_task(&config(", fid_weights_repo = \"someone/inception\""), &dir.path().join("c"), &offline);
    let metrics = hub.evaluate().unwrap();
    assert!(metrics[0].1.is_nan() && metrics[1].1.is_finite(), "{metrics:?}");

    // A path that is not there is the config's mistake: an error that says how to get the file.
    let plan = common::load(
        &common::write_config(dir.path(), "bad.toml", &config(", fid_weights = \"no/such.safetensors\"")),
        &dir.path().join("out"),
    );
    let info = tasks::task::find("cifar10-wgan-gp").unwrap();
    let error = (info.build)(&plan.runs[0].context(info, &Device::Cpu, &data)).err().expect("an error").to_string();
    assert!(error.contains("no/such.safetensors") && error.contains("export_inception.py"), "{error}");
}
