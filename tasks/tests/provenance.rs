//! Every result says which data it trained on, and no data set is silently replaced: the
//! decoded cache of a folder that is gone never stands in for it unless the run is offline and
//! names the folder again; a changed data set makes a finished run run again; the report shows
//! each task's data and warns when it differs; the tests keep their caches to themselves.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use tasks::data::{self, DataSettings, Origin};

/// Toy digits in `<dir>/data/mnist/` (IDX), and settings that find them there, with caches in
/// `<dir>` and a Hub nothing answers at.
fn toy(dir: &Path) -> DataSettings {
    let data = dir.join("data");
    common::toy_digits(&data, 60, 20);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    DataSettings {
        data_dirs: vec![data],
        cache_dir: Some(dir.join("cache")),
        hub_cache: Some(dir.join("hf")),
        hub_endpoint: Some(format!("http://127.0.0.1:{port}")),
        ..Default::default()
    }
}

#[test]
fn a_cache_decoded_from_a_removed_folder_never_stands_in_unless_offline_and_named_again() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = toy(tmp.path());
    let folder = std::path::absolute(settings.data_dirs[0].join("mnist")).unwrap();
    let first = data::load_images("mnist", &settings).unwrap();
    assert_eq!(first.record.source, Origin::Local { path: folder.clone(), layout: "standard".into() });
    assert_eq!(first.record.sha256.len(), 64);
    assert_eq!(first.record.examples["train"], 60);
    assert_eq!(first.record.examples["test"], 20);
    assert_eq!(data::identify("mnist", &settings).unwrap().sha256, first.record.sha256);

    std::fs::remove_dir_all(&settings.data_dirs[0]).unwrap();
    let unnamed = DataSettings { data_dirs: Vec::new(), ..settings.clone() };
    // The case of the issue: the Hub unreachable, not offline, no folder named.
    let err = data::load_images("mnist", &unnamed).unwrap_err().to_string();
    for needle in ["cannot load data set `mnist`", "the decoded cache", "not used", "a folder this run does not name"] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
    assert!(err.contains(&folder.display().to_string()), "the message names where the cache came from:\n{err}");
    // Named again, but not offline.
    let err = data::load_images("mnist", &settings).unwrap_err().to_string();
    assert!(err.contains("the run is not offline") && err.contains("--offline"), "{err}");
    // Offline, not named.
    let err = data::load_images("mnist", &DataSettings { offline: true, ..unnamed.clone() }).unwrap_err().to_string();
    assert!(err.contains("a folder this run does not name"), "{err}");
    assert!(data::identify("mnist", &DataSettings { offline: true, ..unnamed }).is_err());
    // Offline and named again: the cache stands in, and the record says so.
    let offline = DataSettings { offline: true, ..settings };
    let again = data::load_images("mnist", &offline).unwrap();
    assert_eq!(again.train, first.train);
    assert_eq!(again.record.sha256, first.record.sha256);
    match &again.record.source {
        Origin::DecodedCache { path, decoded_from } => {
            assert!(path.exists(), "{}", path.display());
            assert_eq!(**decoded_from, first.record.source);
        }
        other => panic!("expected the decoded cache, got {other:?}"),
    }
    assert_eq!(data::identify("mnist", &offline).unwrap().sha256, first.record.sha256);
}

#[test]
fn a_cache_written_without_an_origin_never_stands_in() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = toy(tmp.path());
    data::load_images("mnist", &settings).unwrap();
    // What an older optbench wrote: a manifest without `origin`.
    let decoded = settings.decoded_cache();
    let (manifest_path, _) = decoded.entries(Some("mnist")).remove(0);
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest.as_object_mut().unwrap().remove("origin").expect("manifests record their origin");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    std::fs::remove_dir_all(&settings.data_dirs[0]).unwrap();
    let err = data::load_images("mnist", &DataSettings { offline: true, ..settings }).unwrap_err().to_string();
    assert!(err.contains("written before optbench recorded where"), "{err}");
}

fn config(dir: &Path, data_dir: Option<&str>) -> PathBuf {
    let data_dir = data_dir.map(|d| format!("data_dir = \"{d}\"\n")).unwrap_or_default();
    common::write_config(
        dir,
        "toy.toml",
        &format!(
            "name = \"toy\"\n{data_dir}[[tasks]]\nname = \"mnist-logreg\"\nepochs = 1\nbatch_size = 32\noptions = {{ valid_size = 0 }}\n\
             [[optimizers]]\nname = \"adam\"\nlr = 1e-2\n"
        ),
    )
}

#[test]
fn the_cli_run_fails_clearly_on_a_cache_of_a_removed_folder_and_fetch_never_succeeds_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::toy_digits(&dir.join("data"), 60, 20);
    let cache = dir.join("cache");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hub = format!("http://127.0.0.1:{port}");
    let env = [("OPTBENCH_CACHE", cache.as_os_str()), ("HF_ENDPOINT", OsStr::new(&hub))];
    let with_data = config(dir, Some("data"));
    let (ok, stdout, stderr) = common::optbench_env(&["run", with_data.to_str().unwrap(), "--out", "a"], dir, &env);
    assert!(ok, "{stdout}\n{stderr}");
    let result = &common::results(&dir.join("a"))[0];
    assert_eq!(result.data.len(), 1);
    assert_eq!(result.data[0].name, "mnist");
    let text = std::fs::read_to_string(tasks::runner::record::find_results(&dir.join("a"))[0].clone()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["data"][0]["source"]["kind"], "local", "{}", json["data"]);
    assert_eq!(json["data"][0]["sha256"].as_str().unwrap().len(), 64);

    std::fs::remove_dir_all(dir.join("data")).unwrap();
    let without = config(dir, None);
    let (ok, stdout, stderr) = common::optbench_env(&["run", without.to_str().unwrap(), "--out", "b"], dir, &env);
    assert!(!ok, "a run without its data fails:\n{stdout}\n{stderr}");
    let all = format!("{stdout}\n{stderr}");
    assert!(all.contains("1 failed") && !all.contains("1 completed"), "{all}");
    let failed = &common::results(&dir.join("b"))[0];
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(error.contains("the decoded cache") && error.contains("does not name"), "{error}");

    let (ok, stdout, stderr) = common::optbench_env(&["data", "fetch", "mnist"], dir, &env);
    assert!(!ok && !stdout.contains("mnist: ok"), "{stdout}\n{stderr}");
    assert!(stderr.contains("not used"), "{stderr}");
    // Offline and named again, a run may train on the cache (and says so), but fetch still
    // fails: it has not got the sources.
    let (ok, stdout, stderr) =
        common::optbench_env(&["data", "fetch", "mnist", "--offline", "--data-dir", "data"], dir, &env);
    assert!(!ok && stderr.contains("not fetched"), "{stdout}\n{stderr}");
    let (ok, stdout, stderr) = common::optbench_env(
        &["run", with_data.to_str().unwrap(), "--out", "c", "--offline", "--data-dir", "data"],
        dir,
        &env,
    );
    assert!(ok, "{stdout}\n{stderr}");
    let r = &common::results(&dir.join("c"))[0];
    assert!(matches!(r.data[0].source, Origin::DecodedCache { .. }), "{:?}", r.data[0]);
    assert_eq!(r.data[0].sha256, result.data[0].sha256);
}

#[test]
fn changing_the_data_runs_a_finished_run_again() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = toy(tmp.path());
    let plan = common::load(&config(tmp.path(), None), &tmp.path().join("out"));
    let first = common::sweep_with(&plan, 1, settings.clone());
    assert_eq!(first.completed, 1, "{first:?}");
    let before = common::results(&tmp.path().join("out"))[0].data[0].clone();
    assert_eq!(common::sweep_with(&plan, 1, settings.clone()).skipped, 1, "the same data: done");

    // One pixel of one test image changes.
    let images = settings.data_dirs[0].join("mnist/t10k-images-idx3-ubyte");
    let mut bytes = std::fs::read(&images).unwrap();
    bytes[16 + 400] ^= 0x80;
    std::fs::write(&images, bytes).unwrap();
    let second = common::sweep_with(&plan, 1, settings.clone());
    assert_eq!((second.skipped, second.completed), (0, 1), "{second:?}");
    let after = common::results(&tmp.path().join("out"))[0].data[0].clone();
    assert_ne!(after.sha256, before.sha256);
    assert_eq!(after.sha256, data::identify("mnist", &settings).unwrap().sha256);
    assert_eq!(common::sweep_with(&plan, 1, settings).skipped, 1);
}

#[test]
fn the_report_shows_the_data_and_warns_when_runs_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = toy(tmp.path());
    let plan = common::load(&config(tmp.path(), None), &tmp.path().join("out"));
    common::sweep_with(&plan, 1, settings);
    let mut results = common::results(&tmp.path().join("out"));
    let report = tasks::report::aggregate(&results);
    assert!(report.data_warnings().is_empty(), "{:?}", report.data_warnings());
    let md = report.markdown();
    let short = results[0].data[0].sha256[..12].to_string();
    assert!(md.contains("Data: mnist: ") && md.contains(&short), "{md}");

    let mut other = results[0].clone();
    other.data[0].sha256 = "f".repeat(64);
    other.run.seed += 1;
    results.push(other);
    let report = tasks::report::aggregate(&results);
    let warnings = report.data_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("different mnist data") && warnings[0].contains(&short), "{}", warnings[0]);
    assert!(report.markdown().contains("**Warning:**"));
}

#[test]
fn the_tests_leave_the_users_cache_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    common::toy_digits(&tmp.path().join("data"), 30, 10);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // The helpers' environment, with HOME pointing somewhere we can look at afterwards.
    let (ok, stdout, stderr) = common::optbench_env(
        &["data", "fetch", "mnist", "--data-dir", "data"],
        tmp.path(),
        &[("HOME", home.as_os_str())],
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(!home.join(".cache").exists(), "the user's cache folder was touched");
    let decoded = DataSettings { cache_dir: Some(common::test_cache().join("optbench")), ..Default::default() };
    assert!(!decoded.decoded_cache().entries(Some("mnist")).is_empty(), "the decoded cache went to the tests' own");
    // The library helpers too.
    let settings = common::test_data_settings();
    assert_ne!(settings.decoded_cache().dir, DataSettings::default().decoded_cache().dir);
}
