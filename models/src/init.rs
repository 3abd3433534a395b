//! Parameters created with PyTorch's default initialisation, from the suite's seeded
//! generator (candle's initialisers draw from an unseeded one, and its `Linear` uses a Kaiming
//! normal where PyTorch uses a uniform). Trainable parameters and buffers (BatchNorm's running
//! statistics) are kept apart, so that buffers never reach an optimizer.
//!
//! | layer | weight | bias |
//! |---|---|---|
//! | `Linear(in, out)` | U(-1/sqrt(in), 1/sqrt(in)) (`kaiming_uniform_(a=sqrt(5))`) | U(-1/sqrt(in), 1/sqrt(in)) |
//! | `Conv2d(in, out, k)` | U(-1/sqrt(fan_in), ..), fan_in = in k k / groups | the same |
//! | `BatchNorm2d(c)` | 1 | 0; running mean 0, running var 1 |

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::Linear;

use crate::conv::Conv2d;
use crate::layers::{Dropout, DropoutState};
use crate::norm::BatchNorm2d;

use crate::rng::SeededRng;

#[derive(Debug, Default)]
struct Store {
    trainable: Vec<(String, Var)>,
    buffers: Vec<(String, Var)>,
    /// The random layers, whose generators are part of a run's state.
    dropouts: Vec<(String, Dropout)>,
}

/// All the parameters of a model, in creation order, with their names.
#[derive(Clone, Debug)]
pub struct Params {
    store: Arc<Mutex<Store>>,
    rng: Arc<Mutex<SeededRng>>,
    device: Device,
    dtype: DType,
}

impl Params {
    /// Parameters drawn from `rng` (fork it per run part, e.g. `rng.fork("init")`).
    pub fn new(rng: SeededRng, dtype: DType, device: &Device) -> Self {
        Self { store: Arc::default(), rng: Arc::new(Mutex::new(rng)), device: device.clone(), dtype }
    }

    /// A builder for names under `prefix`.
    pub fn root(&self) -> ParamBuilder {
        ParamBuilder { params: self.clone(), prefix: String::new() }
    }

    /// The trainable parameters, sorted by name (a stable order for optimizers).
    pub fn trainable(&self) -> Vec<Var> {
        self.named_trainable().into_iter().map(|(_, var)| var).collect()
    }

    /// The trainable parameters with their names, sorted by name.
    pub fn named_trainable(&self) -> Vec<(String, Var)> {
        let mut v = self.store.lock().expect("params lock").trainable.clone();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The buffers (not trained: BatchNorm's running statistics), with their names.
    pub fn buffers(&self) -> Vec<(String, Var)> {
        self.store.lock().expect("params lock").buffers.clone()
    }

    /// Where every random layer's generators are, by layer name (for checkpoints).
    pub fn random_state(&self) -> BTreeMap<String, DropoutState> {
        let store = self.store.lock().expect("params lock");
        store.dropouts.iter().map(|(name, d)| (name.clone(), d.state())).collect()
    }

    /// Restores a [`Params::random_state`] of the same model; a layer it does not name, or a
    /// name it has that the model does not, is an error.
    pub fn restore_random_state(&self, saved: &BTreeMap<String, DropoutState>) -> Result<()> {
        let store = self.store.lock().expect("params lock");
        if saved.len() != store.dropouts.len() {
            candle::bail!("the saved state has {} random layers, the model {}", saved.len(), store.dropouts.len())
        }
        for (name, d) in &store.dropouts {
            match saved.get(name) {
                Some(state) => d.restore(state),
                None => candle::bail!("the saved state has no random layer `{name}`"),
            }
        }
        Ok(())
    }

    /// The number of trainable scalars.
    pub fn count(&self) -> usize {
        self.store.lock().expect("params lock").trainable.iter().map(|(_, v)| v.elem_count()).sum()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
}

/// Creates named parameters (`layer1.0.conv1.weight`).
#[derive(Clone, Debug)]
pub struct ParamBuilder {
    params: Params,
    prefix: String,
}

impl ParamBuilder {
    /// A builder for the names under `name`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Self {
        Self { params: self.params.clone(), prefix: self.name(&name.to_string()) }
    }

    fn name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn make(&self, name: &str, shape: Shape, values: Vec<f32>, trainable: bool) -> Result<Tensor> {
        let tensor = Tensor::from_vec(values, shape, &self.params.device)?.to_dtype(self.params.dtype)?;
        let var = Var::from_tensor(&tensor)?;
        let mut store = self.params.store.lock().expect("params lock");
        let list = if trainable { &mut store.trainable } else { &mut store.buffers };
        let full = self.name(name);
        if list.iter().any(|(n, _)| *n == full) {
            candle::bail!("parameter `{full}` is created twice")
        }
        list.push((full, var.clone()));
        Ok(var.as_tensor().clone())
    }

    /// An independent generator for a random layer (dropout), drawn from the parameters' one.
    pub fn rng(&self, stream: &str) -> SeededRng {
        self.params.rng.lock().expect("rng lock").fork(&self.name(stream))
    }

    /// A dropout layer with rate `p` whose generator (drawn from the parameters' one) the
    /// parameters know, so that checkpoints save and restore it.
    pub fn dropout(&self, name: &str, p: f64) -> Result<Dropout> {
        let dropout = Dropout::new(p, self.rng(name));
        let full = self.name(name);
        let mut store = self.params.store.lock().expect("params lock");
        if store.dropouts.iter().any(|(n, _)| *n == full) {
            candle::bail!("random layer `{full}` is created twice")
        }
        store.dropouts.push((full, dropout.clone()));
        Ok(dropout)
    }

    /// A trainable parameter, uniform in `[-bound, bound]`.
    pub fn uniform(&self, name: &str, shape: impl Into<Shape>, bound: f64) -> Result<Tensor> {
        let shape = shape.into();
        let values = self.params.rng.lock().expect("rng lock").uniform_vec(shape.elem_count(), -bound, bound);
        self.make(name, shape, values, true)
    }

    /// A trainable parameter, normal with mean 0 and the given std.
    pub fn normal(&self, name: &str, shape: impl Into<Shape>, std: f64) -> Result<Tensor> {
        let shape = shape.into();
        let values = self.params.rng.lock().expect("rng lock").normal_vec(shape.elem_count(), 0.0, std);
        self.make(name, shape, values, true)
    }

    /// A trainable parameter filled with `value`.
    pub fn constant(&self, name: &str, shape: impl Into<Shape>, value: f32) -> Result<Tensor> {
        self.filled(name, shape.into(), value, true)
    }

    /// A buffer (not trainable) filled with `value`.
    pub fn buffer(&self, name: &str, shape: impl Into<Shape>, value: f32) -> Result<Tensor> {
        self.filled(name, shape.into(), value, false)
    }

    fn filled(&self, name: &str, shape: Shape, value: f32, trainable: bool) -> Result<Tensor> {
        let n = shape.elem_count();
        self.make(name, shape, vec![value; n], trainable)
    }
}

/// `nn.Linear(inputs, outputs)` with PyTorch's initialisation.
pub fn linear(b: &ParamBuilder, inputs: usize, outputs: usize, bias: bool) -> Result<Linear> {
    let bound = 1.0 / (inputs as f64).sqrt();
    let weight = b.uniform("weight", (outputs, inputs), bound)?;
    let bias = if bias { Some(b.uniform("bias", outputs, bound)?) } else { None };
    Ok(Linear::new(weight, bias))
}

/// `nn.Conv2d(inputs, outputs, kernel, stride, padding, bias)` with PyTorch's initialisation.
pub fn conv2d(
    b: &ParamBuilder,
    inputs: usize,
    outputs: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    bias: bool,
) -> Result<Conv2d> {
    let fan_in = inputs * kernel * kernel;
    let bound = 1.0 / (fan_in as f64).sqrt();
    let weight = b.uniform("weight", (outputs, inputs, kernel, kernel), bound)?;
    let bias = if bias { Some(b.uniform("bias", outputs, bound)?) } else { None };
    Ok(Conv2d::new(weight, bias, stride, padding))
}

/// `nn.BatchNorm2d(channels)`: eps 1e-5, momentum 0.1; the running statistics are buffers.
pub fn batch_norm(b: &ParamBuilder, channels: usize) -> Result<BatchNorm2d> {
    let weight = b.constant("weight", channels, 1.0)?;
    let bias = b.constant("bias", channels, 0.0)?;
    let mean = b.buffer("running_mean", channels, 0.0)?;
    let var = b.buffer("running_var", channels, 1.0)?;
    BatchNorm2d::new(weight, bias, mean, var)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytorch_bounds_names_and_buffers() -> Result<()> {
        let params = Params::new(SeededRng::new(0), DType::F32, &Device::Cpu);
        let root = params.root();
        let l = linear(&root.pp("fc"), 100, 10, true)?;
        let w = l.weight().flatten_all()?.to_vec1::<f32>()?;
        assert!(w.iter().all(|x| x.abs() <= 0.1) && w.iter().any(|x| x.abs() > 0.09));
        batch_norm(&root.pp("bn"), 4)?;
        let names: Vec<String> = params.named_trainable().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["bn.bias", "bn.weight", "fc.bias", "fc.weight"]);
        assert_eq!(params.buffers().len(), 2);
        assert_eq!(params.count(), 100 * 10 + 10 + 8);
        // The same seed gives the same weights.
        let again = Params::new(SeededRng::new(0), DType::F32, &Device::Cpu);
        let l2 = linear(&again.root().pp("fc"), 100, 10, true)?;
        assert_eq!(l2.weight().flatten_all()?.to_vec1::<f32>()?, w);
        assert!(linear(&root.pp("fc"), 1, 1, false).is_err(), "duplicate names are refused");
        Ok(())
    }
}
