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
//!
//! The papers' models use other schemes for their convolutions and linear layers: [`Init`]
//! names them (He / MSRA, Glorot, a fixed normal), and [`conv2d_init`] and [`linear_init`] take
//! one. With any scheme but [`Init::Torch`] biases start at zero, as in TensorFlow's layers and
//! the authors' explicit initialisations.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::Linear;

use crate::conv::Conv2d;
use crate::layers::{Dropout, DropoutState};
use crate::norm::{BatchNorm2d, BnConfig};

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

    /// Sets the trainable parameter or buffer `name` to `value` (of its shape; converted to the
    /// parameters' dtype and device): loading another implementation's weights by name.
    pub fn set(&self, name: &str, value: &Tensor) -> Result<()> {
        let store = self.store.lock().expect("params lock");
        let Some((_, var)) = store.trainable.iter().chain(&store.buffers).find(|(n, _)| n == name) else {
            candle::bail!("the model has no parameter or buffer `{name}`")
        };
        if var.dims() != value.dims() {
            candle::bail!("parameter `{name}` has shape {:?}, the value {:?}", var.dims(), value.dims())
        }
        var.set(&value.to_dtype(self.dtype)?.to_device(&self.device)?)
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
        self.normal_around(name, shape, 0.0, std)
    }

    /// A trainable parameter, normal with the given mean and std (DCGAN's BatchNorm gamma
    /// `N(1, 0.02²)`).
    pub fn normal_around(&self, name: &str, shape: impl Into<Shape>, mean: f64, std: f64) -> Result<Tensor> {
        let shape = shape.into();
        let values = self.params.rng.lock().expect("rng lock").normal_vec(shape.elem_count(), mean, std);
        self.make(name, shape, values, true)
    }

    /// A trainable parameter, normal with mean 0 and the given std, truncated at two standard
    /// deviations by drawing again (TensorFlow's `truncated_normal`; its std is `std` times
    /// 0.8796).
    pub fn truncated_normal(&self, name: &str, shape: impl Into<Shape>, std: f64) -> Result<Tensor> {
        let shape = shape.into();
        let mut rng = self.params.rng.lock().expect("rng lock");
        let values = (0..shape.elem_count())
            .map(|_| loop {
                let z = rng.normal();
                if z.abs() <= 2.0 {
                    break (std * z) as f32;
                }
            })
            .collect();
        drop(rng);
        self.make(name, shape, values, true)
    }

    /// A trainable parameter drawn by `init` for a layer of the given fans.
    pub fn init(
        &self,
        name: &str,
        shape: impl Into<Shape>,
        init: Init,
        fan_in: usize,
        fan_out: usize,
    ) -> Result<Tensor> {
        let fan = |f: Fan| match f {
            Fan::In => fan_in,
            Fan::Out => fan_out,
        } as f64;
        match init {
            Init::Torch => self.uniform(name, shape, 1.0 / (fan_in as f64).sqrt()),
            Init::HeNormal(f) => self.normal(name, shape, (2.0 / fan(f)).sqrt()),
            Init::TfVarianceScaling(f) => self.truncated_normal(name, shape, (1.3 * 2.0 / fan(f)).sqrt()),
            Init::GlorotUniform => self.uniform(name, shape, (6.0 / (fan_in + fan_out) as f64).sqrt()),
            Init::Normal(std) => self.normal(name, shape, std),
        }
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

/// Which fan a variance-scaling initialisation divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fan {
    /// inputs x kernel area
    In,
    /// outputs x kernel area
    Out,
}

/// How the weights of a convolution or linear layer are drawn (`fan_in = in k k`,
/// `fan_out = out k k`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Init {
    /// PyTorch's default (`kaiming_uniform_(a = sqrt(5))`): U(±1/sqrt(fan_in)); bias the same.
    #[default]
    Torch,
    /// He / MSRA normal, `nn.init.kaiming_normal_`: N(0, 2 / fan); bias 0.
    HeNormal(Fan),
    /// TensorFlow 1's `tf.contrib.layers.variance_scaling_initializer()` (factor 2,
    /// `uniform=False`): a normal of std sqrt(1.3 * 2 / fan) truncated at two standard deviations
    /// (the 1.3 undoes most of the truncation's shrinking); bias 0.
    TfVarianceScaling(Fan),
    /// Glorot / Xavier uniform (TensorFlow's default kernel initialiser): U(±sqrt(6 / (fan_in +
    /// fan_out))); bias 0.
    GlorotUniform,
    /// N(0, std²); bias 0.
    Normal(f64),
}

/// How a model's layers start and normalise: the scheme of its convolutions and of its linear
/// layers, and its BatchNorm constants. The default is PyTorch's for all three; a paper's model
/// (AdaBelief's VGG, AdaShift's TensorFlow networks) sets its own, and the vision tasks' `init`,
/// `bn_eps` and `bn_momentum` options override them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LayerSetup {
    pub conv: Init,
    pub linear: Init,
    pub bn: BnConfig,
}

impl LayerSetup {
    /// A convolution with this setup's scheme.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d(
        &self,
        b: &ParamBuilder,
        inputs: usize,
        outputs: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        bias: bool,
    ) -> Result<Conv2d> {
        conv2d_init(b, inputs, outputs, kernel, stride, padding, bias, self.conv)
    }

    /// A linear layer with this setup's scheme.
    pub fn linear(&self, b: &ParamBuilder, inputs: usize, outputs: usize, bias: bool) -> Result<Linear> {
        linear_init(b, inputs, outputs, bias, self.linear)
    }

    /// A batch norm with this setup's constants.
    pub fn batch_norm(&self, b: &ParamBuilder, channels: usize) -> Result<BatchNorm2d> {
        batch_norm_with(b, channels, self.bn)
    }
}

/// A convolution drawn by `init` (bias, when present, as [`Init`] says).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_init(
    b: &ParamBuilder,
    inputs: usize,
    outputs: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    bias: bool,
    init: Init,
) -> Result<Conv2d> {
    if init == Init::Torch {
        return conv2d(b, inputs, outputs, kernel, stride, padding, bias);
    }
    let area = kernel * kernel;
    let weight = b.init("weight", (outputs, inputs, kernel, kernel), init, inputs * area, outputs * area)?;
    let bias = if bias { Some(b.constant("bias", outputs, 0.0)?) } else { None };
    Ok(Conv2d::new(weight, bias, stride, padding))
}

/// A linear layer drawn by `init` (bias, when present, as [`Init`] says).
pub fn linear_init(b: &ParamBuilder, inputs: usize, outputs: usize, bias: bool, init: Init) -> Result<Linear> {
    if init == Init::Torch {
        return linear(b, inputs, outputs, bias);
    }
    let weight = b.init("weight", (outputs, inputs), init, inputs, outputs)?;
    let bias = if bias { Some(b.constant("bias", outputs, 0.0)?) } else { None };
    Ok(Linear::new(weight, bias))
}

/// `nn.BatchNorm2d(channels)`: eps 1e-5, momentum 0.1; the running statistics are buffers.
pub fn batch_norm(b: &ParamBuilder, channels: usize) -> Result<BatchNorm2d> {
    batch_norm_with(b, channels, BnConfig::default())
}

/// A batch norm with other constants (TensorFlow's, or a paper's quirk): gamma 1, beta 0.
pub fn batch_norm_with(b: &ParamBuilder, channels: usize, config: BnConfig) -> Result<BatchNorm2d> {
    let weight = b.constant("weight", channels, 1.0)?;
    let bias = b.constant("bias", channels, 0.0)?;
    let mean = b.buffer("running_mean", channels, 0.0)?;
    let var = b.buffer("running_var", channels, 1.0)?;
    BatchNorm2d::with_config(weight, bias, mean, var, config)
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

    /// Sample std of the weights of a 3x3 convolution of 64 -> 128 channels drawn by `init`,
    /// with its bias values.
    fn conv_stats(init: Init) -> Result<(f64, f64, Vec<f32>)> {
        let params = Params::new(SeededRng::new(3), DType::F32, &Device::Cpu);
        let conv = conv2d_init(&params.root().pp("c"), 64, 128, 3, 1, 1, true, init)?;
        let w = conv.weight().flatten_all()?.to_vec1::<f32>()?;
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        let std = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        let max = w.iter().map(|v| v.abs() as f64).fold(0.0, f64::max);
        let bias = params.named_trainable().into_iter().find(|(n, _)| n == "c.bias").unwrap().1;
        Ok((std, max, bias.as_tensor().to_vec1::<f32>()?))
    }

    #[test]
    fn schemes_draw_their_variances_and_zero_biases() -> Result<()> {
        let (fan_in, fan_out): (f64, f64) = (64.0 * 9.0, 128.0 * 9.0);
        // 73,728 samples: the sample std is within 1% of the true one with a wide margin.
        let close = |got: f64, want: f64, what: &str| {
            assert!((got / want - 1.0).abs() < 0.01, "{what}: std {got}, expected {want}");
        };
        let (std, _, bias) = conv_stats(Init::HeNormal(Fan::Out))?;
        close(std, (2.0 / fan_out).sqrt(), "He normal, fan out");
        assert!(bias.iter().all(|&b| b == 0.0), "zero bias");
        let (std, _, _) = conv_stats(Init::HeNormal(Fan::In))?;
        close(std, (2.0 / fan_in).sqrt(), "He normal, fan in");
        // A standard normal truncated at +-2 has std 0.87963.
        let (std, max, _) = conv_stats(Init::TfVarianceScaling(Fan::In))?;
        let s = (1.3 * 2.0 / fan_in).sqrt();
        close(std, 0.879_626 * s, "TF variance scaling");
        assert!(max <= 2.0 * s * (1.0 + 1e-6), "truncated at two std: {max} > {}", 2.0 * s);
        let (std, max, _) = conv_stats(Init::GlorotUniform)?;
        let bound = (6.0 / (fan_in + fan_out)).sqrt();
        close(std, bound / 3f64.sqrt(), "Glorot uniform");
        assert!(max <= bound);
        let (std, _, _) = conv_stats(Init::Normal(0.05))?;
        close(std, 0.05, "normal");
        let (std, _, bias) = conv_stats(Init::Torch)?;
        close(std, 1.0 / fan_in.sqrt() / 3f64.sqrt(), "PyTorch default");
        assert!(bias.iter().any(|&b| b != 0.0), "PyTorch's bias is drawn");
        Ok(())
    }
}
