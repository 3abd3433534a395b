//! The data layer end to end: the real hf-hub download code against a stand-in Hub on
//! 127.0.0.1 serving parquet files in the exact Hub schema, the caches, the offline and
//! corruption paths with their messages, every local format, and the real MNIST when
//! `../shared/data/mnist` is there.

mod common;

use std::path::{Path, PathBuf};

use common::hub::StandInHub;
use common::{cifar, hubfiles, idx};
use tasks::data::{self, DataSettings};

/// A small MNIST-shaped data set: deterministic images and labels.
fn digits(n: usize, seed: u8) -> (Vec<Vec<u8>>, Vec<u8>) {
    let images = (0..n).map(|i| (0..784).map(|p| ((p * 7 + i * 13 + seed as usize) % 256) as u8).collect()).collect();
    let labels = (0..n).map(|i| ((i + seed as usize) % 10) as u8).collect();
    (images, labels)
}

fn mnist_parquet(dir: &Path, split: &str, n: usize, seed: u8) -> (PathBuf, Vec<Vec<u8>>, Vec<u8>) {
    let (images, labels) = digits(n, seed);
    let path = dir.join(format!("{split}.parquet"));
    common::mnist_parquet(&path, &images, &labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
    (path, images, labels)
}

struct Fixture {
    hub: StandInHub,
    _tmp: tempfile::TempDir,
    settings: DataSettings,
    train: (Vec<Vec<u8>>, Vec<u8>),
    test: (Vec<Vec<u8>>, Vec<u8>),
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let (train_file, train_images, train_labels) = mnist_parquet(tmp.path(), "train", 40, 1);
    let (test_file, test_images, test_labels) = mnist_parquet(tmp.path(), "test", 15, 2);
    let hub = StandInHub::start(
        "ylecun/mnist",
        "refs/convert/parquet",
        vec![
            ("mnist/train/0000.parquet".into(), std::fs::read(train_file).unwrap()),
            ("mnist/test/0000.parquet".into(), std::fs::read(test_file).unwrap()),
            ("README.md".into(), b"not a split".to_vec()),
        ],
    );
    let settings = DataSettings {
        hub_endpoint: Some(hub.url.clone()),
        hub_cache: Some(tmp.path().join("hf")),
        cache_dir: Some(tmp.path().join("optbench")),
        ..Default::default()
    };
    Fixture { hub, _tmp: tmp, settings, train: (train_images, train_labels), test: (test_images, test_labels) }
}

fn check(data: &data::ImageData, f: &Fixture) {
    assert_eq!((data.channels, data.height, data.width, data.classes), (1, 28, 28, 10));
    assert_eq!(data.train.count, 40);
    assert_eq!(data.test.count, 15);
    assert_eq!(data.train.images, f.train.0.concat());
    assert_eq!(data.train.labels, f.train.1.iter().map(|&l| l as u32).collect::<Vec<_>>());
    assert_eq!(data.test.images, f.test.0.concat());
}

#[test]
fn downloads_from_the_hub_then_loads_from_the_caches_without_network() {
    let f = fixture();
    let data = data::load_images("mnist", &f.settings).unwrap();
    check(&data, &f);
    assert!(data.source.contains("ylecun/mnist@refs/convert/parquet"), "{}", data.source);
    let requests = f.hub.requests();
    assert!(
        requests.iter().any(|r| r == "GET /api/datasets/ylecun/mnist/revision/refs%2Fconvert%2Fparquet"),
        "{requests:?}"
    );
    assert!(requests
        .iter()
        .any(|r| r.starts_with("GET /datasets/ylecun/mnist/resolve/") && r.ends_with("mnist/train/0000.parquet")));
    assert!(!requests.iter().any(|r| r.contains("README")), "only the splits' files are downloaded");

    // Second load: the decoded cache, and no request at all.
    let before = f.hub.requests().len();
    let started = std::time::Instant::now();
    let again = data::load_images("mnist", &f.settings).unwrap();
    assert!(started.elapsed().as_secs_f64() < 1.0);
    assert_eq!(again.train, data.train);
    assert!(again.source.contains("decoded cache"), "{}", again.source);
    assert_eq!(f.hub.requests().len(), before);

    // Offline works from the caches too.
    let offline = DataSettings { offline: true, ..f.settings.clone() };
    assert_eq!(data::load_images("mnist", &offline).unwrap().test, data.test);
    assert_eq!(f.hub.requests().len(), before);
}

#[test]
fn offline_with_nothing_cached_says_what_was_tried_and_the_ways_out() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let offline = DataSettings { offline: true, data_dirs: vec![dir.path().to_path_buf()], ..f.settings.clone() };
    let err = data::load_images("mnist", &offline).unwrap_err().to_string();
    for needle in [
        "cannot load data set `mnist` (Hugging Face repository ylecun/mnist, revision refs/convert/parquet)",
        "no folder mnist/",
        "is not (fully) there",
        "not asked, offline mode",
        "HF_ENDPOINT",
        "optbench data fetch mnist",
        "--data-dir DIR",
        "train-images-idx3-ubyte.gz",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
    assert!(f.hub.requests().is_empty(), "offline must not touch the network");
}

#[test]
fn an_unreachable_hub_is_one_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let settings = DataSettings {
        hub_endpoint: Some(format!("http://127.0.0.1:{port}")),
        hub_cache: Some(tmp.path().join("hf")),
        cache_dir: Some(tmp.path().join("optbench")),
        ..Default::default()
    };
    let err = data::load_images("cifar10", &settings).unwrap_err().to_string();
    assert!(err.contains("uoft-cs/cifar10") && err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("Ways out") && err.contains("cifar-10-batches-bin"), "{err}");
}

#[test]
fn a_corrupt_download_is_detected_and_fetched_again() {
    let f = fixture();
    f.hub.corrupt_next_download("mnist/train/0000.parquet");
    let data = data::load_images("mnist", &f.settings).unwrap();
    check(&data, &f);
    let gets =
        f.hub.requests().iter().filter(|r| r.starts_with("GET") && r.ends_with("mnist/train/0000.parquet")).count();
    assert_eq!(gets, 2, "{:?}", f.hub.requests());
}

fn blobs(root: &Path) -> Vec<PathBuf> {
    let dir = root.join("hf/datasets--ylecun--mnist/blobs");
    std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect()
}

#[test]
fn a_corrupt_cache_is_detected_and_rebuilt_or_reported_offline() {
    let f = fixture();
    let first = data::load_images("mnist", &f.settings).unwrap();
    let root = f.settings.cache_dir.clone().unwrap().parent().unwrap().to_path_buf();
    // Damage the decoded cache: detected by its checksum, rebuilt from the cached Hub files.
    let decoded = f.settings.decoded_cache();
    let (manifest, _) = decoded.entries(Some("mnist")).remove(0);
    let tensors = manifest.with_extension("safetensors");
    let mut bytes = std::fs::read(&tensors).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x55;
    std::fs::write(&tensors, &bytes).unwrap();
    let offline = DataSettings { offline: true, ..f.settings.clone() };
    let rebuilt = data::load_images("mnist", &offline).unwrap();
    assert_eq!(rebuilt.train, first.train);
    assert!(!rebuilt.source.contains("decoded cache"), "rebuilt from the sources: {}", rebuilt.source);
    assert!(decoded.verify(&manifest, &decoded.entries(Some("mnist"))[0].1).is_ok());

    // A truncated tensors file is no better.
    std::fs::write(&tensors, &bytes[..n / 2]).unwrap();
    assert_eq!(data::load_images("mnist", &offline).unwrap().test, first.test);

    // Damage a cached Hub file: offline, that is an error that says so.
    for blob in blobs(&root) {
        let mut b = std::fs::read(&blob).unwrap();
        if b.len() > 100 {
            b[50] ^= 1;
            std::fs::write(&blob, b).unwrap();
        }
    }
    std::fs::remove_dir_all(&decoded.dir).unwrap();
    let err = data::load_images("mnist", &offline).unwrap_err().to_string();
    assert!(err.contains("is corrupt") && err.contains("SHA-256") && err.contains("Offline"), "{err}");
    // Online, it is downloaded again.
    let fixed = data::load_images("mnist", &f.settings).unwrap();
    assert_eq!(fixed.train, first.train);
}

#[test]
fn offline_an_intact_decoded_cache_serves_without_sources() {
    let f = fixture();
    let first = data::load_images("mnist", &f.settings).unwrap();
    let root = f.settings.cache_dir.clone().unwrap().parent().unwrap().to_path_buf();
    std::fs::remove_dir_all(root.join("hf")).unwrap();
    let offline = DataSettings { offline: true, ..f.settings.clone() };
    assert_eq!(data::load_images("mnist", &offline).unwrap().train, first.train);
}

fn local(dir: &Path) -> DataSettings {
    let tmp = dir.join("cache");
    DataSettings {
        data_dirs: vec![dir.to_path_buf()],
        offline: true,
        cache_dir: Some(tmp.clone()),
        hub_cache: Some(tmp.join("hf")),
        ..Default::default()
    }
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn local_idx_files_raw_or_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("fashion-mnist");
    std::fs::create_dir_all(&m).unwrap();
    let (train, train_labels) = digits(12, 3);
    let (test, test_labels) = digits(5, 4);
    std::fs::write(m.join("train-images-idx3-ubyte.gz"), gz(&idx::encode_images(12, 28, 28, &train.concat()))).unwrap();
    std::fs::write(m.join("train-labels-idx1-ubyte"), idx::encode_labels(&train_labels)).unwrap();
    std::fs::write(m.join("t10k-images-idx3-ubyte"), idx::encode_images(5, 28, 28, &test.concat())).unwrap();
    std::fs::write(m.join("t10k-labels-idx1-ubyte.gz"), gz(&idx::encode_labels(&test_labels))).unwrap();
    let data = data::load_images("fashion-mnist", &local(dir.path())).unwrap();
    assert_eq!((data.train.count, data.test.count), (12, 5));
    assert_eq!(data.train.images, train.concat());
    assert_eq!(data.test.labels, test_labels.iter().map(|&l| l as u32).collect::<Vec<_>>());
    assert!(data.source.contains("local files"), "{}", data.source);
    // A truncated file is a clear error, not garbage.
    std::fs::write(m.join("t10k-images-idx3-ubyte"), &idx::encode_images(5, 28, 28, &test.concat())[..100]).unwrap();
    let err = data::load_images("fashion-mnist", &local(dir.path())).unwrap_err().to_string();
    assert!(err.contains("truncated or corrupt"), "{err}");
}

#[test]
fn local_cifar10_and_cifar100_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let c10 = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&c10).unwrap();
    let image = |k: usize| -> Vec<u8> { (0..cifar::PIXELS).map(|p| ((p + 31 * k) % 256) as u8).collect() };
    for b in 1..=5 {
        let imgs: Vec<u8> = (0..3).flat_map(|k| image(b * 10 + k)).collect();
        std::fs::write(c10.join(format!("data_batch_{b}.bin")), cifar::encode(&imgs, &[b as u8, 0, 9], None)).unwrap();
    }
    std::fs::write(c10.join("test_batch.bin"), cifar::encode(&image(99), &[4], None)).unwrap();
    let data = data::load_images("cifar10", &local(dir.path())).unwrap();
    assert_eq!((data.train.count, data.test.count, data.channels, data.classes), (15, 1, 3, 10));
    assert_eq!(&data.train.labels[..3], &[1, 0, 9]);
    assert_eq!(data.test.images, image(99), "CHW order kept (not transposed)");

    let c100 = dir.path().join("cifar-100-binary");
    std::fs::create_dir_all(&c100).unwrap();
    let imgs: Vec<u8> = (0..2).flat_map(image).collect();
    std::fs::write(c100.join("train.bin"), cifar::encode(&imgs, &[57, 99], Some(&[12, 19]))).unwrap();
    std::fs::write(c100.join("test.bin"), cifar::encode(&image(5), &[3], Some(&[7]))).unwrap();
    let data = data::load_images("cifar100", &local(dir.path())).unwrap();
    assert_eq!(data.train.labels, [57, 99]);
    assert_eq!(data.train.coarse_labels, Some(vec![12, 19]));
    assert_eq!(data.classes, 100);
    // Decoded and cached: the second load gives the same, coarse labels included.
    assert_eq!(data::load_images("cifar100", &local(dir.path())).unwrap().train, data.train);
}

#[test]
fn local_tiny_imagenet_folder() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("tiny-imagenet-200");
    let wnids = ["n02", "n01"];
    std::fs::create_dir_all(t.join("val/images")).unwrap();
    std::fs::write(t.join("wnids.txt"), wnids.join("\n")).unwrap();
    let jpeg = |shade: u8, grey: bool| -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let img = if grey {
            image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(64, 64, image::Luma([shade])))
        } else {
            image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(64, 64, image::Rgb([shade, 0, 255 - shade])))
        };
        img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
        buf.into_inner()
    };
    for (k, wnid) in wnids.iter().enumerate() {
        let images = t.join("train").join(wnid).join("images");
        std::fs::create_dir_all(&images).unwrap();
        for i in 0..2 {
            std::fs::write(images.join(format!("{wnid}_{i}.JPEG")), jpeg(40 * k as u8 + i, i == 1)).unwrap();
        }
    }
    std::fs::write(t.join("val/images/val_0.JPEG"), jpeg(200, false)).unwrap();
    std::fs::write(t.join("val/val_annotations.txt"), "val_0.JPEG\tn02\t0\t0\t63\t63\n").unwrap();
    let data = data::load_images("tiny-imagenet", &local(dir.path())).unwrap();
    assert_eq!((data.train.count, data.test.count, data.height, data.classes), (4, 1, 64, 200));
    assert_eq!(data.train.labels, [0, 0, 1, 1], "classes in sorted wnid order: n01, n02");
    assert_eq!(data.test.labels, [1]);
    // A grey JPEG becomes three equal planes.
    let grey = &data.train.images[64 * 64 * 3..2 * 64 * 64 * 3];
    assert_eq!(&grey[..64 * 64], &grey[64 * 64..2 * 64 * 64]);
}

#[test]
fn hub_layout_files_in_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("mnist/mnist");
    std::fs::create_dir_all(m.join("train")).unwrap();
    std::fs::create_dir_all(m.join("test")).unwrap();
    let (train, _, _) = mnist_parquet(&m.join("train"), "0000", 7, 5);
    let (test, _, _) = mnist_parquet(&m.join("test"), "0000", 3, 6);
    assert!(train.exists() && test.exists());
    let data = data::load_images("mnist", &local(dir.path())).unwrap();
    assert_eq!((data.train.count, data.test.count), (7, 3));
    assert!(data.source.contains("Hub-layout files"), "{}", data.source);
}

#[test]
fn local_text_and_translation_files() {
    let dir = tempfile::tempdir().unwrap();
    let ptb = dir.path().join("ptb");
    std::fs::create_dir_all(&ptb).unwrap();
    std::fs::write(ptb.join("ptb.train.txt.gz"), gz(b" the cat sat \n on the mat \n")).unwrap();
    std::fs::write(ptb.join("ptb.valid.txt"), " a b \n").unwrap();
    std::fs::write(ptb.join("ptb.test.txt"), " c \n").unwrap();
    let text = data::load_text("ptb", &local(dir.path())).unwrap();
    assert_eq!(text.splits[0], ("train".to_string(), vec![" the cat sat ".to_string(), " on the mat ".to_string()]));
    let m30k = dir.path().join("multi30k");
    std::fs::create_dir_all(&m30k).unwrap();
    for (stem, de, en) in [
        ("train", "ein hund\nzwei\n", "a dog\ntwo\n"),
        ("val", "drei\n", "three\n"),
        ("test_2016_flickr", "vier\n", "four\n"),
    ] {
        std::fs::write(m30k.join(format!("{stem}.de")), de).unwrap();
        std::fs::write(m30k.join(format!("{stem}.en.gz")), gz(en.as_bytes())).unwrap();
    }
    let pairs = data::load_pairs("multi30k", &local(dir.path())).unwrap();
    assert_eq!(pairs.splits[0].1, [("ein hund".to_string(), "a dog".to_string()), ("zwei".into(), "two".into())]);
    assert_eq!(pairs.splits[2].1.len(), 1);
    // The same from Hub-layout files: JSON lines for Multi30k, parquet for the others.
    let hub_dir = tempfile::tempdir().unwrap();
    let m = hub_dir.path().join("multi30k");
    std::fs::create_dir_all(&m).unwrap();
    for f in ["train", "val", "test"] {
        std::fs::write(m.join(format!("{f}.jsonl")), "{\"en\": \"a dog\", \"de\": \"ein hund\"}\n").unwrap();
    }
    let pairs = data::load_pairs("multi30k", &local(hub_dir.path())).unwrap();
    assert_eq!(pairs.splits[1].1, [("ein hund".to_string(), "a dog".to_string())]);
    let w = hub_dir.path().join("wikitext-2/wikitext-2-v1");
    std::fs::create_dir_all(&w).unwrap();
    for s in ["train", "validation", "test"] {
        hubfiles::write_strings(&w.join(format!("{s}-00000-of-00001.parquet")), "text", &[format!(" = {s} = \n")])
            .unwrap();
    }
    let text = data::load_text("wikitext-2", &local(hub_dir.path())).unwrap();
    assert_eq!(text.splits[1].1, [" = validation = \n"]);
}

#[test]
fn the_real_mnist_when_it_is_there() {
    let Some(shared) = common::shared_data() else {
        eprintln!("skipped: no ../shared/data/mnist");
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let settings = DataSettings {
        data_dirs: vec![shared],
        offline: true,
        cache_dir: Some(cache.path().into()),
        ..Default::default()
    };
    let data = data::load_images("mnist", &settings).unwrap();
    assert_eq!((data.train.count, data.test.count), (60_000, 10_000));
    let mut counts = [0usize; 10];
    for &l in &data.train.labels {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949], "the published label counts");
    let started = std::time::Instant::now();
    let again = data::load_images("mnist", &settings).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(again.source.contains("decoded cache"));
    println!("second load of MNIST: {seconds:.3} s");
    assert!(seconds < 1.0, "the second load of MNIST took {seconds} s");
}

#[test]
fn images_and_strings_round_trip_through_the_hub_schema() {
    use tasks::data::format::parquet::{read_images, read_strings, DecodedImages};
    let dir = tempfile::tempdir().unwrap();
    let a: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 7) as u8).collect();
    let b: Vec<u8> = (0..3 * 4 * 5).map(|i| (255 - i) as u8).collect();
    let path = dir.path().join("x.parquet");
    let pngs = vec![hubfiles::encode_png(&a, 3, 4, 5), hubfiles::encode_png(&b, 3, 4, 5)];
    hubfiles::write_images(&path, "img", &pngs, &[("fine_label", vec![42, 7]), ("coarse_label", vec![3, 1])]).unwrap();
    let mut out = DecodedImages::default();
    read_images(&path, &["image", "img"], &["fine_label", "coarse_label"], 3, (4, 5), &mut out).unwrap();
    assert_eq!(out.count, 2);
    assert_eq!(out.pixels, [a, b].concat());
    assert_eq!(out.labels, vec![vec![42, 7], vec![3, 1]]);
    let err = read_images(&path, &["image"], &["label"], 3, (4, 5), &mut DecodedImages::default()).unwrap_err();
    assert!(err.contains("no image bytes in a column named image"), "{err}");
    let strings = dir.path().join("s.parquet");
    hubfiles::write_strings(&strings, "sentence", &["a b".into(), "c".into()]).unwrap();
    assert_eq!(read_strings(&strings, "sentence").unwrap(), ["a b", "c"]);
}
