//! Writes IDX files, the format of MNIST and Fashion-MNIST: a big-endian header (magic, then
//! the dimensions) followed by unsigned bytes.

/// An IDX image file: `count` images of `rows` x `cols` bytes.
pub fn encode_images(count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + pixels.len());
    for w in [0x0803u32, count as u32, rows as u32, cols as u32] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// An IDX label file.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&0x0801u32.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}
