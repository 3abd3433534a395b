//! The quick CIFAR and Tiny-ImageNet configs end to end, on data in the real on-disk formats
//! that the test writes (the real CIFAR is not reachable here), and the report's
//! paper-versus-measured table; every config of `configs/` expands.

mod common;

use std::path::Path;

use common::cifar;

/// Images whose colour depends on the label, plus noise: learnable, in the binary format.
fn cifar_records(n: usize, classes: usize, coarse: bool, seed: u64) -> Vec<u8> {
    let mut rng = models::SeededRng::new(seed);
    let mut images = Vec::with_capacity(n * cifar::PIXELS);
    let mut fine = Vec::with_capacity(n);
    let mut coarse_labels = Vec::with_capacity(n);
    for i in 0..n {
        let k = (i * 7 + seed as usize) % classes;
        for c in 0..3 {
            let base = (k * 37 + c * 80) % 256;
            for _ in 0..1024 {
                images.push(((base + rng.below(40)) % 256) as u8);
            }
        }
        fine.push(k as u8);
        coarse_labels.push((k % 20) as u8);
    }
    cifar::encode(&images, &fine, coarse.then_some(coarse_labels.as_slice()))
}

fn write_cifar(dir: &Path) {
    let c10 = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&c10).unwrap();
    for b in 1..=5 {
        std::fs::write(c10.join(format!("data_batch_{b}.bin")), cifar_records(120, 10, false, b)).unwrap();
    }
    std::fs::write(c10.join("test_batch.bin"), cifar_records(300, 10, false, 9)).unwrap();
    let c100 = dir.join("cifar-100-binary");
    std::fs::create_dir_all(&c100).unwrap();
    std::fs::write(c100.join("train.bin"), cifar_records(600, 100, true, 1)).unwrap();
    std::fs::write(c100.join("test.bin"), cifar_records(300, 100, true, 2)).unwrap();
}

fn write_tiny_imagenet(dir: &Path, wnids: usize, per_class: usize) {
    let t = dir.join("tiny-imagenet-200");
    std::fs::create_dir_all(t.join("val/images")).unwrap();
    let names: Vec<String> = (0..wnids).map(|i| format!("n{i:08}")).collect();
    std::fs::write(t.join("wnids.txt"), names.join("\n")).unwrap();
    let jpeg = |shade: u8| -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([shade, (x * 4) as u8, (y * 4) as u8]))
            .write_to(&mut buf, image::ImageFormat::Jpeg)
            .unwrap();
        buf.into_inner()
    };
    let mut annotations = String::new();
    for (k, wnid) in names.iter().enumerate() {
        let images = t.join("train").join(wnid).join("images");
        std::fs::create_dir_all(&images).unwrap();
        for i in 0..per_class {
            std::fs::write(images.join(format!("{wnid}_{i}.JPEG")), jpeg((k * 50 + i) as u8)).unwrap();
        }
        let file = format!("val_{k}.JPEG");
        std::fs::write(t.join("val/images").join(&file), jpeg((k * 50) as u8)).unwrap();
        annotations.push_str(&format!("{file}\t{wnid}\t0\t0\t63\t63\n"));
    }
    std::fs::write(t.join("val/val_annotations.txt"), annotations).unwrap();
}

/// `optbench`, offline, with its decoded cache in `cache`.
fn optbench(args: &[&str], cwd: &Path, cache: &Path) -> (bool, String, String) {
    common::optbench_env(args, cwd, &[("OPTBENCH_CACHE", cache.as_os_str()), ("OPTBENCH_OFFLINE", "1".as_ref())])
}

#[test]
fn quick_cifar_configs_run_end_to_end_and_report_paper_versus_measured() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_cifar(&data);
    let root = common::root().canonicalize().unwrap();
    for config in ["adabelief-cifar-quick", "adamod-cifar100-quick", "adashift-cifar10-quick"] {
        let file = root.join("configs").join(format!("{config}.toml"));
        let (ok, stdout, stderr) = optbench(
            &["run", file.to_str().unwrap(), "--data-dir", data.to_str().unwrap(), "--out", "out", "--jobs", "2"],
            dir.path(),
            &dir.path().join("cache"),
        );
        assert!(ok, "{config}:\n{stdout}\n{stderr}");
        assert!(stdout.contains(" 0 failed"), "{stdout}");
        let results = common::results(&dir.path().join("out").join(config));
        assert!(!results.is_empty());
        for r in &results {
            assert_eq!(r.history.epoch.len(), 2, "{}: two evaluations (one per epoch)", r.id);
            assert_eq!(r.history.lr[1], r.history.lr[0] * 0.1, "{}: the decay after the first epoch", r.id);
        }
    }
    // The report shows the paper's numbers beside the measured ones.
    let (ok, stdout, _) = optbench(&["report", "out/adamod-cifar100-quick"], dir.path(), &dir.path().join("cache"));
    assert!(ok, "{stdout}");
    assert!(stdout.contains("## adamod-cifar100-quick / cifar100-resnet34"), "{stdout}");
    assert!(stdout.contains("| paper |"), "{stdout}");
    for (arm, paper) in [("sgd", "0.7895"), ("adam", "0.7351"), ("adamod", "0.7472")] {
        let line = stdout.lines().find(|l| l.starts_with(&format!("| {arm} |")) && l.contains(paper));
        assert!(line.is_some(), "no row for {arm} with the paper's {paper}:\n{stdout}");
    }
    let csv = std::fs::read_to_string(dir.path().join("out/adamod-cifar100-quick/report.csv")).unwrap();
    assert!(csv.lines().any(|l| l.contains("cifar100-densenet121,adamod") && l.contains(",0.7684,")), "{csv}");
    let (ok, stdout, _) = optbench(&["report", "out/adabelief-cifar-quick"], dir.path(), &dir.path().join("cache"));
    assert!(ok && stdout.contains("## adabelief-cifar-quick / cifar10-vgg11") && stdout.contains("0.9117"), "{stdout}");
}

#[test]
fn the_quick_tiny_imagenet_config_runs_on_the_official_folder_layout() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 400 training images: the config holds out 128 for validation and trains on 256 of the rest.
    write_tiny_imagenet(&data, 5, 80);
    let file = common::root().canonicalize().unwrap().join("configs/adashift-tinyimagenet-quick.toml");
    let (ok, stdout, stderr) = optbench(
        &["run", file.to_str().unwrap(), "--data-dir", data.to_str().unwrap(), "--out", "out"],
        dir.path(),
        &dir.path().join("cache"),
    );
    assert!(ok && stdout.contains("3 runs: 3 completed"), "{stdout}\n{stderr}");
    let r = &common::results(&dir.path().join("out/adashift-tinyimagenet-quick"))[0];
    assert_eq!(r.steps_per_epoch, Some(4), "256 images in batches of 64");
}

#[test]
fn every_config_expands_and_every_paper_table_has_a_quick_variant() {
    let dir = common::root().join("configs");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        // Configs only (configs/README.md describes them).
        if !matches!(path.extension().and_then(|e| e.to_str()), Some("toml" | "yaml" | "yml")) {
            continue;
        }
        let plan = tasks::plan::load(&path, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!plan.runs.is_empty(), "{}", path.display());
        names.push(plan.experiment.clone());
        // A quick variant of a paper table has the table's optimizers (a quick config without a
        // full one, such as `lstm-ptb-quick`, is a CPU check of its family's pipeline).
        let full = plan.experiment.strip_suffix("-quick").map(|full| dir.join(format!("{full}.toml")));
        if let Some(full) = full.filter(|f| f.exists()) {
            let full = tasks::plan::load(&full, &Default::default()).unwrap();
            let arms = |p: &tasks::plan::Plan| {
                let mut a: Vec<String> =
                    p.runs.iter().map(|r| format!("{} {}", r.optimizer_label, r.optimizer)).collect();
                a.sort();
                a.dedup();
                a
            };
            assert_eq!(
                arms(&plan),
                arms(&full),
                "{}: the quick variant has the full one's optimizers",
                plan.experiment
            );
            let reported =
                |p: &tasks::plan::Plan| p.runs.iter().map(|r| r.reported.len()).sum::<usize>() / p.runs.len().max(1);
            assert!(reported(&plan) > 0 || reported(&full) == 0, "{}: the paper's numbers too", plan.experiment);
        }
    }
    for table in ["adabelief-cifar", "adai-cifar", "adamod-cifar100", "adashift-cifar10", "adashift-tinyimagenet"] {
        assert!(names.iter().any(|n| n == table), "configs/{table}.toml");
        assert!(names.iter().any(|n| *n == format!("{table}-quick")), "configs/{table}-quick.toml");
    }
}
