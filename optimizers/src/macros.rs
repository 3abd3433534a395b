//! The plumbing every optimizer shares, written once.
//!
//! [`optimizer!`] implements candle's `Optimizer` (and [`WithKernels`](crate::fused::WithKernels))
//! for an optimizer struct with `slots` and `params` (whose `lr` is the learning rate) and an
//! inherent `fn update(&mut self, grads)`: construction validates the params, `step` calls
//! `update`. Its file then holds only the algorithm.
//!
//! [`variant!`]: optimizers that are another optimizer with other defaults (AdamW is Adam with decoupled
//! decay on by default, AMSGrad is Adam with `amsgrad` on, AdaiW is Adai with decoupled decay):
//! a newtype over the params struct, whose `Default` differs, and one over the optimizer,
//! which delegates. The update rule itself is written once, in the base optimizer's file.

macro_rules! variant {
    (
        $(#[$doc:meta])*
        $name:ident($base:ty), $(#[$pdoc:meta])* $params:ident($base_params:ty) = $default:expr
    ) => {
        $(#[$pdoc])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $params(pub $base_params);

        impl Default for $params {
            fn default() -> Self {
                Self($default)
            }
        }

        impl $crate::spec::Hyperparameters for $params {
            fn validate(&self) -> std::result::Result<(), $crate::spec::Invalid> {
                self.0.validate()
            }
        }

        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(pub $base);

        impl $crate::fused::WithKernels for $name {
            fn new_with_kernels(
                vars: Vec<candle::Var>,
                config: $params,
                kernels: $crate::fused::Kernels,
            ) -> candle::Result<Self> {
                <$base as $crate::fused::WithKernels>::new_with_kernels(vars, config.0, kernels).map(Self)
            }
        }

        impl candle_nn::optim::Optimizer for $name {
            type Config = $params;

            fn new(vars: Vec<candle::Var>, config: $params) -> candle::Result<Self> {
                <$base as candle_nn::optim::Optimizer>::new(vars, config.0).map(Self)
            }

            fn step(&mut self, grads: &candle::backprop::GradStore) -> candle::Result<()> {
                candle_nn::optim::Optimizer::step(&mut self.0, grads)
            }

            fn learning_rate(&self) -> f64 {
                candle_nn::optim::Optimizer::learning_rate(&self.0)
            }

            fn set_learning_rate(&mut self, lr: f64) {
                candle_nn::optim::Optimizer::set_learning_rate(&mut self.0, lr)
            }
        }
    };
}

pub(crate) use variant;

macro_rules! optimizer {
    ($name:ident, $params:ty) => {
        $crate::macros::optimizer!($name, $params, |vars, params| Ok(Self {
            slots: $crate::parts::Slots::new(vars),
            params
        }));
    };
    ($name:ident, $params:ty, |$vars:ident, $p:ident| $make:expr) => {
        $crate::macros::optimizer!($name, $params, |$vars, $p, _kernels| $make);
    };
    // With a fused kernel: the constructor also sees the `Kernels` choice (`Auto` from `new`).
    ($name:ident, $params:ty, |$vars:ident, $p:ident, $k:ident| $make:expr) => {
        impl $crate::fused::WithKernels for $name {
            fn new_with_kernels(
                $vars: Vec<candle::Var>,
                $p: $params,
                $k: $crate::fused::Kernels,
            ) -> candle::Result<Self> {
                $crate::spec::Hyperparameters::validate(&$p)?;
                $make
            }
        }

        impl candle_nn::optim::Optimizer for $name {
            type Config = $params;

            fn new(vars: Vec<candle::Var>, params: $params) -> candle::Result<Self> {
                $crate::fused::WithKernels::new_with_kernels(vars, params, $crate::fused::Kernels::Auto)
            }

            fn step(&mut self, grads: &candle::backprop::GradStore) -> candle::Result<()> {
                self.update(grads)
            }

            fn learning_rate(&self) -> f64 {
                self.params.lr
            }

            fn set_learning_rate(&mut self, lr: f64) {
                self.params.lr = lr;
            }
        }
    };
}

pub(crate) use optimizer;
