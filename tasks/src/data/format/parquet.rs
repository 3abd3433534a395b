//! The files at their Hugging Face Hub paths (what the Hub's parquet conversion writes), in a
//! local folder or the Hugging Face cache: image data sets have an image column
//! `struct { bytes: binary (PNG or JPEG), path: string }` (`image` or `img`) and integer label
//! columns; text data sets a string column (`sentence`, `text`) or a `translation` struct of
//! strings; Multi30k is JSON lines with `en` and `de`.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use super::{Format, Split, SplitFiles};
use crate::data::catalog::{Content, DatasetSpec};
use crate::data::hub;
use crate::data::ImageSplit;

/// Parquet (or JSON lines) files at their Hub paths, per split.
pub struct HubLayout;

/// The file patterns of each split, for messages.
pub fn patterns(spec: &DatasetSpec) -> String {
    spec.splits.iter().map(|(_, p)| p.to_string()).collect::<Vec<_>>().join(", ")
}

impl Format for HubLayout {
    fn detect(&self, dir: &Path, spec: &DatasetSpec) -> Result<SplitFiles, String> {
        let names = hub::relative_files(dir);
        let splits =
            hub::split_files(spec, &names).ok_or_else(|| format!("no Hub-layout files ({})", patterns(spec)))?;
        Ok(splits.into_iter().map(|(split, names)| (split, names.iter().map(|n| dir.join(n)).collect())).collect())
    }

    fn load(&self, spec: &DatasetSpec, _split: &str, files: &[PathBuf]) -> Result<Split, String> {
        match spec.content {
            Content::Images { channels, height, width, image_columns, label_columns, .. } => {
                let mut out = DecodedImages::default();
                for path in files {
                    read_images(path, image_columns, label_columns, channels, (height, width), &mut out)?;
                }
                let coarse = out.labels.get(1).cloned();
                let labels = if out.labels.is_empty() { Vec::new() } else { out.labels.swap_remove(0) };
                Ok(Split::Images(ImageSplit { count: out.count, images: out.pixels, labels, coarse_labels: coarse }))
            }
            Content::Text { column } => {
                let mut lines = Vec::new();
                for path in files {
                    lines.extend(read_strings(path, column)?);
                }
                Ok(Split::Lines(lines))
            }
            Content::Pairs { source, target, jsonl } => {
                let mut pairs = Vec::new();
                for path in files {
                    pairs.extend(if jsonl {
                        read_jsonl_pairs(path, source, target)?
                    } else {
                        read_translations(path, source, target)?
                    });
                }
                Ok(Split::Pairs(pairs))
            }
        }
    }

    fn hint(&self, spec: &DatasetSpec) -> String {
        patterns(spec)
    }
}

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
        super::decode_into(&bytes, channels, size, &mut out.pixels)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_image_columns_are_named() {
        // Parquet fixtures are written by the integration tests (`tests/common/hubfiles.rs`);
        // here only what needs no writer: a file that is not parquet.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        std::fs::write(&path, b"not parquet").unwrap();
        let err = read_images(&path, &["image"], &["label"], 1, (2, 2), &mut DecodedImages::default()).unwrap_err();
        assert!(err.contains("is not a readable parquet file"), "{err}");
        let jsonl = dir.path().join("x.jsonl");
        std::fs::write(&jsonl, "{\"en\": \"a\", \"de\": \"b\"}\n\n{\"en\": \"c\"}\n").unwrap();
        let err = read_jsonl_pairs(&jsonl, "de", "en").unwrap_err();
        assert!(err.contains("line 2 lacks `de` or `en`"), "{err}");
    }
}
