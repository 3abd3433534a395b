//! Config files: TOML and YAML give the same plan, and every kind of mistake is an error that
//! names the file, the key path and what is expected.

mod common;

use common::write_config;
use tasks::plan::{self, Overrides};

fn error(name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), name, text);
    let err = plan::load(&file, &Overrides::default()).expect_err("the config should be rejected").to_string();
    let shown = file.display().to_string();
    assert!(err.starts_with(&shown), "the error names the file: {err}");
    err[shown.len()..].to_string()
}

const TOML: &str = r#"
name = "same"
seeds = 2
[[tasks]]
name = "online-sequential"
steps = 1000
schedule = { kind = "multistep", steps = [500], factor = 0.5 }
options = { c1 = 505, d = 51 }
[[optimizers]]
name = "adashift"
lr = { log = [1e-3, 1e-1], num = 3 }
keep_num = [1, 10]
[[reported]]
task = "online-sequential"
optimizer = "adashift"
metric = "x"
value = -1.0
kind = "final"
source = "AdaShift Fig. 1"
"#;

const YAML: &str = r#"
name: same
seeds: 2
tasks:
  - name: online-sequential
    steps: 1000
    schedule: {kind: multistep, steps: [500], factor: 0.5}
    options: {c1: 505, d: 51}
optimizers:
  - name: adashift
    lr: {log: [1.0e-3, 1.0e-1], num: 3}
    keep_num: [1, 10]
reported:
  - {task: online-sequential, optimizer: adashift, metric: x, value: -1.0, kind: final, source: "AdaShift Fig. 1"}
"#;

#[test]
fn toml_and_yaml_give_the_same_plan() {
    let dir = tempfile::tempdir().unwrap();
    let a = plan::load(&write_config(dir.path(), "a.toml", TOML), &Overrides::default()).unwrap();
    let b = plan::load(&write_config(dir.path(), "b.yaml", YAML), &Overrides::default()).unwrap();
    assert_eq!(a.runs, b.runs);
    assert_eq!(a.runs.len(), 3 * 2 * 2);
    let first = &a.runs[0];
    assert_eq!(first.id(), "online-sequential/adashift/keep_num-1_lr-0.001/seed-0");
    assert_eq!(first.task.options["c1"], optimizers::HyperValue::Float(505.0), "an integer where a number goes");
    assert_eq!(first.optimizer.hyperparameters["phi"], optimizers::HyperValue::Str("max".into()));
    assert_eq!(first.reported.len(), 1);
    assert_eq!(first.reported[0].kind, Some(tasks::config::ReportedKind::Final));
    assert_eq!(a.out, std::path::Path::new("results"));
}

#[test]
fn command_line_overrides_win() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(
        dir.path(),
        "a.toml",
        &TOML.replace("seeds = 2\n", "seeds = 2\nout = \"elsewhere\"\ndevice = \"cuda\"\n"),
    );
    let p = plan::load(
        &file,
        &Overrides { out: Some("mine".into()), device: Some("cpu".into()), data_dirs: vec![], allow_large: false },
    )
    .unwrap();
    assert_eq!(p.out, std::path::Path::new("mine"));
    assert!(p.runs.iter().all(|r| r.device == "cpu"));
}

#[test]
fn unknown_task_lists_the_tasks() {
    let err = error("x.toml", "name = \"x\"\n[[tasks]]\nname = \"mnist\"\n[[optimizers]]\nname = \"adam\"\n");
    assert!(err.contains("tasks[0].name: unknown task `mnist`; valid tasks: online-sequential"), "{err}");
}

#[test]
fn unknown_and_mistyped_task_keys() {
    let err =
        error("x.toml", "name = \"x\"\n[[tasks]]\nname = \"toy2d-abs\"\nstesp = 3\n[[optimizers]]\nname = \"adam\"\n");
    assert!(
        err.contains("tasks[0].stesp") && err.contains("unknown field `stesp`") && err.contains("`steps`"),
        "{err}"
    );
    let err = error(
        "x.toml",
        "name = \"x\"\n[[tasks]]\nname = \"toy2d-abs\"\noptions = { z0 = 1 }\n[[optimizers]]\nname = \"adam\"\n",
    );
    assert!(err.contains("tasks[0].options.z0: unknown option of task `toy2d-abs`; valid options: x0, y0"), "{err}");
    let err = error(
        "x.yaml",
        "name: x\ntasks:\n  - name: online-stochastic\n    options: {bounded: 1}\noptimizers:\n  - name: adam\n",
    );
    assert!(err.contains("tasks[0].options.bounded: must be true or false, not the integer 1"), "{err}");
    let err = error(
        "x.yaml",
        "name: x\ntasks:\n  - name: toy2d-abs\n    steps: 10\n    epochs: 2\noptimizers:\n  - name: adam\n",
    );
    assert!(err.contains("give `steps` or `epochs`, not both"), "{err}");
    let err = error("x.yaml", "name: x\ntasks:\n  - name: toy2d-abs\n    epochs: 2\noptimizers:\n  - name: adam\n");
    assert!(err.contains("tasks[0].epochs: task `toy2d-abs` has no epochs: give `steps`"), "{err}");
    let err =
        error("x.yaml", "name: x\ntasks:\n  - name: toy2d-abs\n    batch_size: 32\noptimizers:\n  - name: adam\n");
    assert!(err.contains("tasks[0].batch_size: task `toy2d-abs` has no batches"), "{err}");
}

#[test]
fn optimizer_arm_errors_name_the_arm_and_key() {
    let base = "name = \"x\"\n[[tasks]]\nname = \"toy2d-abs\"\n[[optimizers]]\nname = \"adam\"\n[[optimizers]]\n";
    let err = error("x.toml", &format!("{base}name = \"adamx\"\n"));
    assert!(err.contains("optimizers[1].name: unknown optimizer `adamx`; valid names: sgd, adam"), "{err}");
    let err = error("x.toml", &format!("{base}name = \"adashift\"\nkeep_num = [1, 0]\n"));
    assert!(err.contains("optimizers[1].keep_num: hyperparameter `keep_num` of optimizer `adashift` is out of range: 0 (must be at least 1)"), "{err}");
    let err = error("x.toml", &format!("{base}name = \"adashift\"\nphi = \"median\"\n"));
    assert!(err.contains("optimizers[1].phi") && err.contains("`max`, `mean`, `none`"), "{err}");
    let err = error("x.toml", &format!("{base}name = \"sgd\"\n"));
    assert!(err.contains("optimizers[1].lr: optimizer `sgd` needs `lr`"), "{err}");
    let err = error("x.toml", &format!("{base}name = \"adam\"\nlr = -1\n"));
    assert!(err.contains("optimizers[1].lr") && err.contains("must be a finite number >= 0"), "{err}");
    let err = error("x.toml", &format!("{base}name = \"adam\"\nbetas = [0.9, 0.99]\n"));
    assert!(err.contains("optimizers[1].betas: unknown hyperparameter `betas`"), "{err}");
    let err = error("x.toml", &format!("{base}name = \"adam\"\nlr = {{ log = [1e-3, 1e-1] }}\n"));
    assert!(err.contains("optimizers[1].lr: `num` must be a whole number"), "{err}");
}

#[test]
fn duplicate_runs_and_bad_references() {
    let err = error("x.toml", "name = \"x\"\n[[tasks]]\nname = \"toy2d-abs\"\n[[optimizers]]\nname = \"adam\"\n[[optimizers]]\nname = \"adam\"\n");
    assert!(err.contains("run `toy2d-abs/adam/default/seed-0` is also made by optimizers[0]: give one of the arms a different `label`"), "{err}");
    let err = error(
        "x.toml",
        "name = \"x\"\n[[tasks]]\nname = \"toy2d-abs\"\n[[optimizers]]\nname = \"adam\"\n[[reported]]\ntask = \"toy2d-abs\"\noptimizer = \"adamw\"\nmetric = \"loss\"\nvalue = 0.0\n",
    );
    assert!(err.contains("reported[0].optimizer: no optimizer labelled `adamw`"), "{err}");
    let err = error("x.toml", "name = \"x\"\n[[tasks]]\nname = \"toy2d-abs\"\noptimizer_overrides = { keep_num = 3 }\n[[optimizers]]\nname = \"adam\"\n");
    assert!(err.contains("tasks[0].optimizer_overrides.keep_num: no optimizer arm has this hyperparameter"), "{err}");
}

#[test]
fn syntax_errors_schedules_seeds_devices() {
    let err = error("x.toml", "name = \"x\"\n[[tasks]\n");
    assert!(err.contains("TOML parse error at line 2"), "{err}");
    let err = error(
        "x.toml",
        "name = \"x\"\nseeds = \"three\"\n[[tasks]]\nname = \"toy2d-abs\"\n[[optimizers]]\nname = \"adam\"\n",
    );
    assert!(err.contains("seeds") && err.contains("a list of seeds"), "{err}");
    let err = error(
        "x.toml",
        "name = \"x\"\ndevice = \"tpu\"\n[[tasks]]\nname = \"toy2d-abs\"\n[[optimizers]]\nname = \"adam\"\n",
    );
    assert!(err.contains("device: unknown device `tpu`: use cpu, cuda, cuda:N or metal"), "{err}");
    let err = error("x.toml", "name = \"x\"\n[[tasks]]\nname = \"toy2d-abs\"\nschedule = { kind = \"cold-start\" }\n[[optimizers]]\nname = \"adam\"\n");
    assert!(err.contains("tasks[0].schedule") && err.contains("missing field `warmup`"), "{err}");
    let err = error("x.toml", "name = \"x\"\n[[tasks]]\nname = \"toy2d-abs\"\nschedule = { kind = \"multistep\", epochs = [2] }\n[[optimizers]]\nname = \"adam\"\n");
    assert!(err.contains("multistep `epochs` needs a task with epochs"), "{err}");
    let err = error(
        "x.toml",
        "name = \"x\"\nseeds = [0, 3, 0]\n[[tasks]]\nname = \"toy2d-abs\"\n[[optimizers]]\nname = \"adam\"\n",
    );
    assert!(err.contains("seeds: seed 0 is listed twice"), "{err}");
    let err =
        error("x.toml", "name = \"x\"\n[[tasks]]\nname = \"mnist-mlp\"\nepochs = 0\n[[optimizers]]\nname = \"adam\"\n");
    assert!(err.contains("tasks[0].epochs: the budget must be at least 1"), "{err}");
    let err = error(
        "x.toml",
        "name = \"x\"\n[[tasks]]\nname = \"toy2d-abs\"\nlog_every = 0\n[[optimizers]]\nname = \"adam\"\n",
    );
    assert!(err.contains("tasks[0].log_every: must be at least 1"), "{err}");
    let err = error("x.json", "{}");
    assert!(err.contains("a config file ends in .toml, .yaml or .yml"), "{err}");
    let err = error("x.toml", "name = \"a/b\"\n[[tasks]]\nname = \"toy2d-abs\"\n[[optimizers]]\nname = \"adam\"\n");
    assert!(err.contains("name: `a/b` cannot name a folder"), "{err}");
}

/// A config with one task entry (its TOML lines given) and one Adam arm.
fn one_task(task_lines: &str) -> String {
    format!("name = \"x\"\n[[tasks]]\n{task_lines}\n[[optimizers]]\nname = \"adam\"\n")
}

#[test]
fn task_options_are_checked_against_their_ranges_at_plan_time() {
    let err = error("x.toml", &one_task("name = \"online-sequential\"\noptions = { d = 0 }"));
    assert!(err.ends_with(": tasks[0].options.d: must be at least 1, not 0"), "{err}");
    let err = error("x.toml", &one_task("name = \"cifar10-densenet-adashift\"\noptions = { dropout = 1.0 }"));
    assert!(err.contains("tasks[0].options.dropout: must be below 1, not 1"), "{err}");
    let err = error("x.toml", &one_task("name = \"cifar10-resnet18\"\noptions = { weight_decay = -0.1 }"));
    assert!(err.contains("tasks[0].options.weight_decay: must be at least 0, not -0.1"), "{err}");
    let err = error("x.toml", &one_task("name = \"mnist-mlp\"\noptions = { activation = \"gelu\" }"));
    assert!(err.contains("tasks[0].options.activation: must be one of relu, none, tanh, sigmoid"), "{err}");
    let err = error("x.toml", &one_task("name = \"fashion-mnist-logreg\"\noptions = { init = \"xavier\" }"));
    assert!(err.contains("tasks[0].options.init: must be one of pytorch, normal"), "{err}");
}

#[test]
fn schedules_with_unknown_keys_or_bad_values_are_rejected() {
    let err = error("x.toml", &one_task("name = \"toy2d-abs\"\nschedule = { kind = \"constant\", foo = 1 }"));
    assert!(err.contains("tasks[0].schedule") && err.contains("takes no key `foo`"), "{err}");
    let err = error(
        "x.toml",
        &one_task("name = \"toy2d-abs\"\nschedule = { kind = \"warmup-inverse-sqrt\", warmup = 10, init_lr = -1.0 }"),
    );
    assert!(err.contains("tasks[0].schedule: warmup-inverse-sqrt init_lr must be >= 0, not -1"), "{err}");
}

#[test]
fn reported_metrics_labels_roles_and_clipping_are_checked() {
    let reported =
        "[[reported]]\ntask = \"toy2d-abs\"\noptimizer = \"adam\"\nmetric = \"test_accuracy\"\nvalue = 1.0\n";
    let err = error("x.toml", &format!("{}{reported}", one_task("name = \"toy2d-abs\"")));
    assert!(
        err.contains("reported[0].metric: task `toy2d-abs` has no metric `test_accuracy`; its metrics: loss, x, y"),
        "{err}"
    );
    // A paper's number says whether it is the final or the best evaluation.
    let unsaid = "[[reported]]\ntask = \"toy2d-abs\"\noptimizer = \"adam\"\nmetric = \"loss\"\nvalue = 0.1\n";
    let err = error("x.toml", &format!("{}{unsaid}", one_task("name = \"toy2d-abs\"")));
    assert!(err.contains("reported[0].kind: say which evaluation the paper's number is"), "{err}");
    let other = unsaid.replace("value = 0.1\n", "value = 0.1\nkind = \"last\"\n");
    let err = error("x.toml", &format!("{}{other}", one_task("name = \"toy2d-abs\"")));
    assert!(err.contains("reported[0].kind") && err.contains("unknown variant `last`"), "{err}");
    let said = unsaid.replace("value = 0.1\n", "value = 0.1\nkind = \"best\"\n");
    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), "x.toml", &format!("{}{said}", one_task("name = \"toy2d-abs\"")));
    let plan = plan::load(&file, &Overrides::default()).unwrap();
    assert_eq!(plan.runs[0].reported[0].kind, Some(tasks::config::ReportedKind::Best));
    let long = "a".repeat(101);
    let err = error("x.toml", &one_task(&format!("name = \"toy2d-abs\"\nlabel = \"{long}\"")));
    assert!(err.contains("tasks[0].label") && err.contains("101 characters long"), "{err}");
    let err = error(
        "x.toml",
        &format!("name = \"{long}\"\n[[tasks]]\nname = \"toy2d-abs\"\n[[optimizers]]\nname = \"adam\"\n"),
    );
    assert!(err.contains(": name: ") && err.contains("at most 100"), "{err}");
    let err = error("x.toml", &one_task("name = \"toy2d-abs\"\nroles = { critic = { lr = 0.1 } }"));
    assert!(
        err.contains("tasks[0].roles.critic: task `toy2d-abs` has no optimizer `critic`; its optimizers: main"),
        "{err}"
    );
    let err = error("x.toml", &one_task("name = \"toy2d-abs\"\nroles = { main = { lr = -0.1 } }"));
    assert!(err.contains("tasks[0].roles.main.lr"), "{err}");
    let err = error("x.toml", &one_task("name = \"toy2d-abs\"\nroles = { main = { momentum = 0.9 } }"));
    assert!(err.contains("tasks[0].roles.main.momentum: no optimizer arm has this hyperparameter"), "{err}");
    let err = error("x.toml", &one_task("name = \"toy2d-abs\"\nclip_norm = -1"));
    assert!(err.contains("tasks[0].clip_norm: must be a finite number >= 0"), "{err}");
}

#[test]
fn roles_and_clipping_reach_the_runs() {
    let dir = tempfile::tempdir().unwrap();
    let text = one_task("name = \"toy2d-abs\"\nclip_norm = 0.25\nroles = { main = { lr = 0.5 } }");
    let p = plan::load(&write_config(dir.path(), "x.toml", &text), &Overrides::default()).unwrap();
    let run = &p.runs[0];
    assert_eq!(run.task.clip_norm, Some(0.25));
    assert_eq!(run.roles["main"].lr(), Some(0.5));
    assert_eq!(run.optimizer.lr(), Some(1e-3), "the arm itself keeps its learning rate");
    let plain =
        plan::load(&write_config(dir.path(), "y.toml", &one_task("name = \"toy2d-abs\"")), &Overrides::default())
            .unwrap();
    assert_ne!(plain.runs[0].fingerprint(), run.fingerprint());
    assert!(plain.runs[0].checkpoint.enabled);
}
