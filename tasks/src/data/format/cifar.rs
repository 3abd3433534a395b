//! The official binary versions of CIFAR-10 and CIFAR-100 (Krizhevsky, 2009):
//! `cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin`, records of 1 label byte then
//! 3072 pixel bytes (the red, green and blue planes of 32x32, row-major);
//! `cifar-100-binary/{train,test}.bin`, records of a coarse label byte, a fine label byte, then
//! the 3072 pixel bytes.
//!
//! Not `candle-datasets`' CIFAR loader: `vision::cifar::load()` returns images transposed
//! (N, C, W, H) where `load_dir` gives (N, C, H, W), it cannot read CIFAR-100 (two label bytes),
//! and it panics on a bad file.

use std::path::{Path, PathBuf};

use super::{need_plain, Format, Split, SplitFiles};
use crate::data::catalog::DatasetSpec;
use crate::data::ImageSplit;

/// Bytes of one image.
pub const PIXELS: usize = 3 * 32 * 32;

/// Images (N, 3, 32, 32 as bytes), fine labels, and coarse labels for CIFAR-100.
pub type Records = (Vec<u8>, Vec<u32>, Option<Vec<u32>>);

/// A CIFAR binary folder: its files per split and the label bytes of a record.
pub struct CifarBinary {
    splits: &'static [(&'static str, &'static [&'static str])],
    label_bytes: usize,
    hint: &'static str,
}

const CIFAR10_TRAIN: &[&str] =
    &["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
const CIFAR10_TEST: &[&str] = &["test_batch.bin"];

pub const CIFAR10: CifarBinary = CifarBinary {
    splits: &[("train", CIFAR10_TRAIN), ("test", CIFAR10_TEST)],
    label_bytes: 1,
    hint: "data_batch_1.bin ... data_batch_5.bin, test_batch.bin (the binary version)",
};

const CIFAR100_TRAIN: &[&str] = &["train.bin"];
const CIFAR100_TEST: &[&str] = &["test.bin"];

pub const CIFAR100: CifarBinary = CifarBinary {
    splits: &[("train", CIFAR100_TRAIN), ("test", CIFAR100_TEST)],
    label_bytes: 2,
    hint: "train.bin, test.bin (the binary version)",
};

impl Format for CifarBinary {
    fn detect(&self, dir: &Path, _spec: &DatasetSpec) -> Result<SplitFiles, String> {
        self.splits
            .iter()
            .map(|(split, names)| {
                let files = names.iter().map(|n| need_plain(dir, n)).collect::<Result<_, _>>()?;
                Ok((split.to_string(), files))
            })
            .collect()
    }

    fn load(&self, _spec: &DatasetSpec, _split: &str, files: &[PathBuf]) -> Result<Split, String> {
        let mut out = ImageSplit { count: 0, images: Vec::new(), labels: Vec::new(), coarse_labels: None };
        for f in files {
            let (images, fine, coarse) = read(f, self.label_bytes)?;
            out.count += fine.len();
            out.images.extend(images);
            out.labels.extend(fine);
            if let Some(c) = coarse {
                out.coarse_labels.get_or_insert_with(Vec::new).extend(c);
            }
        }
        Ok(Split::Images(out))
    }

    fn hint(&self, _spec: &DatasetSpec) -> String {
        self.hint.into()
    }
}

/// Reads records of `label_bytes` label bytes (1 for CIFAR-10, 2 for CIFAR-100) plus pixels.
pub fn read(path: &Path, label_bytes: usize) -> Result<Records, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let record = label_bytes + PIXELS;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(format!(
            "{}: {} bytes is not a whole number of {record}-byte CIFAR records: the file is truncated or not CIFAR",
            path.display(),
            bytes.len()
        ));
    }
    let n = bytes.len() / record;
    let mut images = Vec::with_capacity(n * PIXELS);
    let mut fine = Vec::with_capacity(n);
    let mut coarse = Vec::with_capacity(if label_bytes == 2 { n } else { 0 });
    for r in bytes.chunks_exact(record) {
        if label_bytes == 2 {
            coarse.push(r[0] as u32);
            fine.push(r[1] as u32);
        } else {
            fine.push(r[0] as u32);
        }
        images.extend_from_slice(&r[label_bytes..]);
    }
    let max = if label_bytes == 2 { 100 } else { 10 };
    if let Some(bad) = fine.iter().find(|&&l| l >= max) {
        return Err(format!("{}: label {bad} is out of range (0..{max}): not a CIFAR file", path.display()));
    }
    Ok((images, fine, (label_bytes == 2).then_some(coarse)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of (coarse label,) fine label, pixels.
    fn records(images: &[u8], fine: &[u8], coarse: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, img) in images.chunks_exact(PIXELS).enumerate() {
            out.extend(coarse.map(|c| c[i]));
            out.push(fine[i]);
            out.extend_from_slice(img);
        }
        out
    }

    #[test]
    fn cifar10_and_cifar100_records() {
        let dir = tempfile::tempdir().unwrap();
        let images: Vec<u8> = (0..2 * PIXELS).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("a.bin"), records(&images, &[7, 2], None)).unwrap();
        let (img, fine, coarse) = read(&dir.path().join("a.bin"), 1).unwrap();
        assert_eq!((img, fine, coarse), (images.clone(), vec![7, 2], None));
        std::fs::write(dir.path().join("b.bin"), records(&images, &[99, 0], Some(&[19, 4]))).unwrap();
        let (_, fine, coarse) = read(&dir.path().join("b.bin"), 2).unwrap();
        assert_eq!((fine, coarse), (vec![99, 0], Some(vec![19, 4])));
        let mut cut = records(&images, &[7, 2], None);
        cut.pop();
        std::fs::write(dir.path().join("c.bin"), cut).unwrap();
        assert!(read(&dir.path().join("c.bin"), 1).unwrap_err().contains("truncated"));
    }
}
