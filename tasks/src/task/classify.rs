//! Image classification, shared by every classifier task: a model, one optimizer, epochs over
//! a data set in a seeded order, optional augmentation (random crop with padding and
//! horizontal flip), per-channel normalisation, and evaluation of the test loss and top-1
//! accuracy, and of the same on a validation split held out from the training images
//! (`valid_size`, [`hold_out`]; `valid_loss`, `valid_accuracy`), on which reports select. Batches are prepared on a background thread while the current one trains, from
//! the run's own seeded generator, so the sequence of batches is the same on every run.
//!
//! Every classifier task declares the input-pipeline options of [`pipeline_options`]
//! (`normalize`, `order`, `drop_last`); their defaults are the PyTorch pipeline the suite had
//! before them, and the papers' configs turn on their authors' pipelines (see
//! [`crate::data::batches`] for what each one's code does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use candle::{DType, Device, ModuleT, Tensor, Var};
use models::{ParamBuilder, Params, SeededRng};
use optimizers::BoxedOptimizer;

use super::{Goal, Losses, MetricInfo, Metrics, OptionSpec, Task, TaskContext, TaskState, MAIN};
pub use crate::data::batches::{Augment, CropFill, CropOffsets, Normalize, Order};
use crate::data::batches::{Prefetcher, Sampler};
use crate::data::{self, DataSettings, ImageData};

/// The metrics every classifier reports, the primary first.
pub fn metrics() -> Vec<MetricInfo> {
    vec![MetricInfo::new("test_accuracy", Goal::Max), MetricInfo::new("test_loss", Goal::Min)]
}

/// The normalisations, for the `normalize` option of the tasks with per-channel constants.
pub const NORMALIZATIONS: &[&str] = &["constants", "scale", "standardize"];

/// The input-pipeline options every classifier task declares: `normalize` (one of `choices`,
/// `default` first), `order` and `drop_last`. Checked at plan time; read by [`Classifier::new`].
pub fn pipeline_options(choices: &'static [&'static str], default: &str) -> Vec<OptionSpec> {
    vec![
        OptionSpec::choice(
            "normalize",
            default,
            choices,
            "constants: (x/255 - mean)/std with the data set's per-channel constants; scale: x/255 only; \
             standardize: each split by its own per-channel mean and deviation (AdaShift's DenseNets)",
        ),
        OptionSpec::choice(
            "order",
            "shuffle",
            &["shuffle", "fixed", "stream"],
            "shuffle: a new permutation every epoch; fixed: one permutation drawn once, every epoch \
             (AdaShift's ResNet and CIFAR DenseNet); stream: batches cut across epochs, all full, \
             count / batch steps an epoch (TensorFlow's MNIST next_batch)",
        ),
        OptionSpec::new("drop_last", false, "end each epoch with its last full batch (the partial one skipped)"),
        OptionSpec::new(
            "valid_size",
            DEFAULT_VALID_SIZE as i64,
            "training images held out at random (from the run's seed) as a validation split, evaluated as \
             valid_loss / valid_accuracy, on which the report selects (10000 by default, as DeepOBS); \
             0: train on the whole training set (the papers' runs)",
        ),
    ]
}

/// DeepOBS's validation split size, which holds out as many training images as its test sets
/// have (10,000 for MNIST, Fashion-MNIST, CIFAR-10/100; Tiny-ImageNet's validation set, our test
/// split, also has 10,000): the `valid_size` option's default. The papers' configs set
/// `valid_size = 0`, as their authors trained on the whole training set.
pub const DEFAULT_VALID_SIZE: usize = 10_000;

/// The training images `range` split into a validation set of `valid_size` drawn at random from
/// `rng` and the training images left, each in increasing order. Random, not the last images:
/// the Tiny-ImageNet training split is stored class by class, so its last images are a few
/// classes only.
pub fn hold_out(range: std::ops::Range<usize>, valid_size: usize, rng: &mut SeededRng) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = rng.permutation(range.len()).into_iter().map(|i| range.start + i).collect();
    let mut train = order.split_off(valid_size.min(order.len()));
    order.sort_unstable();
    train.sort_unstable();
    (order, train)
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
    /// The data set's per-channel constants (`normalize = "constants"`).
    pub normalize: Normalize,
    /// The training split's images to train on (`None`: all; TensorFlow's MNIST split leaves
    /// out the first 5,000).
    pub train_images: Option<std::ops::Range<usize>>,
    /// Each input pixel the mean of a block this wide (1: the images as they are).
    pub downsample: usize,
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
    /// The held-out training images (`valid_size > 0`).
    valid: Option<Sampler>,
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
        let k = setup.downsample.max(1);
        anyhow::ensure!(
            d.height.is_multiple_of(k) && d.width.is_multiple_of(k),
            "task `{}`: downsample = {k} does not divide the {}x{} images of {}; use a divisor of both sides",
            ctx.info.name,
            d.height,
            d.width,
            d.name
        );
        let range = setup.train_images.clone().unwrap_or(0..d.train.count);
        anyhow::ensure!(
            range.end <= d.train.count,
            "task `{}`: training images {range:?} of a split of {}",
            ctx.info.name,
            d.train.count
        );
        let params = Params::new(SeededRng::new(ctx.seed).fork("init"), DType::F32, ctx.device);
        let net = build_net(&params.root(), &d)?;
        let trainable = params.trainable();
        let optimizer = ctx.build_optimizer(MAIN, trainable.clone())?;
        let valid_size = ctx.count("valid_size");
        anyhow::ensure!(
            valid_size < range.len(),
            "task `{}`: valid_size = {valid_size}{} holds out all {} training images of {}; set fewer in the \
             task's options, e.g. `options = {{ valid_size = {} }}` (0: no validation split)",
            ctx.info.name,
            if valid_size == DEFAULT_VALID_SIZE { " (the default, as DeepOBS)" } else { "" },
            range.len(),
            d.name,
            range.len() / 5
        );
        let (valid_images, train_images) = if valid_size > 0 {
            let (valid, train) = hold_out(range.clone(), valid_size, &mut SeededRng::new(ctx.seed).fork("valid-split"));
            (Some(Arc::new(valid)), Some(Arc::new(train)))
        } else {
            (None, None)
        };
        let train_count = subset(ctx.count("train_subset"), range.len() - valid_size);
        let test_count = subset(ctx.count("test_subset"), d.test.count);
        let batch_size = ctx.batch_size.unwrap_or(setup.default_batch_size);
        // Standardisation uses each split's statistics over all its images (not the subsets),
        // as the authors' code computes them on the arrays it loaded.
        let normalize = |test: bool| match ctx.string("normalize") {
            "scale" => Normalize::unit(d.channels),
            "standardize" if test => Normalize::standardize(&d, &d.test, 0, d.test.count, k),
            "standardize" => Normalize::standardize(&d, &d.train, range.start, range.len(), k),
            _ => setup.normalize.clone(),
        };
        let order = match ctx.string("order") {
            "fixed" => Order::Fixed,
            "stream" => Order::Stream,
            _ => Order::Shuffle,
        };
        let order_rng = SeededRng::new(ctx.seed).fork("data-order");
        let train = Sampler {
            first: range.start,
            augment: setup.augment,
            downsample: k,
            order,
            drop_last: ctx.flag("drop_last"),
            indices: train_images,
            ..Sampler::new(d.clone(), false, train_count, batch_size, normalize(false))
        };
        let eval = Sampler { downsample: k, ..Sampler::new(d.clone(), true, test_count, 500, normalize(true)) };
        // Training images: normalised as the training split.
        let valid = valid_images.map(|indices| Sampler {
            downsample: k,
            indices: Some(indices),
            ..Sampler::new(d.clone(), false, valid_size, 500, normalize(false))
        });
        Ok(Self {
            net,
            params,
            l2: setup.l2,
            penalized: if setup.l2 > 0.0 { trainable } else { Vec::new() },
            optimizer,
            batches: train.clone().spawn(order_rng.clone(), 0),
            steps_per_epoch: train.steps_per_epoch(),
            train,
            order: order_rng,
            eval,
            valid,
            device: ctx.device.clone(),
        })
    }

    fn tensors(&self, images: Vec<f32>, labels: Vec<u32>) -> candle::Result<(Tensor, Tensor)> {
        let (c, h, w) = self.eval.dims();
        let n = labels.len();
        let x = Tensor::from_vec(images, (n, c, h, w), &self.device)?;
        let y = Tensor::from_vec(labels, n, &self.device)?;
        Ok((x, y))
    }
}

impl Classifier {
    /// Top-1 accuracy and mean cross-entropy over the images of `sampler`, without augmentation.
    fn evaluate_on(&self, sampler: &Sampler) -> anyhow::Result<(f64, f64)> {
        let (mut loss_sum, mut correct) = (0.0f64, 0.0f64);
        let n = sampler.count;
        let (c, h, w) = sampler.dims();
        for start in (0..n).step_by(sampler.batch_size) {
            let chunk = start..(start + sampler.batch_size).min(n);
            let mut images = Vec::with_capacity(chunk.len() * c * h * w);
            for i in chunk.clone() {
                sampler.image_into(i, None, &mut images);
            }
            let labels = chunk.clone().map(|i| sampler.label(i)).collect();
            let (x, y) = self.tensors(images, labels)?;
            let logits = self.net.forward_t(&x, false)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            loss_sum += loss * chunk.len() as f64;
            let hits = logits.argmax(1)?.eq(&y)?.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
            correct += hits;
        }
        let n = n.max(1) as f64;
        Ok((correct / n, loss_sum / n))
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
        let (accuracy, loss) = self.evaluate_on(&self.eval)?;
        let mut metrics = vec![("test_accuracy".into(), accuracy), ("test_loss".into(), loss)];
        if let Some(valid) = &self.valid {
            let (accuracy, loss) = self.evaluate_on(valid)?;
            metrics.extend([("valid_accuracy".into(), accuracy), ("valid_loss".into(), loss)]);
        }
        Ok(metrics)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use optimizers::HyperValue;

    use crate::task::find;

    #[test]
    fn pipeline_options_are_declared_with_todays_defaults_and_checked_at_plan_time() {
        for name in
            ["cifar10-resnet18", "cifar100-densenet-adashift", "tinyimagenet-densenet", "mnist-mlp", "mnist-logreg"]
        {
            let info = find(name).unwrap();
            let resolved = info.resolve_options(&BTreeMap::new()).unwrap();
            let normalize = if name.starts_with("mnist") { "scale" } else { "constants" };
            assert_eq!(resolved["normalize"], HyperValue::Str(normalize.into()), "{name}");
            assert_eq!(resolved["order"], HyperValue::Str("shuffle".into()), "{name}");
            assert_eq!(resolved["drop_last"], HyperValue::Bool(false), "{name}");
            assert_eq!(resolved.contains_key("downsample"), name.starts_with("tiny"), "{name}");
            assert_eq!(resolved.contains_key("split"), name.starts_with("mnist"), "{name}");
            for (key, bad) in [("normalize", "bogus"), ("order", "sorted")] {
                let given = BTreeMap::from([(key.to_string(), HyperValue::Str(bad.into()))]);
                let (at, message) = info.resolve_options(&given).unwrap_err();
                assert_eq!(at, key);
                assert!(message.contains("must be one of"), "{message}");
            }
        }
        let mnist = find("mnist-mlp").unwrap();
        let constants = BTreeMap::from([("normalize".to_string(), HyperValue::Str("constants".into()))]);
        assert!(mnist.resolve_options(&constants).is_err(), "MNIST has no per-channel constants");
        let tiny = find("tinyimagenet-densenet").unwrap();
        let zero = BTreeMap::from([("downsample".to_string(), HyperValue::Int(0))]);
        assert!(tiny.resolve_options(&zero).is_err());
        let fill = BTreeMap::from([("crop_fill".to_string(), HyperValue::Str("normalized".into()))]);
        assert!(tiny.resolve_options(&fill).is_ok());
        assert_eq!(
            tiny.resolve_options(&BTreeMap::new()).unwrap()["valid_size"],
            HyperValue::Int(super::DEFAULT_VALID_SIZE as i64)
        );
    }

    #[test]
    fn the_validation_split_is_drawn_from_the_seed_and_disjoint_from_the_training_images() {
        use super::hold_out;
        use models::SeededRng;
        let split = |seed| hold_out(100..1100, 200, &mut SeededRng::new(seed).fork("valid-split"));
        let (valid, train) = split(3);
        assert_eq!((valid.len(), train.len()), (200, 800));
        let mut all: Vec<usize> = valid.iter().chain(&train).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (100..1100).collect::<Vec<_>>(), "every image once, in one of the two");
        assert!(valid.windows(2).all(|w| w[0] < w[1]) && train.windows(2).all(|w| w[0] < w[1]));
        assert!(valid.iter().any(|&i| i < 600) && valid.iter().any(|&i| i >= 600), "not a block: {valid:?}");
        assert_eq!(split(3), (valid.clone(), train), "the same seed, the same split");
        assert_ne!(split(4).0, valid, "another seed, another split");
        assert_eq!(hold_out(0..10, 0, &mut SeededRng::new(0)), (vec![], (0..10).collect()));
    }
}
