//! Which data a run trained on: every result carries one [`DataRecord`] per data set under its
//! top-level `data` key, the resume check compares them with the data the run would load now,
//! and the report shows them (and warns when runs it aggregates differ).
//!
//! The record's `sha256` is the key the decoded cache is stored under: a SHA-256 over the data
//! set's name, the decoded layout's version and one digest per source file (the Hub's ETag for
//! its content-addressed files, the SHA-256 of the content for local files; for the many
//! JPEGs of a Tiny-ImageNet folder, their names, sizes and modification times). The same
//! files give the same key on every machine; any other file gives another.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a data set's files came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Files in a local folder (`--data-dir`, `data_dir`, or a system folder); `layout` is
    /// `standard` (IDX, CIFAR binary, text files) or `hub` (parquet at their Hub paths).
    Local { path: PathBuf, layout: String },
    /// Files of a Hub repository's revision, `commit` the revision resolved to; `cached` when
    /// they were read from the Hugging Face cache rather than downloaded by this run.
    Hub { repo: String, revision: String, commit: String, endpoint: String, cached: bool },
    /// The decoded cache standing in for sources that could not be reached (offline only):
    /// `path` is its tensors file, `decoded_from` where its data came from.
    DecodedCache { path: PathBuf, decoded_from: Box<Origin> },
    /// A decoded cache written before optbench recorded origins: only the description its
    /// manifest kept.
    Unrecorded { description: String },
}

impl Origin {
    /// One line for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            Origin::Local { path, layout } if layout == "hub" => format!("Hub-layout files in {}", path.display()),
            Origin::Local { path, .. } => format!("local files in {}", path.display()),
            Origin::Hub { repo, revision, commit, endpoint, cached } => {
                let short = &commit[..commit.len().min(12)];
                let from = if *cached { "the Hugging Face cache".to_string() } else { endpoint.clone() };
                format!("{repo}@{revision} (commit {short}) from {from}")
            }
            Origin::DecodedCache { path, decoded_from } => {
                format!("the decoded cache {} (decoded from {})", path.display(), decoded_from.describe())
            }
            Origin::Unrecorded { description } => format!("{description} (origin not recorded)"),
        }
    }

    /// Where the data itself came from: through a decoded cache to its origin.
    pub fn root(&self) -> &Origin {
        match self {
            Origin::DecodedCache { decoded_from, .. } => decoded_from.root(),
            other => other,
        }
    }

    /// A short label for tables: the folder, or the repository and commit.
    pub fn short(&self) -> String {
        match self {
            Origin::Local { path, .. } => path.display().to_string(),
            Origin::Hub { repo, commit, .. } => format!("{repo}@{}", &commit[..commit.len().min(8)]),
            Origin::DecodedCache { decoded_from, .. } => format!("cache of {}", decoded_from.short()),
            Origin::Unrecorded { description } => description.clone(),
        }
    }
}

/// One data set a run used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRecord {
    /// The catalog's name (`mnist`, `cifar10`).
    pub name: String,
    pub source: Origin,
    /// The SHA-256 over the source files (see the module's documentation).
    pub sha256: String,
    /// Examples per split of the data set (before any `train_subset`): `train`, `test`, and
    /// `valid` where the data set has one.
    pub examples: BTreeMap<String, usize>,
}

impl DataRecord {
    /// The record of data made in memory (tests, synthetic sets): no files, an all-zero hash.
    pub fn in_memory(name: &str) -> Self {
        Self {
            name: name.into(),
            source: Origin::Unrecorded { description: "made in memory".into() },
            sha256: "0".repeat(64),
            examples: BTreeMap::new(),
        }
    }

    /// The first 12 hex digits of [`DataRecord::sha256`].
    pub fn short_hash(&self) -> &str {
        &self.sha256[..self.sha256.len().min(12)]
    }

    /// `name: source, sha256 abc123...`.
    pub fn describe(&self) -> String {
        format!("{}: {} (sha256 {})", self.name, self.source.describe(), self.short_hash())
    }
}
