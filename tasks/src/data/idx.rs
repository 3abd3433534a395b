//! The IDX format of MNIST and Fashion-MNIST (LeCun et al.), gzip-compressed or raw:
//! a big-endian header (magic `0x00000803` for images, `0x00000801` for labels, then the
//! dimensions) followed by unsigned bytes.
//!
//! Not `candle-datasets`' MNIST loader: it reads only uncompressed files, panics on bad input
//! and pulls a second HTTP stack; these files are small enough to parse here with clear errors.

use std::io::Read;
use std::path::{Path, PathBuf};

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

/// Writes IDX files (for tests and tools).
pub fn encode_images(count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + pixels.len());
    for w in [0x0803u32, count as u32, rows as u32, cols as u32] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// Encodes labels as an IDX file.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&0x0801u32.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trip_raw_and_gzip_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        std::fs::write(dir.path().join("img"), encode_images(2, 3, 4, &pixels)).unwrap();
        let (n, r, c, p) = read_images(&dir.path().join("img")).unwrap();
        assert_eq!((n, r, c, p), (2, 3, 4, pixels.clone()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&encode_labels(&[3, 1, 4])).unwrap();
        std::fs::write(dir.path().join("lab.gz"), gz.finish().unwrap()).unwrap();
        assert_eq!(find(dir.path(), "lab"), Some(dir.path().join("lab.gz")));
        assert_eq!(read_labels(&dir.path().join("lab.gz")).unwrap(), [3, 1, 4]);
        let mut bytes = encode_images(2, 3, 4, &pixels);
        bytes.truncate(30);
        std::fs::write(dir.path().join("short"), bytes).unwrap();
        assert!(read_images(&dir.path().join("short")).unwrap_err().contains("truncated or corrupt"));
        assert!(read_labels(&dir.path().join("img")).unwrap_err().contains("magic"));
    }
}
