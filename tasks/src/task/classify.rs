//! Image classification, shared by every classifier task: a model, one optimizer, epochs over
//! a data set in a seeded random order, optional augmentation (random crop with padding and
//! horizontal flip), per-channel normalisation, and evaluation of the test loss and top-1
//! accuracy. Batches are prepared on a background thread while the current one trains, from
//! the run's own seeded generator, so the sequence of batches is the same on every run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use candle::{DType, Device, ModuleT, Tensor, Var};
use models::{ParamBuilder, Params, SeededRng};
use optimizers::BoxedOptimizer;

use super::{Goal, Losses, MetricInfo, Metrics, Task, TaskContext, TaskState, MAIN};
pub use crate::data::batches::{Augment, Normalize};
use crate::data::batches::{Prefetcher, Sampler};
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

/// The number of trainable scalars of the net `build_net` makes: built on the CPU from a fixed
/// seed, without data (the count does not depend on either).
pub fn count_parameters(
    build_net: impl FnOnce(&ParamBuilder) -> anyhow::Result<Box<dyn ModuleT + Send + Sync>>,
) -> anyhow::Result<usize> {
    let params = Params::new(SeededRng::new(0).fork("init"), DType::F32, &Device::Cpu);
    build_net(&params.root())?;
    Ok(params.count())
}

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

    fn data(&self) -> Vec<super::DataRecord> {
        vec![self.train.data.record.clone()]
    }
}
