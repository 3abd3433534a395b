//! Reports from result files that the tests write themselves (no training): the papers'
//! claims judged (holds, fails, not enough runs, with Welch intervals and p-values), selection
//! on the validation metric, the ranked and learning-rate tables, time to target, LaTeX
//! escaping, `optbench compare` counting a run once, and result files written before these
//! fields existed. One test binary for all of them (each binary links the whole crate).

mod common;

use std::path::Path;

use tasks::plan::{Plan, RunSpec};
use tasks::report::claims::Verdict;
use tasks::runner::record::{RunResult, Status};

/// A result of `spec` with the given evaluations of each metric (steps 10, 20, ...; 1.5 s
/// each), saved where the runner would put it.
fn write_result(out: &Path, spec: &RunSpec, status: Status, metrics: &[(&str, &[f64])]) -> RunResult {
    let info = tasks::task::find(&spec.task.name).unwrap();
    let mut r = RunResult::start(spec, info.metrics.clone());
    r.status = status;
    let n = metrics.first().map_or(0, |(_, v)| v.len());
    r.history.step = (1..=n as u64).map(|i| 10 * i).collect();
    r.history.wall_time = (1..=n).map(|i| 1.5 * i as f64).collect();
    r.history.lr = vec![1e-3; n];
    r.history.epoch = vec![None; n];
    r.history.train_loss = vec![Some(1.0); n];
    for (name, values) in metrics {
        r.history.metrics.insert(name.to_string(), values.iter().map(|v| Some(*v)).collect());
        r.final_metrics.insert(name.to_string(), values.last().copied());
    }
    r.final_metrics.insert("train_loss".into(), Some(1.0));
    r.steps_done = 10 * n as u64;
    r.total_steps = r.steps_done;
    r.save(&spec.result_path(out)).unwrap();
    r
}

fn plan(dir: &Path, text: &str) -> Plan {
    let file = common::write_config(dir, "exp.toml", text);
    common::load(&file, &dir.join("out"))
}

fn spec<'a>(plan: &'a Plan, optimizer: &str, setting_contains: &str, seed: u64) -> &'a RunSpec {
    plan.runs
        .iter()
        .find(|r| r.optimizer_label == optimizer && r.setting.contains(setting_contains) && r.seed == seed)
        .unwrap_or_else(|| panic!("no run {optimizer} {setting_contains} {seed}"))
}

const ONLINE: &str = r#"
name = "claims"
seeds = [0, 1, 2]

[[tasks]]
name = "online-sequential"
steps = 30

[[optimizers]]
name = "adam"

[[optimizers]]
name = "amsgrad"

[[optimizers]]
name = "sgd"
lr = 0.1

[[claims]]
kind = "beats"
task = "online-sequential"
optimizer = "amsgrad"
other = "adam"
metric = "x"
margin = 1.0
statistic = "final"
source = "a paper | Fig. 1"

[[claims]]
kind = "above"
task = "online-sequential"
optimizer = "adam"
metric = "x"
value = 0.9
statistic = "final"

[[claims]]
kind = "below"
task = "online-sequential"
optimizer = "adam"
metric = "x"
value = 0.0
statistic = "best"

[[claims]]
kind = "beats"
task = "online-sequential"
optimizer = "sgd"
other = "adam"
metric = "x"
statistic = "final"
"#;

#[test]
fn claims_hold_fail_or_lack_runs_with_welch_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path(), ONLINE);
    let out = dir.path().join("out");
    // x: smaller is better. amsgrad ends near -1, adam near +1; sgd diverges on every seed.
    let adam = [[0.0, 0.5, 1.0], [0.0, 0.4, 0.98], [0.0, 0.45, 0.99]];
    let amsgrad = [[0.0, -0.5, -1.0], [0.0, -0.4, -0.9], [0.0, -0.6, -0.95]];
    for seed in 0..3u64 {
        write_result(
            &out,
            spec(&plan, "adam", "", seed),
            Status::Completed,
            &[("avg_regret", &[0.2, 0.1, 0.1]), ("x", &adam[seed as usize])],
        );
        write_result(
            &out,
            spec(&plan, "amsgrad", "", seed),
            Status::Completed,
            &[("avg_regret", &[0.2, 0.1, 0.05]), ("x", &amsgrad[seed as usize])],
        );
        write_result(
            &out,
            spec(&plan, "sgd", "", seed),
            Status::Diverged,
            &[("avg_regret", &[f64::NAN]), ("x", &[f64::NAN])],
        );
    }
    let report = tasks::report::build(&out.join("claims"));
    assert_eq!(report.claims.len(), 4);
    let beats = &report.claims[0];
    assert_eq!(beats.verdict, Verdict::Holds, "{beats:?}");
    // B - A of the means (x is better small): 0.99 - (-0.95) = 1.94 > the margin 1.
    assert!((beats.difference.unwrap() - 1.94).abs() < 1e-9, "{beats:?}");
    // scipy.stats.ttest_ind([1.0, 0.98, 0.99], [-1.0, -0.9, -0.95], equal_var=False): df 2.159744;
    // se 0.0294392; the one-sided p of "difference > 1", t.sf((1.94 - 1) / se, df) = 3.137568e-4;
    // the interval's half-width t.ppf(0.975, df) * se = 0.1180989.
    let t = beats.test.unwrap();
    assert!((t.df - 2.159744).abs() < 1e-5, "{t:?}");
    assert!((t.p - 3.137568e-4).abs() < 1e-9, "{t:?}");
    assert!((t.high - 1.94 - 0.1180989).abs() < 1e-6 && (1.94 - t.low - 0.1180989).abs() < 1e-6, "{t:?}");
    let above = &report.claims[1];
    assert_eq!(above.verdict, Verdict::Holds, "adam's final x 0.99 > 0.9: {above:?}");
    let below = &report.claims[2];
    assert_eq!(below.verdict, Verdict::Fails, "adam's best x is 0 on every seed, not below 0: {below:?}");
    let lacking = &report.claims[3];
    assert_eq!(lacking.verdict, Verdict::NotEnoughRuns);
    assert!(lacking.why.as_deref().unwrap().contains("0 completed, 3 diverged"), "{lacking:?}");

    let md = report.markdown();
    assert!(md.trim_start().starts_with("## Claims"), "the claims come first:\n{md}");
    assert!(md.contains("**2 hold**, **1 fail**, 1 have not enough runs"), "{md}");
    assert!(md.contains("| **holds** | amsgrad beats adam on final x by > 1 | claims / online-sequential |"), "{md}");
    assert!(md.contains("| +1.9400 (margin 1.0000) | [1.8219, 2.0581] | 3.1e-4 |"), "{md}");
    assert!(md.contains("a paper / Fig. 1"), "a | in a source does not break the table: {md}");
    // Ranked by the primary metric, avg_regret: amsgrad (0.05) first, then adam (0.1), then sgd
    // (no value).
    let ranked: Vec<&str> = report.rows.iter().map(|r| r.optimizer.as_str()).collect();
    assert_eq!(ranked, ["amsgrad", "adam", "sgd"]);
    assert!(
        md.contains(
            "| amsgrad | default | 0.001 | 0.0500 ± 0.0000 (n=3) | 0.0500 ± 0.0000 (n=3) | **1 (winner)** | +0.0500 |"
        ),
        "the winner and its margin to the next: {md}"
    );
    assert!(md.contains("| adam | default | 0.001 | 0.1000 ± 0.0000 (n=3) | 0.1000 ± 0.0000 (n=3) | 2 |  |"), "{md}");
    assert!(md.contains("| sgd | lr-0.1 | 0.1 | n/a | n/a | - |  |"), "{md}");
    assert!(md.contains("**Selected on test (no validation metric):**"), "{md}");
    assert_eq!(report.rows.iter().find(|r| r.optimizer == "adam").unwrap().runs.len(), 3);
}

#[test]
fn claims_in_a_config_are_checked_against_its_tasks_and_arms() {
    let dir = tempfile::tempdir().unwrap();
    let base = "name = \"c\"\n[[tasks]]\nname = \"online-sequential\"\nsteps = 5\n[[optimizers]]\nname = \"adam\"\n\
                [[optimizers]]\nname = \"sgd\"\nlr = 0.1\n[[claims]]\n";
    for (claim, key, message) in [
        ("kind = \"beats\"\ntask = \"online-sequential\"\noptimizer = \"adam\"\nmetric = \"x\"\nstatistic = \"final\"\n", "claims[0].other", "names the optimizer beaten"),
        ("kind = \"beats\"\ntask = \"online-sequential\"\noptimizer = \"adam\"\nother = \"rmsprop\"\nmetric = \"x\"\nstatistic = \"final\"\n", "claims[0].other", "no optimizer labelled `rmsprop`"),
        ("kind = \"above\"\ntask = \"online-sequential\"\noptimizer = \"adam\"\nmetric = \"x\"\nstatistic = \"final\"\n", "claims[0].value", "needs the value"),
        ("kind = \"above\"\ntask = \"online-sequential\"\noptimizer = \"adam\"\nmetric = \"bleu\"\nvalue = 1.0\nstatistic = \"final\"\n", "claims[0].metric", "has no metric `bleu`"),
        ("kind = \"below\"\ntask = \"mnist\"\noptimizer = \"adam\"\nmetric = \"x\"\nvalue = 1.0\nstatistic = \"final\"\n", "claims[0].task", "no task labelled `mnist`"),
    ] {
        let file = common::write_config(dir.path(), "c.toml", &format!("{base}{claim}"));
        let e = tasks::plan::load(&file, &Default::default()).unwrap_err();
        assert_eq!(e.path, key, "{e}");
        assert!(e.message.contains(message), "{e}");
    }
    let file = common::write_config(dir.path(), "c.toml", &format!("{base}kind = \"wins\"\n"));
    assert!(tasks::plan::load(&file, &Default::default()).unwrap_err().path.starts_with("claims[0]"));
}

const CLASSIFIER: &str = r#"
name = "selection"
seeds = [0, 1]

[[tasks]]
name = "mnist-logreg"
epochs = 1
target = 0.9

[[optimizers]]
name = "adam"
label = "adam_w"
lr = [1e-3, 1e-2]
"#;

#[test]
fn the_best_setting_is_chosen_on_validation_and_every_setting_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path(), CLASSIFIER);
    let out = dir.path().join("out");
    for seed in 0..2 {
        // lr 1e-3 has the better test accuracy, lr 1e-2 the better validation accuracy.
        let s = seed as f64 * 0.01;
        write_result(
            &out,
            spec(&plan, "adam_w", "lr-0.001", seed),
            Status::Completed,
            &[
                ("test_accuracy", &[0.8, 0.95 + s]),
                ("test_loss", &[0.5, 0.2]),
                ("valid_accuracy", &[0.8, 0.90 + s]),
                ("valid_loss", &[0.5, 0.3]),
            ],
        );
        write_result(
            &out,
            spec(&plan, "adam_w", "lr-0.01", seed),
            Status::Completed,
            &[
                ("test_accuracy", &[0.85, 0.91 + s]),
                ("test_loss", &[0.4, 0.25]),
                ("valid_accuracy", &[0.89, 0.92 + s]),
                ("valid_loss", &[0.4, 0.28]),
            ],
        );
    }
    let report = tasks::report::build(&out);
    let row = &report.rows[0];
    assert_eq!((row.selected_on.as_str(), row.on_validation), ("valid_accuracy", true));
    assert!(row.setting.contains("lr-0.01"), "{}", row.setting);
    let test = row.primary().unwrap().last.unwrap();
    assert!((test.mean - 0.915).abs() < 1e-12, "the test accuracy at the selected setting: {test:?}");
    assert_eq!(row.settings.len(), 2);
    // Time to target: the config's 0.9, first reached at the second evaluation (step 20, 3 s).
    let target = report.targets.values().next().unwrap();
    assert!(target.from_config && target.value == 0.9);
    assert!(row.reached.iter().all(|r| r.at == Some((20, 3.0))), "{:?}", row.reached);

    let md = report.markdown();
    assert!(md.contains("selected on validation data: the best mean final `valid_accuracy`"), "{md}");
    assert!(md.contains("Learning-rate sensitivity"), "{md}");
    assert!(
        md.contains("| adam_w | lr-0.001 | 0.001 | 0.9550 ± 0.0071 (n=2) | 0.9050 ± 0.0071 (n=2) | 2 / 0 / 0 |  |"),
        "{md}"
    );
    assert!(md.contains("| 2 / 0 / 0 | selected |"), "{md}");
    assert!(md.contains("`test_accuracy` >= 0.9000 (the task's `target` in the config)"), "{md}");
    assert!(md.contains("| adam_w | 2 of 2 | 20, 20 | 20 | 3.0 s, 3.0 s | 3.0 s |"), "{md}");
    assert!(md.contains("final valid_accuracy"), "the validation metrics are columns: {md}");

    let csv = report.csv();
    assert!(csv.lines().nth(1).unwrap().ends_with(",valid_accuracy,true,1"), "{csv}");
    report.write(&out).unwrap();
    let tex = std::fs::read_to_string(tasks::report::tex_path(&out)).unwrap();
    assert!(tex.contains("\\usepackage{booktabs}") && tex.contains("\\toprule") && tex.contains("\\bottomrule"));
    assert!(tex.contains("\\textbf{adam\\_w}") && tex.contains("selected on valid\\_accuracy"), "{tex}");
    assert!(!tex.contains("adam_w"), "every underscore is escaped:\n{tex}");
    compiles_with_pdflatex(&tasks::report::tex_path(&out));
}

/// `pdflatex` turns the report into a PDF without an error, where LaTeX is installed (Debian's
/// `texlive-latex-base` and `texlive-latex-recommended`, for booktabs); skipped otherwise.
fn compiles_with_pdflatex(tex: &Path) {
    let dir = tex.parent().unwrap();
    let run = std::process::Command::new("pdflatex")
        .args(["-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape"])
        .arg(tex.file_name().unwrap())
        .current_dir(dir)
        .output();
    match run {
        Err(_) => eprintln!("skipped: no pdflatex (apt-get install texlive-latex-base texlive-latex-recommended)"),
        Ok(o) => {
            let log = String::from_utf8_lossy(&o.stdout);
            assert!(o.status.success(), "pdflatex failed on {}:\n{log}", tex.display());
            assert!(tex.with_extension("pdf").is_file(), "{log}");
        }
    }
}

#[test]
fn result_files_without_the_new_fields_still_load_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path(), ONLINE);
    let out = dir.path().join("out");
    let spec = spec(&plan, "adam", "", 0);
    write_result(&out, spec, Status::Completed, &[("avg_regret", &[0.2]), ("x", &[1.0])]);
    let path = spec.result_path(&out);
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let fields = json.as_object_mut().unwrap();
    assert!(fields.remove("claims").is_some(), "a new result records its claims");
    fields.remove("target");
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    let report = tasks::report::build(&out);
    assert!(report.unreadable.is_empty(), "{:?}", report.unreadable);
    assert!(report.claims.is_empty());
    assert_eq!(report.rows[0].primary().unwrap().last.unwrap().mean, 0.2);
    assert!(!report.markdown().contains("## Claims"));
}

#[test]
fn compare_counts_a_run_found_twice_once() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(dir.path(), ONLINE);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let adam0 = spec(&plan, "adam", "", 0);
    for (out, seeds) in [(&a, [0u64, 1]), (&b, [0, 2])] {
        for seed in seeds {
            let x = if out == &a { 1.0 } else { 0.5 } + seed as f64 * 0.01;
            write_result(out, spec(&plan, "adam", "", seed), Status::Completed, &[("avg_regret", &[x]), ("x", &[x])]);
        }
    }
    // B's seed 0 is A's seed 0 (the same id and fingerprint), and A holds a copy of its seed 1.
    std::fs::copy(adam0.result_path(&a), adam0.result_path(&b)).unwrap();
    let copy = a.join("backup");
    std::fs::create_dir_all(copy.join("claims/online-sequential/adam")).unwrap();
    let seed1 = spec(&plan, "adam", "", 1);
    let setting_dir = seed1.result_path(&copy).parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&setting_dir).unwrap();
    std::fs::copy(seed1.result_path(&a), seed1.result_path(&copy)).unwrap();

    let c = tasks::report::compare::compare(&a, &b);
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings.iter().all(|w| w.contains("counted once")));
    let seeds = |r: &tasks::report::Report| {
        let mut s: Vec<u64> = r.rows[0].runs.iter().map(|r| r.seed).collect();
        s.sort();
        s
    };
    assert_eq!(seeds(&c.a), [0, 1], "A's copy of seed 1 counted once");
    assert_eq!(seeds(&c.b), [2], "B's copy of A's seed 0 left out");
    let md = c.markdown("a", "b");
    // A: 1.0, 1.01; B: 0.52. B - A = 0.52 - 1.005 = -0.485 (n=1 on B: no interval).
    assert!(md.contains("| claims / online-sequential | adam | avg_regret | 1.0050 ± 0.0071 (n=2) | 0.5200 (n=1) | -0.4850 | n/a (fewer than 2 seeds) |"), "{md}");

    let (ok, stdout, stderr) = common::optbench(&["compare", a.to_str().unwrap(), b.to_str().unwrap()], dir.path());
    assert!(ok, "{stderr}");
    assert!(stdout.contains("| claims / online-sequential | adam |"), "{stdout}");
    assert_eq!(stderr.matches("counted once").count(), 2, "{stderr}");
}
