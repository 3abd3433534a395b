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
pub mod source;

use std::fmt;

use catalog::{Content, DatasetSpec};
use format::Split;
pub use source::{find_source, locate, offline_from_env, DataSettings, Located, Source, SYSTEM_DATA_DIRS};
use source::{spec_of, verified};

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

/// Loads an image data set: found as in [`source`], decoded once, then read from the decoded
/// cache.
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
        Located::Cached(files, hub) => (source::cached(spec, files.clone()), Some((files, hub))),
    };
    let key = source.key(spec)?;
    match decoded.load(name, &key) {
        Ok(Some(data)) => return Ok(data),
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
    let data = decode_images(spec, &source).map_err(|e| DataError(format!("data set `{name}`: {e}")))?;
    if let Err(e) = decoded.store(&data, &key) {
        eprintln!("warning: could not store the decoded cache of {name}: {e}");
    }
    Ok(data)
}

fn decode_images(spec: &DatasetSpec, source: &Source) -> Result<ImageData, String> {
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
    Ok(ImageData { name: spec.name.into(), source: source.describe(), channels, height, width, classes, train, test })
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
    Ok(TextData { name: name.into(), source: source.describe(), splits })
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
    Ok(PairData { name: name.into(), source: source.describe(), splits })
}
