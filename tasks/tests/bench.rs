//! `optbench bench --quick` runs end to end on tiny sizes and prints the machine, every
//! optimizer of `optimizers::bench::bench_specs` and every model row, and writes them into its
//! JSON. No timing is asserted (benchmarks are never timed tests).

use std::process::Command;

#[test]
fn quick_bench_prints_every_optimizer_and_model() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_optbench"))
        .args(["bench", "--quick", "--repeats", "1", "--numel", "4096", "--threads", "2", "--json"])
        .arg(&json)
        .output()
        .expect("optbench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "optbench bench failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("machine: ") && first.contains("2 threads of"), "machine line: {first}");
    let specs = optimizers::bench::bench_specs();
    for (label, _, _) in &specs {
        assert!(
            stdout.lines().any(|l| l.split_whitespace().next() == Some(label.as_str())),
            "no row for optimizer {label}:\n{stdout}"
        );
    }
    for model in tasks::commands::bench::MODELS {
        assert!(
            stdout.lines().any(|l| l.starts_with(model) && l.contains("optbench")),
            "no row for model {model}:\n{stdout}"
        );
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON was written")).expect("valid JSON");
    assert_eq!(report["optimizers"].as_array().map(Vec::len), Some(specs.len()));
    assert_eq!(report["models"].as_array().map(Vec::len), Some(tasks::commands::bench::MODELS.len()));
    for row in report["models"].as_array().into_iter().flatten() {
        let seconds = row["optbench_median_s"].as_f64().unwrap_or(f64::NAN);
        assert!(seconds > 0.0 && seconds.is_finite(), "{}: median {seconds}", row["name"]);
    }
    assert_eq!(report["machine"]["threads"], 2);
}

#[test]
fn bench_rejects_an_unknown_only() {
    let out = Command::new(env!("CARGO_BIN_EXE_optbench"))
        .args(["bench", "--quick", "--only", "no-such-thing"])
        .output()
        .expect("optbench runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--only no-such-thing") && stderr.contains("resnet18"), "{stderr}");
}
