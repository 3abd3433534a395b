//! The Inception-v3 feature network of FID, as pytorch-fid computes it: `InceptionV3` with
//! `use_fid_inception=True` up to the final average pool, 2048 features per image
//! (`mseitzer/pytorch-fid`, `src/pytorch_fid/inception.py`, commit b9c18118), whose blocks are
//! torchvision's (`pytorch/vision`, `torchvision/models/inception.py`) with the FID patches.
//! Inference only, on the CPU, in f32; no gradients.
//!
//! ```text
//! x (N, 3, H, W) in [0, 1] -> bilinear resize to 299x299 (F.interpolate, align_corners=False)
//!   -> 2x - 1
//!   -> Conv2d_1a_3x3 (32, k3 s2) -> Conv2d_2a_3x3 (32, k3) -> Conv2d_2b_3x3 (64, k3 p1)
//!   -> max-pool 3/2                                             block 0: 64 x 73 x 73
//!   -> Conv2d_3b_1x1 (80) -> Conv2d_4a_3x3 (192, k3) -> max-pool 3/2   block 1: 192 x 35 x 35
//!   -> Mixed_5b/5c/5d (FID A: 192, 256, 288 in; pool features 32, 64, 64)
//!   -> Mixed_6a (B) -> Mixed_6b/6c/6d/6e (FID C: 7x7 channels 128, 160, 160, 192)
//!                                                               block 2: 768 x 17 x 17
//!   -> Mixed_7a (D) -> Mixed_7b (FID E_1) -> Mixed_7c (FID E_2) -> global mean
//!                                                               block 3: 2048 ("pool3")
//! BasicConv2d = Conv2d (no bias) -> BatchNorm (eval mode, eps 1e-3) -> ReLU
//! FID A / C / E_1: the pool branch averages 3x3 / 1 / pad 1 with count_include_pad=False
//! FID E_2:         the pool branch max-pools 3x3 / 1 / pad 1 (torchvision's averages)
//! ```
//!
//! Weights load by name from a state dict in safetensors (`Conv2d_1a_3x3.conv.weight`,
//! `Conv2d_1a_3x3.bn.{weight, bias, running_mean, running_var}`, ...: torchvision's keys;
//! `fc.*` and `num_batches_tracked` are not read): `scripts/fid/export_inception.py` writes it
//! from pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`. 21,820,000 values (the 94
//! convolutions and their BatchNorm statistics; pytorch-fid's network without `fc`).
//! BatchNorm is folded into the convolution when loading: `w' = w g / sqrt(v + eps)`, `b' = b -
//! m g / sqrt(v + eps)` (in f64, then f32), which differs from PyTorch's separate BatchNorm by
//! f32 rounding only.
//!
//! Each image runs on one thread (im2col + the suite's GEMM, `cpu::matmul`, as `conv.rs`),
//! images in parallel over rayon's threads. The convolution here is its own because Inception
//! has rectangular kernels (1x7, 7x1, 1x3, 3x1) with rectangular padding, which `conv.rs`'s
//! square-kernel op does not take. `tests/inception.rs` compares the resize, the four block
//! outputs and the features with PyTorch's on generated weights.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use candle::{DType, Device, Result, Tensor};
use rayon::prelude::*;

use crate::cpu::{matmul, Threads};

/// The number of features (pytorch-fid's `pool3`, block 3).
pub const FEATURES: usize = 2048;
/// The side the input is resized to.
pub const INPUT_SIDE: usize = 299;
/// BatchNorm's epsilon in torchvision's `BasicConv2d`.
pub const BN_EPS: f64 = 1e-3;

/// One image's feature map, (C, H, W) row-major.
#[derive(Clone, Debug)]
struct Map {
    c: usize,
    h: usize,
    w: usize,
    data: Vec<f32>,
}

impl Map {
    fn cat(parts: Vec<Map>) -> Map {
        let (h, w) = (parts[0].h, parts[0].w);
        debug_assert!(parts.iter().all(|p| p.h == h && p.w == w));
        let c = parts.iter().map(|p| p.c).sum();
        let mut data = Vec::with_capacity(c * h * w);
        for p in parts {
            data.extend_from_slice(&p.data);
        }
        Map { c, h, w, data }
    }
}

/// The geometry of one `BasicConv2d`: (name, in, out, kernel (h, w), stride, padding (h, w)).
#[derive(Clone, Debug)]
struct ConvSpec {
    name: String,
    c_in: usize,
    c_out: usize,
    k: (usize, usize),
    stride: usize,
    pad: (usize, usize),
}

fn spec(name: String, c_in: usize, c_out: usize, k: (usize, usize), stride: usize, pad: (usize, usize)) -> ConvSpec {
    ConvSpec { name, c_in, c_out, k, stride, pad }
}

/// Where the weights come from: a name and the shape it must have -> its values.
type Source<'a> = dyn Fn(&str, &[usize]) -> Result<Vec<f64>> + 'a;

/// `BasicConv2d` with its BatchNorm folded in: `relu(W x + b)`.
struct BasicConv {
    spec: ConvSpec,
    /// (c_out, c_in kh kw), row-major.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl BasicConv {
    fn load(spec: ConvSpec, source: &Source) -> Result<Self> {
        let (kh, kw) = spec.k;
        let n = &spec.name;
        let w = source(&format!("{n}.conv.weight"), &[spec.c_out, spec.c_in, kh, kw])?;
        let gamma = source(&format!("{n}.bn.weight"), &[spec.c_out])?;
        let beta = source(&format!("{n}.bn.bias"), &[spec.c_out])?;
        let mean = source(&format!("{n}.bn.running_mean"), &[spec.c_out])?;
        let var = source(&format!("{n}.bn.running_var"), &[spec.c_out])?;
        let ckk = spec.c_in * kh * kw;
        let mut weight = Vec::with_capacity(w.len());
        let mut bias = Vec::with_capacity(spec.c_out);
        for o in 0..spec.c_out {
            let scale = gamma[o] / (var[o] + BN_EPS).sqrt();
            weight.extend(w[o * ckk..(o + 1) * ckk].iter().map(|&v| (v * scale) as f32));
            bias.push((beta[o] - mean[o] * scale) as f32);
        }
        Ok(Self { spec, weight, bias })
    }

    fn forward(&self, x: &Map) -> Map {
        let s = &self.spec;
        debug_assert_eq!(x.c, s.c_in, "{}", s.name);
        let (kh, kw) = s.k;
        let (ph, pw) = s.pad;
        let h_out = (x.h + 2 * ph - kh) / s.stride + 1;
        let w_out = (x.w + 2 * pw - kw) / s.stride + 1;
        let l = h_out * w_out;
        let ckk = s.c_in * kh * kw;
        let mut out = vec![0f32; s.c_out * l];
        if kh == 1 && kw == 1 && s.stride == 1 && ph == 0 && pw == 0 {
            matmul((s.c_out, l, ckk), &mut out, (l, 1), false, &self.weight, (ckk, 1), &x.data, (l, 1), Threads::One);
        } else {
            with_scratch(ckk * l, |cols| {
                im2col(x, s, h_out, w_out, cols);
                matmul((s.c_out, l, ckk), &mut out, (l, 1), false, &self.weight, (ckk, 1), cols, (l, 1), Threads::One);
            });
        }
        for (plane, &b) in out.chunks_mut(l).zip(&self.bias) {
            for v in plane {
                *v = (*v + b).max(0.0);
            }
        }
        Map { c: s.c_out, h: h_out, w: w_out, data: out }
    }
}

/// A per-thread buffer for im2col matrices, kept between calls (the largest is 25 MB).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|cell| {
        let mut buffer = cell.borrow_mut();
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        f(&mut buffer[..len])
    })
}

/// The (c_in kh kw) x (h_out w_out) matrix of the input windows, zero outside the image.
fn im2col(x: &Map, s: &ConvSpec, h_out: usize, w_out: usize, cols: &mut [f32]) {
    let (kh, kw) = s.k;
    let (ph, pw) = (s.pad.0 as isize, s.pad.1 as isize);
    let l = h_out * w_out;
    for c in 0..x.c {
        let plane = &x.data[c * x.h * x.w..(c + 1) * x.h * x.w];
        for ky in 0..kh {
            for kx in 0..kw {
                let row = &mut cols[((c * kh + ky) * kw + kx) * l..][..l];
                for oy in 0..h_out {
                    let out = &mut row[oy * w_out..(oy + 1) * w_out];
                    let iy = (oy * s.stride + ky) as isize - ph;
                    if iy < 0 || iy >= x.h as isize {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * x.w..(iy as usize + 1) * x.w];
                    for (ox, o) in out.iter_mut().enumerate() {
                        let ix = (ox * s.stride + kx) as isize - pw;
                        *o = if ix >= 0 && ix < x.w as isize { src[ix as usize] } else { 0.0 };
                    }
                }
            }
        }
    }
}

/// `F.max_pool2d(x, 3, stride=2)` (no padding, floor).
fn max_pool_3x3_s2(x: &Map) -> Map {
    let (h_out, w_out) = ((x.h - 3) / 2 + 1, (x.w - 3) / 2 + 1);
    let mut data = Vec::with_capacity(x.c * h_out * w_out);
    for plane in x.data.chunks(x.h * x.w) {
        for oy in 0..h_out {
            for ox in 0..w_out {
                let mut m = f32::NEG_INFINITY;
                for dy in 0..3 {
                    for dx in 0..3 {
                        m = m.max(plane[(2 * oy + dy) * x.w + 2 * ox + dx]);
                    }
                }
                data.push(m);
            }
        }
    }
    Map { c: x.c, h: h_out, w: w_out, data }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Pool {
    /// `F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)`.
    Average,
    /// `F.max_pool2d(x, 3, stride=1, padding=1)`.
    Max,
}

/// A 3x3, stride 1, padding 1 pool that ignores the padding.
fn pool_3x3_s1(x: &Map, pool: Pool) -> Map {
    let (h, w) = (x.h, x.w);
    let mut data = Vec::with_capacity(x.data.len());
    for plane in x.data.chunks(h * w) {
        for oy in 0..h {
            let (y0, y1) = (oy.saturating_sub(1), (oy + 1).min(h - 1));
            for ox in 0..w {
                let (x0, x1) = (ox.saturating_sub(1), (ox + 1).min(w - 1));
                let mut acc = if pool == Pool::Max { f32::NEG_INFINITY } else { 0.0 };
                for yy in y0..=y1 {
                    for &v in &plane[yy * w + x0..=yy * w + x1] {
                        acc = if pool == Pool::Max { acc.max(v) } else { acc + v };
                    }
                }
                if pool == Pool::Average {
                    acc /= ((y1 - y0 + 1) * (x1 - x0 + 1)) as f32;
                }
                data.push(acc);
            }
        }
    }
    Map { c: x.c, h, w, data }
}

/// The convolutions of one block, loaded by their names under the block's.
struct Convs(HashMap<&'static str, BasicConv>);

impl Convs {
    fn get(&self, name: &str) -> &BasicConv {
        &self.0[name]
    }

    fn run(&self, x: &Map, chain: &[&str]) -> Map {
        let mut y = self.get(chain[0]).forward(x);
        for name in &chain[1..] {
            y = self.get(name).forward(&y);
        }
        y
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// FID Inception A with its pool features.
    A(usize),
    /// Inception B (`Mixed_6a`).
    B,
    /// FID Inception C with its 7x7 channels.
    C(usize),
    /// Inception D (`Mixed_7a`).
    D,
    /// FID Inception E with its pool branch's pool (Average: E_1, Max: E_2).
    E(Pool),
}

/// The convolutions of a block of `kind` named `block` with `c_in` input channels, in
/// torchvision's order.
fn block_specs(block: &str, kind: Kind, c_in: usize) -> Vec<(&'static str, ConvSpec)> {
    let s = |leaf: &'static str, i, o, k, st, p| (leaf, spec(format!("{block}.{leaf}"), i, o, k, st, p));
    match kind {
        Kind::A(pool) => vec![
            s("branch1x1", c_in, 64, (1, 1), 1, (0, 0)),
            s("branch5x5_1", c_in, 48, (1, 1), 1, (0, 0)),
            s("branch5x5_2", 48, 64, (5, 5), 1, (2, 2)),
            s("branch3x3dbl_1", c_in, 64, (1, 1), 1, (0, 0)),
            s("branch3x3dbl_2", 64, 96, (3, 3), 1, (1, 1)),
            s("branch3x3dbl_3", 96, 96, (3, 3), 1, (1, 1)),
            s("branch_pool", c_in, pool, (1, 1), 1, (0, 0)),
        ],
        Kind::B => vec![
            s("branch3x3", c_in, 384, (3, 3), 2, (0, 0)),
            s("branch3x3dbl_1", c_in, 64, (1, 1), 1, (0, 0)),
            s("branch3x3dbl_2", 64, 96, (3, 3), 1, (1, 1)),
            s("branch3x3dbl_3", 96, 96, (3, 3), 2, (0, 0)),
        ],
        Kind::C(c7) => vec![
            s("branch1x1", c_in, 192, (1, 1), 1, (0, 0)),
            s("branch7x7_1", c_in, c7, (1, 1), 1, (0, 0)),
            s("branch7x7_2", c7, c7, (1, 7), 1, (0, 3)),
            s("branch7x7_3", c7, 192, (7, 1), 1, (3, 0)),
            s("branch7x7dbl_1", c_in, c7, (1, 1), 1, (0, 0)),
            s("branch7x7dbl_2", c7, c7, (7, 1), 1, (3, 0)),
            s("branch7x7dbl_3", c7, c7, (1, 7), 1, (0, 3)),
            s("branch7x7dbl_4", c7, c7, (7, 1), 1, (3, 0)),
            s("branch7x7dbl_5", c7, 192, (1, 7), 1, (0, 3)),
            s("branch_pool", c_in, 192, (1, 1), 1, (0, 0)),
        ],
        Kind::D => vec![
            s("branch3x3_1", c_in, 192, (1, 1), 1, (0, 0)),
            s("branch3x3_2", 192, 320, (3, 3), 2, (0, 0)),
            s("branch7x7x3_1", c_in, 192, (1, 1), 1, (0, 0)),
            s("branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3)),
            s("branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0)),
            s("branch7x7x3_4", 192, 192, (3, 3), 2, (0, 0)),
        ],
        Kind::E(_) => vec![
            s("branch1x1", c_in, 320, (1, 1), 1, (0, 0)),
            s("branch3x3_1", c_in, 384, (1, 1), 1, (0, 0)),
            s("branch3x3_2a", 384, 384, (1, 3), 1, (0, 1)),
            s("branch3x3_2b", 384, 384, (3, 1), 1, (1, 0)),
            s("branch3x3dbl_1", c_in, 448, (1, 1), 1, (0, 0)),
            s("branch3x3dbl_2", 448, 384, (3, 3), 1, (1, 1)),
            s("branch3x3dbl_3a", 384, 384, (1, 3), 1, (0, 1)),
            s("branch3x3dbl_3b", 384, 384, (3, 1), 1, (1, 0)),
            s("branch_pool", c_in, 192, (1, 1), 1, (0, 0)),
        ],
    }
}

struct Block {
    kind: Kind,
    convs: Convs,
}

impl Block {
    fn forward(&self, x: &Map) -> Map {
        let c = &self.convs;
        match self.kind {
            Kind::A(_) => Map::cat(vec![
                c.run(x, &["branch1x1"]),
                c.run(x, &["branch5x5_1", "branch5x5_2"]),
                c.run(x, &["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]),
                c.run(&pool_3x3_s1(x, Pool::Average), &["branch_pool"]),
            ]),
            Kind::B => Map::cat(vec![
                c.run(x, &["branch3x3"]),
                c.run(x, &["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]),
                max_pool_3x3_s2(x),
            ]),
            Kind::C(_) => Map::cat(vec![
                c.run(x, &["branch1x1"]),
                c.run(x, &["branch7x7_1", "branch7x7_2", "branch7x7_3"]),
                c.run(x, &["branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5"]),
                c.run(&pool_3x3_s1(x, Pool::Average), &["branch_pool"]),
            ]),
            Kind::D => Map::cat(vec![
                c.run(x, &["branch3x3_1", "branch3x3_2"]),
                c.run(x, &["branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"]),
                max_pool_3x3_s2(x),
            ]),
            Kind::E(pool) => {
                let b3 = c.run(x, &["branch3x3_1"]);
                let bd = c.run(x, &["branch3x3dbl_1", "branch3x3dbl_2"]);
                Map::cat(vec![
                    c.run(x, &["branch1x1"]),
                    c.run(&b3, &["branch3x3_2a"]),
                    c.run(&b3, &["branch3x3_2b"]),
                    c.run(&bd, &["branch3x3dbl_3a"]),
                    c.run(&bd, &["branch3x3dbl_3b"]),
                    c.run(&pool_3x3_s1(x, pool), &["branch_pool"]),
                ])
            }
        }
    }
}

/// The stem's convolutions, in order.
fn stem_specs() -> Vec<ConvSpec> {
    vec![
        spec("Conv2d_1a_3x3".into(), 3, 32, (3, 3), 2, (0, 0)),
        spec("Conv2d_2a_3x3".into(), 32, 32, (3, 3), 1, (0, 0)),
        spec("Conv2d_2b_3x3".into(), 32, 64, (3, 3), 1, (1, 1)),
        spec("Conv2d_3b_1x1".into(), 64, 80, (1, 1), 1, (0, 0)),
        spec("Conv2d_4a_3x3".into(), 80, 192, (3, 3), 1, (0, 0)),
    ]
}

/// The Mixed blocks: (name, kind, input channels).
fn mixed() -> Vec<(&'static str, Kind, usize)> {
    vec![
        ("Mixed_5b", Kind::A(32), 192),
        ("Mixed_5c", Kind::A(64), 256),
        ("Mixed_5d", Kind::A(64), 288),
        ("Mixed_6a", Kind::B, 288),
        ("Mixed_6b", Kind::C(128), 768),
        ("Mixed_6c", Kind::C(160), 768),
        ("Mixed_6d", Kind::C(160), 768),
        ("Mixed_6e", Kind::C(192), 768),
        ("Mixed_7a", Kind::D, 768),
        ("Mixed_7b", Kind::E(Pool::Average), 1280),
        ("Mixed_7c", Kind::E(Pool::Max), 2048),
    ]
}

fn all_specs() -> Vec<ConvSpec> {
    let mut out = stem_specs();
    for (name, kind, c_in) in mixed() {
        out.extend(block_specs(name, kind, c_in).into_iter().map(|(_, s)| s));
    }
    out
}

/// The tensors the network reads, by name and shape, in torchvision's `state_dict` order
/// (without `num_batches_tracked` and `fc.*`).
pub fn expected_tensors() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for s in all_specs() {
        out.push((format!("{}.conv.weight", s.name), vec![s.c_out, s.c_in, s.k.0, s.k.1]));
        for leaf in ["weight", "bias", "running_mean", "running_var"] {
            out.push((format!("{}.bn.{leaf}", s.name), vec![s.c_out]));
        }
    }
    out
}

/// The outputs of pytorch-fid's four blocks for one image: after the first max-pool (64 x 73
/// x 73 at 299x299), after the second (192 x 35 x 35), before the auxiliary classifier (768 x
/// 17 x 17) and the 2048 features, each (C, H, W) row-major.
pub struct Blocks {
    pub outputs: [Vec<f32>; 4],
    /// (C, H, W) of each.
    pub shapes: [(usize, usize, usize); 4],
}

/// pytorch-fid's FID Inception-v3 up to pool3, with BatchNorm folded in.
pub struct FidInception {
    stem: Vec<BasicConv>,
    blocks: Vec<Block>,
}

impl FidInception {
    /// The network from a weights source: `source(name, shape)` gives the values of the
    /// tensor `name`, which must have `shape`.
    fn build(source: &Source) -> Result<Self> {
        let stem = stem_specs().into_iter().map(|s| BasicConv::load(s, source)).collect::<Result<Vec<_>>>()?;
        let mut blocks = Vec::new();
        for (name, kind, c_in) in mixed() {
            let mut convs = HashMap::new();
            for (leaf, s) in block_specs(name, kind, c_in) {
                convs.insert(leaf, BasicConv::load(s, source)?);
            }
            blocks.push(Block { kind, convs: Convs(convs) });
        }
        Ok(Self { stem, blocks })
    }

    /// The network from named tensors (a state dict); `origin` names where they came from
    /// in errors.
    pub fn from_tensors(tensors: &HashMap<String, Tensor>, origin: &str) -> Result<Self> {
        Self::build(&|name: &str, shape: &[usize]| {
            let t = tensors.get(name).ok_or_else(|| {
                candle::Error::Msg(format!(
                    "{origin}: the Inception weights have no tensor `{name}` (shape {shape:?}); the file must be \
                     pytorch-fid's state dict as scripts/fid/export_inception.py writes it"
                ))
            })?;
            if t.dims() != shape {
                candle::bail!(
                    "{origin}: the Inception tensor `{name}` has shape {:?}, pytorch-fid's network needs {shape:?}",
                    t.dims()
                )
            }
            t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()
        })
    }

    /// The network from a safetensors file of pytorch-fid's state dict
    /// (`scripts/fid/export_inception.py`).
    pub fn load(path: &Path) -> Result<Self> {
        let tensors = candle::safetensors::load(path, &Device::Cpu)
            .map_err(|e| candle::Error::Msg(format!("cannot read the Inception weights {}: {e}", path.display())))?;
        Self::from_tensors(&tensors, &path.display().to_string())
    }

    /// The network with weights from `values(name, shape)`, e.g. generated ones in tests.
    pub fn from_fn(values: impl Fn(&str, &[usize]) -> Vec<f64>) -> Result<Self> {
        Self::build(&|name: &str, shape: &[usize]| Ok(values(name, shape)))
    }

    /// The number of values it was loaded from (the tensors of [`expected_tensors`]).
    pub fn parameter_count() -> usize {
        expected_tensors().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    fn run(&self, image: &[f32], (h, w): (usize, usize), keep: bool) -> Blocks {
        let resized = resize_bilinear(image, 3, (h, w), (INPUT_SIDE, INPUT_SIDE));
        let x = Map { c: 3, h: INPUT_SIDE, w: INPUT_SIDE, data: resized.iter().map(|v| 2.0 * v - 1.0).collect() };
        let mut outputs: [Vec<f32>; 4] = Default::default();
        let mut shapes = [(0, 0, 0); 4];
        let mut record = |i: usize, m: &Map| {
            shapes[i] = (m.c, m.h, m.w);
            if keep || i == 3 {
                outputs[i] = m.data.clone();
            }
        };
        let mut x = self.stem[0].forward(&x);
        x = self.stem[1].forward(&x);
        x = max_pool_3x3_s2(&self.stem[2].forward(&x));
        record(0, &x);
        x = max_pool_3x3_s2(&self.stem[4].forward(&self.stem[3].forward(&x)));
        record(1, &x);
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(&x);
            if i == 7 {
                record(2, &x);
            }
        }
        let plane = x.h * x.w;
        let pooled = Map {
            c: x.c,
            h: 1,
            w: 1,
            data: x
                .data
                .chunks(plane)
                .map(|p| (p.iter().map(|&v| v as f64).sum::<f64>() / plane as f64) as f32)
                .collect(),
        };
        record(3, &pooled);
        Blocks { outputs, shapes }
    }

    /// The outputs of the four blocks for one image (3, H, W) with values in [0, 1].
    pub fn blocks(&self, image: &[f32], size: (usize, usize)) -> Result<Blocks> {
        check_images(image.len(), size)?;
        Ok(self.run(image, size, true))
    }

    /// The features (N x 2048, row-major) of `images` (N, 3, H, W) with values in [0, 1],
    /// images in parallel over rayon's threads.
    pub fn features(&self, images: &[f32], size: (usize, usize)) -> Result<Vec<f32>> {
        let n = check_images(images.len(), size)?;
        let per_image = 3 * size.0 * size.1;
        let features: Vec<Vec<f32>> = (0..n)
            .into_par_iter()
            .map(|i| {
                let Blocks { outputs: [_, _, _, pool3], .. } =
                    self.run(&images[i * per_image..(i + 1) * per_image], size, false);
                pool3
            })
            .collect();
        Ok(features.concat())
    }

    /// The features (N, 2048) of a tensor of images (N, 3, H, W) with values in [0, 1].
    pub fn features_of(&self, images: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = images.dims4()?;
        if c != 3 {
            candle::bail!("Inception features: images with 3 channels, got {:?}", images.dims())
        }
        let data = images.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Tensor::from_vec(self.features(&data, (h, w))?, (n, FEATURES), &Device::Cpu)
    }
}

fn check_images(len: usize, (h, w): (usize, usize)) -> Result<usize> {
    let per_image = 3 * h * w;
    if per_image == 0 || !len.is_multiple_of(per_image) {
        candle::bail!("Inception features: {len} values are no whole number of 3 x {h} x {w} images")
    }
    Ok(len / per_image)
}

/// `F.interpolate(x, size=out, mode="bilinear", align_corners=False)` of one (C, H, W) image:
/// source coordinate `(o + 0.5) in / out - 0.5`, negative ones clamped to 0, the upper
/// neighbour clamped to the last row / column.
pub fn resize_bilinear(image: &[f32], channels: usize, (h, w): (usize, usize), (oh, ow): (usize, usize)) -> Vec<f32> {
    assert_eq!(image.len(), channels * h * w, "resize_bilinear: image size");
    let taps = |input: usize, output: usize| -> Vec<(usize, usize, f32)> {
        let scale = input as f64 / output as f64;
        (0..output)
            .map(|o| {
                let src = (scale * (o as f64 + 0.5) - 0.5).max(0.0);
                let lo = (src.floor() as usize).min(input - 1);
                let hi = if lo < input - 1 { lo + 1 } else { lo };
                (lo, hi, (src - lo as f64) as f32)
            })
            .collect()
    };
    let (rows, cols) = (taps(h, oh), taps(w, ow));
    let mut out = Vec::with_capacity(channels * oh * ow);
    for plane in image.chunks(h * w) {
        for &(y0, y1, fy) in &rows {
            for &(x0, x1, fx) in &cols {
                let top = plane[y0 * w + x0] * (1.0 - fx) + plane[y0 * w + x1] * fx;
                let bottom = plane[y1 * w + x0] * (1.0 - fx) + plane[y1 * w + x1] * fx;
                out.push(top * (1.0 - fy) + bottom * fy);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_reads_pytorch_fids_tensors() {
        // 94 convolutions, 5 tensors each.
        assert_eq!(expected_tensors().len(), 94 * 5);
        assert_eq!(FidInception::parameter_count(), 21_820_000);
    }

    #[test]
    fn pools_ignore_their_padding() {
        let x = Map { c: 1, h: 3, w: 3, data: (1..=9).map(|v| v as f32).collect() };
        let avg = pool_3x3_s1(&x, Pool::Average);
        // Corner: mean of 1, 2, 4, 5; centre: mean of all.
        assert_eq!(avg.data[0], 3.0);
        assert_eq!(avg.data[4], 5.0);
        let max = pool_3x3_s1(&Map { data: x.data.iter().map(|v| -v).collect(), ..x.clone() }, Pool::Max);
        assert_eq!(max.data[8], -5.0);
        assert_eq!(max_pool_3x3_s2(&x).data, vec![9.0]);
    }
}
