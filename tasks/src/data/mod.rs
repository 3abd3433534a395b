//! Data sets: from local files (`--data-dir`), the Hugging Face cache, or the Hub, in that
//! order ([`source`]); read by one of the [`format`]s; image data sets decoded once into a cache
//! of compact tensors ([`cache`]); with one clear message when none can be reached. See
//! [`catalog`] for the data sets, their Hub repositories and local layouts, and [`batches`] for
//! the classifiers' batch pipeline.
//!
//! `candle-datasets` is not used: its CIFAR loader transposes images and cannot read CIFAR-100,
//! its decode errors panic, it reads no gzip, and it pulls a second HTTP/TLS stack.

pub mod batches;
pub mod cache;
pub mod catalog;
pub mod format;
pub mod hub;
pub mod provenance;
pub mod source;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use catalog::{Content, DatasetSpec};
use format::Split;
pub use provenance::{DataRecord, Origin};
use source::{absolute, spec_of, verified};
pub use source::{find_source, locate, offline_from_env, DataSettings, Located, Source, SYSTEM_DATA_DIRS};

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
    /// Where it came from, in words, for logs.
    pub source: String,
    /// Where it came from, its hash and size, for results.
    pub record: DataRecord,
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
    pub record: DataRecord,
    pub splits: Vec<(String, Vec<String>)>,
}

/// A translation data set: (source, target) sentence pairs per split.
#[derive(Clone, Debug, PartialEq)]
pub struct PairData {
    pub name: String,
    pub source: String,
    pub record: DataRecord,
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

/// Loads an image data set: found as in [`source`], decoded once, then read from the decoded
/// cache. Its [`ImageData::record`] says which files it came from.
pub fn load_images(name: &str, settings: &DataSettings) -> Result<ImageData, DataError> {
    let spec = spec_of(name)?;
    let Content::Images { .. } = spec.content else {
        return Err(DataError(format!("data set `{name}` holds text, not images")));
    };
    let decoded = settings.decoded_cache();
    let located = match source::locate_or_tried(spec, settings, false)? {
        Ok(located) => located,
        Err(mut tried) => {
            let (found, refused) = stand_in(spec, settings);
            if let Some(data) = found {
                for why in refused {
                    eprintln!("data set `{name}`: {why}");
                }
                return Ok(data);
            }
            tried.extend(refused);
            return Err(source::unavailable(spec, &tried));
        }
    };
    // The key comes from the files' names (for Hub blobs, their SHA-256): cached Hub files are
    // read, and so checked, only when they are to be decoded.
    let (source, unchecked) = match located {
        Located::Ready(source) => (source, None),
        Located::Cached(files, hub) => (source::cached(spec, files.clone(), &hub), Some((files, hub))),
    };
    let key = source.key(spec)?;
    match decoded.load(name, &key) {
        Ok(Some(mut data)) => {
            // The cache holds exactly these files' data: the record names the files.
            data.record.source = source.origin.clone();
            data.source = format!("{} (decoded cache)", source.describe());
            return Ok(data);
        }
        Ok(None) => {}
        Err(corrupt) => eprintln!("{corrupt}; decoding {name} again from {}", source.describe()),
    }
    let (source, key) = match unchecked {
        None => (source, key),
        Some((files, hub)) => {
            let source = verified(spec, files, &hub, settings)?;
            let key = source.key(spec)?;
            (source, key)
        }
    };
    let data = decode_images(spec, &source, &key).map_err(|e| DataError(format!("data set `{name}`: {e}")))?;
    if let Err(e) = decoded.store(&data, &key) {
        eprintln!("warning: could not store the decoded cache of {name}: {e}");
    }
    Ok(data)
}

/// Whether a decoded cache may stand in for a data set whose sources cannot be reached: only
/// offline, and only a cache decoded from the catalog's Hub repository and revision or from a
/// folder these settings name again.
fn may_stand_in(spec: &DatasetSpec, settings: &DataSettings, origin: Option<&Origin>) -> Result<(), String> {
    match origin.map(Origin::root) {
        None | Some(Origin::Unrecorded { .. }) => {
            return Err("it was written before optbench recorded where a cache's data comes from".into())
        }
        Some(Origin::Hub { repo, revision, .. })
            if (repo.as_str(), revision.as_str()) != (spec.repo, spec.revision) =>
        {
            return Err(format!(
                "it was decoded from {repo}@{revision}, not the catalog's {}@{}",
                spec.repo, spec.revision
            ))
        }
        Some(Origin::Local { path, .. }) => {
            if !settings.named_dirs().any(|d| absolute(d).join(spec.folder) == *path) {
                return Err(format!(
                    "it was decoded from {}, a folder this run does not name (name its parent with `--data-dir` \
                     to use this cache)",
                    path.display()
                ));
            }
        }
        Some(_) => {}
    }
    if !settings.offline {
        return Err("the run is not offline: a decoded cache stands in for unreachable sources only with \
                    `--offline` (or OPTBENCH_OFFLINE=1, HF_HUB_OFFLINE=1)"
            .into());
    }
    Ok(())
}

/// Offline with no source: the decoded caches of the data set that [`may_stand_in`], newest
/// first (tensors file and manifest), and why each other one may not.
fn stand_ins(spec: &DatasetSpec, settings: &DataSettings) -> (Vec<(PathBuf, cache::Manifest)>, Vec<String>) {
    let mut refused = Vec::new();
    let mut usable = Vec::new();
    for (manifest_path, manifest) in settings.decoded_cache().entries(Some(spec.name)) {
        let tensors = manifest_path.with_extension("safetensors");
        match may_stand_in(spec, settings, manifest.origin.as_ref()) {
            Ok(()) => usable.push((tensors, manifest)),
            Err(why) => refused.push(format!("{}: not used: {why}", cache_label(&tensors, &manifest))),
        }
    }
    (usable, refused)
}

fn cache_label(tensors: &Path, manifest: &cache::Manifest) -> String {
    let of = manifest.origin.as_ref().map_or(manifest.source.clone(), Origin::describe);
    format!("the decoded cache {} (of {of})", tensors.display())
}

/// The newest of [`stand_ins`] that reads back, and why the others were not used.
fn stand_in(spec: &DatasetSpec, settings: &DataSettings) -> (Option<ImageData>, Vec<String>) {
    let (usable, mut refused) = stand_ins(spec, settings);
    let decoded = settings.decoded_cache();
    for (tensors, manifest) in usable {
        match decoded.load(spec.name, &manifest.key) {
            Ok(Some(data)) => return (Some(data), refused),
            Ok(None) => {
                refused.push(format!("{}: not readable as a cache of this version", cache_label(&tensors, &manifest)))
            }
            Err(corrupt) => {
                // Said now: a cache that another one replaces would otherwise go without a word.
                eprintln!("warning: {corrupt}");
                refused.push(corrupt);
            }
        }
    }
    (None, refused)
}

/// Which data `name` would load now, without loading it and without the network: its origin
/// and SHA-256 (the [`DataRecord`] a run would carry, its example counts left empty). For the
/// resume check: a result whose data differs is not done.
pub fn identify(name: &str, settings: &DataSettings) -> Result<DataRecord, DataError> {
    let spec = spec_of(name)?;
    let no_network = DataSettings { offline: true, ..settings.clone() };
    let source = match source::locate_or_tried(spec, &no_network, false)? {
        Ok(Located::Ready(source)) => source,
        Ok(Located::Cached(files, hub)) => source::cached(spec, files, &hub),
        Err(mut tried) => {
            if matches!(spec.content, Content::Images { .. }) {
                let (usable, refused) = stand_ins(spec, settings);
                if let Some((tensors, manifest)) = usable.first() {
                    return Ok(manifest.record(tensors, BTreeMap::new()));
                }
                tried.extend(refused);
            }
            return Err(source::unavailable(spec, &tried));
        }
    };
    Ok(DataRecord { name: name.into(), sha256: source.key(spec)?, source: source.origin, examples: BTreeMap::new() })
}

fn decode_images(spec: &DatasetSpec, source: &Source, key: &str) -> Result<ImageData, String> {
    let Content::Images { channels, height, width, classes, .. } = spec.content else {
        unreachable!("checked by load_images")
    };
    let split = |name: &str| -> Result<ImageSplit, String> {
        match source.format.load(spec, name, source.split(name))? {
            Split::Images(split) => Ok(split),
            _ => Err("not an image data set".into()),
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
    let record = DataRecord {
        name: spec.name.into(),
        source: source.origin.clone(),
        sha256: key.into(),
        examples: [("train".to_string(), train.count), ("test".to_string(), test.count)].into(),
    };
    Ok(ImageData {
        name: spec.name.into(),
        source: source.describe(),
        record,
        channels,
        height,
        width,
        classes,
        train,
        test,
    })
}

/// Every split of a text or translation data set, read by its source's format.
fn read_splits<T>(
    spec: &DatasetSpec,
    source: &Source,
    unpack: fn(Split) -> Option<Vec<T>>,
) -> Result<Vec<(String, Vec<T>)>, DataError> {
    let err = |e: String| DataError(format!("data set `{}`: {e}", spec.name));
    let mut splits = Vec::new();
    for (split, _) in spec.splits {
        let read = source.format.load(spec, split, source.split(split)).map_err(err)?;
        let values =
            unpack(read).ok_or_else(|| err(format!("{} read no {split} split of this kind", source.describe())))?;
        splits.push((split.to_string(), values));
    }
    Ok(splits)
}

/// Loads a language-modelling data set: its lines per split.
pub fn load_text(name: &str, settings: &DataSettings) -> Result<TextData, DataError> {
    let spec = spec_of(name)?;
    let Content::Text { .. } = spec.content else {
        return Err(DataError(format!("data set `{name}` is not a text data set")));
    };
    let source = find_source(name, settings, false)?;
    let splits = read_splits(spec, &source, |s| match s {
        Split::Lines(lines) => Some(lines),
        _ => None,
    })?;
    let record = text_record(spec, &source, splits.iter().map(|(s, lines)| (s, lines.len())))?;
    Ok(TextData { name: name.into(), source: source.describe(), record, splits })
}

/// Loads a translation data set: (source, target) pairs per split.
pub fn load_pairs(name: &str, settings: &DataSettings) -> Result<PairData, DataError> {
    let spec = spec_of(name)?;
    let Content::Pairs { .. } = spec.content else {
        return Err(DataError(format!("data set `{name}` is not a translation data set")));
    };
    let source = find_source(name, settings, false)?;
    let splits = read_splits(spec, &source, |s| match s {
        Split::Pairs(pairs) => Some(pairs),
        _ => None,
    })?;
    let record = text_record(spec, &source, splits.iter().map(|(s, pairs)| (s, pairs.len())))?;
    Ok(PairData { name: name.into(), source: source.describe(), record, splits })
}

fn text_record<'a>(
    spec: &DatasetSpec,
    source: &Source,
    counts: impl Iterator<Item = (&'a String, usize)>,
) -> Result<DataRecord, DataError> {
    Ok(DataRecord {
        name: spec.name.into(),
        source: source.origin.clone(),
        sha256: source.key(spec)?,
        examples: counts.map(|(s, n)| (s.clone(), n)).collect(),
    })
}
