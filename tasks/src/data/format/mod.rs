//! The file formats a data set can be read from, one file each, behind one trait,
//! [`Format`]: it finds a format's files in a folder ([`Format::detect`]), reads one split of
//! them ([`Format::load`]), says what the files are called for the ways out of a failed load
//! ([`Format::hint`]), and gives what the decoded cache's key hashes ([`Format::fingerprint`]).
//!
//! - [`idx`]: the IDX files of MNIST and Fashion-MNIST;
//! - [`cifar`]: the binary versions of CIFAR-10 and CIFAR-100;
//! - [`image_folder`]: the Tiny-ImageNet folder of JPEGs (torchvision's `ImageFolder` order);
//! - [`text`]: one text file per split (language modelling);
//! - [`parallel`]: aligned source / target files per split (translation);
//! - [`parquet`]: the files at their Hugging Face Hub paths (parquet, or Multi30k's JSON
//!   lines), in a local folder or the Hugging Face cache.

pub mod cifar;
pub mod idx;
pub mod image_folder;
pub mod parallel;
pub mod parquet;
pub mod text;

use std::io::Read;
use std::path::{Path, PathBuf};

use super::catalog::{DatasetSpec, LocalFormat};
use super::ImageSplit;

/// A data set's files per split, in the order the decoded cache's key hashes them.
pub type SplitFiles = Vec<(String, Vec<PathBuf>)>;

/// One split, read.
#[derive(Clone, Debug, PartialEq)]
pub enum Split {
    Images(ImageSplit),
    Lines(Vec<String>),
    Pairs(Vec<(String, String)>),
}

/// A way of storing a data set on disk.
pub trait Format: Sync {
    /// The format's files for `spec` in `dir`, per split, when they are all there; else what is
    /// missing (`no train.bin`).
    fn detect(&self, dir: &Path, spec: &DatasetSpec) -> Result<SplitFiles, String>;

    /// Reads split `split` of `spec` from the files [`Format::detect`] found for it.
    fn load(&self, spec: &DatasetSpec, split: &str, files: &[PathBuf]) -> Result<Split, String>;

    /// What a folder in this format holds, for the ways out of a failed load.
    fn hint(&self, spec: &DatasetSpec) -> String;

    /// What the decoded cache's key hashes for these files: each file's SHA-256 (for Hub
    /// blobs, their SHA-256 ETag, already checked), a line each.
    fn fingerprint(&self, files: &SplitFiles) -> Result<String, String> {
        let mut out = String::new();
        for path in files.iter().flat_map(|(_, f)| f) {
            let digest = match super::hub::sha256_etag(path) {
                Some(etag) => etag,
                None => crate::util::hash::sha256_file(path)?,
            };
            out.push_str(&format!("{digest}\n"));
        }
        Ok(out)
    }
}

/// The format of a data set's standard local layout.
pub fn local(format: LocalFormat) -> &'static dyn Format {
    match format {
        LocalFormat::Idx => &idx::Idx,
        LocalFormat::Cifar10Binary => &cifar::CIFAR10,
        LocalFormat::Cifar100Binary => &cifar::CIFAR100,
        LocalFormat::TinyImageNet => &image_folder::TinyImageNet,
        LocalFormat::TextFiles(_) => &text::TextFiles,
        LocalFormat::Parallel(_) => &parallel::Parallel,
    }
}

/// Finds `name` or `name.gz` in `dir`.
pub fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))].into_iter().find(|p| p.is_file())
}

/// Reads a file, decompressing it when it ends in `.gz`.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("{} is not a valid gzip file ({e}): is it truncated?", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// The lines of a UTF-8 text file, `.gz` or not.
fn read_lines(path: &Path) -> Result<Vec<String>, String> {
    let text = String::from_utf8(read_maybe_gz(path)?).map_err(|e| format!("{}: not UTF-8 ({e})", path.display()))?;
    Ok(text.lines().map(str::to_string).collect())
}

/// The files of split `split`, empty when it has none.
pub fn split_of<'a>(files: &'a SplitFiles, split: &str) -> &'a [PathBuf] {
    files.iter().find(|(s, _)| s == split).map_or(&[], |(_, f)| f.as_slice())
}

/// Decodes a PNG or JPEG to `channels` planes of `size`, appended to `out` in CHW order.
/// Grayscale images become RGB by repetition when 3 channels are asked for (Tiny-ImageNet has
/// some).
pub fn decode_into(bytes: &[u8], channels: usize, size: (usize, usize), out: &mut Vec<u8>) -> Result<(), String> {
    let img = image::load_from_memory(bytes).map_err(|e| format!("cannot decode the image: {e}"))?;
    let (h, w) = size;
    if (img.height() as usize, img.width() as usize) != (h, w) {
        return Err(format!("image of {}x{}, expected {h}x{w}", img.height(), img.width()));
    }
    match channels {
        1 => out.extend_from_slice(img.to_luma8().as_raw()),
        3 => {
            let rgb = img.to_rgb8();
            let raw = rgb.as_raw();
            for c in 0..3 {
                out.extend(raw.iter().skip(c).step_by(3));
            }
        }
        other => return Err(format!("{other} channels are not supported")),
    }
    Ok(())
}

/// The image shape a data set declares, `(channels, height, width)`.
fn image_shape(spec: &DatasetSpec) -> Result<(usize, usize, usize), String> {
    match spec.content {
        super::catalog::Content::Images { channels, height, width, .. } => Ok((channels, height, width)),
        _ => Err("not an image data set".into()),
    }
}

/// A file of `dir` that must be there.
fn need(dir: &Path, name: &str) -> Result<PathBuf, String> {
    find(dir, name).ok_or_else(|| format!("no {name} (or {name}.gz)"))
}

/// A plain file of `dir` that must be there (no `.gz`).
fn need_plain(dir: &Path, name: &str) -> Result<PathBuf, String> {
    Some(dir.join(name)).filter(|p| p.is_file()).ok_or_else(|| format!("no {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::catalog::DATASETS;

    #[test]
    fn every_data_set_has_a_format_that_names_what_is_missing() {
        let empty = tempfile::tempdir().unwrap();
        for spec in DATASETS {
            let format = local(spec.local);
            let missing = format.detect(empty.path(), spec).unwrap_err();
            assert!(missing.starts_with("no "), "{}: {missing}", spec.name);
            assert!(!format.hint(spec).is_empty(), "{}", spec.name);
            let hub = parquet::HubLayout.detect(empty.path(), spec).unwrap_err();
            assert!(hub.contains(spec.splits[0].1), "{}: {hub}", spec.name);
        }
    }
}
