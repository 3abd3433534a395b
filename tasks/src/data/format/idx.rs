//! The IDX format of MNIST and Fashion-MNIST (LeCun et al.), gzip-compressed or raw:
//! a big-endian header (magic `0x00000803` for images, `0x00000801` for labels, then the
//! dimensions) followed by unsigned bytes. The folder holds `train-images-idx3-ubyte`,
//! `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each raw or
//! `.gz`.
//!
//! Not `candle-datasets`' MNIST loader: it reads only uncompressed files, panics on bad input
//! and pulls a second HTTP stack; these files are small enough to parse here with clear errors.

use std::path::{Path, PathBuf};

use super::{image_shape, need, read_maybe_gz, Format, Split, SplitFiles};
use crate::data::catalog::DatasetSpec;
use crate::data::ImageSplit;

/// The IDX folder of MNIST-like data sets.
pub struct Idx;

/// The file prefix of each split.
const SPLITS: [(&str, &str); 2] = [("train", "train"), ("test", "t10k")];

impl Format for Idx {
    fn detect(&self, dir: &Path, _spec: &DatasetSpec) -> Result<SplitFiles, String> {
        SPLITS
            .iter()
            .map(|(split, prefix)| {
                let images = need(dir, &format!("{prefix}-images-idx3-ubyte"))?;
                let labels = need(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
                Ok((split.to_string(), vec![images, labels]))
            })
            .collect()
    }

    fn load(&self, spec: &DatasetSpec, _split: &str, files: &[PathBuf]) -> Result<Split, String> {
        let (_, height, width) = image_shape(spec)?;
        let [images, labels] = files else { return Err("missing images or labels".into()) };
        let (n, rows, cols, pixels) = read_images(images)?;
        if (rows, cols) != (height, width) {
            return Err(format!("{}: {rows}x{cols} images, expected {height}x{width}", images.display()));
        }
        let labels_read = read_labels(labels)?;
        if labels_read.len() != n {
            let dir = images.parent().unwrap_or(Path::new(""));
            return Err(format!("{} images but {} labels in {}", n, labels_read.len(), dir.display()));
        }
        Ok(Split::Images(ImageSplit { count: n, images: pixels, labels: labels_read, coarse_labels: None }))
    }

    fn hint(&self, _spec: &DatasetSpec) -> String {
        "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"
            .into()
    }
}

fn header(bytes: &[u8], path: &Path, magic: u32, dims: usize) -> Result<Vec<usize>, String> {
    let word =
        |i: usize| -> Option<u32> { bytes.get(4 * i..4 * i + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) };
    let found = word(0).ok_or_else(|| format!("{} is too short for an IDX file", path.display()))?;
    if found != magic {
        return Err(format!("{}: IDX magic number {found:#010x}, expected {magic:#010x}", path.display()));
    }
    let shape: Vec<usize> = (1..=dims)
        .map(|i| word(i).map(|w| w as usize))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("{}: truncated IDX header", path.display()))?;
    let expected = 4 * (dims + 1) + shape.iter().product::<usize>();
    if bytes.len() != expected {
        return Err(format!(
            "{}: {} bytes where the header {shape:?} needs {expected}: the file is truncated or corrupt",
            path.display(),
            bytes.len()
        ));
    }
    Ok(shape)
}

/// Reads an IDX image file: `(count, rows, cols, pixels)`.
pub fn read_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>), String> {
    let mut bytes = read_maybe_gz(path)?;
    let shape = header(&bytes, path, 0x0803, 3)?;
    bytes.drain(..16);
    Ok((shape[0], shape[1], shape[2], bytes))
}

/// Reads an IDX label file.
pub fn read_labels(path: &Path) -> Result<Vec<u32>, String> {
    let bytes = read_maybe_gz(path)?;
    header(&bytes, path, 0x0801, 1)?;
    Ok(bytes[8..].iter().map(|&b| b as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::format::find;
    use std::io::Write;

    /// An IDX file's bytes: the header words, then the data.
    fn idx(words: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn round_trip_raw_and_gzip_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        std::fs::write(dir.path().join("img"), idx(&[0x0803, 2, 3, 4], &pixels)).unwrap();
        let (n, r, c, p) = read_images(&dir.path().join("img")).unwrap();
        assert_eq!((n, r, c, p), (2, 3, 4, pixels.clone()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&idx(&[0x0801, 3], &[3, 1, 4])).unwrap();
        std::fs::write(dir.path().join("lab.gz"), gz.finish().unwrap()).unwrap();
        assert_eq!(find(dir.path(), "lab"), Some(dir.path().join("lab.gz")));
        assert_eq!(read_labels(&dir.path().join("lab.gz")).unwrap(), [3, 1, 4]);
        let mut bytes = idx(&[0x0803, 2, 3, 4], &pixels);
        bytes.truncate(30);
        std::fs::write(dir.path().join("short"), bytes).unwrap();
        assert!(read_images(&dir.path().join("short")).unwrap_err().contains("truncated or corrupt"));
        assert!(read_labels(&dir.path().join("img")).unwrap_err().contains("magic"));
    }
}
