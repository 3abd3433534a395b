//! Language-modelling text: one file per split (`ptb.train.txt`, `wiki.train.tokens`), `.gz` or
//! not; the names a data set's catalog entry gives are tried in order.

use std::path::{Path, PathBuf};

use super::{find, read_lines, Format, Split, SplitFiles};
use crate::data::catalog::{DatasetSpec, LocalFormat};

/// One text file per split.
pub struct TextFiles;

fn names(spec: &DatasetSpec) -> &'static [(&'static str, &'static [&'static str])] {
    match spec.local {
        LocalFormat::TextFiles(files) => files,
        _ => &[],
    }
}

impl Format for TextFiles {
    fn detect(&self, dir: &Path, spec: &DatasetSpec) -> Result<SplitFiles, String> {
        names(spec)
            .iter()
            .map(|(split, names)| {
                let path =
                    names.iter().find_map(|n| find(dir, n)).ok_or_else(|| format!("no {}", names.join(" or ")))?;
                Ok((split.to_string(), vec![path]))
            })
            .collect()
    }

    fn load(&self, _spec: &DatasetSpec, split: &str, files: &[PathBuf]) -> Result<Split, String> {
        let [path] = files else { return Err(format!("no {split} file")) };
        Ok(Split::Lines(read_lines(path)?))
    }

    fn hint(&self, spec: &DatasetSpec) -> String {
        names(spec).iter().map(|(_, n)| n[0]).collect::<Vec<_>>().join(", ")
    }
}
