//! A grid of generated images as a PNG file (torchvision's `save_image(normalize=True)` of
//! their code makes the same kind of picture): images in [-1, 1] mapped to 0..255, 8 per row,
//! 2-pixel black gaps.

use std::io::Cursor;

use candle::{DType, Tensor};

const PER_ROW: usize = 8;
const GAP: usize = 2;

/// The PNG bytes of a grid of images (N, C, H, W) with values in [-1, 1]; C is 1 or 3.
pub fn grid(images: &Tensor) -> anyhow::Result<Vec<u8>> {
    let (n, c, h, w) = images.dims4()?;
    anyhow::ensure!(c == 1 || c == 3, "a sample grid of {c}-channel images: 1 or 3");
    let values = images.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let cols = PER_ROW.min(n.max(1));
    let rows = n.div_ceil(cols);
    let (width, height) = (cols * (w + GAP) + GAP, rows * (h + GAP) + GAP);
    let mut pixels = vec![0u8; width * height * 3];
    for k in 0..n {
        let (oy, ox) = ((k / cols) * (h + GAP) + GAP, (k % cols) * (w + GAP) + GAP);
        for y in 0..h {
            for x in 0..w {
                for ch in 0..3 {
                    let src = ch.min(c - 1);
                    let v = values[((k * c + src) * h + y) * w + x];
                    let byte = ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
                    pixels[((oy + y) * width + ox + x) * 3 + ch] = byte;
                }
            }
        }
    }
    let image = image::RgbImage::from_raw(width as u32, height as u32, pixels)
        .ok_or_else(|| anyhow::anyhow!("sample grid of {width}x{height}: wrong buffer size"))?;
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_decodes_to_its_pixels() {
        let images = Tensor::from_vec(vec![-1.0f32, 1.0, 0.0, 1.0], (1, 1, 2, 2), &candle::Device::Cpu).unwrap();
        let bytes = grid(&images).unwrap();
        let decoded = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(decoded.dimensions(), (6, 6));
        assert_eq!(decoded.get_pixel(2, 2).0, [0, 0, 0]);
        assert_eq!(decoded.get_pixel(3, 2).0, [255, 255, 255]);
        assert_eq!(decoded.get_pixel(2, 3).0, [128, 128, 128]);
    }
}
