//! CUDA kernels of the fused updates: one launch per variable and step (Adai: three, for its
//! whole-model mean), the optimizer state in buffers on the GPU, the same per-step scalars as
//! the CPU kernels (each rule's [`Scalars`](crate::core::Rule::Scalars)) and the same IEEE
//! operations in the same order as candle's own CUDA kernels on the tensor path (see
//! `common.cuh`).
//!
//! The kernel sources ([`SOURCES`]: one `.cu` file per CPU kernel file of `fused/`, with the
//! same name) are compiled with NVRTC at first use, once per process, and loaded once per
//! device (candle caches custom modules per device). They are part of every build, so that a
//! test compiles them with NVRTC even where optbench is built without CUDA
//! (`tests/cuda.rs`); the launch code ([`launch`]) needs the `cuda` feature.

pub mod check;
#[cfg(feature = "cuda")]
pub mod launch;

/// One kernel source file: its name, text and the kernels it defines (each as `NAME_f32` and
/// `NAME_f64`).
#[derive(Debug)]
pub struct Source {
    pub name: &'static str,
    pub code: &'static str,
    pub kernels: &'static [&'static str],
}

/// What every source includes first (the element-wise operations of candle's kernels).
pub const COMMON: &str = include_str!("common.cuh");

/// The Adam family (`fused/adam.rs`).
pub const ADAM: Source =
    Source { name: "adam", code: include_str!("adam.cu"), kernels: &["adam", "adam_amsgrad", "tf_amsgrad"] };

/// SGD with momentum (`fused/sgd.rs`).
pub const SGD: Source = Source { name: "sgd", code: include_str!("sgd.cu"), kernels: &["sgd", "sgd_momentum"] };

/// AdaBelief (`fused/adabelief.rs`).
pub const ADABELIEF: Source =
    Source { name: "adabelief", code: include_str!("adabelief.cu"), kernels: &["adabelief", "adabelief_amsgrad"] };

/// AdaMod (`fused/adamod.rs`).
pub const ADAMOD: Source = Source { name: "adamod", code: include_str!("adamod.cu"), kernels: &["adamod"] };

/// AdaBound / AMSBound (`fused/adabound.rs`).
pub const ADABOUND: Source =
    Source { name: "adabound", code: include_str!("adabound.cu"), kernels: &["adabound", "adabound_amsbound"] };

/// RAdam (`fused/radam.rs`).
pub const RADAM: Source = Source { name: "radam", code: include_str!("radam.cu"), kernels: &["radam"] };

/// diffGrad (`fused/diffgrad.rs`).
pub const DIFFGRAD: Source = Source { name: "diffgrad", code: include_str!("diffgrad.cu"), kernels: &["diffgrad"] };

/// Adai / AdaiW (`fused/adai.rs`): the partial sums of the whole-model mean, their fold, the
/// update (three launches per variable, see `adai.cu`).
pub const ADAI: Source =
    Source { name: "adai", code: include_str!("adai.cu"), kernels: &["adai_partial", "adai_fold", "adai"] };

/// Every kernel source.
pub const SOURCES: &[&Source] = &[&ADAM, &SGD, &ADABELIEF, &ADAMOD, &ADABOUND, &RADAM, &DIFFGRAD, &ADAI];

/// The NVRTC options of every source: IEEE division and square root, no flush to zero, and
/// no contraction of a product and a sum into a fused multiply-add (`common.cuh` writes the
/// one that candle's `affine` performs).
pub const NVRTC_OPTIONS: &[&str] = &["--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false"];

impl Source {
    /// The text NVRTC compiles: [`COMMON`], then the source.
    pub fn program(&self) -> String {
        format!("{COMMON}\n// ---- {}.cu\n{}", self.name, self.code)
    }

    /// The names of the compiled kernels: every kernel in f32 and f64.
    pub fn entry_points(&self) -> Vec<String> {
        self.kernels.iter().flat_map(|k| [format!("{k}_f32"), format!("{k}_f64")]).collect()
    }
}
