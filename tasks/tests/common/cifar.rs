//! Writes the binary versions of CIFAR-10 (a label byte, then 3072 pixel bytes per record) and
//! CIFAR-100 (a coarse and a fine label byte, then the pixels).

/// Bytes of one image.
pub const PIXELS: usize = 3 * 32 * 32;

/// Records of `images` (3x32x32 bytes each) with their labels.
pub fn encode(images: &[u8], fine: &[u8], coarse: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, img) in images.chunks_exact(PIXELS).enumerate() {
        if let Some(c) = coarse {
            out.push(c[i]);
        }
        out.push(fine[i]);
        out.extend_from_slice(img);
    }
    out
}
