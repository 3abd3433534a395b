//! FID on CIFAR-10 as pytorch-fid computes it: the 2048 pool3 features of its Inception-v3
//! (`models::inception`), the statistics of the real training images and of the generated
//! ones, and their Fréchet distance ([`super::fid`]).
//!
//! The weights are pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (the TensorFlow FID
//! network ported to PyTorch) as a safetensors file that `scripts/fid/export_inception.py`
//! writes: the option `fid_weights` (a path) or `fid_weights_repo` (`owner/name` on the Hub, the
//! file [`WEIGHTS_FILE`] at `main`, or `owner/name/path/in/repo.safetensors`), fetched through
//! the suite's Hub client (cache first, offline-aware, with its timeouts). Without either, or
//! when the Hub cannot give the file, one message says so and `fid` is recorded as missing.
//!
//! The real statistics (the first `fid_samples` training images at their stored 32x32, which
//! the network resizes to 299x299 as pytorch-fid does) are computed once and cached in
//! `<cache>/fid-inception/<data set>-<12 hex of its hash>-w<12 hex of the weights' SHA-256>-
//! n<count>-v1.safetensors` (mean, covariance and the factor of [`fid::Reference`]), written
//! atomically. Generated images are the generator's tanh output mapped to [0, 1], not
//! quantised to 8 bits (pytorch-fid reads PNG files; the difference is below 1/255 a pixel).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle::{Device, Tensor};
use models::inception::{FidInception, FEATURES};

use super::fid::{Reference, Statistics};
use crate::data::{DataSettings, ImageData};

/// The file `scripts/fid/export_inception.py` writes and a Hub repository is expected to hold.
pub const WEIGHTS_FILE: &str = "pt_inception-2015-12-05-6726825d.safetensors";
/// Real images per forward batch (each image on one thread, images in parallel).
const BATCH: usize = 32;

/// How to get the weights, for the messages.
pub const HOW_TO_GET: &str = "download pytorch-fid's pt_inception-2015-12-05-6726825d.pth \
     (https://github.com/mseitzer/pytorch-fid/releases/tag/fid_weights), convert it with \
     `python scripts/fid/export_inception.py --pth <file> --out <file>.safetensors` and set the task option \
     `fid_weights` to that path (or `fid_weights_repo` to a Hub repository holding it)";

/// The Inception network and the real images' side of the distance.
pub struct InceptionFid {
    pub net: FidInception,
    pub real: Reference,
    /// The weights file.
    pub weights: PathBuf,
    /// Where the real statistics are cached.
    pub cache: PathBuf,
}

/// The weights file the options name: `Ok(None)` when neither is set; `Err` with the reason
/// when they are set but give no file.
pub fn locate_weights(path: &str, repo: &str, settings: &DataSettings) -> Result<Option<PathBuf>, String> {
    if !path.is_empty() {
        let p = PathBuf::from(path);
        if !p.is_file() {
            return Err(format!("fid_weights = `{path}`: no such file; {HOW_TO_GET}"));
        }
        return Ok(Some(p));
    }
    if repo.is_empty() {
        return Ok(None);
    }
    let parts: Vec<&str> = repo.splitn(3, '/').collect();
    let (name, file) = match parts.as_slice() {
        [owner, name] => (format!("{owner}/{name}"), WEIGHTS_FILE.to_string()),
        [owner, name, file] if !file.is_empty() => (format!("{owner}/{name}"), file.to_string()),
        _ => return Err(format!("fid_weights_repo = `{repo}`: expected owner/name or owner/name/file")),
    };
    crate::data::hub::model_file(settings, &name, "main", &file)
        .map(Some)
        .map_err(|e| format!("fid_weights_repo = `{repo}`: {e}"))
}

/// The images `indices` of the training split as (N, 3, H, W) in [0, 1], row-major.
fn pixels(data: &ImageData, indices: &[usize]) -> Vec<f32> {
    let size = data.channels * data.height * data.width;
    let mut out = Vec::with_capacity(indices.len() * size);
    for &i in indices {
        out.extend(data.train.images[i * size..(i + 1) * size].iter().map(|&p| p as f32 / 255.0));
    }
    out
}

impl InceptionFid {
    /// The network from `weights` and the real statistics of the first `count` training
    /// images of `data`, from the cache under `cache_dir` or computed now (one at a time per
    /// process) and cached.
    pub fn new(weights: &Path, data: &ImageData, count: usize, cache_dir: &Path) -> anyhow::Result<Self> {
        static COMPUTING: Mutex<()> = Mutex::new(());
        let _one_at_a_time = COMPUTING.lock().unwrap_or_else(|e| e.into_inner());
        let net = FidInception::load(weights)?;
        let digest = crate::util::hash::sha256_file(weights).map_err(|e| anyhow::anyhow!(e))?;
        let count = count.min(data.train.count);
        let cache = cache_dir.join("fid-inception").join(format!(
            "{}-{}-w{}-n{count}-v1.safetensors",
            data.name,
            data.record.short_hash(),
            &digest[..12]
        ));
        let real = match read_cache(&cache)? {
            Some(real) => real,
            None => {
                let start = std::time::Instant::now();
                let indices: Vec<usize> = (0..count).collect();
                let mut features = Vec::with_capacity(count * FEATURES);
                for chunk in indices.chunks(BATCH) {
                    features.extend(net.features(&pixels(data, chunk), (data.height, data.width))?);
                }
                let real = Reference::of_features(&features, FEATURES)?;
                write_cache(&cache, &real)?;
                eprintln!(
                    "FID: Inception statistics of {count} real {} images in {:.0} s ({:.2} s an image), cached in {}",
                    data.name,
                    start.elapsed().as_secs_f64(),
                    start.elapsed().as_secs_f64() / count.max(1) as f64,
                    cache.display()
                );
                real
            }
        };
        Ok(Self { net, real, weights: weights.to_path_buf(), cache })
    }

    /// The features of generated images (N, 3, H, W) in [-1, 1].
    pub fn features(&self, images: &Tensor) -> anyhow::Result<Vec<f32>> {
        let unit = images.affine(0.5, 0.5)?.clamp(0f32, 1f32)?;
        Ok(self.net.features_of(&unit)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// The distance of generated images' features to the real ones.
    pub fn distance(&self, features: &[f32]) -> anyhow::Result<f64> {
        self.real.distance(&Statistics::of(features, FEATURES)?)
    }
}

fn read_cache(path: &Path) -> anyhow::Result<Option<Reference>> {
    if !path.exists() {
        return Ok(None);
    }
    let bad = |what: String| {
        anyhow::anyhow!("the cached FID statistics {} {what}; delete the file to compute them again", path.display())
    };
    let saved = candle::safetensors::load(path, &Device::Cpu).map_err(|e| bad(format!("cannot be read ({e})")))?;
    let get = |name: &str| -> anyhow::Result<Tensor> {
        saved.get(name).cloned().ok_or_else(|| bad(format!("have no `{name}`")))
    };
    let (mean, cov, factor) = (get("mean")?, get("cov")?, get("factor")?);
    let dim = mean.dim(0)?;
    let (rows, rank) = factor.dims2()?;
    let count = get("count")?.to_vec1::<i64>()?.first().copied().unwrap_or(0) as usize;
    if cov.dims() != [dim, dim] || rows != dim || count < 2 {
        return Err(bad(format!("have shapes {:?}, {:?}, {:?}", mean.dims(), cov.dims(), factor.dims())));
    }
    let f64s = |t: &Tensor| -> anyhow::Result<Vec<f64>> { Ok(t.flatten_all()?.to_vec1::<f64>()?) };
    let stats = Statistics { dim, count, mean: f64s(&mean)?, cov: f64s(&cov)? };
    Ok(Some(Reference { stats, factor: f64s(&factor)?, rank }))
}

fn write_cache(path: &Path, real: &Reference) -> anyhow::Result<()> {
    let s = &real.stats;
    let cpu = &Device::Cpu;
    let tensors: HashMap<String, Tensor> = [
        ("mean", Tensor::from_vec(s.mean.clone(), s.dim, cpu)?),
        ("cov", Tensor::from_vec(s.cov.clone(), (s.dim, s.dim), cpu)?),
        ("factor", Tensor::from_vec(real.factor.clone(), (s.dim, real.rank), cpu)?),
        ("count", Tensor::from_vec(vec![s.count as i64], 1, cpu)?),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    candle::safetensors::save(&tensors, &tmp)?;
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("cannot cache the FID statistics at {}: {e}", path.display()))?;
    Ok(())
}
