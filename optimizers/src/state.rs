//! Optimizer state for checkpoints (temporary placeholder until the optimizer core lands).

use std::collections::BTreeMap;
use std::path::Path;

use candle::Tensor;

/// An optimizer's whole state: tensors by name, and scalars as JSON.
#[derive(Debug, Default)]
pub struct OptimizerState {
    pub tensors: BTreeMap<String, Tensor>,
    pub meta: serde_json::Value,
}

impl OptimizerState {
    pub fn save(&self, _tensors: &Path, _meta: &Path) -> candle::Result<()> {
        candle::bail!("not yet")
    }
    pub fn load(_tensors: &Path, _meta: &Path) -> candle::Result<Self> {
        candle::bail!("not yet")
    }
}
