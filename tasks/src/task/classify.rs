//! Image classification, shared by every classifier task: a model, one optimizer, epochs over
//! a data set in a seeded random order, optional augmentation (random crop with padding and
//! horizontal flip), per-channel normalisation, and evaluation of the test loss and top-1
//! accuracy. Batches are prepared on a background thread while the current one trains, from
//! the run's own seeded generator, so the sequence of batches is the same on every run.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::JoinHandle;

use candle::{DType, Device, ModuleT, Tensor, Var};
use models::{ParamBuilder, Params, SeededRng};
use optimizers::BoxedOptimizer;

use super::{Goal, Losses, MetricInfo, Metrics, Task, TaskContext, TaskState, MAIN};
use crate::data::{self, DataSettings, ImageData};

/// The metrics every classifier reports, the primary first.
pub fn metrics() -> Vec<MetricInfo> {
    vec![MetricInfo::new("test_accuracy", Goal::Max), MetricInfo::new("test_loss", Goal::Min)]
}

/// Loads an image data set once per process while some task holds it (a sweep's runs share
/// it, also across `--jobs` threads).
pub fn shared_images(name: &str, settings: &DataSettings) -> anyhow::Result<Arc<ImageData>> {
    static LOADED: OnceLock<Mutex<HashMap<String, Weak<ImageData>>>> = OnceLock::new();
    let key = format!("{name} {settings:?}");
    let mut loaded = LOADED.get_or_init(Default::default).lock().expect("data lock");
    if let Some(data) = loaded.get(&key).and_then(Weak::upgrade) {
        return Ok(data);
    }
    let data = Arc::new(data::load_images(name, settings)?);
    loaded.insert(key, Arc::downgrade(&data));
    Ok(data)
}

/// Random crop with zero padding, and horizontal flip (the CIFAR augmentation of the papers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    pub crop_padding: usize,
    pub flip: bool,
}

/// Per-channel `(x / 255 - mean) / std`.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalize {
    /// Pixels scaled to [0, 1] only.
    pub fn unit(channels: usize) -> Self {
        Self { mean: vec![0.0; channels], std: vec![1.0; channels] }
    }
}

/// One batch on the host.
struct Batch {
    images: Vec<f32>,
    labels: Vec<u32>,
}

/// The background thread that prepares training batches, epoch after epoch.
struct Prefetcher {
    batches: Receiver<Batch>,
    _worker: JoinHandle<()>,
}

/// How to cut one image out of a split, with augmentation.
#[derive(Clone)]
struct Sampler {
    data: Arc<ImageData>,
    /// Reads the test split (else the training split).
    test: bool,
    count: usize,
    batch_size: usize,
    augment: Option<Augment>,
    normalize: Normalize,
}

impl Sampler {
    fn image_into(&self, index: usize, rng: Option<&mut SeededRng>, out: &mut Vec<f32>) {
        let d = &self.data;
        let (c, h, w) = (d.channels, d.height, d.width);
        let split = if self.test { &d.test } else { &d.train };
        let pixels = &split.images[index * c * h * w..(index + 1) * c * h * w];
        let (mut dy, mut dx, mut flip) = (0isize, 0isize, false);
        if let (Some(aug), Some(rng)) = (self.augment, rng) {
            let p = aug.crop_padding as isize;
            if p > 0 {
                dy = rng.below(2 * p as usize + 1) as isize - p;
                dx = rng.below(2 * p as usize + 1) as isize - p;
            }
            flip = aug.flip && rng.bernoulli(0.5);
        }
        for ch in 0..c {
            let (mean, std) = (self.normalize.mean[ch], self.normalize.std[ch]);
            let zero = (0.0 - mean) / std;
            let plane = &pixels[ch * h * w..(ch + 1) * h * w];
            for y in 0..h {
                let sy = y as isize + dy;
                for x in 0..w {
                    let xx = if flip { w - 1 - x } else { x };
                    let sx = xx as isize + dx;
                    let v = if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                        zero
                    } else {
                        (plane[sy as usize * w + sx as usize] as f32 / 255.0 - mean) / std
                    };
                    out.push(v);
                }
            }
        }
    }

    /// Consumes the random numbers that [`Sampler::image_into`] draws for one image, without
    /// making it.
    fn skip_image(&self, rng: &mut SeededRng) {
        if let Some(aug) = self.augment {
            let p = aug.crop_padding;
            if p > 0 {
                rng.below(2 * p + 1);
                rng.below(2 * p + 1);
            }
            if aug.flip {
                rng.bernoulli(0.5);
            }
        }
    }

    /// The batches, epoch after epoch, from `rng`; the first `skip` batches are passed over
    /// (their random numbers drawn, their images not made), so that a resumed run continues
    /// with the batch it would have had.
    fn spawn(self, mut rng: SeededRng, mut skip: u64) -> Prefetcher {
        let (tx, rx) = sync_channel(3);
        let worker = std::thread::Builder::new()
            .name("optbench-batches".into())
            .spawn(move || loop {
                let order = rng.permutation(self.count);
                for chunk in order.chunks(self.batch_size) {
                    if skip > 0 {
                        skip -= 1;
                        chunk.iter().for_each(|_| self.skip_image(&mut rng));
                        continue;
                    }
                    let d = &self.data;
                    let mut images = Vec::with_capacity(chunk.len() * d.channels * d.height * d.width);
                    let mut labels = Vec::with_capacity(chunk.len());
                    for &i in chunk {
                        self.image_into(i, Some(&mut rng), &mut images);
                        labels.push(d.train.labels[i]);
                    }
                    if tx.send(Batch { images, labels }).is_err() {
                        return; // the task is gone
                    }
                }
            })
            .expect("spawning the batch thread");
        Prefetcher { batches: rx, _worker: worker }
    }
}

/// What a classifier task chooses; the run gives the rest (seed, device, optimizer, batch
/// size, and the `train_subset` / `test_subset` options: the first N images, 0 for all).
pub struct ClassifierSetup {
    pub data: Arc<ImageData>,
    /// The batch size when the config sets none.
    pub default_batch_size: usize,
    pub augment: Option<Augment>,
    pub normalize: Normalize,
    /// An L2 term `l2 / 2 * sum(w²)` added to the loss (0: none). The reported training loss
    /// stays the cross-entropy.
    pub l2: f64,
}

/// A network built on a run's parameters, for a data set.
pub type BuildNet<'a> = &'a dyn Fn(&ParamBuilder, &ImageData) -> anyhow::Result<Box<dyn ModuleT + Send + Sync>>;

/// A classifier being trained.
pub struct Classifier {
    net: Box<dyn ModuleT + Send + Sync>,
    params: Params,
    l2: f64,
    /// The variables of the L2 term (the trainable ones when `l2 > 0`).
    penalized: Vec<Var>,
    optimizer: BoxedOptimizer,
    batches: Prefetcher,
    /// What makes the training batches, and its generator at step 0 (to start again anywhere).
    train: Sampler,
    order: SeededRng,
    eval: Sampler,
    steps_per_epoch: u64,
    device: Device,
}

fn subset(n: usize, available: usize) -> usize {
    if n == 0 {
        available
    } else {
        n.min(available)
    }
}

impl Classifier {
    /// The classifier of a run: the net built on parameters drawn from the run's seed, the
    /// run's optimizer over them, batches in the run's seeded order.
    pub fn new(ctx: &TaskContext, setup: ClassifierSetup, build_net: BuildNet) -> anyhow::Result<Self> {
        let d = setup.data;
        anyhow::ensure!(setup.normalize.mean.len() == d.channels, "normalisation for {} channels", d.channels);
        let params = Params::new(SeededRng::new(ctx.seed).fork("init"), DType::F32, ctx.device);
        let net = build_net(&params.root(), &d)?;
        let trainable = params.trainable();
        let optimizer = ctx.build_optimizer(MAIN, trainable.clone())?;
        let train_count = subset(ctx.count("train_subset"), d.train.count);
        let test_count = subset(ctx.count("test_subset"), d.test.count);
        let batch_size = ctx.batch_size.unwrap_or(setup.default_batch_size);
        let steps_per_epoch = train_count.div_ceil(batch_size) as u64;
        let order = SeededRng::new(ctx.seed).fork("data-order");
        let train = Sampler {
            data: d.clone(),
            test: false,
            count: train_count,
            batch_size,
            augment: setup.augment,
            normalize: setup.normalize.clone(),
        };
        let eval = Sampler {
            data: d,
            test: true,
            count: test_count,
            batch_size: 500,
            augment: None,
            normalize: setup.normalize,
        };
        Ok(Self {
            net,
            params,
            l2: setup.l2,
            penalized: if setup.l2 > 0.0 { trainable } else { Vec::new() },
            optimizer,
            batches: train.clone().spawn(order.clone(), 0),
            train,
            order,
            eval,
            steps_per_epoch,
            device: ctx.device.clone(),
        })
    }

    fn tensors(&self, images: Vec<f32>, labels: Vec<u32>) -> candle::Result<(Tensor, Tensor)> {
        let d = &self.eval.data;
        let n = labels.len();
        let x = Tensor::from_vec(images, (n, d.channels, d.height, d.width), &self.device)?;
        let y = Tensor::from_vec(labels, n, &self.device)?;
        Ok((x, y))
    }
}

impl Task for Classifier {
    fn steps_per_epoch(&self) -> Option<u64> {
        Some(self.steps_per_epoch)
    }

    fn optimizers(&mut self) -> Vec<(&'static str, &mut BoxedOptimizer)> {
        vec![(MAIN, &mut self.optimizer)]
    }

    fn train_step(&mut self, _step: u64) -> anyhow::Result<Losses> {
        let batch = self.batches.batches.recv().map_err(|_| anyhow::anyhow!("the batch thread stopped"))?;
        let (x, y) = self.tensors(batch.images, batch.labels)?;
        let logits = self.net.forward_t(&x, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        if self.l2 > 0.0 {
            let mut penalty = loss.zeros_like()?;
            for var in &self.penalized {
                penalty = (penalty + var.as_tensor().sqr()?.sum_all()?)?;
            }
            self.optimizer.backward_step(&(&loss + penalty.affine(self.l2 / 2.0, 0.0)?)?)?;
        } else {
            self.optimizer.backward_step(&loss)?;
        }
        Ok(vec![("loss", loss.to_dtype(DType::F64)?.to_scalar::<f64>()?)])
    }

    fn evaluate(&mut self) -> anyhow::Result<Metrics> {
        let (mut loss_sum, mut correct) = (0.0f64, 0.0f64);
        let (d, n) = (self.eval.data.clone(), self.eval.count);
        for start in (0..n).step_by(self.eval.batch_size) {
            let chunk = start..(start + self.eval.batch_size).min(n);
            let mut images = Vec::with_capacity(chunk.len() * d.channels * d.height * d.width);
            for i in chunk.clone() {
                self.eval.image_into(i, None, &mut images);
            }
            let labels = d.test.labels[chunk.clone()].to_vec();
            let (x, y) = self.tensors(images, labels)?;
            let logits = self.net.forward_t(&x, false)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            loss_sum += loss * chunk.len() as f64;
            let hits = logits.argmax(1)?.eq(&y)?.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
            correct += hits;
        }
        let n = n.max(1) as f64;
        Ok(vec![("test_accuracy".into(), correct / n), ("test_loss".into(), loss_sum / n)])
    }

    fn state(&self, _step: u64) -> anyhow::Result<TaskState> {
        // The data position is the step itself: the batches of a restored run start there.
        Ok(super::model_state(&self.params))
    }

    fn restore(&mut self, state: &TaskState, step: u64) -> anyhow::Result<()> {
        super::restore_model(&self.params, state)?;
        self.batches = self.train.clone().spawn(self.order.clone(), step);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageSplit;

    fn tiny() -> Arc<ImageData> {
        let split = |n: usize| ImageSplit {
            count: n,
            images: (0..n * 3 * 4 * 4).map(|i| (i % 256) as u8).collect(),
            labels: (0..n as u32).map(|i| i % 2).collect(),
            coarse_labels: None,
        };
        Arc::new(ImageData {
            name: "tiny".into(),
            source: "test".into(),
            channels: 3,
            height: 4,
            width: 4,
            classes: 2,
            train: split(5),
            test: split(2),
        })
    }

    #[test]
    fn crops_flips_and_normalisation() {
        let s = Sampler {
            data: tiny(),
            test: false,
            count: 5,
            batch_size: 2,
            augment: None,
            normalize: Normalize { mean: vec![0.5; 3], std: vec![0.5; 3] },
        };
        let mut plain = Vec::new();
        s.image_into(0, None, &mut plain);
        assert_eq!(plain.len(), 48);
        assert_eq!(plain[0], -1.0);
        assert!((plain[1] - (1.0 / 255.0 - 0.5) / 0.5).abs() < 1e-6);
        // Flip only: row 0 reversed.
        let flip = Sampler { augment: Some(Augment { crop_padding: 0, flip: true }), ..s };
        let mut rng = SeededRng::new(1);
        let mut seen_flip = false;
        for _ in 0..8 {
            let mut out = Vec::new();
            flip.image_into(0, Some(&mut rng), &mut out);
            if out != plain {
                seen_flip = true;
                assert_eq!(out[0], plain[3]);
                assert_eq!(out[3], plain[0]);
            }
        }
        assert!(seen_flip);
        // Crops shift with zero (normalised) padding.
        let crop = Sampler { augment: Some(Augment { crop_padding: 1, flip: false }), ..flip };
        let mut rng = SeededRng::new(3);
        let mut shifted = false;
        for _ in 0..16 {
            let mut out = Vec::new();
            crop.image_into(1, Some(&mut rng), &mut out);
            shifted |= out.contains(&-1.0) && out.len() == 48;
        }
        assert!(shifted, "padding appears when the crop is shifted");
    }

    #[test]
    fn every_image_once_per_epoch_in_a_seeded_order() {
        let sampler = || Sampler {
            data: tiny(),
            test: false,
            count: 5,
            batch_size: 2,
            augment: None,
            normalize: Normalize::unit(3),
        };
        let p = sampler().spawn(SeededRng::new(9), 0);
        let sizes: Vec<usize> = (0..3).map(|_| p.batches.recv().unwrap().labels.len()).collect();
        assert_eq!(sizes, [2, 2, 1], "the last batch of an epoch is partial, like PyTorch's DataLoader");
        let a: Vec<Vec<f32>> = (0..3).map(|_| p.batches.recv().unwrap().images).collect();
        let p2 = sampler().spawn(SeededRng::new(9), 0);
        for _ in 0..3 {
            p2.batches.recv().unwrap();
        }
        let b: Vec<Vec<f32>> = (0..3).map(|_| p2.batches.recv().unwrap().images).collect();
        assert_eq!(a, b, "the same seed gives the same batches");
    }

    #[test]
    fn skipped_batches_leave_the_order_and_augmentation_as_they_were() {
        let sampler = || Sampler {
            data: tiny(),
            test: false,
            count: 5,
            batch_size: 2,
            augment: Some(Augment { crop_padding: 1, flip: true }),
            normalize: Normalize::unit(3),
        };
        let whole = sampler().spawn(SeededRng::new(4), 0);
        let all: Vec<(Vec<f32>, Vec<u32>)> =
            (0..8).map(|_| whole.batches.recv().map(|b| (b.images, b.labels)).unwrap()).collect();
        // From the middle of the second epoch (batch 4 of 3 per epoch).
        let resumed = sampler().spawn(SeededRng::new(4), 4);
        let rest: Vec<(Vec<f32>, Vec<u32>)> =
            (0..4).map(|_| resumed.batches.recv().map(|b| (b.images, b.labels)).unwrap()).collect();
        assert_eq!(rest, all[4..]);
    }
}
