//! Writes files in the Hugging Face Hub's parquet schema: image data sets with an image column
//! `struct { bytes: binary (PNG), path: string }` and int64 label columns, text data sets with a
//! string column; and encodes PNGs.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// Writes an image data set's parquet file in the Hub schema: `image` (or another name)
/// `struct { bytes: binary, path: string }` holding PNG bytes, and int64 label columns.
pub fn write_images(
    path: &Path,
    image_column: &str,
    images: &[Vec<u8>],
    labels: &[(&str, Vec<i64>)],
) -> Result<(), String> {
    let mut schema = format!(
        "message schema {{ optional group {image_column} {{ optional binary bytes; optional binary path (STRING); }} "
    );
    for (name, _) in labels {
        schema.push_str(&format!("optional int64 {name}; "));
    }
    schema.push('}');
    let schema = Arc::new(parse_message_type(&schema).map_err(|e| e.to_string())?);
    let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(file, schema, props).map_err(|e| e.to_string())?;
    let mut group = writer.next_row_group().map_err(|e| e.to_string())?;
    let n = images.len();
    // image.bytes: present (definition level 2).
    let mut col = group.next_column().map_err(|e| e.to_string())?.expect("bytes column");
    let values: Vec<ByteArray> = images.iter().map(|b| ByteArray::from(b.clone())).collect();
    col.typed::<ByteArrayType>().write_batch(&values, Some(&vec![2; n]), None).map_err(|e| e.to_string())?;
    col.close().map_err(|e| e.to_string())?;
    // image.path: null inside a present struct (definition level 1), as the Hub writes it.
    let mut col = group.next_column().map_err(|e| e.to_string())?.expect("path column");
    col.typed::<ByteArrayType>().write_batch(&[], Some(&vec![1; n]), None).map_err(|e| e.to_string())?;
    col.close().map_err(|e| e.to_string())?;
    for (_, values) in labels {
        let mut col = group.next_column().map_err(|e| e.to_string())?.expect("label column");
        col.typed::<Int64Type>().write_batch(values, Some(&vec![1; n]), None).map_err(|e| e.to_string())?;
        col.close().map_err(|e| e.to_string())?;
    }
    group.close().map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(())
}

/// Writes a text data set's parquet file with one string column.
pub fn write_strings(path: &Path, column: &str, values: &[String]) -> Result<(), String> {
    let schema = Arc::new(
        parse_message_type(&format!("message schema {{ optional binary {column} (STRING); }}"))
            .map_err(|e| e.to_string())?,
    );
    let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut writer = SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build()))
        .map_err(|e| e.to_string())?;
    let mut group = writer.next_row_group().map_err(|e| e.to_string())?;
    let mut col = group.next_column().map_err(|e| e.to_string())?.expect("one column");
    let data: Vec<ByteArray> = values.iter().map(|s| ByteArray::from(s.as_str())).collect();
    col.typed::<ByteArrayType>().write_batch(&data, Some(&vec![1; values.len()]), None).map_err(|e| e.to_string())?;
    col.close().map_err(|e| e.to_string())?;
    group.close().map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(())
}

/// Encodes CHW bytes as a PNG.
pub fn encode_png(chw: &[u8], channels: usize, h: usize, w: usize) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let img = match channels {
        1 => {
            image::DynamicImage::ImageLuma8(image::GrayImage::from_raw(w as u32, h as u32, chw.to_vec()).expect("size"))
        }
        _ => {
            let plane = h * w;
            let hwc: Vec<u8> = (0..plane).flat_map(|p| (0..3).map(move |c| chw[c * plane + p])).collect();
            image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(w as u32, h as u32, hwc).expect("size"))
        }
    };
    img.write_to(&mut buf, image::ImageFormat::Png).expect("png encoding");
    buf.into_inner()
}
