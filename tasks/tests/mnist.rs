//! The MNIST family of tasks: on small IDX files the test writes (always), and on the real
//! MNIST and Fashion-MNIST when they are on this machine (`../shared/data/mnist`, Debian's
//! `dataset-fashion-mnist` in `/usr/share/datasets`).

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::hub::StandInHub;
use common::optbench_env as optbench;

#[test]
fn mnist_tasks_train_from_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    common::toy_digits(dir.path(), 600, 200);
    let config = common::write_config(
        dir.path(),
        "toy.toml",
        r#"
name = "toy-mnist"
data_dir = "."
[[tasks]]
name = "mnist-logreg"
epochs = 2
batch_size = 32
options = { valid_size = 0 }
[[tasks]]
name = "mnist-mlp"
epochs = 2
options = { hidden = 32, hidden_layers = 1, valid_size = 100, train_subset = 500, test_subset = 100 }
[[tasks]]
name = "mnist-logreg"
label = "mnist-logreg-normal"
epochs = 2
batch_size = 32
options = { init = "normal", valid_size = 0 }
[[optimizers]]
name = "adam"
lr = 1e-2
"#,
    );
    let out = dir.path().join("out");
    let plan = common::load(&config, &out);
    assert_eq!(plan.data_dirs, vec![dir.path().join(".")], "data_dir relative to the config's folder");
    let data = tasks::data::DataSettings {
        data_dirs: plan.data_dirs.clone(),
        offline: true,
        cache_dir: Some(dir.path().join("cache")),
        ..Default::default()
    };
    let summary = common::sweep_with(&plan, 1, data);
    assert_eq!(summary.completed, 3, "{summary:?}");
    let results = common::results(&out);
    for r in &results {
        assert_eq!(r.metrics[0].name, "test_accuracy");
        let acc = r.final_metrics["test_accuracy"].unwrap();
        assert!(acc > 0.9, "{}: accuracy {acc}", r.id);
        assert_eq!(r.history.epoch.last().copied().flatten(), Some(2.0));
        assert!(r.final_metrics["test_loss"].unwrap() < 1.0);
    }
    let mlp = common::find(&results, "mnist-mlp", "adam");
    assert_eq!(mlp.steps_per_epoch, Some(8), "500 images (of the 600 less 100 held out) in batches of 64");
    assert!(
        mlp.final_metrics.get("valid_accuracy").copied().flatten().is_some_and(|a| a > 0.8),
        "{:?}",
        mlp.final_metrics
    );
    assert!(!logreg_has_valid(&results), "valid_size = 0: no validation metrics");
    let logreg = common::find(&results, "mnist-logreg", "adam");
    assert_eq!(logreg.steps_per_epoch, Some(19), "600 images in batches of 32");
}

#[test]
fn the_quick_config_completes_every_arm_on_the_real_mnist() {
    let Some(data) = common::shared_data() else {
        eprintln!("skipped: no ../shared/data/mnist");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = common::root().canonicalize().unwrap();
    let config = root.join("configs/adashift-mnist-quick.toml");
    let (ok, stdout, stderr) = optbench(
        &["run", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap(), "--out", "out", "--jobs", "2"],
        dir.path(),
        &[("OPTBENCH_CACHE", dir.path().join("cache").as_os_str())],
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("8 completed, 0 diverged, 0 failed"), "{stdout}");
    let results = common::results(&dir.path().join("out"));
    assert_eq!(results.len(), 8);
    // The authors' setup (linear MLP, N(0, 1) init, their AMSGrad and AdaShift): every arm
    // learns, non-AdaShift included (it diverged with pytorch-optimizer's AdaShift).
    for r in &results {
        let acc = r.final_metrics["test_accuracy"].unwrap();
        println!("{} {}: {acc}", r.task.label, r.optimizer_label);
        assert!(acc > 0.8, "{} / {}: test accuracy {acc}", r.task.label, r.optimizer_label);
    }
    // The ReLU MLP with PyTorch's init passes 97% in 3 epochs.
    for arm in ["adam", "amsgrad"] {
        let acc = common::find(&results, "mnist-mlp-relu", arm).final_metrics["test_accuracy"].unwrap();
        assert!(acc > 0.97, "a ReLU MLP with {arm} should pass 97% in 3 epochs, got {acc}");
    }
}

#[test]
fn fashion_mnist_from_debians_package_when_installed() {
    if !Path::new("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists() {
        eprintln!("skipped: no /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(
        dir.path(),
        "f.toml",
        "name = \"f\"\n[[tasks]]\nname = \"fashion-mnist-logreg\"\nepochs = 1\noptions = { train_subset = 10000, test_subset = 2000 }\n[[optimizers]]\nname = \"adam\"\nlr = 1e-2\n",
    );
    let (ok, stdout, stderr) = optbench(
        &["run", config.to_str().unwrap(), "--out", "out"],
        dir.path(),
        &[("OPTBENCH_CACHE", dir.path().join("c").as_os_str())],
    );
    assert!(ok, "{stdout}\n{stderr}");
    let r = &common::results(&dir.path().join("out"))[0];
    let acc = r.final_metrics["test_accuracy"].unwrap();
    assert!(acc > 0.7, "Fashion-MNIST logistic regression after one epoch on 10k images: {acc}");
}

#[test]
fn the_cli_uses_hf_endpoint_and_hf_home_then_works_offline() {
    // The real environment variables, through the binary: a stand-in Hub, a temporary HF_HOME.
    let dir = tempfile::tempdir().unwrap();
    common::toy_digits(dir.path(), 30, 10);
    let idx_dir = dir.path().join("mnist");
    let (train, labels) = {
        let (n, _, _, pixels) =
            tasks::data::format::idx::read_images(&idx_dir.join("train-images-idx3-ubyte")).unwrap();
        let labels = tasks::data::format::idx::read_labels(&idx_dir.join("train-labels-idx1-ubyte")).unwrap();
        ((0..n).map(|i| pixels[i * 784..(i + 1) * 784].to_vec()).collect::<Vec<_>>(), labels)
    };
    let parquet = |images: &[Vec<u8>], labels: &[u32], name: &str| -> Vec<u8> {
        let path = dir.path().join(name);
        common::mnist_parquet(&path, images, &labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
        std::fs::read(path).unwrap()
    };
    let hub = StandInHub::start(
        "ylecun/mnist",
        "refs/convert/parquet",
        vec![
            ("mnist/train/0000.parquet".into(), parquet(&train, &labels, "a.parquet")),
            ("mnist/test/0000.parquet".into(), parquet(&train[..10], &labels[..10], "b.parquet")),
        ],
    );
    let home = dir.path().join("hf-home");
    let cache = dir.path().join("optbench-cache");
    let env =
        [("HF_ENDPOINT", OsStr::new(&hub.url)), ("HF_HOME", home.as_os_str()), ("OPTBENCH_CACHE", cache.as_os_str())];
    let elsewhere = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = optbench(&["data", "fetch", "mnist"], elsewhere.path(), &env);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("mnist: ok") && stdout.contains("30 train / 10 test images from ylecun/mnist"), "{stdout}");
    assert!(home.join("hub/datasets--ylecun--mnist").is_dir(), "the download went into $HF_HOME/hub");
    let (ok, stdout, _) = optbench(&["data", "verify", "mnist"], elsewhere.path(), &env);
    assert!(ok && stdout.contains("0 corrupt"), "{stdout}");
    let (ok, stdout, _) = optbench(&["data", "list"], elsewhere.path(), &env);
    assert!(ok && stdout.contains("in the Hugging Face cache; decoded"), "{stdout}");

    // Offline, a run uses the caches; a data set that is not cached fails with the message.
    std::fs::write(
        elsewhere.path().join("c.toml"),
        "name = \"c\"\n[[tasks]]\nname = \"mnist-logreg\"\nepochs = 1\noptions = { valid_size = 0 }\n[[tasks]]\nname = \"fashion-mnist-logreg\"\nepochs = 1\n[[optimizers]]\nname = \"adam\"\n",
    )
    .unwrap();
    let requests = hub.requests().len();
    let mut offline_env = env.to_vec();
    offline_env.push(("OPTBENCH_OFFLINE", OsStr::new("1")));
    let (ok, stdout, stderr) = optbench(&["run", "c.toml", "--out", "out"], elsewhere.path(), &offline_env);
    assert_eq!(hub.requests().len(), requests, "offline: no request");
    if Path::new("/usr/share/datasets/fashion-mnist").exists() {
        // Debian's package is found locally.
        assert!(ok && stdout.contains("2 completed, 0 diverged, 0 failed"), "{stdout}\n{stderr}");
    } else {
        assert!(!ok, "the Fashion-MNIST run fails offline");
        assert!(stdout.contains("1 completed, 0 diverged, 1 failed"), "{stdout}\n{stderr}");
        assert!(stderr.contains("cannot load data set `fashion-mnist`") && stderr.contains("offline mode"), "{stderr}");
    }
    // Corrupt the decoded cache: `data verify` says so and fails.
    let entry = std::fs::read_dir(cache.join("datasets"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .unwrap();
    let mut bytes = std::fs::read(&entry).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&entry, bytes).unwrap();
    let (ok, stdout, _) = optbench(&["data", "verify", "mnist"], elsewhere.path(), &env);
    assert!(!ok && stdout.contains("CORRUPT") && stdout.contains("1 corrupt"), "{stdout}");
}

/// Whether a logistic-regression run (trained with `valid_size = 0`) reports validation metrics.
fn logreg_has_valid(results: &[tasks::runner::record::RunResult]) -> bool {
    results
        .iter()
        .filter(|r| r.id.contains("logreg"))
        .any(|r| r.final_metrics.get("valid_accuracy").copied().flatten().is_some())
}
