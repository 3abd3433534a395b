//! The decoded cache: the first load of an image data set decodes it once (PNG/JPEG/IDX/CIFAR
//! records to bytes) and stores compact tensors (`u8` images in N, C, H, W and `u32` labels,
//! safetensors) keyed by the SHA-256 of its source files. Later loads read that file back.
//!
//! Each cache file has a manifest beside it with the SHA-256 of the tensors file; both are
//! written to temporary files and renamed, the manifest last, so nothing half-written is ever
//! read as valid: a missing manifest means "not cached", a checksum mismatch means "corrupt"
//! (the files are removed and the data set decoded again).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::provenance::{DataRecord, Origin};
use super::{ImageData, ImageSplit};
use crate::util::atomic::write_atomically;
pub use crate::util::hash::{sha256_bytes, sha256_file};
use crate::util::time::timestamp;

/// Bumped when the decoded layout changes, so old caches are not read.
pub const FORMAT: &str = "optbench-decoded/1";

/// What the manifest beside a cache file says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub dataset: String,
    /// The SHA-256 over the source files' hashes: what the cache is keyed by.
    pub key: String,
    /// Where the data came from, in words.
    pub source: String,
    /// Where the data came from (absent in caches written before origins were recorded: such
    /// a cache never stands in for its sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// SHA-256 and size of the tensors file.
    pub sha256: String,
    pub bytes: u64,
    pub created_at: String,
}

impl Manifest {
    /// The record of data read from this cache, whose tensors file is `tensors`.
    pub fn record(&self, tensors: &Path, examples: BTreeMap<String, usize>) -> DataRecord {
        let decoded_from = self.origin.clone().unwrap_or(Origin::Unrecorded { description: self.source.clone() });
        DataRecord {
            name: self.dataset.clone(),
            source: Origin::DecodedCache { path: tensors.to_path_buf(), decoded_from: Box::new(decoded_from) },
            sha256: self.key.clone(),
            examples,
        }
    }
}

/// The decoded cache folder (`<cache>/datasets`).
#[derive(Clone, Debug)]
pub struct DecodedCache {
    pub dir: PathBuf,
}

/// The default cache folder: `$OPTBENCH_CACHE`, else `$XDG_CACHE_HOME/optbench`, else
/// `~/.cache/optbench`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OPTBENCH_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("optbench");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("optbench")
}

impl DecodedCache {
    pub fn new(root: &Path) -> Self {
        Self { dir: root.join("datasets") }
    }

    fn paths(&self, dataset: &str, key: &str) -> (PathBuf, PathBuf) {
        let stem = format!("{dataset}-{}", &key[..16.min(key.len())]);
        (self.dir.join(format!("{stem}.safetensors")), self.dir.join(format!("{stem}.json")))
    }

    /// The cached data, `Ok(None)` when there is none; a corrupt entry is removed and reported
    /// as `Err` (the caller decodes again, or says so when it cannot).
    pub fn load(&self, dataset: &str, key: &str) -> Result<Option<ImageData>, String> {
        let (tensors, manifest_path) = self.paths(dataset, key);
        let Ok(text) = std::fs::read_to_string(&manifest_path) else { return Ok(None) };
        let manifest: Manifest = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => return Err(self.discard(&tensors, &manifest_path, format!("unreadable manifest ({e})"))),
        };
        if manifest.format != FORMAT || manifest.key != key {
            return Ok(None);
        }
        let bytes = match std::fs::read(&tensors) {
            Ok(b) => b,
            Err(e) => return Err(self.discard(&tensors, &manifest_path, format!("missing tensors file ({e})"))),
        };
        if let Err(mismatch) = check(&bytes, &manifest) {
            return Err(self.discard(&tensors, &manifest_path, mismatch));
        }
        match decode(&bytes, &manifest, &tensors) {
            Ok(data) => Ok(Some(data)),
            Err(e) => Err(self.discard(&tensors, &manifest_path, e)),
        }
    }

    fn discard(&self, tensors: &Path, manifest: &Path, why: String) -> String {
        let _ = std::fs::remove_file(manifest);
        let _ = std::fs::remove_file(tensors);
        format!("the decoded cache {} is corrupt: {why}; it was removed", tensors.display())
    }

    /// Stores decoded data (tensors first, then the manifest, each atomically).
    pub fn store(&self, data: &ImageData, key: &str) -> Result<PathBuf, String> {
        let (tensors_path, manifest_path) = self.paths(&data.name, key);
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let mut map = HashMap::new();
        for (split, s) in [("train", &data.train), ("test", &data.test)] {
            let shape = (s.count, data.channels, data.height, data.width);
            let t = |r: candle::Result<Tensor>| r.map_err(|e| e.to_string());
            map.insert(format!("{split}.images"), t(Tensor::from_slice(&s.images, shape, &Device::Cpu))?);
            map.insert(format!("{split}.labels"), t(Tensor::from_slice(&s.labels, s.count, &Device::Cpu))?);
            if let Some(c) = &s.coarse_labels {
                map.insert(format!("{split}.coarse_labels"), t(Tensor::from_slice(c, s.count, &Device::Cpu))?);
            }
        }
        let tmp = tensors_path.with_extension("safetensors.tmp");
        candle::safetensors::save(&map, &tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        let bytes = std::fs::read(&tmp).map_err(|e| format!("cannot read back {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &tensors_path).map_err(|e| format!("cannot write {}: {e}", tensors_path.display()))?;
        let manifest = Manifest {
            format: FORMAT.into(),
            dataset: data.name.clone(),
            key: key.into(),
            source: data.source.clone(),
            origin: Some(data.record.source.root().clone()),
            sha256: sha256_bytes(&bytes),
            bytes: bytes.len() as u64,
            created_at: timestamp(),
        };
        let text = serde_json::to_string_pretty(&manifest).expect("manifests serialise");
        write_atomically(&manifest_path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", manifest_path.display()))?;
        Ok(tensors_path)
    }

    /// Every manifest of a data set (all when `dataset` is `None`), newest first.
    pub fn entries(&self, dataset: Option<&str>) -> Vec<(PathBuf, Manifest)> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<(PathBuf, Manifest)> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .filter_map(|p| {
                let m: Manifest = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
                (m.format == FORMAT && dataset.is_none_or(|d| m.dataset == d)).then_some((p, m))
            })
            .collect();
        out.sort_by(|a, b| b.1.created_at.cmp(&a.1.created_at));
        out
    }

    /// Tensors files of a data set (all when `None`) without a readable manifest beside them:
    /// they cannot be checked and are never used.
    pub fn orphans(&self, dataset: Option<&str>) -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .filter(|p| {
                let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                // `<dataset>-<16 hex>`
                let name = stem.rsplit_once('-').map_or(stem, |(name, _)| name);
                dataset.is_none_or(|d| d == name)
            })
            .filter(|p| {
                let manifest = std::fs::read_to_string(p.with_extension("json")).ok();
                !manifest.is_some_and(|m| serde_json::from_str::<Manifest>(&m).is_ok_and(|m| m.format == FORMAT))
            })
            .collect();
        out.sort();
        out
    }

    /// Checks one entry's tensors file against its manifest, without decoding.
    pub fn verify(&self, manifest_path: &Path, manifest: &Manifest) -> Result<(), String> {
        let tensors = manifest_path.with_extension("safetensors");
        let bytes = std::fs::read(&tensors).map_err(|e| format!("{}: {e}", tensors.display()))?;
        check(&bytes, manifest).map_err(|mismatch| format!("{} is corrupt: {mismatch}", tensors.display()))
    }
}

/// Whether a tensors file's bytes are the ones its manifest describes.
fn check(bytes: &[u8], manifest: &Manifest) -> Result<(), String> {
    let digest = sha256_bytes(bytes);
    if digest == manifest.sha256 && bytes.len() as u64 == manifest.bytes {
        return Ok(());
    }
    Err(format!(
        "checksum mismatch ({} bytes, sha256 {digest}; the manifest says {} bytes, {})",
        bytes.len(),
        manifest.bytes,
        manifest.sha256
    ))
}

/// The data of a cache file; its record says it was read from this cache (a caller that
/// found the sources too puts their origin in its place).
fn decode(bytes: &[u8], manifest: &Manifest, path: &Path) -> Result<ImageData, String> {
    let tensors =
        candle::safetensors::load_buffer(bytes, &Device::Cpu).map_err(|e| format!("not safetensors ({e})"))?;
    let get = |name: &str| tensors.get(name).ok_or_else(|| format!("no tensor `{name}`"));
    let split = |name: &str| -> Result<(ImageSplit, (usize, usize, usize)), String> {
        let images = get(&format!("{name}.images"))?;
        let (n, c, h, w) = images.dims4().map_err(|e| e.to_string())?;
        let flat = |t: &Tensor| t.flatten_all().map_err(|e| e.to_string());
        let labels = flat(get(&format!("{name}.labels"))?)?.to_vec1::<u32>().map_err(|e| e.to_string())?;
        let coarse = match tensors.get(&format!("{name}.coarse_labels")) {
            Some(t) => Some(flat(t)?.to_vec1::<u32>().map_err(|e| e.to_string())?),
            None => None,
        };
        let images = flat(images)?.to_vec1::<u8>().map_err(|e| e.to_string())?;
        Ok((ImageSplit { count: n, images, labels, coarse_labels: coarse }, (c, h, w)))
    };
    let (train, (c, h, w)) = split("train")?;
    let (test, _) = split("test")?;
    let spec =
        super::catalog::find(&manifest.dataset).ok_or_else(|| format!("unknown data set {}", manifest.dataset))?;
    let classes = match spec.content {
        super::catalog::Content::Images { classes, .. } => classes,
        _ => return Err(format!("{} is not an image data set", spec.name)),
    };
    let record = manifest.record(path, [("train".to_string(), train.count), ("test".to_string(), test.count)].into());
    Ok(ImageData {
        name: manifest.dataset.clone(),
        source: format!("{} (decoded cache)", manifest.source),
        record,
        channels: c,
        height: h,
        width: w,
        classes,
        train,
        test,
    })
}
