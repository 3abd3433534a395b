//! `--device` for a device this binary cannot open: one clear error before any run starts, not
//! one failed run per run; planning alone still works.

mod common;

use common::optbench;

const CONFIG: &str = r#"
name = "devices"
seeds = [0, 1, 2]
[[tasks]]
name = "toy2d-quadratic"
steps = 5
[[optimizers]]
name = "adam"
lr = 0.01
"#;

/// What `optbench run` must say for `device` in this build.
fn expected(device: &str) -> &'static str {
    match device {
        "metal" => "device `metal`: this optbench was built without Metal",
        _ if cfg!(feature = "cuda") => "CUDA cannot open GPU 0",
        _ => "this optbench was built without CUDA; build it with scripts/build-cuda.sh",
    }
}

#[test]
fn unusable_device_is_one_error_at_plan_time() {
    if cfg!(feature = "metal") {
        println!("skipped: a Metal build can open its device");
        return;
    }
    if cfg!(feature = "cuda") && candle::Device::new_cuda(0).is_ok() {
        println!("skipped: this machine has a CUDA GPU, which this build can open");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("devices.toml"), CONFIG).unwrap();
    for (args, device) in [
        (vec!["run", "devices.toml", "--device", "cuda"], "cuda"),
        (vec!["run", "devices.toml", "--device", "metal"], "metal"),
    ] {
        let (ok, stdout, stderr) = optbench(&args, dir.path());
        assert!(!ok, "{stdout}\n{stderr}");
        assert_eq!(stderr.matches(expected(device)).count(), 1, "one error for the whole sweep: {stderr}");
        assert!(!stderr.contains("[1/3]") && !stdout.contains("runs:"), "no run started: {stdout}\n{stderr}");
        assert!(!dir.path().join("results/devices").exists(), "nothing written for a sweep that cannot run");
    }
    // The config's own `device` is checked the same way.
    std::fs::write(dir.path().join("config-cuda.toml"), format!("device = \"cuda:0\"\n{CONFIG}")).unwrap();
    let (ok, _, stderr) = optbench(&["run", "config-cuda.toml"], dir.path());
    assert!(!ok && stderr.matches(expected("cuda")).count() == 1, "{stderr}");
    // Planning does not need the device.
    let (ok, stdout, stderr) = optbench(&["plan", "config-cuda.toml"], dir.path());
    assert!(ok && stdout.contains("toy2d-quadratic/adam/"), "{stdout}\n{stderr}");
}
