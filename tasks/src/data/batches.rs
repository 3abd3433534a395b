//! The batch pipeline of the classifiers: a [`Sampler`] cuts images out of a split (with
//! optional augmentation: random crop with zero padding and horizontal flip) and normalises them
//! per channel; [`Sampler::spawn`] starts the background thread that prepares training batches,
//! epoch after epoch, in the order drawn from the run's own seeded generator, so the sequence of
//! batches is the same on every run.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use models::SeededRng;

use super::ImageData;

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
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
}

/// The background thread that prepares training batches, epoch after epoch.
pub struct Prefetcher {
    pub batches: Receiver<Batch>,
    _worker: JoinHandle<()>,
}

/// How to cut one image out of a split, with augmentation.
#[derive(Clone)]
pub struct Sampler {
    pub data: Arc<ImageData>,
    /// Reads the test split (else the training split).
    pub test: bool,
    pub count: usize,
    pub batch_size: usize,
    pub augment: Option<Augment>,
    pub normalize: Normalize,
}

impl Sampler {
    /// Appends image `index`, augmented when a generator is given, normalised, in CHW order.
    pub fn image_into(&self, index: usize, rng: Option<&mut SeededRng>, out: &mut Vec<f32>) {
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

    /// Starts the batch thread: epoch after epoch, a seeded permutation cut into batches. The
    /// first `skip` batches are passed over (their random numbers drawn, their images not
    /// made), so that a resumed run continues with the batch it would have had.
    pub fn spawn(self, mut rng: SeededRng, mut skip: u64) -> Prefetcher {
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
            record: crate::data::DataRecord {
                name: "tiny".into(),
                source: crate::data::Origin::Unrecorded { description: "test".into() },
                sha256: "0".repeat(64),
                examples: Default::default(),
            },
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
        let batches = |p: &Prefetcher, n: usize| -> Vec<(Vec<f32>, Vec<u32>)> {
            (0..n).map(|_| p.batches.recv().map(|b| (b.images, b.labels)).unwrap()).collect()
        };
        let all = batches(&sampler().spawn(SeededRng::new(4), 0), 8);
        // From the middle of the second epoch (batch 4; 3 batches an epoch).
        assert_eq!(batches(&sampler().spawn(SeededRng::new(4), 4), 4), all[4..]);
    }
}
