//! The batch pipeline of the classifiers: a [`Sampler`] cuts images out of a split (optionally
//! downsampled by block means, with optional augmentation: random crop with padding and
//! horizontal flip) and normalises them per channel; [`Sampler::spawn`] starts the background
//! thread that prepares training batches, epoch after epoch, in an [`Order`] drawn from the
//! run's own seeded generator, so the sequence of batches is the same on every run.
//!
//! The papers' pipelines differ in details that these pieces name (AdaShift's TensorFlow code,
//! repository `mknbv/adashift`, commit bf86b02, under `author_code_base/`):
//! - `ResNet-CIFAR10/utils.py`: pixels divided by 255 only, one permutation of the training set
//!   drawn once (`np.random.seed(777)`) and read in that order every epoch, `len // batch_size`
//!   steps (the partial last batch never seen), flip then crop with zero padding of 4 in [0, 1]
//!   space (a black border, [`CropFill::Input`]).
//! - `Densenet-Tensorflow/Cifar10/cifar10.py` and `Densenet_Cifar10.py`: per-channel
//!   standardisation of each split by its own statistics (`color_preprocessing`), one
//!   permutation drawn once (`prepare_data`), `50000 // 64` steps, and flip and crop applied to
//!   the standardised arrays, so the padding is the normalised 0 ([`CropFill::Normalized`]).
//! - `densenet_tiny_imagenet/data_providers/cifar.py` (`TinyDataProvider`, `CifarDataSet`,
//!   `augment_image`): images averaged over 2x2 blocks to 32x32 before anything else,
//!   standardised per channel by each split's own statistics (`base_provider.py`,
//!   `by_chanels`), reshuffled every epoch, the partial last batch dropped (`next_batch` starts
//!   a new epoch instead), flip then crop of the standardised image padded by 4 with offsets
//!   from `np.random.randint(0, 2 * pad)`, that is -4..=3, not -4..=4 ([`CropOffsets::Exclusive`]).
//!   Its evaluation (`models/dense_net.py`, `test`) also drops the partial batch: it sees the
//!   first 9,984 of the 10,000 test images (the task's `test_subset = 9984`).
//! - TensorFlow's MNIST reader (`tensorflow/contrib/learn/python/learn/datasets/mnist.py`,
//!   `DataSet.next_batch`), used by the MNIST experiments: a new permutation every epoch, and a
//!   batch that crosses the end of an epoch made of the epoch's rest and the next epoch's start
//!   ([`Order::Stream`]); the loops run `int(num_examples / batch_size)` steps an epoch.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use models::SeededRng;

use super::{ImageData, ImageSplit};

/// Random crop with padding, and horizontal flip (the CIFAR augmentation of the papers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    pub crop_padding: usize,
    pub flip: bool,
    pub fill: CropFill,
    pub offsets: CropOffsets,
}

impl Augment {
    /// Crop and flip as torchvision's `RandomCrop(32, padding)` and `RandomHorizontalFlip()`.
    pub fn torchvision(crop_padding: usize, flip: bool) -> Self {
        Self { crop_padding, flip, fill: CropFill::Input, offsets: CropOffsets::Inclusive }
    }
}

/// What the random crop's padding holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CropFill {
    /// Pixels of value 0 before normalisation (a black border): torchvision's `RandomCrop`
    /// pads the image before `ToTensor` and `Normalize`, AdaShift's ResNet the [0, 1] array.
    Input,
    /// 0 after normalisation (the channel's mean under standardisation): AdaShift's DenseNets
    /// pad the standardised arrays.
    Normalized,
}

/// The range of the random crop's offsets, for a padding `p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CropOffsets {
    /// `-p..=p` in each direction (torchvision; `random.randint(0, 2p)` in AdaShift's ResNet and
    /// CIFAR DenseNet).
    Inclusive,
    /// `-p..p` (`np.random.randint(0, 2p)`, exclusive) applied after the flip, as AdaShift's
    /// Tiny-ImageNet DenseNet: the crop never reaches the last row and column of the padding.
    Exclusive,
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

    /// Standardisation of the images `first..first + count` of `split` (downsampled by
    /// `downsample`) by their own per-channel mean and standard deviation (over all images and
    /// pixels of a channel, the population deviation: numpy's `np.std`), as AdaShift's DenseNet
    /// code does for each split separately.
    pub fn standardize(data: &ImageData, split: &ImageSplit, first: usize, count: usize, downsample: usize) -> Self {
        let (c, h, w) = (data.channels, data.height, data.width);
        let (ho, wo) = (h / downsample, w / downsample);
        let (mut mean, mut std) = (Vec::with_capacity(c), Vec::with_capacity(c));
        for ch in 0..c {
            let values = || {
                (first..first + count).flat_map(move |i| {
                    let plane = &split.images[(i * c + ch) * h * w..(i * c + ch + 1) * h * w];
                    (0..ho * wo).map(move |j| block_mean(plane, w, downsample, j / wo, j % wo))
                })
            };
            let n = (count * ho * wo).max(1) as f64;
            let m = values().map(|v| v as f64).sum::<f64>() / n;
            let var = values().map(|v| (v as f64 - m).powi(2)).sum::<f64>() / n;
            mean.push((m / 255.0) as f32);
            std.push(((var.sqrt() / 255.0) as f32).max(f32::MIN_POSITIVE));
        }
        Self { mean, std }
    }
}

/// The mean of the `k` x `k` block at (`y`, `x`) of the downsampled plane (the pixel itself
/// when `k` is 1), in pixel units.
#[inline]
fn block_mean(plane: &[u8], w: usize, k: usize, y: usize, x: usize) -> f32 {
    if k == 1 {
        return plane[y * w + x] as f32;
    }
    let mut sum = 0u32;
    for dy in 0..k {
        let row = &plane[(y * k + dy) * w + x * k..][..k];
        sum += row.iter().map(|&v| v as u32).sum::<u32>();
    }
    sum as f32 / (k * k) as f32
}

/// The order of the training images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// A new seeded permutation every epoch (PyTorch's `DataLoader(shuffle=True)`).
    Shuffle,
    /// One seeded permutation, drawn once and read in that order every epoch (AdaShift's
    /// ResNet and CIFAR DenseNet code shuffle the arrays once before training).
    Fixed,
    /// A new permutation every epoch, batches cut from the endless sequence of epochs, so that
    /// every batch is full and one may span two epochs (TensorFlow's MNIST `next_batch`); an
    /// epoch counts `count / batch_size` steps, rounded down.
    Stream,
}

/// One batch on the host.
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
}

/// The background thread that prepares training batches, epoch after epoch.
pub struct Prefetcher {
    pub batches: Receiver<Batch>,
    _worker: JoinHandle<()>,
}

/// How to cut one image out of a split, with augmentation, and in which order.
#[derive(Clone)]
pub struct Sampler {
    pub data: Arc<ImageData>,
    /// Reads the test split (else the training split).
    pub test: bool,
    /// The split's images `first..first + count` (image `i` of the sampler is `first + i`).
    pub first: usize,
    pub count: usize,
    /// The split's images the sampler reads, in its order (`None`: `first..first + count`);
    /// image `i` of the sampler is `indices[i]`. A validation split held out at random from
    /// the training images, and the training images left, are each such a list.
    pub indices: Option<Arc<Vec<usize>>>,
    pub batch_size: usize,
    pub augment: Option<Augment>,
    pub normalize: Normalize,
    /// Each output pixel the mean of a `downsample` x `downsample` block (1: the image as is).
    pub downsample: usize,
    pub order: Order,
    /// Epochs end with the last full batch (the partial one's images are not seen that epoch).
    pub drop_last: bool,
}

impl Sampler {
    /// A sampler of the split's first `count` images in a shuffled order, with everything else
    /// as it comes (no offset, no downsampling, the partial last batch kept).
    pub fn new(data: Arc<ImageData>, test: bool, count: usize, batch_size: usize, normalize: Normalize) -> Self {
        Self {
            data,
            test,
            first: 0,
            count,
            indices: None,
            batch_size,
            augment: None,
            normalize,
            downsample: 1,
            order: Order::Shuffle,
            drop_last: false,
        }
    }

    fn split(&self) -> &ImageSplit {
        if self.test {
            &self.data.test
        } else {
            &self.data.train
        }
    }

    /// (channels, height, width) of the images it makes.
    pub fn dims(&self) -> (usize, usize, usize) {
        let d = &self.data;
        (d.channels, d.height / self.downsample, d.width / self.downsample)
    }

    /// The label of image `index`.
    pub fn label(&self, index: usize) -> u32 {
        self.split().labels[self.position(index)]
    }

    /// Where image `index` of the sampler is in its split.
    fn position(&self, index: usize) -> usize {
        match &self.indices {
            Some(indices) => indices[index],
            None => self.first + index,
        }
    }

    /// Training steps in one epoch.
    /// Training steps in one epoch: full batches only with [`Order::Stream`] or `drop_last`
    /// (at least one: a set smaller than a batch is one partial batch).
    pub fn steps_per_epoch(&self) -> u64 {
        let full = (self.count / self.batch_size) as u64;
        match self.order {
            Order::Stream => full.max(1),
            _ if self.drop_last => full.max(1),
            _ => self.count.div_ceil(self.batch_size) as u64,
        }
    }

    /// The crop offsets and flip of one image (none without a generator or augmentation).
    fn draw(&self, rng: Option<&mut SeededRng>) -> (isize, isize, bool) {
        let (Some(aug), Some(rng)) = (self.augment, rng) else { return (0, 0, false) };
        let p = aug.crop_padding as isize;
        let (mut dy, mut dx) = (0, 0);
        if p > 0 {
            let span = match aug.offsets {
                CropOffsets::Inclusive => 2 * p as usize + 1,
                CropOffsets::Exclusive => 2 * p as usize,
            };
            dy = rng.below(span) as isize - p;
            dx = rng.below(span) as isize - p;
        }
        (dy, dx, aug.flip && rng.bernoulli(0.5))
    }

    /// Appends image `index`, augmented when a generator is given, normalised, in CHW order.
    pub fn image_into(&self, index: usize, rng: Option<&mut SeededRng>, out: &mut Vec<f32>) {
        let d = &self.data;
        let (c, h, w) = (d.channels, d.height, d.width);
        let (_, ho, wo) = self.dims();
        let k = self.downsample;
        let index = self.position(index);
        let pixels = &self.split().images[index * c * h * w..(index + 1) * c * h * w];
        let (dy, dx, flip) = self.draw(rng);
        let (fill, offsets) = self.augment.map_or((CropFill::Input, CropOffsets::Inclusive), |a| (a.fill, a.offsets));
        for ch in 0..c {
            let (mean, std) = (self.normalize.mean[ch], self.normalize.std[ch]);
            let pad = match fill {
                CropFill::Input => (0.0 - mean) / std,
                CropFill::Normalized => 0.0,
            };
            let plane = &pixels[ch * h * w..(ch + 1) * h * w];
            for y in 0..ho {
                let sy = y as isize + dy;
                for x in 0..wo {
                    let sx = match (flip, offsets) {
                        (false, _) => x as isize + dx,
                        // Crop of the flipped image by (dy, dx), as the code that flips first.
                        (true, CropOffsets::Exclusive) => wo as isize - 1 - (x as isize + dx),
                        (true, CropOffsets::Inclusive) => (wo - 1 - x) as isize + dx,
                    };
                    let v = if sy < 0 || sx < 0 || sy >= ho as isize || sx >= wo as isize {
                        pad
                    } else {
                        (block_mean(plane, w, k, sy as usize, sx as usize) / 255.0 - mean) / std
                    };
                    out.push(v);
                }
            }
        }
    }

    /// Consumes the random numbers that [`Sampler::image_into`] draws for one image, without
    /// making it.
    fn skip_image(&self, rng: &mut SeededRng) {
        self.draw(Some(rng));
    }

    /// Starts the batch thread: epoch after epoch, the images in the sampler's [`Order`] cut
    /// into batches. The first `skip` batches are passed over (their random numbers drawn,
    /// their images not made), so that a resumed run continues with the batch it would have had.
    pub fn spawn(self, mut rng: SeededRng, mut skip: u64) -> Prefetcher {
        let (tx, rx) = sync_channel(3);
        let worker = std::thread::Builder::new()
            .name("optbench-batches".into())
            .spawn(move || {
                let mut order = Batches::new(&self);
                loop {
                    let chunk = order.next(&mut rng);
                    if skip > 0 {
                        skip -= 1;
                        chunk.iter().for_each(|_| self.skip_image(&mut rng));
                        continue;
                    }
                    let (c, h, w) = self.dims();
                    let mut images = Vec::with_capacity(chunk.len() * c * h * w);
                    let mut labels = Vec::with_capacity(chunk.len());
                    for &i in &chunk {
                        self.image_into(i, Some(&mut rng), &mut images);
                        labels.push(self.label(i));
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

/// The image indices of the training batches, one batch at a time, drawing each permutation
/// from the batch generator when its epoch starts (so that the default order draws exactly as
/// a permutation per epoch followed by that epoch's augmentation).
struct Batches {
    order: Order,
    count: usize,
    batch_size: usize,
    drop_last: bool,
    /// The current epoch's permutation and the position in it.
    epoch: Vec<usize>,
    at: usize,
    /// The permutation of [`Order::Fixed`], once drawn.
    fixed: Option<Vec<usize>>,
}

impl Batches {
    fn new(s: &Sampler) -> Self {
        Self {
            order: s.order,
            count: s.count,
            batch_size: s.batch_size.max(1),
            drop_last: s.drop_last,
            epoch: Vec::new(),
            at: 0,
            fixed: None,
        }
    }

    fn start_epoch(&mut self, rng: &mut SeededRng) {
        self.epoch = match self.order {
            Order::Fixed => self.fixed.get_or_insert_with(|| rng.permutation(self.count)).clone(),
            Order::Shuffle | Order::Stream => rng.permutation(self.count),
        };
        self.at = 0;
    }

    fn next(&mut self, rng: &mut SeededRng) -> Vec<usize> {
        if self.order == Order::Stream {
            let mut batch = Vec::with_capacity(self.batch_size);
            while batch.len() < self.batch_size && self.count > 0 {
                if self.at == self.epoch.len() {
                    self.start_epoch(rng);
                }
                let take = (self.batch_size - batch.len()).min(self.epoch.len() - self.at);
                batch.extend_from_slice(&self.epoch[self.at..self.at + take]);
                self.at += take;
            }
            return batch;
        }
        let left = self.epoch.len() - self.at;
        if left == 0 || (self.drop_last && left < self.batch_size && self.count >= self.batch_size) {
            self.start_epoch(rng);
        }
        let take = self.batch_size.min(self.epoch.len() - self.at);
        let batch = self.epoch[self.at..self.at + take].to_vec();
        self.at += take;
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            record: crate::data::DataRecord::in_memory("tiny"),
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
        let s = Sampler::new(tiny(), false, 5, 2, Normalize { mean: vec![0.5; 3], std: vec![0.5; 3] });
        let mut plain = Vec::new();
        s.image_into(0, None, &mut plain);
        assert_eq!(plain.len(), 48);
        assert_eq!(plain[0], -1.0);
        assert!((plain[1] - (1.0 / 255.0 - 0.5) / 0.5).abs() < 1e-6);
        // Flip only: row 0 reversed.
        let flip = Sampler { augment: Some(Augment::torchvision(0, true)), ..s };
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
        let crop = Sampler { augment: Some(Augment::torchvision(1, false)), ..flip };
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
        let sampler = || Sampler::new(tiny(), false, 5, 2, Normalize::unit(3));
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
        for (order, drop_last) in [(Order::Shuffle, false), (Order::Fixed, true), (Order::Stream, false)] {
            let sampler = || Sampler {
                augment: Some(Augment::torchvision(1, true)),
                order,
                drop_last,
                ..Sampler::new(tiny(), false, 5, 2, Normalize::unit(3))
            };
            let all = batches(&sampler().spawn(SeededRng::new(4), 0), 8);
            // From the middle of the second epoch (batch 4).
            assert_eq!(batches(&sampler().spawn(SeededRng::new(4), 4), 4), all[4..], "{order:?}");
        }
    }

    fn batches(p: &Prefetcher, n: usize) -> Vec<(Vec<f32>, Vec<u32>)> {
        (0..n).map(|_| p.batches.recv().map(|b| (b.images, b.labels)).unwrap()).collect()
    }

    /// Eleven 3x4x4 images whose label is their index.
    fn eleven() -> Arc<ImageData> {
        let split = |n: usize| ImageSplit {
            count: n,
            images: (0..n * 3 * 4 * 4).map(|i| ((i * 37) % 256) as u8).collect(),
            labels: (0..n as u32).collect(),
            coarse_labels: None,
        };
        Arc::new(ImageData {
            name: "eleven".into(),
            source: "test".into(),
            record: crate::data::DataRecord::in_memory("eleven"),
            channels: 3,
            height: 4,
            width: 4,
            classes: 11,
            train: split(11),
            test: split(3),
        })
    }

    #[test]
    fn the_default_pipeline_gives_the_batches_it_gave_before_the_options() {
        // Recorded from the pipeline before the options existed (commit 806e2d4): labels and a
        // weighted sum of each batch's pixels, for a seed, crop 1 and flip, batches of 4.
        let before: [(&[u32], f64); 7] = [
            (&[2, 0, 10, 8], -727.813073),
            (&[1, 7, 5, 3], -870.887585),
            (&[6, 4, 9], -329.505876),
            (&[2, 10, 1, 7], -759.503268),
            (&[6, 5, 9, 8], -566.088889),
            (&[3, 4, 0], -546.511115),
            (&[4, 6, 3, 8], -471.973860),
        ];
        let normalize = Normalize { mean: vec![0.4, 0.5, 0.6], std: vec![0.2, 0.25, 0.3] };
        let s =
            Sampler { augment: Some(Augment::torchvision(1, true)), ..Sampler::new(eleven(), false, 11, 4, normalize) };
        assert_eq!(s.steps_per_epoch(), 3);
        let got = batches(&s.spawn(SeededRng::new(21), 0), 7);
        for ((images, labels), (want_labels, want_sum)) in got.iter().zip(before) {
            let sum: f64 = images.iter().enumerate().map(|(i, &v)| v as f64 * ((i % 13) as f64 + 1.0)).sum();
            assert_eq!(labels, want_labels);
            assert!((sum - want_sum).abs() < 1e-4, "{sum} != {want_sum}");
        }
    }

    #[test]
    fn a_fixed_order_is_one_permutation_every_epoch_and_drop_last_drops_the_partial_batch() {
        let epochs = |order: Order, drop_last: bool, n: usize| {
            let s = Sampler { order, drop_last, ..Sampler::new(eleven(), false, 11, 4, Normalize::unit(3)) };
            let steps = s.steps_per_epoch() as usize;
            let all = batches(&s.spawn(SeededRng::new(5), 0), steps * n);
            let labels: Vec<Vec<u32>> =
                all.chunks(steps).map(|e| e.iter().flat_map(|b| b.1.clone()).collect()).collect();
            (steps, all.iter().map(|b| b.1.len()).collect::<Vec<_>>(), labels)
        };
        let (steps, sizes, fixed) = epochs(Order::Fixed, false, 3);
        assert_eq!((steps, &sizes[..3]), (3, &[4, 4, 3][..]));
        assert!(fixed.iter().all(|e| *e == fixed[0]), "the same order every epoch: {fixed:?}");
        let (_, _, shuffled) = epochs(Order::Shuffle, false, 3);
        assert!(shuffled.iter().any(|e| *e != shuffled[0]), "a new order per epoch: {shuffled:?}");
        // drop_last: two full batches an epoch, and the fixed order's last 3 images never seen.
        let (steps, sizes, dropped) = epochs(Order::Fixed, true, 3);
        assert_eq!(steps, 2);
        assert!(sizes.iter().all(|&n| n == 4), "{sizes:?}");
        assert!(dropped.iter().all(|e| e[..] == fixed[0][..8]), "{dropped:?} vs {fixed:?}");
        let (_, sizes, shuffled) = epochs(Order::Shuffle, true, 4);
        assert!(sizes.iter().all(|&n| n == 4) && shuffled.iter().any(|e| *e != shuffled[0]));
    }

    #[test]
    fn the_stream_order_fills_every_batch_across_epochs() {
        let s = Sampler { order: Order::Stream, ..Sampler::new(eleven(), false, 11, 4, Normalize::unit(3)) };
        assert_eq!(s.steps_per_epoch(), 2, "int(11 / 4), as TensorFlow's MNIST loops");
        let labels: Vec<u32> = batches(&s.spawn(SeededRng::new(5), 0), 11).iter().flat_map(|b| b.1.clone()).collect();
        assert_eq!(labels.len(), 44, "every batch full");
        // The sequence is whole epochs back to back: each run of 11 a permutation.
        for epoch in labels.chunks(11) {
            let mut e = epoch.to_vec();
            e.sort();
            assert_eq!(e, (0..11).collect::<Vec<_>>());
        }
        assert_ne!(labels[..11], labels[11..22]);
    }

    #[test]
    fn an_offset_sampler_reads_its_part_of_the_split() {
        // TensorFlow's MNIST split: training images from 5 000 on; here from 6 of 11.
        let s = Sampler { first: 6, ..Sampler::new(eleven(), false, 5, 5, Normalize::unit(3)) };
        let mut labels = batches(&s.clone().spawn(SeededRng::new(2), 0), 1).remove(0).1;
        labels.sort();
        assert_eq!(labels, [6, 7, 8, 9, 10]);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        s.image_into(0, None, &mut a);
        Sampler::new(eleven(), false, 11, 5, Normalize::unit(3)).image_into(6, None, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn standardisation_gives_each_channel_mean_0_and_deviation_1_over_its_split() {
        let data = eleven();
        for (split, test, n) in [(&data.train, false, 11), (&data.test, true, 3)] {
            let norm = Normalize::standardize(&data, split, 0, n, 1);
            let s = Sampler::new(data.clone(), test, n, n, norm.clone());
            let mut out = Vec::new();
            (0..n).for_each(|i| s.image_into(i, None, &mut out));
            for ch in 0..3 {
                let v: Vec<f64> = out.chunks(16).skip(ch).step_by(3).flatten().map(|&x| x as f64).collect();
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
                assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4, "split {test} channel {ch}: {mean} {var}");
            }
        }
        // Each split has its own statistics.
        assert_ne!(
            Normalize::standardize(&data, &data.train, 0, 11, 1),
            Normalize::standardize(&data, &data.test, 0, 3, 1)
        );
    }

    #[test]
    fn downsampling_averages_blocks_and_crops_the_small_image() {
        let data = eleven();
        let s = Sampler { downsample: 2, ..Sampler::new(data.clone(), false, 11, 4, Normalize::unit(3)) };
        assert_eq!(s.dims(), (3, 2, 2));
        let mut out = Vec::new();
        s.image_into(1, None, &mut out);
        assert_eq!(out.len(), 12);
        let px = |ch: usize, y: usize, x: usize| data.train.images[(3 + ch) * 16 + y * 4 + x] as f32;
        let want = (px(2, 2, 0) + px(2, 2, 1) + px(2, 3, 0) + px(2, 3, 1)) / 4.0 / 255.0;
        assert!((out[2 * 4 + 2] - want).abs() < 1e-6, "channel 2, pixel (1, 0): {} vs {want}", out[10]);
        // Statistics of the downsampled images: the mean is the full images', the deviation less.
        let full = Normalize::standardize(&data, &data.train, 0, 11, 1);
        let half = Normalize::standardize(&data, &data.train, 0, 11, 2);
        for ch in 0..3 {
            assert!((full.mean[ch] - half.mean[ch]).abs() < 1e-6 && half.std[ch] < full.std[ch]);
        }
    }

    #[test]
    fn crop_fill_and_offsets() {
        let normalize = Normalize { mean: vec![0.5; 3], std: vec![0.25; 3] };
        let sampler = |fill, offsets| Sampler {
            augment: Some(Augment { crop_padding: 2, flip: true, fill, offsets }),
            ..Sampler::new(eleven(), false, 11, 4, normalize.clone())
        };
        // Padding values: the normalised black (-2) or the normalised 0.
        for (fill, pad) in [(CropFill::Input, -2.0f32), (CropFill::Normalized, 0.0)] {
            let s = sampler(fill, CropOffsets::Inclusive);
            let mut rng = SeededRng::new(1);
            let mut seen = false;
            for _ in 0..20 {
                let mut out = Vec::new();
                let (dy, _, _) = s.draw(Some(&mut rng.clone()));
                s.image_into(0, Some(&mut rng), &mut out);
                if dy < 0 {
                    assert!(out[..4].iter().all(|&v| v == pad), "{fill:?}: the first row is padding: {:?}", &out[..4]);
                    seen = true;
                }
            }
            assert!(seen);
        }
        // Offsets: -2..=2 or -2..=1 in each direction.
        for (offsets, range) in [(CropOffsets::Inclusive, -2..=2), (CropOffsets::Exclusive, -2..=1)] {
            let s = sampler(CropFill::Input, offsets);
            let mut rng = SeededRng::new(3);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..400 {
                let (dy, dx, _) = s.draw(Some(&mut rng));
                seen.insert(dy);
                seen.insert(dx);
            }
            assert_eq!(seen.into_iter().collect::<Vec<_>>(), range.collect::<Vec<_>>(), "{offsets:?}");
        }
        // A flipped crop with exclusive offsets is the crop of the flipped image (flip first).
        let s = sampler(CropFill::Input, CropOffsets::Exclusive);
        let plain = Sampler::new(eleven(), false, 11, 4, normalize.clone());
        let mut img = Vec::new();
        plain.image_into(0, None, &mut img);
        let mut rng = SeededRng::new(8);
        for _ in 0..30 {
            let (dy, dx, flip) = s.draw(Some(&mut rng.clone()));
            let mut out = Vec::new();
            s.image_into(0, Some(&mut rng), &mut out);
            let flipped = |y: isize, x: isize| img[(y * 4 + if flip { 3 - x } else { x }) as usize];
            let (y, x) = (1isize, 1isize);
            let (sy, sx) = (y + dy, x + dx);
            if (0..4).contains(&sy) && (0..4).contains(&sx) {
                assert_eq!(out[(y * 4 + x) as usize], flipped(sy, sx), "{dy} {dx} {flip}");
            }
        }
    }
}
