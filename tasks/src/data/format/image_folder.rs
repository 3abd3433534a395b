//! The official `tiny-imagenet-200/` folder: `wnids.txt`, `train/<wnid>/images/*.JPEG`, and the
//! test split in `val/images/*.JPEG` with `val/val_annotations.txt`. Classes are the sorted
//! `wnids.txt`, as torchvision's `ImageFolder` orders them.

use std::path::{Path, PathBuf};

use super::{decode_into, image_shape, Format, Split, SplitFiles};
use crate::data::catalog::DatasetSpec;
use crate::data::ImageSplit;

/// The Tiny-ImageNet folder of JPEGs.
pub struct TinyImageNet;

impl Format for TinyImageNet {
    /// `train`: `wnids.txt` and `train/`; `test`: `wnids.txt` and `val/val_annotations.txt`.
    fn detect(&self, dir: &Path, _spec: &DatasetSpec) -> Result<SplitFiles, String> {
        let (wnids, annotations, train) =
            (dir.join("wnids.txt"), dir.join("val").join("val_annotations.txt"), dir.join("train"));
        if let Some(missing) = [&wnids, &annotations, &train].into_iter().find(|p| !p.exists()) {
            return Err(format!("no {}", missing.strip_prefix(dir).unwrap_or(missing).display()));
        }
        Ok(vec![("train".into(), vec![wnids.clone(), train]), ("test".into(), vec![wnids, annotations])])
    }

    fn load(&self, spec: &DatasetSpec, split: &str, files: &[PathBuf]) -> Result<Split, String> {
        let shape = image_shape(spec)?;
        let [wnids, listing] = files else { return Err("missing wnids.txt".into()) };
        let dir = wnids.parent().unwrap_or(Path::new(""));
        let wnids_text = std::fs::read_to_string(wnids).map_err(|e| format!("{}/wnids.txt: {e}", dir.display()))?;
        let mut wnids: Vec<&str> = wnids_text.split_whitespace().collect();
        wnids.sort();
        let class_of = |wnid: &str| wnids.binary_search(&wnid).map_err(|_| format!("class {wnid} is not in wnids.txt"));
        let mut files: Vec<(PathBuf, u32)> = Vec::new();
        if split == "test" {
            let ann = listing;
            let text = std::fs::read_to_string(ann).map_err(|e| format!("{}: {e}", ann.display()))?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let mut cols = line.split('\t');
                let (Some(file), Some(wnid)) = (cols.next(), cols.next()) else {
                    return Err(format!("{}: bad line `{line}`", ann.display()));
                };
                files.push((dir.join("val").join("images").join(file), class_of(wnid)? as u32));
            }
        } else {
            for wnid in &wnids {
                let images = listing.join(wnid).join("images");
                let mut names: Vec<PathBuf> = std::fs::read_dir(&images)
                    .map_err(|e| format!("{}: {e}", images.display()))?
                    .flatten()
                    .map(|e| e.path())
                    .collect();
                names.sort();
                let label = class_of(wnid)? as u32;
                files.extend(names.into_iter().map(|p| (p, label)));
            }
        }
        let mut out = ImageSplit { count: 0, images: Vec::new(), labels: Vec::new(), coarse_labels: None };
        for (path, label) in files {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            decode_into(&bytes, shape.0, (shape.1, shape.2), &mut out.images)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            out.labels.push(label);
            out.count += 1;
        }
        Ok(Split::Images(out))
    }

    fn hint(&self, _spec: &DatasetSpec) -> String {
        "wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt".into()
    }

    /// The names, sizes and times of the folder's files, not their contents: hashing its
    /// hundred thousand JPEGs would take longer than decoding them.
    fn fingerprint(&self, files: &SplitFiles) -> Result<String, String> {
        let Some(dir) = files.first().and_then(|(_, f)| f.first()).and_then(|wnids| wnids.parent()) else {
            return Ok(String::new());
        };
        let mut listing = crate::data::hub::relative_files(dir);
        listing.sort();
        let mut out = String::new();
        for rel in listing {
            let path = dir.join(&rel);
            let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            out.push_str(&format!("{rel} {} {:?}\n", meta.len(), mtime));
        }
        Ok(out)
    }
}
