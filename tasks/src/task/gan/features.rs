//! The feature network of FID on MNIST and Fashion-MNIST: a small classifier that the suite
//! trains once on the real training set, from a fixed seed, and caches on disk. Its
//! penultimate activations are the features.
//!
//! ```text
//! x (N, 784) in [0, 1] -> Linear(784, 256) ReLU -> Linear(256, 128) ReLU = features (128)
//!                      -> Linear(128, classes)        trained by cross-entropy
//! Adam (lr 1e-3, betas 0.9 / 0.999), batch 128, 3 epochs, seed FEATURE_SEED, no augmentation
//! ```
//! The cache is `<cache>/fid-features/<data set>-<12 hex of its hash>-<settings>.safetensors`
//! (`<cache>`: the data caches' folder, `OPTBENCH_CACHE` or `~/.cache/optbench`), written
//! atomically, so a changed data set or changed settings train a new one.
//!
//! FID with these features is NOT comparable with the Inception FID of papers (different
//! features, dimension and data), nor across feature-network settings: it compares runs of the
//! suite with each other.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle::{DType, Device, Module, Tensor};
use candle_nn::{Linear, Optimizer};
use models::{Params, SeededRng};

use crate::data::ImageData;

/// The seed of the feature network's weights and batch order.
pub const FEATURE_SEED: u64 = 20_170_626;
const HIDDEN: usize = 256;
/// The dimension of the features.
pub const FEATURES: usize = 128;
const EPOCHS: usize = 3;
const BATCH: usize = 128;
const LR: f64 = 1e-3;

/// The trained classifier, on the CPU.
pub struct FeatureNet {
    layers: [Linear; 3],
    /// Its accuracy on the test split, for the log.
    pub test_accuracy: f64,
    /// Where it is cached.
    pub path: PathBuf,
}

fn settings_key() -> String {
    format!("mlp{HIDDEN}-{FEATURES}-e{EPOCHS}-b{BATCH}-lr{LR}-s{FEATURE_SEED}-v1")
}

fn build(params: &Params, inputs: usize, classes: usize) -> anyhow::Result<[Linear; 3]> {
    let b = params.root();
    Ok([
        models::init::linear(&b.pp("fc1"), inputs, HIDDEN, true)?,
        models::init::linear(&b.pp("fc2"), HIDDEN, FEATURES, true)?,
        models::init::linear(&b.pp("fc3"), FEATURES, classes, true)?,
    ])
}

/// The images `indices` of a split as (N, C H W) in [0, 1].
fn pixels(data: &ImageData, test: bool, indices: &[usize]) -> anyhow::Result<Tensor> {
    let split = if test { &data.test } else { &data.train };
    let size = data.channels * data.height * data.width;
    let mut out = Vec::with_capacity(indices.len() * size);
    for &i in indices {
        out.extend(split.images[i * size..(i + 1) * size].iter().map(|&p| p as f32 / 255.0));
    }
    Ok(Tensor::from_vec(out, (indices.len(), size), &Device::Cpu)?)
}

impl FeatureNet {
    /// The feature network of `data`, from the cache under `cache_dir` or trained now (a few
    /// seconds on the CPU) and cached. One at a time per process.
    pub fn for_data(data: &ImageData, cache_dir: &Path) -> anyhow::Result<Self> {
        static TRAINING: Mutex<()> = Mutex::new(());
        let _one_at_a_time = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
        let inputs = data.channels * data.height * data.width;
        let path = cache_dir.join("fid-features").join(format!(
            "{}-{}-{}.safetensors",
            data.name,
            data.record.short_hash(),
            settings_key()
        ));
        let params = Params::new(SeededRng::new(FEATURE_SEED).fork("init"), DType::F32, &Device::Cpu);
        let layers = build(&params, inputs, data.classes)?;
        let mut net = Self { layers, test_accuracy: f64::NAN, path: path.clone() };
        if path.exists() {
            let saved = candle::safetensors::load(&path, &Device::Cpu).map_err(|e| {
                anyhow::anyhow!(
                    "the FID feature network {} cannot be read ({e}); delete it to train it again",
                    path.display()
                )
            })?;
            for (name, _) in params.named_trainable() {
                let value = saved.get(&name).ok_or_else(|| {
                    anyhow::anyhow!(
                        "the FID feature network {} has no `{name}`; delete it to train it again",
                        path.display()
                    )
                })?;
                params.set(&name, value)?;
            }
        } else {
            net.train(&params, data)?;
            let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tensors: std::collections::HashMap<String, Tensor> =
                params.named_trainable().into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect();
            candle::safetensors::save(&tensors, &tmp)?;
            std::fs::rename(&tmp, &path)
                .map_err(|e| anyhow::anyhow!("cannot cache the FID feature network at {}: {e}", path.display()))?;
        }
        net.test_accuracy = net.accuracy(data)?;
        Ok(net)
    }

    fn train(&self, params: &Params, data: &ImageData) -> anyhow::Result<()> {
        let mut optimizer = candle_nn::AdamW::new(
            params.trainable(),
            candle_nn::ParamsAdamW { lr: LR, weight_decay: 0.0, ..Default::default() },
        )?;
        let mut rng = SeededRng::new(FEATURE_SEED).fork("order");
        for _ in 0..EPOCHS {
            let order = rng.permutation(data.train.count);
            for chunk in order.chunks(BATCH) {
                let x = pixels(data, false, chunk)?;
                let y: Vec<u32> = chunk.iter().map(|&i| data.train.labels[i]).collect();
                let y = Tensor::from_vec(y, chunk.len(), &Device::Cpu)?;
                let loss = candle_nn::loss::cross_entropy(&self.logits(&x)?, &y)?;
                optimizer.backward_step(&loss)?;
            }
        }
        Ok(())
    }

    fn logits(&self, x: &Tensor) -> candle::Result<Tensor> {
        self.layers[2].forward(&self.features_of_flat(x)?)
    }

    fn features_of_flat(&self, x: &Tensor) -> candle::Result<Tensor> {
        self.layers[1].forward(&self.layers[0].forward(x)?.relu()?)?.relu()
    }

    fn accuracy(&self, data: &ImageData) -> anyhow::Result<f64> {
        let mut correct = 0.0;
        let all: Vec<usize> = (0..data.test.count).collect();
        for chunk in all.chunks(1000) {
            let x = pixels(data, true, chunk)?;
            let y: Vec<u32> = chunk.iter().map(|&i| data.test.labels[i]).collect();
            let predicted: Vec<u32> = self.logits(&x)?.argmax(1)?.to_vec1()?;
            correct += predicted.iter().zip(&y).filter(|(a, b)| a == b).count() as f64;
        }
        Ok(correct / data.test.count.max(1) as f64)
    }

    /// The features (N, 128) of images (N, C, H, W) with pixels in [0, 1].
    pub fn features(&self, images: &Tensor) -> anyhow::Result<Tensor> {
        let x = images.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.flatten_from(1)?;
        Ok(self.features_of_flat(&x)?)
    }

    /// The features of the real images `indices` of the training split.
    pub fn real_features(&self, data: &ImageData, indices: &[usize]) -> anyhow::Result<Vec<f32>> {
        let mut out = Vec::with_capacity(indices.len() * FEATURES);
        for chunk in indices.chunks(1000) {
            let f = self.features_of_flat(&pixels(data, false, chunk)?)?;
            out.extend(f.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }
}
