//! The claim of AdaShift's Section 3, checked from the result files that
//! `configs/adashift-online.toml` writes: on the sequential online problem Adam's x ends near
//! +1 while AdaShift ends near the optimum -1 and the authors' AMSGrad heads there; on the stochastic one Adam's x moves
//! up (the wrong way) while AMSGrad and AdaShift move down.

mod common;

use common::*;

#[test]
fn adam_fails_where_amsgrad_and_adashift_converge() {
    let out = tempfile::tempdir().unwrap();
    // The config as users run it, on a fifth of the notebook's budgets (1e6 and 1e7 steps, about
    // 4 minutes of CPU) to keep the test at about 15 s: 200k sequential steps show the crossing,
    // and at 2M steps the drift of the stochastic problem shows for every seed we tried (0-4).
    let mut plan = load(&root().join("configs/adashift-online.toml"), out.path());
    for run in &mut plan.runs {
        let full = run.task.budget;
        run.task.budget = match run.task.name.as_str() {
            "online-sequential" => tasks::task::Budget::Steps(200_000),
            _ => tasks::task::Budget::Steps(2_000_000),
        };
        assert!(matches!(full, tasks::task::Budget::Steps(s) if s >= 1_000_000), "the config's budget: {full:?}");
    }
    let summary = sweep(&plan, 2);
    assert_eq!((summary.completed, summary.failed, summary.diverged), (6, 0, 0), "{summary:?}");

    let results = results(out.path());
    assert_eq!(results.len(), 6);
    let x = |task: &str, opt: &str| final_value(find(&results, task, opt), "x");
    println!(
        "sequential: adam {}, amsgrad {}, adashift {}",
        x("online-sequential", "adam"),
        x("online-sequential", "amsgrad"),
        x("online-sequential", "max-adashift")
    );
    println!(
        "stochastic: adam {}, amsgrad {}, adashift {}",
        x("online-stochastic", "adam"),
        x("online-stochastic", "amsgrad"),
        x("online-stochastic", "max-adashift")
    );
    assert!(x("online-sequential", "adam") > 0.9, "Adam should end near +1");
    // The authors' AMSGrad (`variant = "tf"`) feeds its maximum back into v, which grows
    // towards C1² and shortens its steps: at 200k steps it is on its way (-0.67 from x0 = 1; -0.77
    // after the config's 1M steps), not yet at -1 (torch's AMSGrad is).
    assert!(x("online-sequential", "amsgrad") < -0.5, "AMSGrad should cross over towards -1");
    assert!(x("online-sequential", "max-adashift") < -0.9, "AdaShift should end near -1");
    assert!(x("online-stochastic", "adam") > 0.0, "Adam should move up from 0");
    assert!(x("online-stochastic", "amsgrad") < 0.0, "AMSGrad should move down from 0");
    assert!(x("online-stochastic", "max-adashift") < 0.0, "AdaShift should move down from 0");
    // And the regret tells the same story on the sequential problem.
    let regret = |opt: &str| final_value(find(&results, "online-sequential", opt), "avg_regret");
    println!("regret: adam {}, amsgrad {}, adashift {}", regret("adam"), regret("amsgrad"), regret("max-adashift"));
    assert!(regret("amsgrad") < regret("adam") && regret("max-adashift") < regret("adam"));
}
