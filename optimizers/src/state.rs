//! Optimizer state that can be saved and restored, so that a run can stop and resume with
//! bit-identical results (in the manner of burn's records).
//!
//! An [`OptimizerState`] holds every state tensor by a stable name, `"<index>.<slot>"` (the
//! variable's position in the list the optimizer was built over, then the slot: `"3.m"`,
//! `"0.window.2"`), and a JSON `meta` object:
//!
//! ```json
//! {
//!   "format": "optbench-optimizer-state/1",
//!   "optimizer": "adabound",
//!   "lr": 0.001,
//!   "hyperparameters": {"lr": 0.001, "beta1": 0.9, "...": "..."},
//!   "scalars": {"base_lr": 0.001},
//!   "bits": {"lr": "3f50624dd2f1a9fc", "base_lr": "3f50624dd2f1a9fc"},
//!   "variables": [{"index": 0, "shape": [3, 4], "dtype": "f32", "step": 12}]
//! }
//! ```
//! `bits` repeats the learning rate and the scalars as the hexadecimal bits of their `f64`,
//! because a decimal JSON number need not parse back to the same double; a restore uses them.
//! `hyperparameters` are the optimizer's at the time of the save; a restore requires the same
//! ones (the learning rate excepted: it is restored). The parameters themselves are not part
//! of the state: the caller saves and restores its variables.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use candle::{DType, Device, Shape, Tensor, Var};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The format tag of `meta`.
pub const FORMAT: &str = "optbench-optimizer-state/1";

/// The whole state of an optimizer, see the module documentation.
#[derive(Clone, Debug)]
pub struct OptimizerState {
    /// Every state tensor, by a stable name such as "3.m" (variable index in the optimizer's
    /// variable list, then the slot name); on the CPU.
    pub tensors: BTreeMap<String, Tensor>,
    /// Step counts per variable, the learning rate, and any scalars (e.g. AdaBound's
    /// base_lr), as JSON.
    pub meta: Value,
}

fn io_error(what: &str, path: &Path, err: impl std::fmt::Display) -> candle::Error {
    candle::Error::Msg(format!("optimizer state: cannot {what} {}: {err}", path.display()))
}

impl OptimizerState {
    /// Writes the tensors as one safetensors file and `meta` as one JSON file.
    pub fn save(&self, tensors: &Path, meta: &Path) -> candle::Result<()> {
        let map: HashMap<&str, Tensor> = self.tensors.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        candle::safetensors::save(&map, tensors).map_err(|err| io_error("write", tensors, err))?;
        let text = serde_json::to_string_pretty(&self.meta).map_err(|err| io_error("write", meta, err))?;
        std::fs::write(meta, text + "\n").map_err(|err| io_error("write", meta, err))
    }

    /// Reads a state written by [`save`](Self::save).
    pub fn load(tensors: &Path, meta: &Path) -> candle::Result<Self> {
        let text = std::fs::read_to_string(meta).map_err(|err| io_error("read", meta, err))?;
        let meta: Value = serde_json::from_str(&text).map_err(|err| io_error("parse", meta, err))?;
        let tensors = candle::safetensors::load(tensors, &Device::Cpu).map_err(|err| io_error("read", tensors, err))?;
        Ok(Self { tensors: tensors.into_iter().collect(), meta })
    }
}

/// What `meta` holds, see the module documentation.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Meta {
    pub format: String,
    pub optimizer: String,
    pub lr: f64,
    pub hyperparameters: Value,
    #[serde(default)]
    pub scalars: BTreeMap<String, f64>,
    #[serde(default)]
    pub bits: BTreeMap<String, String>,
    pub variables: Vec<VarMeta>,
}

/// One variable of a saved state.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VarMeta {
    pub index: usize,
    pub shape: Vec<usize>,
    pub dtype: String,
    /// The steps in which it had a gradient (0: no state).
    pub step: u64,
}

fn bits(x: f64) -> String {
    format!("{:016x}", x.to_bits())
}

impl Meta {
    pub fn new(
        optimizer: &str,
        lr: f64,
        hyperparameters: Value,
        scalars: BTreeMap<String, f64>,
        variables: Vec<VarMeta>,
    ) -> Self {
        let mut exact: BTreeMap<String, String> = scalars.iter().map(|(k, &v)| (k.clone(), bits(v))).collect();
        exact.insert("lr".to_string(), bits(lr));
        Self {
            format: FORMAT.to_string(),
            optimizer: optimizer.to_string(),
            lr,
            hyperparameters,
            scalars,
            bits: exact,
            variables,
        }
    }

    /// Reads `meta`, checking first its format and that it is the state of `optimizer`.
    pub fn parse(meta: &Value, optimizer: &str) -> candle::Result<Self> {
        match meta.get("format").and_then(Value::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                candle::bail!("optimizer state: format is `{other}`, this version reads `{FORMAT}`")
            }
            None => candle::bail!("optimizer state: `meta` has no `format` (expected `{FORMAT}`)"),
        }
        match meta.get("optimizer").and_then(Value::as_str) {
            Some(name) if name == optimizer => {}
            Some(name) => {
                candle::bail!("optimizer state: saved by optimizer `{name}`, cannot be restored into `{optimizer}`")
            }
            None => candle::bail!("optimizer state: `meta` does not name its `optimizer`"),
        }
        let mut parsed: Self = serde_json::from_value(meta.clone())
            .map_err(|err| candle::Error::Msg(format!("optimizer state: bad `meta`: {err}")))?;
        parsed.lr = parsed.exact("lr", parsed.lr)?;
        let names: Vec<String> = parsed.scalars.keys().cloned().collect();
        for name in names {
            let value = parsed.exact(&name, parsed.scalars[&name])?;
            parsed.scalars.insert(name, value);
        }
        Ok(parsed)
    }

    /// The exact value of a scalar from its bits, where they were saved.
    fn exact(&self, name: &str, decimal: f64) -> candle::Result<f64> {
        match self.bits.get(name) {
            None => Ok(decimal),
            Some(hex) => u64::from_str_radix(hex, 16).map(f64::from_bits).map_err(|_| {
                candle::Error::Msg(format!("optimizer state: `bits.{name}` is `{hex}`, not 16 hexadecimal digits"))
            }),
        }
    }
}

/// The name of a dtype as `meta` writes it.
pub(crate) fn dtype_name(dtype: DType) -> String {
    format!("{dtype:?}").to_lowercase()
}

/// Where a rule puts the state tensors of one variable.
pub struct SlotWriter<'a> {
    index: usize,
    tensors: &'a mut BTreeMap<String, Tensor>,
}

impl<'a> SlotWriter<'a> {
    pub(crate) fn new(index: usize, tensors: &'a mut BTreeMap<String, Tensor>) -> Self {
        Self { index, tensors }
    }

    /// Saves `tensor` as slot `slot` of this variable (copied to the CPU; a CPU tensor is
    /// shared, which is safe as the optimizers never write their state tensors in place).
    pub fn put(&mut self, slot: &str, tensor: &Tensor) -> candle::Result<()> {
        self.tensors.insert(format!("{}.{slot}", self.index), tensor.to_device(&Device::Cpu)?);
        Ok(())
    }
}

/// Where a rule takes the state tensors of one variable from: each is checked against the
/// shape the rule expects and the variable's dtype, and moved to the variable's device.
pub struct SlotReader<'a> {
    index: usize,
    var: &'a Var,
    tensors: &'a BTreeMap<String, Tensor>,
    used: &'a mut BTreeSet<String>,
}

impl<'a> SlotReader<'a> {
    pub(crate) fn new(
        index: usize,
        var: &'a Var,
        tensors: &'a BTreeMap<String, Tensor>,
        used: &'a mut BTreeSet<String>,
    ) -> Self {
        Self { index, var, tensors, used }
    }

    fn key(&self, slot: &str) -> String {
        format!("{}.{slot}", self.index)
    }

    /// Whether the state has slot `slot` for this variable.
    pub fn has(&self, slot: &str) -> bool {
        self.tensors.contains_key(&self.key(slot))
    }

    /// Slot `slot`, which must have shape `shape`.
    pub fn take(&mut self, slot: &str, shape: impl Into<Shape>) -> candle::Result<Tensor> {
        let (key, shape) = (self.key(slot), shape.into());
        let Some(tensor) = self.tensors.get(&key) else {
            candle::bail!(
                "optimizer state: missing tensor `{key}` (slot `{slot}` of variable {}, shape {:?})",
                self.index,
                self.var.dims()
            )
        };
        if tensor.shape() != &shape {
            candle::bail!(
                "optimizer state: tensor `{key}` has shape {:?}, but slot `{slot}` of variable {} (shape {:?}) needs {:?}",
                tensor.dims(),
                self.index,
                self.var.dims(),
                shape.dims()
            )
        }
        if tensor.dtype() != self.var.dtype() {
            candle::bail!(
                "optimizer state: tensor `{key}` is {:?}, but variable {} is {:?}",
                tensor.dtype(),
                self.index,
                self.var.dtype()
            )
        }
        self.used.insert(key);
        tensor.to_device(self.var.device())
    }

    /// Slot `slot` with the variable's shape.
    pub fn take_like_var(&mut self, slot: &str) -> candle::Result<Tensor> {
        self.take(slot, self.var.shape().clone())
    }
}
