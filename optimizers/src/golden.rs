//! Golden trajectories: what a reference implementation did, step by step, recorded by
//! `scripts/golden/generate.py` in the `optbench-golden/1` format
//! (`../shared/spec/golden-format.md`), and their replay against this crate's optimizers with
//! no autograd and no Python.
//!
//! Beyond the format document, a gradient may be `null`: that variable has no gradient in that
//! step (the reference ran with `p.grad = None`), which checks that it is left untouched.

use std::fmt;
use std::path::Path;

use candle::backprop::GradStore;
use candle::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::spec::OptimizerSpec;

/// The format tag every golden file carries.
pub const FORMAT: &str = "optbench-golden/1";

/// One golden file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenFile {
    pub format: String,
    /// What the trajectory exercises, e.g. `adabelief/l2-norectify`.
    pub case: String,
    /// The implementation that produced it, with its version.
    #[serde(default)]
    pub reference: String,
    /// `f64` or `f32`.
    pub dtype: String,
    pub optimizer: OptimizerSpec,
    pub params: Vec<GoldenParam>,
    pub steps: Vec<GoldenStep>,
}

/// A parameter: its shape and initial value (flat, row-major).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenParam {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Vec<f64>,
}

/// One step: an optional new learning rate, the gradient of each parameter (`None`: no
/// gradient), and every parameter's value after the step.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    pub grads: Vec<Option<Vec<f64>>>,
    pub expected: Vec<Vec<f64>>,
}

/// An element passes when `|got - expected| <= atol + rtol * |expected|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

impl Tolerance {
    /// The format's defaults: f64 `atol 1e-12, rtol 1e-9`; f32 `atol 1e-6, rtol 1e-4`.
    pub fn default_for(dtype: DType) -> Self {
        match dtype {
            DType::F64 => Self { atol: 1e-12, rtol: 1e-9 },
            _ => Self { atol: 1e-6, rtol: 1e-4 },
        }
    }

    pub fn accepts(&self, got: f64, expected: f64) -> bool {
        (got.is_nan() && expected.is_nan()) || (got - expected).abs() <= self.atol + self.rtol * expected.abs()
    }
}

/// Why a golden file could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a golden file: {source}")]
    Parse { path: String, source: serde_json::Error },
    #[error("{0}")]
    Invalid(String),
    #[error("optimizer: {0}")]
    Spec(#[from] crate::spec::SpecError),
    #[error("candle: {0}")]
    Candle(#[from] candle::Error),
}

/// An element that failed its tolerance.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// 1-based step.
    pub step: usize,
    pub param: String,
    pub index: usize,
    pub got: f64,
    pub expected: f64,
}

/// The outcome of replaying one file.
#[derive(Clone, Debug)]
pub struct ReplayReport {
    pub case: String,
    pub dtype: DType,
    pub tolerance: Tolerance,
    /// The largest `|got - expected|` over all steps and elements, and the (1-based) step where
    /// it occurred.
    pub worst_abs: f64,
    pub worst_step: usize,
    /// How many elements failed, and the first one.
    pub failures: usize,
    pub first_failure: Option<Mismatch>,
}

impl ReplayReport {
    pub fn passed(&self) -> bool {
        self.failures == 0
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{:?}]: worst abs error {:.3e} at step {}: {}",
            self.case,
            self.dtype,
            self.worst_abs,
            self.worst_step,
            if self.passed() { "ok" } else { "FAIL" }
        )?;
        if let Some(m) = &self.first_failure {
            write!(
                f,
                " ({} elements out of tolerance; first at step {}, {}[{}]: got {:e}, expected {:e})",
                self.failures, m.step, m.param, m.index, m.got, m.expected
            )?;
        }
        Ok(())
    }
}

impl GoldenFile {
    /// Reads and checks a golden file.
    pub fn load(path: &Path) -> Result<Self, GoldenError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GoldenError::Io { path: shown.clone(), source })?;
        let file: GoldenFile =
            serde_json::from_str(&text).map_err(|source| GoldenError::Parse { path: shown.clone(), source })?;
        file.check().map_err(|msg| GoldenError::Invalid(format!("{shown}: {msg}")))?;
        Ok(file)
    }

    /// The parameters' dtype.
    pub fn dtype(&self) -> Result<DType, String> {
        match self.dtype.as_str() {
            "f64" => Ok(DType::F64),
            "f32" => Ok(DType::F32),
            other => Err(format!("dtype `{other}` is not supported: use \"f64\" or \"f32\"")),
        }
    }

    /// Checks the format tag and that every array fits its parameter.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format is `{}`, expected `{FORMAT}`", self.format));
        }
        self.dtype()?;
        for p in &self.params {
            let n: usize = p.shape.iter().product();
            if p.init.len() != n {
                return Err(format!(
                    "param `{}` of shape {:?} has {} init values, needs {n}",
                    p.name,
                    p.shape,
                    p.init.len()
                ));
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            let k = self.params.len();
            if step.grads.len() != k || step.expected.len() != k {
                return Err(format!(
                    "step {} has {} grads and {} expected arrays for {k} params",
                    i + 1,
                    step.grads.len(),
                    step.expected.len()
                ));
            }
            for (j, p) in self.params.iter().enumerate() {
                let n = p.init.len();
                let grad_len = step.grads[j].as_ref().map_or(n, Vec::len);
                if grad_len != n || step.expected[j].len() != n {
                    return Err(format!(
                        "step {}: param `{}` needs {n} values, grads has {grad_len} and expected {}",
                        i + 1,
                        p.name,
                        step.expected[j].len()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Replays the trajectory on `device`: builds the optimizer from the spec, feeds the
    /// recorded gradients and compares every parameter after every step.
    pub fn replay(&self, device: &Device, tolerance: Option<Tolerance>) -> Result<ReplayReport, GoldenError> {
        self.replay_with(device, tolerance, crate::fused::Kernels::Auto)
    }

    /// [`replay`](Self::replay) with the chosen kernels.
    pub fn replay_with(
        &self,
        device: &Device,
        tolerance: Option<Tolerance>,
        kernels: crate::fused::Kernels,
    ) -> Result<ReplayReport, GoldenError> {
        self.check().map_err(GoldenError::Invalid)?;
        let dtype = self.dtype().map_err(GoldenError::Invalid)?;
        let tolerance = tolerance.unwrap_or(Tolerance::default_for(dtype));
        let vars = self
            .params
            .iter()
            .map(|p| {
                Var::from_tensor(&Tensor::new(p.init.as_slice(), device)?.reshape(p.shape.as_slice())?.to_dtype(dtype)?)
            })
            .collect::<candle::Result<Vec<_>>>()?;
        let mut optimizer = self.optimizer.build_with_kernels(vars.clone(), kernels)?;
        let mut report = ReplayReport {
            case: self.case.clone(),
            dtype,
            tolerance,
            worst_abs: 0.0,
            worst_step: 0,
            failures: 0,
            first_failure: None,
        };
        for (i, step) in self.steps.iter().enumerate() {
            if let Some(lr) = step.lr {
                optimizer.set_learning_rate(lr);
            }
            let mut grads = GradStore::default();
            for ((var, param), grad) in vars.iter().zip(&self.params).zip(&step.grads) {
                if let Some(grad) = grad {
                    let grad =
                        Tensor::new(grad.as_slice(), device)?.reshape(param.shape.as_slice())?.to_dtype(dtype)?;
                    grads.insert(var.as_tensor(), grad);
                }
            }
            optimizer.step(&grads)?;
            for ((var, param), expected) in vars.iter().zip(&self.params).zip(&step.expected) {
                let got = var.as_tensor().flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
                for (index, (&got, &expected)) in got.iter().zip(expected).enumerate() {
                    let err = (got - expected).abs();
                    if err > report.worst_abs || (err.is_nan() && !report.worst_abs.is_nan()) {
                        report.worst_abs = err;
                        report.worst_step = i + 1;
                    }
                    if !tolerance.accepts(got, expected) {
                        report.failures += 1;
                        report.first_failure.get_or_insert(Mismatch {
                            step: i + 1,
                            param: param.name.clone(),
                            index,
                            got,
                            expected,
                        });
                    }
                }
            }
        }
        Ok(report)
    }
}
