//! The `optbench` binary end to end: run, resume, plan, report, plot, tasks, optimizers, replay.

mod common;

use std::path::Path;

use common::optbench;

const CONFIG: &str = r#"
name = "cli"
seeds = [0, 1]
[[tasks]]
name = "toy2d-quadratic"
steps = 200
eval_every = 20
[[optimizers]]
name = "adabelief"
lr = [0.01, 0.03]
[[optimizers]]
name = "adam"
lr = 0.01
"#;

#[test]
fn run_resume_report_plot() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cli.toml"), CONFIG).unwrap();
    let (ok, stdout, stderr) = optbench(&["run", "cli.toml", "--jobs", "2"], dir.path());
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("cli: 6 runs: 6 completed, 0 diverged, 0 failed, 0 already done"), "{stdout}");
    assert!(stdout.contains("results: results/cli") && stdout.contains("summary: results/cli/report.md"), "{stdout}");
    // Not a terminal: plain log lines on stderr.
    assert!(stderr.contains("[6/6]") && stderr.contains("toy2d-quadratic/adam/lr-0.01/seed-1"), "{stderr}");
    assert!(dir.path().join("results/cli/report.csv").exists());

    let (ok, stdout, _) = optbench(&["run", "cli.toml", "--quiet"], dir.path());
    assert!(ok && stdout.is_empty(), "quiet prints nothing: {stdout}");
    let (ok, stdout, stderr) = optbench(&["run", "cli.toml"], dir.path());
    assert!(ok && stdout.contains("0 completed, 0 diverged, 0 failed, 6 already done"), "{stdout}");
    assert!(stderr.contains("6 of 6 runs already done"), "{stderr}");

    let (ok, stdout, _) = optbench(&["plan", "cli.toml"], dir.path());
    assert!(
        ok && stdout.contains("toy2d-quadratic/adabelief/lr-0.03/seed-1") && stdout.contains("completed"),
        "{stdout}"
    );

    let (ok, stdout, _) = optbench(&["report", "results/cli"], dir.path());
    assert!(ok, "{stdout}");
    assert!(stdout.contains("## cli / toy2d-quadratic") && stdout.contains("| adabelief | lr-0.0"), "{stdout}");
    assert!(stdout.contains(" (n=2) "), "mean ± std over two seeds: {stdout}");

    let (ok, stdout, _) = optbench(&["plot", "results/cli"], dir.path());
    assert!(ok && stdout.contains("cli--toy2d-quadratic--curves.svg") && stdout.contains("cli--toy2d.svg"), "{stdout}");
}

#[test]
fn errors_are_clear_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), CONFIG.replace("lr = 0.01\n", "lr = 0.01\nkeep_num = 3\n")).unwrap();
    let (ok, _, stderr) = optbench(&["run", "bad.toml"], dir.path());
    assert!(!ok);
    assert!(
        stderr.contains("bad.toml: optimizers[1].keep_num: unknown hyperparameter `keep_num` for optimizer `adam`"),
        "{stderr}"
    );
    let (ok, _, stderr) = optbench(&["run", "missing.toml"], dir.path());
    assert!(!ok && stderr.contains("missing.toml: cannot read"), "{stderr}");
    let (ok, _, stderr) = optbench(&["report", "nowhere"], dir.path());
    assert!(!ok && stderr.contains("nowhere is not a folder of results"), "{stderr}");
    let (ok, _, stderr) = optbench(&["run", "--device", "cuda", "bad.toml"], dir.path());
    assert!(!ok && !stderr.is_empty());
}

#[test]
fn listings() {
    let here = Path::new(".");
    let (ok, stdout, _) = optbench(&["tasks"], here);
    assert!(ok && stdout.contains("online-sequential") && stdout.contains("option c1 = 1010"), "{stdout}");
    let (ok, stdout, _) = optbench(&["optimizers"], here);
    assert!(ok && stdout.contains("adashift") && stdout.contains("keep_num = 10") && stdout.contains("lr (required)"));
    let (ok, stdout, _) = optbench(&["optimizers", "--json"], here);
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(ok && list.as_array().unwrap().len() == optimizers::REGISTRY.len());
}

const MODELS: &str = r#"
name = "models"
seeds = [0, 1]
[[tasks]]
name = "mnist-mlp"
options = { hidden = 100, hidden_layers = 3 }
[[tasks]]
name = "mnist-mlp"
label = "mnist-mlp-wide"
options = { hidden = 300 }
[[tasks]]
name = "cifar10-resnet18"
[[tasks]]
name = "cifar10-vgg11"
[[tasks]]
name = "online-sequential"
[[optimizers]]
name = "adam"
"#;

#[test]
fn plan_shows_each_runs_parameter_count_without_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("models.toml"), MODELS).unwrap();
    // An MLP of layer sizes s: the sum of s[i] s[i+1] weights and s[i+1] biases.
    let mlp = |sizes: &[usize]| -> u64 { sizes.windows(2).map(|w| (w[0] * w[1] + w[1]) as u64).sum() };
    let deep = mlp(&[784, 100, 100, 100, 10]);
    let wide = mlp(&[784, 300, 300, 10]);
    // The suite's CIFAR-10 ResNet-18 and VGG-11 (with BatchNorm): the counts the models' tests pin
    // and issue 16 quotes (PyTorch's `sum(p.numel())` of the kuangliu models).
    let expected = [
        ("mnist-mlp", Some(deep)),
        ("mnist-mlp-wide", Some(wide)),
        ("cifar10-resnet18", Some(11_173_962)),
        ("cifar10-vgg11", Some(9_231_114)),
        ("online-sequential", None),
    ];
    // No data anywhere: the models are built without it.
    let empty = tempfile::tempdir().unwrap();
    let env = [("OPTBENCH_OFFLINE", std::ffi::OsStr::new("1"))];
    let args = ["plan", "--json", "models.toml", "--out", empty.path().to_str().unwrap()];
    let (ok, stdout, stderr) = common::optbench_env(&args, dir.path(), &env);
    assert!(ok, "{stdout}\n{stderr}");
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), expected.len() * 2, "{stdout}");
    for line in &lines {
        let label = line["task"]["label"].as_str().unwrap();
        let (_, count) = expected.iter().find(|(l, _)| *l == label).unwrap();
        assert_eq!(line["parameters"].as_u64(), *count, "{label}: {line}");
        assert!(line["seed"].is_u64() && line["optimizer"]["name"] == "adam", "the run spec is all there: {line}");
    }
    let (ok, stdout, stderr) =
        common::optbench_env(&args[..1].iter().chain(&args[2..]).copied().collect::<Vec<_>>(), dir.path(), &env);
    assert!(ok, "{stdout}\n{stderr}");
    let line = |id: &str| stdout.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("{id}: {stdout}"));
    assert!(line("mnist-mlp/adam/default/seed-0").contains("[10 epochs, 99,710 parameters, to run]"), "{stdout}");
    assert!(line("cifar10-vgg11/adam/default/seed-1").contains("9,231,114 parameters"), "{stdout}");
    assert!(line("online-sequential/adam/default/seed-0").contains("[200000 steps, to run]"), "{stdout}");
    assert_eq!(deep, 99_710, "the count the text line shows");
}

#[test]
fn replay_passes_on_the_fixtures_and_fails_on_a_wrong_trajectory() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../optimizers/tests/fixtures/golden");
    let file = fixtures.join("adabelief--l2-norectify.f64.json");
    let (ok, stdout, _) = optbench(&["replay", file.to_str().unwrap()], Path::new("."));
    assert!(
        ok && stdout.contains("adabelief/l2-norectify [F64]: worst abs error") && stdout.contains(": ok"),
        "{stdout}"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    golden["optimizer"]["eps"] = serde_json::json!(1e-6);
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&wrong, golden.to_string()).unwrap();
    let (ok, stdout, _) =
        optbench(&["replay", file.to_str().unwrap(), wrong.to_str().unwrap(), "nope.json"], dir.path());
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("FAIL (")
            && stdout.contains("nope.json: cannot replay")
            && stdout.contains("1 passed, 2 failed"),
        "{stdout}"
    );
}
