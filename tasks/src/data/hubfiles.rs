//! Parquet files in the Hugging Face Hub layout (what the Hub's parquet conversion writes):
//! image data sets have an image column `struct { bytes: binary (PNG or JPEG), path: string }`
//! (`image` or `img`) and integer label columns; text data sets a string column (`sentence`,
//! `text`) or a `translation` struct of strings; Multi30k is JSON lines with `en` and `de`.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::parser::parse_message_type;

/// Decoded images of one split: (N, C, H, W) bytes, and each label column asked for.
#[derive(Debug, Default)]
pub struct DecodedImages {
    pub count: usize,
    pub pixels: Vec<u8>,
    pub labels: Vec<Vec<u32>>,
}

fn open(path: &Path) -> Result<SerializedFileReader<File>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    SerializedFileReader::new(file).map_err(|e| format!("{} is not a readable parquet file: {e}", path.display()))
}

/// Reads an image data set's parquet file: decodes every image to `channels` x `size` (CHW) and
/// reads the label columns in `label_columns`. `image_columns` are the names the image may have.
pub fn read_images(
    path: &Path,
    image_columns: &[&str],
    label_columns: &[&str],
    channels: usize,
    size: (usize, usize),
    out: &mut DecodedImages,
) -> Result<(), String> {
    let reader = open(path)?;
    let rows = reader.get_row_iter(None).map_err(|e| format!("{}: {e}", path.display()))?;
    if out.labels.len() != label_columns.len() {
        out.labels = vec![Vec::new(); label_columns.len()];
    }
    for (i, row) in rows.enumerate() {
        let row = row.map_err(|e| format!("{}: row {i}: {e}", path.display()))?;
        let mut image = None;
        let mut labels = vec![None; label_columns.len()];
        for (name, field) in row.get_column_iter() {
            if image_columns.contains(&name.as_str()) {
                if let Field::Group(group) = field {
                    image = group.get_column_iter().find_map(|(n, f)| match (n.as_str(), f) {
                        ("bytes", Field::Bytes(b)) => Some(b.data().to_vec()),
                        _ => None,
                    });
                }
            } else if let Some(k) = label_columns.iter().position(|c| c == name) {
                labels[k] = match field {
                    Field::Long(v) => Some(*v),
                    Field::Int(v) => Some(*v as i64),
                    Field::Short(v) => Some(*v as i64),
                    Field::Byte(v) => Some(*v as i64),
                    Field::ULong(v) => Some(*v as i64),
                    _ => None,
                };
            }
        }
        let bytes = image.ok_or_else(|| {
            format!("{}: row {i} has no image bytes in a column named {}", path.display(), image_columns.join(" or "))
        })?;
        decode_into(&bytes, channels, size, &mut out.pixels)
            .map_err(|e| format!("{}: row {i}: {e}", path.display()))?;
        for (k, label) in labels.into_iter().enumerate() {
            let label = label.filter(|l| *l >= 0).ok_or_else(|| {
                format!("{}: row {i} has no integer label in column `{}`", path.display(), label_columns[k])
            })?;
            out.labels[k].push(label as u32);
        }
        out.count += 1;
    }
    Ok(())
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

/// Reads a string column (`sentence`, `text`) of a text data set's parquet file.
pub fn read_strings(path: &Path, column: &str) -> Result<Vec<String>, String> {
    let reader = open(path)?;
    let rows = reader.get_row_iter(None).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, row) in rows.enumerate() {
        let row = row.map_err(|e| format!("{}: row {i}: {e}", path.display()))?;
        let value = row.get_column_iter().find_map(|(n, f)| match f {
            Field::Str(s) if n == column => Some(s.clone()),
            _ => None,
        });
        out.push(value.ok_or_else(|| format!("{}: row {i} has no string column `{column}`", path.display()))?);
    }
    Ok(out)
}

/// Reads the `translation { de, en }` pairs of a translation data set's parquet file.
pub fn read_translations(path: &Path, source: &str, target: &str) -> Result<Vec<(String, String)>, String> {
    let reader = open(path)?;
    let rows = reader.get_row_iter(None).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, row) in rows.enumerate() {
        let row = row.map_err(|e| format!("{}: row {i}: {e}", path.display()))?;
        let pair = row.get_column_iter().find_map(|(n, f)| match f {
            Field::Group(g) if n == "translation" => {
                let get = |lang: &str| {
                    g.get_column_iter().find_map(|(k, v)| match v {
                        Field::Str(s) if k == lang => Some(s.clone()),
                        _ => None,
                    })
                };
                Some((get(source)?, get(target)?))
            }
            _ => None,
        });
        out.push(pair.ok_or_else(|| format!("{}: row {i} has no translation {{{source}, {target}}}", path.display()))?);
    }
    Ok(out)
}

/// Reads JSON lines with a string per language (Multi30k on the Hub: `{"en": ..., "de": ...}`).
pub fn read_jsonl_pairs(path: &Path, source: &str, target: &str) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{}: line {}: {e}", path.display(), i + 1))?;
            let get = |k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_string);
            get(source)
                .zip(get(target))
                .ok_or_else(|| format!("{}: line {} lacks `{source}` or `{target}`", path.display(), i + 1))
        })
        .collect()
}

/// Writes an image data set's parquet file in the Hub schema: `image` (or another name)
/// `struct { bytes: binary, path: string }` holding PNG bytes, and int64 label columns. For
/// tests and tools.
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

/// Writes a text data set's parquet file with one string column. For tests and tools.
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

/// Encodes CHW bytes as a PNG (for tests and tools).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_round_trip_through_the_hub_schema() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 7) as u8).collect();
        let b: Vec<u8> = (0..3 * 4 * 5).map(|i| (255 - i) as u8).collect();
        let path = dir.path().join("x.parquet");
        let pngs = vec![encode_png(&a, 3, 4, 5), encode_png(&b, 3, 4, 5)];
        write_images(&path, "img", &pngs, &[("fine_label", vec![42, 7]), ("coarse_label", vec![3, 1])]).unwrap();
        let mut out = DecodedImages::default();
        read_images(&path, &["image", "img"], &["fine_label", "coarse_label"], 3, (4, 5), &mut out).unwrap();
        assert_eq!(out.count, 2);
        assert_eq!(out.pixels, [a, b].concat());
        assert_eq!(out.labels, vec![vec![42, 7], vec![3, 1]]);
        let err = read_images(&path, &["image"], &["label"], 3, (4, 5), &mut DecodedImages::default()).unwrap_err();
        assert!(err.contains("no image bytes in a column named image"), "{err}");
        let strings = dir.path().join("s.parquet");
        write_strings(&strings, "sentence", &["a b".into(), "c".into()]).unwrap();
        assert_eq!(read_strings(&strings, "sentence").unwrap(), ["a b", "c"]);
    }
}
