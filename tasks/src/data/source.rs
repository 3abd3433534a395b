//! Where a data set comes from, for `load_images("mnist", settings)`:
//! 1. each `--data-dir` (and `/usr/share/datasets`, where Debian's `dataset-*` packages
//!    install), in `<dir>/<folder>/`: the standard layout (IDX, CIFAR binary, text files) or
//!    parquet files at their Hub paths;
//! 2. the Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME`), without touching the network;
//! 3. the Hub (`HF_ENDPOINT`), unless offline (`--offline`, `OPTBENCH_OFFLINE=1` or
//!    `HF_HUB_OFFLINE=1`);
//! 4. offline only, and with no sources: an intact decoded cache of the data set decoded from
//!    its canonical source (the catalog's Hub repository) or from a folder this run names
//!    again (see [`super::load_images`]); a cache decoded from any other folder is never used.
//!
//! When none can be reached, one message says what was tried and the ways out.

use std::path::{Path, PathBuf};

use super::catalog::{self, DatasetSpec};
use super::format::{self, parquet, Format, SplitFiles};
use super::hub::{self, Hub, HubFiles};
use super::provenance::Origin;
use super::{cache, DataError};

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
    /// The sweep these settings load data for (the runner sets it): within one sweep a Hub
    /// download that failed is not tried again, so the data set's other runs fail at once with
    /// the same message.
    pub sweep: Option<u64>,
}

/// The Hub failures of each sweep: (sweep, repository, endpoint) -> the message.
type HubFailures = std::sync::Mutex<std::collections::HashMap<(u64, String, String), String>>;

fn hub_failures() -> &'static HubFailures {
    static FAILURES: std::sync::OnceLock<HubFailures> = std::sync::OnceLock::new();
    FAILURES.get_or_init(Default::default)
}

/// A number for a new sweep, for [`DataSettings::sweep`].
pub fn new_sweep() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
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

    /// The folders the user named (`--data-dir`, `data_dir`), not the system ones.
    pub fn named_dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.data_dirs.iter().filter(|d| !SYSTEM_DATA_DIRS.iter().any(|s| Path::new(s) == d.as_path()))
    }
}

/// `path` made absolute (against the working folder), without touching the file system: the
/// form origins are recorded in.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The files a data set was found in, and the format that reads them.
#[derive(Clone)]
pub struct Source {
    pub origin: Origin,
    pub format: &'static dyn Format,
    /// The files per split.
    pub files: SplitFiles,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("origin", &self.origin).field("files", &self.files).finish()
    }
}

impl Source {
    pub fn describe(&self) -> String {
        self.origin.describe()
    }

    /// The files of one split (none when the split has none).
    pub fn split(&self, name: &str) -> &[PathBuf] {
        format::split_of(&self.files, name)
    }

    /// The key of the decoded cache: a hash of the source files' contents (for Hub blobs,
    /// their SHA-256 ETag, already checked; for the many JPEGs of a Tiny-ImageNet folder, their
    /// names, sizes and times).
    pub fn key(&self, spec: &DatasetSpec) -> Result<String, DataError> {
        let mut description = format!("{}\n{}\n", cache::FORMAT, spec.name);
        description.push_str(&self.format.fingerprint(&self.files).map_err(DataError)?);
        Ok(crate::util::hash::sha256_bytes(description.as_bytes()))
    }
}

pub(super) fn spec_of(name: &str) -> Result<&'static DatasetSpec, DataError> {
    catalog::find(name).ok_or_else(|| {
        DataError(format!("unknown data set `{name}`; valid data sets: {}", catalog::names().join(", ")))
    })
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
    locate_or_tried(spec, settings, force)?.map_err(|tried| unavailable(spec, &tried))
}

/// [`locate`], with what was tried when nothing was found (for a caller that adds its own lines
/// to the message, [`unavailable`]).
pub(super) fn locate_or_tried(
    spec: &DatasetSpec,
    settings: &DataSettings,
    force: bool,
) -> Result<Result<Located, Vec<String>>, DataError> {
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
        let local = format::local(spec.local);
        match local.detect(&dir, spec) {
            Ok(files) => {
                let origin = Origin::Local { path: absolute(&dir), layout: "standard".into() };
                return Ok(Ok(Located::Ready(Source { origin, format: local, files })));
            }
            Err(why) => match parquet::HubLayout.detect(&dir, spec) {
                Ok(files) => {
                    let origin = Origin::Local { path: absolute(&dir), layout: "hub".into() };
                    return Ok(Ok(Located::Ready(Source { origin, format: &parquet::HubLayout, files })));
                }
                Err(no_hub_files) => tried.push(format!("{}: {why}, and {no_hub_files}", dir.display())),
            },
        }
    }
    let hub = Hub::new(settings).map_err(|e| DataError(format!("data set `{name}`: {e}")))?;
    if !force {
        if let Some(files) = hub.cached(spec) {
            return Ok(Ok(Located::Cached(files, hub)));
        }
        tried.push(format!("the Hugging Face cache {}: {} is not (fully) there", hub.cache_dir().display(), at(spec)));
    }
    if settings.offline {
        tried.push(format!("the Hub ({}): not asked, offline mode", hub.endpoint()));
    } else {
        let key = settings.sweep.map(|sweep| (sweep, at(spec), hub.endpoint()));
        let failed = key.as_ref().and_then(|k| hub_failures().lock().expect("failures lock").get(k).cloned());
        match failed {
            // The same line as the first time, so the sweep's runs share one message.
            Some(line) => tried.push(line),
            None => match hub.download(spec, force) {
                Ok(files) => return Ok(Ok(Located::Ready(downloaded(spec, files, &hub)))),
                Err(e) => {
                    let line = format!("the Hub ({}): {e}", hub.endpoint());
                    if let Some(key) = key {
                        hub_failures().lock().expect("failures lock").insert(key, line.clone());
                    }
                    tried.push(line);
                }
            },
        }
    }
    Ok(Err(tried))
}

fn at(spec: &DatasetSpec) -> String {
    format!("{}@{}", spec.repo, spec.revision)
}

fn hub_origin(spec: &DatasetSpec, files: &HubFiles, hub: &Hub, cached: bool) -> Origin {
    Origin::Hub {
        repo: spec.repo.into(),
        revision: spec.revision.into(),
        commit: files.commit.clone(),
        endpoint: hub.endpoint(),
        cached,
    }
}

/// Files just downloaded from the Hub.
fn downloaded(spec: &DatasetSpec, files: HubFiles, hub: &Hub) -> Source {
    Source { origin: hub_origin(spec, &files, hub, false), format: &parquet::HubLayout, files: files.splits }
}

/// Files from the Hugging Face cache.
pub(super) fn cached(spec: &DatasetSpec, files: HubFiles, hub: &Hub) -> Source {
    Source { origin: hub_origin(spec, &files, hub, true), format: &parquet::HubLayout, files: files.splits }
}

/// Checks cached Hub files before using them; offline, a corrupt one is an error that says so.
pub(super) fn verified(
    spec: &DatasetSpec,
    files: HubFiles,
    hub: &Hub,
    settings: &DataSettings,
) -> Result<Source, DataError> {
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
    Ok(cached(spec, files, hub))
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
        format::local(spec.local).hint(spec),
        parquet::HubLayout.hint(spec)
    )
}

pub(super) fn unavailable(spec: &DatasetSpec, tried: &[String]) -> DataError {
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
