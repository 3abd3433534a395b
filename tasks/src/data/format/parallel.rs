//! Translation pairs as aligned text files per split: `<stem>.<source>` and `<stem>.<target>`
//! (`train.de` and `train.en`), `.gz` or not, one sentence a line.

use std::path::{Path, PathBuf};

use super::{need, read_lines, Format, Split, SplitFiles};
use crate::data::catalog::{Content, DatasetSpec, LocalFormat};

/// Aligned source / target files per split.
pub struct Parallel;

/// The source and target languages.
fn languages(spec: &DatasetSpec) -> Result<(&'static str, &'static str), String> {
    match spec.content {
        Content::Pairs { source, target, .. } => Ok((source, target)),
        _ => Err("not a translation data set".into()),
    }
}

/// Each split's file stem.
fn stems(spec: &DatasetSpec) -> &'static [(&'static str, &'static str)] {
    match spec.local {
        LocalFormat::Parallel(files) => files,
        _ => &[],
    }
}

/// The file stem of a split (its name when the catalog gives none).
fn stem<'a>(spec: &DatasetSpec, split: &'a str) -> &'a str {
    stems(spec).iter().find(|(s, _)| *s == split).map_or(split, |(_, n)| n)
}

impl Format for Parallel {
    fn detect(&self, dir: &Path, spec: &DatasetSpec) -> Result<SplitFiles, String> {
        let (source, target) = languages(spec)?;
        stems(spec)
            .iter()
            .map(|(split, stem)| {
                let files = vec![need(dir, &format!("{stem}.{source}"))?, need(dir, &format!("{stem}.{target}"))?];
                Ok((split.to_string(), files))
            })
            .collect()
    }

    fn load(&self, spec: &DatasetSpec, split: &str, files: &[PathBuf]) -> Result<Split, String> {
        let (src, tgt) = languages(spec)?;
        let stem = stem(spec, split);
        let [a, b] = files else { return Err(format!("no {stem}.{src}")) };
        let (a, b) = (read_lines(a)?, read_lines(b)?);
        if a.len() != b.len() {
            return Err(format!("{stem}.{src} has {} lines, {stem}.{tgt} has {}", a.len(), b.len()));
        }
        Ok(Split::Pairs(a.into_iter().zip(b).collect()))
    }

    fn hint(&self, spec: &DatasetSpec) -> String {
        let (source, target) = languages(spec).unwrap_or(("source", "target"));
        stems(spec).iter().map(|(_, stem)| format!("{stem}.{source}/.{target}")).collect::<Vec<_>>().join(", ")
    }
}
