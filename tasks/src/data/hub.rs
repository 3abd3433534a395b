//! The Hugging Face Hub through `hf-hub` (1.0, blocking client), cache first: files already in
//! the Hugging Face cache are used without asking the network (so a second load is fast and
//! works offline); missing ones are listed from the repository's revision and downloaded.
//! Every file is checked against its ETag, which for the Hub's LFS files (parquet) is the
//! SHA-256 of the content: a corrupt or truncated download is detected and fetched again.

use std::path::{Path, PathBuf};

use hf_hub::{HFClient, HFClientSync};

use super::catalog::{matches, DatasetSpec};
use super::DataSettings;

/// The files of one data set, per split, as found in the Hugging Face cache.
#[derive(Clone, Debug)]
pub struct HubFiles {
    pub commit: String,
    pub splits: Vec<(String, Vec<PathBuf>)>,
}

/// A client for the Hub configured from the settings (or the environment: `HF_ENDPOINT`,
/// `HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN`).
pub struct Hub {
    client: HFClientSync,
    /// The async client the blocking one wraps (cheap to clone), for its settings.
    settings: HFClient,
}

/// Seconds the Hub may take to accept a connection, and to send each part of an answer
/// (`OPTBENCH_HUB_TIMEOUT` overrides the read timeout; the connect timeout is at most it).
pub const DEFAULT_TIMEOUT_S: f64 = 4.0;

/// The read timeout of Hub calls: `OPTBENCH_HUB_TIMEOUT` (seconds), else [`DEFAULT_TIMEOUT_S`].
pub fn timeout() -> Result<std::time::Duration, String> {
    match std::env::var("OPTBENCH_HUB_TIMEOUT") {
        Err(_) => Ok(std::time::Duration::from_secs_f64(DEFAULT_TIMEOUT_S)),
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 && s < 1e6 => Ok(std::time::Duration::from_secs_f64(s)),
            _ => Err(format!(
                "OPTBENCH_HUB_TIMEOUT=`{text}`: expected a number of seconds above 0 (default {DEFAULT_TIMEOUT_S})"
            )),
        },
    }
}

impl Hub {
    pub fn new(settings: &DataSettings) -> Result<Self, String> {
        // A Hub that accepts connections and never answers must not hang a sweep: every call
        // has connect and read timeouts, and one retry (a few seconds in all, not minutes).
        let read = timeout()?;
        let http = reqwest::Client::builder()
            .connect_timeout(read.min(std::time::Duration::from_secs(3)))
            .read_timeout(read)
            .user_agent(concat!("optbench/", env!("CARGO_PKG_VERSION"), "; hf-hub/1.0"))
            .build()
            .map_err(|e| format!("cannot set up the Hub client: {e}"))?;
        let mut builder = HFClient::builder().client(http).retry_max_attempts(1);
        if let Some(endpoint) = &settings.hub_endpoint {
            builder = builder.endpoint(endpoint.clone());
        }
        if let Some(cache) = &settings.hub_cache {
            builder = builder.cache_dir(cache.clone());
        }
        let client = builder.build().map_err(|e| format!("cannot set up the Hub client: {e}"))?;
        let settings = client.clone();
        let client = HFClientSync::from_inner(client).map_err(|e| format!("cannot set up the Hub client: {e}"))?;
        Ok(Self { client, settings })
    }

    /// The Hub's address (what `HF_ENDPOINT` sets).
    pub fn endpoint(&self) -> String {
        self.settings.endpoint().to_string()
    }

    /// The Hugging Face cache folder.
    pub fn cache_dir(&self) -> PathBuf {
        self.settings.cache_dir().to_path_buf()
    }

    fn repo_folder(&self, spec: &DatasetSpec) -> PathBuf {
        self.cache_dir().join(format!("datasets--{}", spec.repo.replace('/', "--")))
    }

    /// The data set's files if every split has at least one in the cache (no network).
    pub fn cached(&self, spec: &DatasetSpec) -> Option<HubFiles> {
        let folder = self.repo_folder(spec);
        let commit = std::fs::read_to_string(folder.join("refs").join(spec.revision)).ok()?.trim().to_string();
        let snapshot = folder.join("snapshots").join(&commit);
        let splits = split_files(spec, &relative_files(&snapshot))?;
        let repo = self.dataset(spec);
        let mut resolved = Vec::new();
        for (split, names) in splits {
            let mut paths = Vec::new();
            for name in names {
                let path = repo
                    .download_file()
                    .filename(name.clone())
                    .revision(spec.revision.to_string())
                    .local_files_only(true)
                    .send()
                    .ok()?;
                paths.push(path);
            }
            resolved.push((split, paths));
        }
        Some(HubFiles { commit, splits: resolved })
    }

    fn dataset(&self, spec: &DatasetSpec) -> hf_hub::HFRepositorySync<hf_hub::RepoTypeDataset> {
        let (owner, name) = spec.repo.split_once('/').expect("repos are owner/name");
        self.client.dataset(owner, name)
    }

    /// Lists the revision's files on the Hub and downloads those of every split (the ones
    /// already cached are only checked).
    pub fn download(&self, spec: &DatasetSpec, force: bool) -> Result<HubFiles, String> {
        let repo = self.dataset(spec);
        let info = repo
            .info()
            .revision(spec.revision.to_string())
            .send()
            .map_err(|e| format!("listing {}@{}: {}", spec.repo, spec.revision, causes(&e)))?;
        let names: Vec<String> = info.siblings.unwrap_or_default().into_iter().map(|s| s.rfilename).collect();
        let splits = split_files(spec, &names).ok_or_else(|| {
            let wanted: Vec<String> = spec.splits.iter().map(|(s, p)| format!("{s}: {p}")).collect();
            format!(
                "{}@{} has no files for every split ({}); it has: {}",
                spec.repo,
                spec.revision,
                wanted.join(", "),
                names.join(", ")
            )
        })?;
        let mut resolved = Vec::new();
        for (split, names) in splits {
            let mut paths = Vec::new();
            for name in names {
                paths.push(self.fetch_verified(spec, &repo, &name, force)?);
            }
            resolved.push((split, paths));
        }
        Ok(HubFiles { commit: info.sha.unwrap_or_default(), splits: resolved })
    }

    /// Downloads one file and checks it against its ETag; a mismatch is fetched once more.
    fn fetch_verified(
        &self,
        spec: &DatasetSpec,
        repo: &hf_hub::HFRepositorySync<hf_hub::RepoTypeDataset>,
        name: &str,
        force: bool,
    ) -> Result<PathBuf, String> {
        let mut force = force;
        for attempt in 0..2 {
            let path = repo
                .download_file()
                .filename(name.to_string())
                .revision(spec.revision.to_string())
                .force_download(force)
                .send()
                .map_err(|e| format!("downloading {}@{}/{name}: {}", spec.repo, spec.revision, causes(&e)))?;
            match verify_blob(&path) {
                Ok(()) => return Ok(path),
                Err(e) if attempt == 0 => {
                    eprintln!("{e}: downloading it again");
                    if let Ok(blob) = std::fs::canonicalize(&path) {
                        let _ = std::fs::remove_file(blob);
                    }
                    force = true;
                }
                Err(e) => return Err(format!("{e}, twice: the server sends corrupt data")),
            }
        }
        unreachable!("two attempts")
    }
}

/// One file of a model repository (`owner/name` at `revision`), from the Hugging Face cache
/// without the network, else (unless `offline`) downloaded with the Hub's timeouts and checked
/// against its ETag. For files the suite needs beside data sets (FID's Inception weights).
pub fn model_file(settings: &DataSettings, repo: &str, revision: &str, file: &str) -> Result<PathBuf, String> {
    let (owner, name) =
        repo.split_once('/').ok_or_else(|| format!("`{repo}`: a Hub repository is written owner/name"))?;
    let hub = Hub::new(settings)?;
    let model = hub.client.model(owner, name);
    let cached =
        model.download_file().filename(file.to_string()).revision(revision.to_string()).local_files_only(true).send();
    if let Ok(path) = cached {
        return Ok(path);
    }
    if settings.offline {
        return Err(format!(
            "{repo}@{revision}/{file} is not in the Hugging Face cache ({}) and the run is offline",
            hub.cache_dir().display()
        ));
    }
    let path = model
        .download_file()
        .filename(file.to_string())
        .revision(revision.to_string())
        .send()
        .map_err(|e| format!("downloading {repo}@{revision}/{file} from {}: {}", hub.endpoint(), causes(&e)))?;
    verify_blob(&path)?;
    Ok(path)
}

/// An error with its causes (the root cause says "connection refused" or "dns error").
fn causes(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    let text = parts.join(": ");
    if text.contains("timed out") {
        let limit = timeout().map(|t| t.as_secs_f64()).unwrap_or(DEFAULT_TIMEOUT_S);
        return format!("{text} (no answer within {limit} s, tried twice; OPTBENCH_HUB_TIMEOUT sets the limit)");
    }
    text
}

/// Every file under `root` (following links, not around a loop), as a `/`-separated path
/// relative to it.
pub(crate) fn relative_files(root: &Path) -> Vec<String> {
    walkdir::WalkDir::new(root)
        .follow_links(true)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok) // unreadable folders and link loops
        .filter(|e| !e.file_type().is_dir())
        .filter_map(|e| e.path().strip_prefix(root).ok().map(|rel| rel.to_string_lossy().replace('\\', "/")))
        .collect()
}

/// The files of each split, sorted; `None` if a split has none.
pub(super) fn split_files(spec: &DatasetSpec, names: &[String]) -> Option<Vec<(String, Vec<String>)>> {
    spec.splits
        .iter()
        .map(|(split, pattern)| {
            let mut files: Vec<String> = names.iter().filter(|n| matches(pattern, n)).cloned().collect();
            files.sort();
            (!files.is_empty()).then(|| (split.to_string(), files))
        })
        .collect()
}

/// The SHA-256 a cached file is stored under (lowercase), when its blob is content-addressed
/// (the ETag of the Hub's LFS files); `None` for other files (a git blob id, a local file).
pub fn sha256_etag(path: &Path) -> Option<String> {
    let blob = std::fs::canonicalize(path).ok()?;
    let name = blob.file_name()?.to_str()?;
    (name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit())).then(|| name.to_lowercase())
}

/// Checks a cached file against its blob name when that is a SHA-256 (the ETag of LFS files).
pub fn verify_blob(path: &Path) -> Result<(), String> {
    let blob = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let Some(etag) = sha256_etag(&blob) else {
        return Ok(()); // not content-addressed (a git blob id): nothing to compare with
    };
    let digest = crate::util::hash::sha256_file(&blob)?;
    if digest != etag {
        return Err(format!(
            "{} is corrupt: its SHA-256 is {digest}, the Hub's ETag says {etag} (a truncated or damaged download)",
            path.display()
        ));
    }
    Ok(())
}

/// Every content-addressed blob of a data set in the Hugging Face cache, with its check.
pub fn verify_cached(hub: &Hub, spec: &DatasetSpec) -> Vec<(PathBuf, Result<(), String>)> {
    let blobs = hub.repo_folder(spec).join("blobs");
    let Ok(entries) = std::fs::read_dir(&blobs) else { return Vec::new() };
    let mut out: Vec<(PathBuf, Result<(), String>)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.to_string_lossy().ends_with(".incomplete"))
        .map(|p| {
            let check = verify_blob(&p);
            (p, check)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
