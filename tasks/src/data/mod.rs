//! Data sets: from local files (`--data-dir`), the Hugging Face cache, or the Hub, in that
//! order; decoded once into a cache of compact tensors; with one clear message when none can be
//! reached. See [`catalog`] for the data sets, their Hub repositories and local layouts.
//!
//! Where a data set comes from, for `load_images("mnist", settings)`:
//! 1. each `--data-dir` (and `/usr/share/datasets`, where Debian's `dataset-*` packages
//!    install), in `<dir>/<folder>/`: the standard layout (IDX, CIFAR binary, text files) or
//!    parquet files at their Hub paths;
//! 2. the Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME`), without touching the network;
//! 3. the Hub (`HF_ENDPOINT`), unless offline (`--offline`, `OPTBENCH_OFFLINE=1` or
//!    `HF_HUB_OFFLINE=1`);
//! 4. offline and with no sources: the newest intact decoded cache of the data set.
//!
//! `candle-datasets` is not used: its CIFAR loader transposes images and cannot read CIFAR-100,
//! its decode errors panic, it reads no gzip, and it pulls a second HTTP/TLS stack.

pub mod batches;
pub mod cache;
pub mod catalog;
pub mod cifar;
pub mod hub;
pub mod hubfiles;
pub mod idx;

use std::fmt;
use std::path::{Path, PathBuf};

use catalog::{Content, DatasetSpec, LocalFormat};
use hub::{Hub, HubFiles};

/// Where data sets come from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataSettings {
    /// Folders holding one folder per data set, searched in order.
    pub data_dirs: Vec<PathBuf>,
    /// Never use the network.
    pub offline: bool,
    /// The decoded cache root (default: [`cache::default_cache_dir`]).
    pub cache_dir: Option<PathBuf>,
    /// The Hub's address (default: `HF_ENDPOINT`, else huggingface.co).
    pub hub_endpoint: Option<String>,
    /// The Hugging Face cache (default: `HF_HUB_CACHE`, else `$HF_HOME/hub`).
    pub hub_cache: Option<PathBuf>,
}

/// Folders searched after the configured ones: Debian's data set packages install there
/// (`dataset-fashion-mnist` puts Fashion-MNIST in `/usr/share/datasets/fashion-mnist`).
pub const SYSTEM_DATA_DIRS: &[&str] = &["/usr/share/datasets"];

/// Whether the environment asks for offline mode (`OPTBENCH_OFFLINE` or `HF_HUB_OFFLINE`).
pub fn offline_from_env() -> bool {
    ["OPTBENCH_OFFLINE", "HF_HUB_OFFLINE"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")))
}

impl DataSettings {
    /// What the command line asks for: its `--data-dir` folders, `--offline` or the
    /// environment's offline switch, and the system folders after them.
    pub fn for_cli(data_dirs: Vec<PathBuf>, offline: bool) -> Self {
        Self { data_dirs, offline: offline || offline_from_env(), ..Default::default() }.with_system_dirs()
    }

    /// These settings with [`SYSTEM_DATA_DIRS`] searched after the configured folders (what
    /// the command line does).
    pub fn with_system_dirs(mut self) -> Self {
        for dir in SYSTEM_DATA_DIRS {
            let dir = PathBuf::from(dir);
            if !self.data_dirs.contains(&dir) {
                self.data_dirs.push(dir);
            }
        }
        self
    }

    pub fn decoded_cache(&self) -> cache::DecodedCache {
        cache::DecodedCache::new(&self.cache_dir.clone().unwrap_or_else(cache::default_cache_dir))
    }
}

/// One split of an image data set: `count` images of (C, H, W) bytes, row-major, and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSplit {
    pub count: usize,
    pub images: Vec<u8>,
    pub labels: Vec<u32>,
    /// CIFAR-100's 20 superclasses.
    pub coarse_labels: Option<Vec<u32>>,
}

/// An image classification data set, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageData {
    pub name: String,
    /// Where it came from, for logs and results.
    pub source: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
    pub train: ImageSplit,
    pub test: ImageSplit,
}

/// A text data set: lines per split (`train`, `valid`, `test`).
#[derive(Clone, Debug, PartialEq)]
pub struct TextData {
    pub name: String,
    pub source: String,
    pub splits: Vec<(String, Vec<String>)>,
}

/// A translation data set: (source, target) sentence pairs per split.
#[derive(Clone, Debug, PartialEq)]
pub struct PairData {
    pub name: String,
    pub source: String,
    pub splits: Vec<(String, Vec<(String, String)>)>,
}

/// Why a data set could not be loaded: one message that says which data set, which
/// repository, what was tried, and the ways out.
#[derive(Clone, Debug, PartialEq)]
pub struct DataError(pub String);

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DataError {}

/// The files a data set was found in.
#[derive(Clone, Debug)]
pub enum Source {
    /// A local folder in the data set's standard layout.
    Local { dir: PathBuf, format: LocalFormat },
    /// Parquet (or JSON lines) files at their Hub paths, per split: in a local folder or the
    /// Hugging Face cache.
    Files { description: String, splits: Vec<(String, Vec<PathBuf>)> },
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Local { dir, .. } => format!("local files in {}", dir.display()),
            Source::Files { description, .. } => description.clone(),
        }
    }

    fn split(&self, name: &str) -> &[PathBuf] {
        match self {
            Source::Files { splits, .. } => splits.iter().find(|(s, _)| s == name).map_or(&[], |(_, f)| f.as_slice()),
            Source::Local { .. } => &[],
        }
    }
}

fn spec_of(name: &str) -> Result<&'static DatasetSpec, DataError> {
    catalog::find(name).ok_or_else(|| {
        DataError(format!("unknown data set `{name}`; valid data sets: {}", catalog::names().join(", ")))
    })
}

/// The standard local layout's files, when they are all there.
fn local_layout(dir: &Path, spec: &DatasetSpec) -> Result<Vec<PathBuf>, String> {
    let need = |name: &str| -> Result<PathBuf, String> {
        idx::find(dir, name).ok_or_else(|| format!("no {name} (or {name}.gz)"))
    };
    match spec.local {
        LocalFormat::Idx => {
            ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
                .iter()
                .map(|n| need(n))
                .collect()
        }
        LocalFormat::Cifar10Binary => {
            let names = [
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
                "test_batch.bin",
            ];
            names.iter().map(|n| Some(dir.join(n)).filter(|p| p.is_file()).ok_or_else(|| format!("no {n}"))).collect()
        }
        LocalFormat::Cifar100Binary => ["train.bin", "test.bin"]
            .iter()
            .map(|n| Some(dir.join(n)).filter(|p| p.is_file()).ok_or_else(|| format!("no {n}")))
            .collect(),
        LocalFormat::TinyImageNet => {
            let needed = [dir.join("wnids.txt"), dir.join("val").join("val_annotations.txt"), dir.join("train")];
            match needed.iter().find(|p| !p.exists()) {
                Some(missing) => Err(format!("no {}", missing.strip_prefix(dir).unwrap_or(missing).display())),
                None => Ok(needed.to_vec()),
            }
        }
        LocalFormat::TextFiles(files) => files
            .iter()
            .map(|(_, names)| {
                names.iter().find_map(|n| idx::find(dir, n)).ok_or_else(|| format!("no {}", names.join(" or ")))
            })
            .collect(),
        LocalFormat::Parallel(files) => {
            let Content::Pairs { source, target, .. } = spec.content else {
                return Err("not a translation data set".into());
            };
            files
                .iter()
                .flat_map(|(_, stem)| [format!("{stem}.{source}"), format!("{stem}.{target}")])
                .map(|n| need(&n))
                .collect()
        }
    }
}

/// Parquet / JSON-lines files at their Hub paths under `dir`, if every split has some.
fn hub_layout(dir: &Path, spec: &DatasetSpec) -> Option<Vec<(String, Vec<PathBuf>)>> {
    let names = hub::relative_files(dir);
    let splits = hub::split_files(spec, &names)?;
    Some(splits.into_iter().map(|(split, names)| (split, names.iter().map(|n| dir.join(n)).collect())).collect())
}

/// Where a data set's files were found, before the Hugging Face cache's files are checked.
pub enum Located {
    /// Local files, or files just downloaded (and checked).
    Ready(Source),
    /// Files in the Hugging Face cache, not yet checked against their ETags.
    Cached(HubFiles, Hub),
}

/// Finds a data set's files: local folders, then the Hugging Face cache, then the Hub; the
/// cached files are checked against their ETags (a corrupt one is downloaded again).
/// `force` asks the Hub again even when the files are cached.
pub fn find_source(name: &str, settings: &DataSettings, force: bool) -> Result<Source, DataError> {
    let spec = spec_of(name)?;
    match locate(spec, settings, force)? {
        Located::Ready(source) => Ok(source),
        Located::Cached(files, hub) => verified(spec, files, &hub, settings),
    }
}

/// [`find_source`] without reading the cached Hub files: for callers that may not need them
/// (a decoded cache, a listing).
pub fn locate(spec: &DatasetSpec, settings: &DataSettings, force: bool) -> Result<Located, DataError> {
    let name = spec.name;
    let mut tried = Vec::new();
    for root in &settings.data_dirs {
        let dir = root.join(spec.folder);
        if !dir.is_dir() {
            if !SYSTEM_DATA_DIRS.iter().any(|s| Path::new(s) == root) {
                tried.push(format!("{}: no folder {}/", root.display(), spec.folder));
            }
            continue;
        }
        match local_layout(&dir, spec) {
            Ok(_) => return Ok(Located::Ready(Source::Local { dir, format: spec.local })),
            Err(why) => {
                if let Some(splits) = hub_layout(&dir, spec) {
                    let description = format!("Hub-layout files in {}", dir.display());
                    return Ok(Located::Ready(Source::Files { description, splits }));
                }
                tried.push(format!("{}: {why}, and no Hub-layout files ({})", dir.display(), patterns(spec)));
            }
        }
    }
    let hub = Hub::new(settings).map_err(|e| DataError(format!("data set `{name}`: {e}")))?;
    let at = format!("{}@{}", spec.repo, spec.revision);
    if !force {
        if let Some(files) = hub.cached(spec) {
            return Ok(Located::Cached(files, hub));
        }
        tried.push(format!("the Hugging Face cache {}: {at} is not (fully) there", hub.cache_dir().display()));
    }
    if settings.offline {
        tried.push(format!("the Hub ({}): not asked, offline mode", hub.endpoint()));
    } else {
        match hub.download(spec, force) {
            Ok(files) => return Ok(Located::Ready(downloaded(spec, files, &hub))),
            Err(e) => tried.push(format!("the Hub ({}): {e}", hub.endpoint())),
        }
    }
    Err(unavailable(spec, &tried))
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

fn at(spec: &DatasetSpec) -> String {
    format!("{}@{}", spec.repo, spec.revision)
}

/// Files just downloaded from the Hub.
fn downloaded(spec: &DatasetSpec, files: HubFiles, hub: &Hub) -> Source {
    let description = format!("{} (commit {}) from {}", at(spec), short(&files.commit), hub.endpoint());
    Source::Files { description, splits: files.splits }
}

/// Files from the Hugging Face cache.
fn cached(spec: &DatasetSpec, files: HubFiles) -> Source {
    let description = format!("{} (commit {}) from the Hugging Face cache", at(spec), short(&files.commit));
    Source::Files { description, splits: files.splits }
}

/// Checks cached Hub files before using them; offline, a corrupt one is an error that says so.
fn verified(spec: &DatasetSpec, files: HubFiles, hub: &Hub, settings: &DataSettings) -> Result<Source, DataError> {
    for path in files.splits.iter().flat_map(|(_, f)| f) {
        if let Err(e) = hub::verify_blob(path) {
            if settings.offline {
                return Err(DataError(format!(
                    "data set `{}`: {e}.\nOffline, it cannot be downloaded again. Ways out:\n{}",
                    spec.name,
                    ways_out(spec)
                )));
            }
            eprintln!("{e}: downloading {} again", at(spec));
            let files = hub.download(spec, true).map_err(|err| {
                DataError(format!("data set `{}`: {e}; downloading it again failed: {err}", spec.name))
            })?;
            return Ok(downloaded(spec, files, hub));
        }
    }
    Ok(cached(spec, files))
}

fn patterns(spec: &DatasetSpec) -> String {
    spec.splits.iter().map(|(_, p)| p.to_string()).collect::<Vec<_>>().join(", ")
}

fn local_hint(spec: &DatasetSpec) -> String {
    match spec.local {
        LocalFormat::Idx => {
            "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz".into()
        }
        LocalFormat::Cifar10Binary => "data_batch_1.bin ... data_batch_5.bin, test_batch.bin (the binary version)".into(),
        LocalFormat::Cifar100Binary => "train.bin, test.bin (the binary version)".into(),
        LocalFormat::TinyImageNet => "wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt".into(),
        LocalFormat::TextFiles(files) => files.iter().map(|(_, n)| n[0]).collect::<Vec<_>>().join(", "),
        LocalFormat::Parallel(files) => {
            let (source, target) = match spec.content {
                Content::Pairs { source, target, .. } => (source, target),
                _ => ("source", "target"),
            };
            files.iter().map(|(_, stem)| format!("{stem}.{source}/.{target}")).collect::<Vec<_>>().join(", ")
        }
    }
}

fn ways_out(spec: &DatasetSpec) -> String {
    format!(
        "  1. reach the Hub: check the network, or point HF_ENDPOINT at a mirror you can reach;\n  \
         2. pre-fill the cache where the Hub is reachable: `optbench data fetch {}` (then copy the Hugging Face \
         cache and the optbench cache, or set HF_HOME / OPTBENCH_CACHE to where they are);\n  \
         3. use local files: `--data-dir DIR` (or `data_dir` in the config) with DIR/{}/ holding {}, or the Hub's \
         files at their repository paths ({}).",
        spec.name,
        spec.folder,
        local_hint(spec),
        patterns(spec)
    )
}

fn unavailable(spec: &DatasetSpec, tried: &[String]) -> DataError {
    let tried: Vec<String> = tried.iter().map(|t| format!("  - {t}")).collect();
    DataError(format!(
        "cannot load data set `{}` (Hugging Face repository {}, revision {}). Tried:\n{}\nWays out:\n{}",
        spec.name,
        spec.repo,
        spec.revision,
        tried.join("\n"),
        ways_out(spec)
    ))
}

/// The key of the decoded cache: a hash of the source files' contents (for Hub blobs, their
/// SHA-256 ETag, already checked; for the many JPEGs of a Tiny-ImageNet folder, their names,
/// sizes and times).
fn source_key(spec: &DatasetSpec, source: &Source) -> Result<String, DataError> {
    let mut description = format!("{}\n{}\n", cache::FORMAT, spec.name);
    let files: Vec<PathBuf> = match source {
        Source::Local { dir, format: LocalFormat::TinyImageNet } => {
            let mut listing = hub::relative_files(dir);
            listing.sort();
            for rel in listing {
                let path = dir.join(&rel);
                let meta = std::fs::metadata(&path).map_err(|e| DataError(format!("{}: {e}", path.display())))?;
                let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                description.push_str(&format!("{rel} {} {:?}\n", meta.len(), mtime));
            }
            return Ok(cache::sha256_bytes(description.as_bytes()));
        }
        Source::Local { dir, .. } => local_layout(dir, spec).map_err(DataError)?,
        Source::Files { splits, .. } => splits.iter().flat_map(|(_, f)| f.clone()).collect(),
    };
    for path in files {
        let digest = match hub::sha256_etag(&path) {
            Some(etag) => etag,
            None => cache::sha256_file(&path).map_err(DataError)?,
        };
        description.push_str(&format!("{digest}\n"));
    }
    Ok(cache::sha256_bytes(description.as_bytes()))
}

/// Loads an image data set: found as above, decoded once, then read from the decoded cache.
pub fn load_images(name: &str, settings: &DataSettings) -> Result<ImageData, DataError> {
    let spec = spec_of(name)?;
    let Content::Images { .. } = spec.content else {
        return Err(DataError(format!("data set `{name}` holds text, not images")));
    };
    let decoded = settings.decoded_cache();
    let located = match locate(spec, settings, false) {
        Ok(located) => located,
        Err(err) => {
            // Offline with no source: an intact decoded cache still serves.
            for (_, manifest) in decoded.entries(Some(name)) {
                if let Ok(Some(data)) = decoded.load(name, &manifest.key) {
                    return Ok(data);
                }
            }
            return Err(err);
        }
    };
    // The key comes from the files' names (for Hub blobs, their SHA-256): cached Hub files are
    // read, and so checked, only when they are to be decoded.
    let (source, unchecked) = match located {
        Located::Ready(source) => (source, None),
        Located::Cached(files, hub) => (cached(spec, files.clone()), Some((files, hub))),
    };
    let key = source_key(spec, &source)?;
    match decoded.load(name, &key) {
        Ok(Some(data)) => return Ok(data),
        Ok(None) => {}
        Err(corrupt) => eprintln!("{corrupt}; decoding {name} again from {}", source.describe()),
    }
    let (source, key) = match unchecked {
        None => (source, key),
        Some((files, hub)) => {
            let source = verified(spec, files, &hub, settings)?;
            let key = source_key(spec, &source)?;
            (source, key)
        }
    };
    let data = decode_images(spec, &source).map_err(|e| DataError(format!("data set `{name}`: {e}")))?;
    if let Err(e) = decoded.store(&data, &key) {
        eprintln!("warning: could not store the decoded cache of {name}: {e}");
    }
    Ok(data)
}

fn decode_images(spec: &DatasetSpec, source: &Source) -> Result<ImageData, String> {
    let Content::Images { channels, height, width, classes, image_columns, label_columns } = spec.content else {
        unreachable!("checked by load_images")
    };
    let split = |name: &str| -> Result<ImageSplit, String> {
        match source {
            Source::Local { dir, format } => decode_local(*format, dir, name, (channels, height, width)),
            Source::Files { .. } => {
                let mut out = hubfiles::DecodedImages::default();
                for path in source.split(name) {
                    hubfiles::read_images(path, image_columns, label_columns, channels, (height, width), &mut out)?;
                }
                let coarse = out.labels.get(1).cloned();
                Ok(ImageSplit {
                    count: out.count,
                    images: out.pixels,
                    labels: out.labels.swap_remove(0),
                    coarse_labels: coarse,
                })
            }
        }
    };
    let train = split("train")?;
    let test = split("test")?;
    for (name, s) in [("train", &train), ("test", &test)] {
        if s.count == 0 {
            return Err(format!("the {name} split is empty"));
        }
        if let Some(bad) = s.labels.iter().find(|&&l| l as usize >= classes) {
            return Err(format!("the {name} split has label {bad}, but the data set has {classes} classes"));
        }
    }
    Ok(ImageData { name: spec.name.into(), source: source.describe(), channels, height, width, classes, train, test })
}

fn decode_local(
    format: LocalFormat,
    dir: &Path,
    split: &str,
    shape: (usize, usize, usize),
) -> Result<ImageSplit, String> {
    let test = split == "test";
    match format {
        LocalFormat::Idx => {
            let prefix = if test { "t10k" } else { "train" };
            let images = idx::find(dir, &format!("{prefix}-images-idx3-ubyte")).ok_or("missing images")?;
            let labels = idx::find(dir, &format!("{prefix}-labels-idx1-ubyte")).ok_or("missing labels")?;
            let (n, rows, cols, pixels) = idx::read_images(&images)?;
            if (rows, cols) != (shape.1, shape.2) {
                return Err(format!("{}: {rows}x{cols} images, expected {}x{}", images.display(), shape.1, shape.2));
            }
            let labels = idx::read_labels(&labels)?;
            if labels.len() != n {
                return Err(format!("{} images but {} labels in {}", n, labels.len(), dir.display()));
            }
            Ok(ImageSplit { count: n, images: pixels, labels, coarse_labels: None })
        }
        LocalFormat::Cifar10Binary | LocalFormat::Cifar100Binary => {
            let (files, label_bytes): (Vec<String>, usize) = match (format, test) {
                (LocalFormat::Cifar10Binary, false) => ((1..=5).map(|i| format!("data_batch_{i}.bin")).collect(), 1),
                (LocalFormat::Cifar10Binary, true) => (vec!["test_batch.bin".into()], 1),
                (_, false) => (vec!["train.bin".into()], 2),
                (_, true) => (vec!["test.bin".into()], 2),
            };
            let mut out = ImageSplit { count: 0, images: Vec::new(), labels: Vec::new(), coarse_labels: None };
            for f in files {
                let (images, fine, coarse) = cifar::read(&dir.join(f), label_bytes)?;
                out.count += fine.len();
                out.images.extend(images);
                out.labels.extend(fine);
                if let Some(c) = coarse {
                    out.coarse_labels.get_or_insert_with(Vec::new).extend(c);
                }
            }
            Ok(out)
        }
        LocalFormat::TinyImageNet => decode_tiny_imagenet(dir, test, shape),
        _ => Err("not an image data set".into()),
    }
}

/// The official `tiny-imagenet-200/` folder: classes are the sorted `wnids.txt` (as
/// torchvision's `ImageFolder` orders them); the test split is `val/`.
fn decode_tiny_imagenet(dir: &Path, test: bool, shape: (usize, usize, usize)) -> Result<ImageSplit, String> {
    let wnids_text =
        std::fs::read_to_string(dir.join("wnids.txt")).map_err(|e| format!("{}/wnids.txt: {e}", dir.display()))?;
    let mut wnids: Vec<&str> = wnids_text.split_whitespace().collect();
    wnids.sort();
    let class_of = |wnid: &str| wnids.binary_search(&wnid).map_err(|_| format!("class {wnid} is not in wnids.txt"));
    let mut files: Vec<(PathBuf, u32)> = Vec::new();
    if test {
        let ann = dir.join("val").join("val_annotations.txt");
        let text = std::fs::read_to_string(&ann).map_err(|e| format!("{}: {e}", ann.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut cols = line.split('\t');
            let (Some(file), Some(wnid)) = (cols.next(), cols.next()) else {
                return Err(format!("{}: bad line `{line}`", ann.display()));
            };
            files.push((dir.join("val").join("images").join(file), class_of(wnid)? as u32));
        }
    } else {
        for wnid in &wnids {
            let images = dir.join("train").join(wnid).join("images");
            let mut names: Vec<PathBuf> = std::fs::read_dir(&images)
                .map_err(|e| format!("{}: {e}", images.display()))?
                .flatten()
                .map(|e| e.path())
                .collect();
            names.sort();
            let label = class_of(wnid)? as u32;
            files.extend(names.into_iter().map(|p| (p, label)));
        }
    }
    let mut out = ImageSplit { count: 0, images: Vec::new(), labels: Vec::new(), coarse_labels: None };
    for (path, label) in files {
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        hubfiles::decode_into(&bytes, shape.0, (shape.1, shape.2), &mut out.images)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        out.labels.push(label);
        out.count += 1;
    }
    Ok(out)
}

/// Loads a language-modelling data set: its lines per split.
pub fn load_text(name: &str, settings: &DataSettings) -> Result<TextData, DataError> {
    let spec = spec_of(name)?;
    let Content::Text { column } = spec.content else {
        return Err(DataError(format!("data set `{name}` is not a text data set")));
    };
    let source = find_source(name, settings, false)?;
    let err = |e: String| DataError(format!("data set `{name}`: {e}"));
    let mut splits = Vec::new();
    for (split, _) in spec.splits {
        let lines = match (&source, spec.local) {
            (Source::Local { dir, .. }, LocalFormat::TextFiles(files)) => {
                let names = files.iter().find(|(s, _)| s == split).map(|(_, n)| *n).unwrap_or(&[]);
                let path =
                    names.iter().find_map(|n| idx::find(dir, n)).ok_or_else(|| err(format!("no {split} file")))?;
                let bytes = idx::read_maybe_gz(&path).map_err(err)?;
                String::from_utf8(bytes)
                    .map_err(|e| err(format!("{}: not UTF-8 ({e})", path.display())))?
                    .lines()
                    .map(str::to_string)
                    .collect()
            }
            _ => {
                let mut lines = Vec::new();
                for path in source.split(split) {
                    lines.extend(hubfiles::read_strings(path, column).map_err(err)?);
                }
                lines
            }
        };
        splits.push((split.to_string(), lines));
    }
    Ok(TextData { name: name.into(), source: source.describe(), splits })
}

/// Loads a translation data set: (source, target) pairs per split.
pub fn load_pairs(name: &str, settings: &DataSettings) -> Result<PairData, DataError> {
    let spec = spec_of(name)?;
    let Content::Pairs { source: src, target: tgt, jsonl } = spec.content else {
        return Err(DataError(format!("data set `{name}` is not a translation data set")));
    };
    let source = find_source(name, settings, false)?;
    let err = |e: String| DataError(format!("data set `{name}`: {e}"));
    let mut splits = Vec::new();
    for (split, _) in spec.splits {
        let pairs = match (&source, spec.local) {
            (Source::Local { dir, .. }, LocalFormat::Parallel(files)) => {
                let stem = files.iter().find(|(s, _)| s == split).map(|(_, n)| *n).unwrap_or(split);
                let read = |lang: &str| -> Result<Vec<String>, DataError> {
                    let path =
                        idx::find(dir, &format!("{stem}.{lang}")).ok_or_else(|| err(format!("no {stem}.{lang}")))?;
                    let text = String::from_utf8(idx::read_maybe_gz(&path).map_err(err)?)
                        .map_err(|e| err(format!("{}: not UTF-8 ({e})", path.display())))?;
                    Ok(text.lines().map(str::to_string).collect())
                };
                let (a, b) = (read(src)?, read(tgt)?);
                if a.len() != b.len() {
                    return Err(err(format!("{stem}.{src} has {} lines, {stem}.{tgt} has {}", a.len(), b.len())));
                }
                a.into_iter().zip(b).collect()
            }
            _ => {
                let mut pairs = Vec::new();
                for path in source.split(split) {
                    pairs.extend(if jsonl {
                        hubfiles::read_jsonl_pairs(path, src, tgt).map_err(err)?
                    } else {
                        hubfiles::read_translations(path, src, tgt).map_err(err)?
                    });
                }
                pairs
            }
        };
        splits.push((split.to_string(), pairs));
    }
    Ok(PairData { name: name.into(), source: source.describe(), splits })
}
