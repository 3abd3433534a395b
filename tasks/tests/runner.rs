//! The runner: result files, resume, failures and divergence that do not stop a sweep,
//! reproducibility, parallel jobs, reports and plots.

mod common;

use common::*;
use tasks::runner::record::{stream_path, temporary_path, Status};
use tasks::task::Budget;

const SMALL: &str = r#"
name = "small"
seeds = [0, 1]

[[tasks]]
name = "toy2d-quadratic"
steps = 300
eval_every = 50

[[tasks]]
name = "online-stochastic"
steps = 20000
eval_every = 5000
log_every = 100

[[optimizers]]
name = "adam"
lr = [0.01, 0.1]

[[optimizers]]
name = "adashift"
label = "non-adashift"
phi = "none"
lr = 0.01
keep_num = 2
"#;

#[test]
fn results_are_self_describing_and_resume_skips_what_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "small.toml", SMALL);
    let out = dir.path().join("out");
    let plan = load(&config, &out);
    assert_eq!(plan.runs.len(), 2 * 3 * 2);
    let summary = sweep(&plan, 1);
    assert_eq!((summary.completed, summary.skipped), (12, 0));

    let path = out.join("small/toy2d-quadratic/adam/lr-0.1/seed-1.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in ["task", "optimizer", "seed", "device", "status", "history", "final", "software", "git_commit"] {
        assert!(json.get(key).is_some(), "result file lacks `{key}`");
    }
    assert_eq!(json["status"], "completed");
    assert_eq!(json["optimizer"]["name"], "adam");
    assert_eq!(json["optimizer"]["beta2"], 0.999, "the resolved spec has the defaults filled in");
    assert_eq!(json["task"]["options"]["x0"], 2.5);
    assert!(json["task"]["schedule"].is_object(), "the schedule is the task's");
    assert!(json.get("resumed_from_step").is_none(), "a run that did not resume says nothing of it");
    assert_eq!(json["history"]["step"].as_array().unwrap().len(), 6);
    for key in ["epoch", "lr", "train_loss", "wall_time", "loss", "x", "y"] {
        assert_eq!(json["history"][key].as_array().unwrap().len(), 6, "history.{key}");
    }
    assert!(json["software"]["candle"].as_str().unwrap().starts_with("0.11"));
    // The training-loss stream beside it: one line per step.
    let stream = std::fs::read_to_string(stream_path(&path)).unwrap();
    assert_eq!(stream.lines().count(), 30, "log_every = 10 over 300 steps");
    let first: serde_json::Value = serde_json::from_str(stream.lines().next().unwrap()).unwrap();
    assert_eq!(first["step"], 10);

    // Running again does nothing.
    let again = sweep(&plan, 1);
    assert_eq!((again.completed, again.skipped), (0, 12));

    // A run killed halfway leaves no result (maybe a stream and a temporary file): rerunning
    // completes just that one.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(temporary_path(&path), "{\"half\": ").unwrap();
    let resumed = sweep(&plan, 1);
    assert_eq!((resumed.completed, resumed.skipped), (1, 11));
    assert!(!temporary_path(&path).exists());
    assert_eq!(tasks::runner::record::RunResult::load(&path).unwrap().status, Status::Completed);

    // A changed setup (here: the budget) is not mistaken for a finished run.
    let mut longer = plan.clone();
    for run in &mut longer.runs {
        run.task.budget = Budget::Steps(400);
    }
    longer.runs.retain(|r| r.task.name == "toy2d-quadratic" && r.optimizer_label == "non-adashift");
    let rerun = sweep(&longer, 1);
    assert_eq!((rerun.completed, rerun.skipped), (2, 0));
}

#[test]
fn the_same_seed_gives_the_same_numbers_and_jobs_do_not_change_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "small.toml", SMALL);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    sweep(&load(&config, &a), 1);
    sweep(&load(&config, &b), 3);
    let (ra, rb) = (results(&a), results(&b));
    assert_eq!(ra.len(), rb.len());
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x.id, y.id);
        assert_eq!(x.final_metrics, y.final_metrics, "{}", x.id);
        assert_eq!(x.history.metrics, y.history.metrics, "{}", x.id);
        assert_eq!(x.history.train_loss, y.history.train_loss, "{}", x.id);
    }
    // Different seeds draw different data on the stochastic problem.
    let seed = |s: u64| {
        ra.iter()
            .find(|r| r.task.name == "online-stochastic" && r.optimizer_label == "non-adashift" && r.seed == s)
            .unwrap()
            .final_metrics["x"]
    };
    assert_ne!(seed(0), seed(1));
}

#[test]
fn a_failing_or_diverging_run_does_not_stop_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "bad.toml",
        r#"
name = "bad"
[[tasks]]
name = "online-stochastic"
label = "broken"
steps = 100
options = { c = 0.0 }      # (1 + delta) / (C + 1) > 1: rejected when the task is built
[[tasks]]
name = "toy2d-rosenbrock"
steps = 2000
eval_every = 100
[[optimizers]]
name = "sgd"
lr = 0.5                   # far too large for Rosenbrock: diverges
[[optimizers]]
name = "adam"
lr = 0.01
"#,
    );
    let out = dir.path().join("out");
    let plan = load(&config, &out);
    let summary = sweep(&plan, 1);
    assert_eq!((summary.completed, summary.diverged, summary.failed), (1, 1, 2), "{summary:?}");
    let results = results(&out);
    let broken = find(&results, "broken", "adam");
    assert_eq!(broken.status, Status::Failed);
    assert!(broken.error.as_deref().unwrap().contains("is not a probability"), "{:?}", broken.error);
    let diverged = find(&results, "toy2d-rosenbrock", "sgd");
    assert_eq!(diverged.status, Status::Diverged);
    assert!(diverged.diverged_at_step.unwrap() < 2000);
    assert_eq!(find(&results, "toy2d-rosenbrock", "adam").status, Status::Completed);
    // Failed runs are retried, diverged ones are final.
    let again = sweep(&plan, 1);
    assert_eq!((again.skipped, again.failed), (2, 2));
    // The report counts them.
    let report = tasks::report::build(&out);
    let row = report.rows.iter().find(|r| r.task == "toy2d-rosenbrock" && r.optimizer == "sgd").unwrap();
    assert_eq!((row.completed, row.diverged, row.failed), (0, 1, 0));
}

#[test]
fn the_report_picks_the_best_setting_and_gives_mean_and_std_over_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "small.toml", SMALL);
    let out = dir.path().join("out");
    sweep(&load(&config, &out), 2);
    let report = tasks::report::build(&out);
    assert_eq!(report.rows.len(), 4, "2 tasks x 2 arms");
    let row = report.rows.iter().find(|r| r.task == "toy2d-quadratic" && r.optimizer == "adam").unwrap();
    assert_eq!(row.settings_tried, 2);
    // On the quadratic, lr 0.1 gets much closer to the minimum in 300 steps than lr 0.01.
    assert_eq!(row.setting, "lr-0.1");
    assert_eq!(row.lr, Some(0.1));
    let primary = row.primary().unwrap();
    assert_eq!(primary.metric, "loss");
    assert_eq!(primary.last.unwrap().n, 2);
    let results = results(&out);
    let finals: Vec<f64> = results
        .iter()
        .filter(|r| r.task.label == "toy2d-quadratic" && r.setting == "lr-0.1" && r.optimizer_label == "adam")
        .map(|r| r.final_metrics["loss"].unwrap())
        .collect();
    let mean = finals.iter().sum::<f64>() / 2.0;
    assert!((primary.last.unwrap().mean - mean).abs() < 1e-15);
    let md = report.markdown();
    assert!(md.contains("## small / toy2d-quadratic") && md.contains("| adam | lr-0.1 (of 2) | 0.1 |"), "{md}");
    let csv = report.csv();
    assert!(csv.starts_with("experiment,task,optimizer,best_setting,lr"));
    assert_eq!(
        csv.lines().count(),
        1 + 2 * 4 + 2 * 3,
        "a row per metric: loss, x, y, train_loss on toy2d; avg_regret, x, train_loss online"
    );
}

#[test]
fn plots_draw_paths_and_curves() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "small.toml", SMALL);
    let out = dir.path().join("out");
    sweep(&load(&config, &out), 2);
    let files = tasks::report::plot::plot_all(&out, &dir.path().join("plots")).unwrap();
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().to_string()).collect();
    for name in [
        "small--toy2d-quadratic--curves.svg",
        "small--toy2d-quadratic--lr.svg",
        "small--online-stochastic--curves.svg",
        "small--online-stochastic--lr.svg",
        "small--toy2d.svg",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    for f in files {
        let svg = std::fs::read_to_string(&f).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{}", f.display());
        assert!(svg.contains("non-adashift"), "the legend names the arms");
    }
}
