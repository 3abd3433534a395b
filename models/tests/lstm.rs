//! The LSTM language model: the fused CPU layer against the composed one and against PyTorch's
//! `nn.LSTM` (values and gradients), AWD-LSTM's dropouts, gradient flow, and the parameter
//! counts of the paper's PTB models against AWD-LSTM's `RNNModel` counted by PyTorch.
//!
//! `tests/fixtures/lstm.json` comes from `scripts/fidelity/lstm.py` (see its docstring): a
//! 2-layer `nn.LSTM(4, 8)` in float64 on 5 steps of 3 sequences, the loss
//! `sum(out r_out) + sum(h_n r_h) + sum(c_n r_c)` and its gradients, and the counts.

use candle::{DType, Device, ModuleT, Result, Tensor, Var};
use models::lstm::{
    activation_regularizers, lstm_composed, lstm_fused, token_cross_entropy, LockedDropout, LstmKernel, LstmLm,
    LstmLmConfig, LstmState, LstmWeights,
};
use models::{Dropout, Params, SeededRng};
use serde_json::Value;

fn fixture() -> Value {
    let path = format!("{}/tests/fixtures/lstm.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; regenerate it with scripts/fidelity/lstm.py (see its docstring)"));
    serde_json::from_str(&text).expect("the fixture is JSON")
}

fn values(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number")).collect()
}

fn tensor(v: &Value, shape: &[usize], dtype: DType) -> Result<Tensor> {
    Tensor::from_vec(values(v), shape, &Device::Cpu)?.to_dtype(dtype)
}

fn max_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    (a.to_dtype(DType::F64)? - b.to_dtype(DType::F64)?)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()
}

fn random(shape: &[usize], rng: &mut SeededRng, dtype: DType) -> Result<Tensor> {
    let n = shape.iter().product();
    Tensor::from_vec(rng.normal_vec(n, 0.0, 1.0), shape, &Device::Cpu)?.to_dtype(dtype)
}

/// One stack of LSTM layers with its variables, for comparing implementations.
struct Stack {
    layers: Vec<[Var; 4]>,
    x: Var,
    h0: Vec<Var>,
    c0: Vec<Var>,
}

impl Stack {
    fn weights(&self, l: usize) -> LstmWeights {
        let [w_ih, w_hh, b_ih, b_hh] = &self.layers[l];
        LstmWeights {
            w_ih: w_ih.as_tensor().clone(),
            w_hh: w_hh.as_tensor().clone(),
            b_ih: b_ih.as_tensor().clone(),
            b_hh: b_hh.as_tensor().clone(),
        }
    }

    /// The outputs of the last layer and every layer's last state.
    fn run(&self, fused: bool) -> Result<(Tensor, Vec<LstmState>)> {
        let mut x = self.x.as_tensor().clone();
        let mut states = Vec::new();
        for l in 0..self.layers.len() {
            let state = LstmState { h: self.h0[l].as_tensor().clone(), c: self.c0[l].as_tensor().clone() };
            let (y, s) = if fused {
                lstm_fused(&x, &state, &self.weights(l))?
            } else {
                lstm_composed(&x, &state, &self.weights(l))?
            };
            states.push(s);
            x = y;
        }
        Ok((x, states))
    }

    fn vars(&self) -> Vec<(String, &Var)> {
        let mut out = vec![("x".to_string(), &self.x)];
        for l in 0..self.layers.len() {
            for (k, name) in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].iter().enumerate() {
                out.push((format!("{name}_l{l}"), &self.layers[l][k]));
            }
            out.push((format!("h0_l{l}"), &self.h0[l]));
            out.push((format!("c0_l{l}"), &self.c0[l]));
        }
        out
    }
}

/// `sum(out r_out) + sum_l (sum(h_l r_h[l]) + sum(c_l r_c[l]))`.
fn weighted_loss(out: &Tensor, states: &[LstmState], r_out: &Tensor, r_h: &Tensor, r_c: &Tensor) -> Result<Tensor> {
    let mut loss = (out * r_out)?.sum_all()?;
    for (l, s) in states.iter().enumerate() {
        loss = (loss + (&s.h * r_h.get(l)?)?.sum_all()? + (&s.c * r_c.get(l)?)?.sum_all()?)?;
    }
    Ok(loss)
}

#[test]
fn fused_layer_equals_the_composed_one_in_values_and_gradients() -> Result<()> {
    let (layers, t_len, batch, input, hidden) = (2, 7, 3, 5, 6);
    let mut rng = SeededRng::new(11);
    let mut layer_vars = Vec::new();
    for l in 0..layers {
        let i = if l == 0 { input } else { hidden };
        let mut v =
            |shape: &[usize]| -> Result<Var> { Var::from_tensor(&(random(shape, &mut rng, DType::F32)? * 0.4)?) };
        layer_vars.push([v(&[4 * hidden, i])?, v(&[4 * hidden, hidden])?, v(&[4 * hidden])?, v(&[4 * hidden])?]);
    }
    let stack = Stack {
        layers: layer_vars,
        x: Var::from_tensor(&random(&[t_len, batch, input], &mut rng, DType::F32)?)?,
        h0: (0..layers)
            .map(|_| Var::from_tensor(&random(&[batch, hidden], &mut rng, DType::F32).unwrap()))
            .collect::<Result<_>>()?,
        c0: (0..layers)
            .map(|_| Var::from_tensor(&random(&[batch, hidden], &mut rng, DType::F32).unwrap()))
            .collect::<Result<_>>()?,
    };
    let r_out = random(&[t_len, batch, hidden], &mut rng, DType::F32)?;
    let r_h = random(&[layers, batch, hidden], &mut rng, DType::F32)?;
    let r_c = random(&[layers, batch, hidden], &mut rng, DType::F32)?;
    let (out_f, st_f) = stack.run(true)?;
    let (out_c, st_c) = stack.run(false)?;
    assert!(max_diff(&out_f, &out_c)? < 1e-5, "outputs differ by {}", max_diff(&out_f, &out_c)?);
    for l in 0..layers {
        assert!(max_diff(&st_f[l].h, &st_c[l].h)? < 1e-5 && max_diff(&st_f[l].c, &st_c[l].c)? < 1e-5, "state {l}");
    }
    let grads_f = weighted_loss(&out_f, &st_f, &r_out, &r_h, &r_c)?.backward()?;
    let grads_c = weighted_loss(&out_c, &st_c, &r_out, &r_h, &r_c)?.backward()?;
    for (name, var) in stack.vars() {
        let gf = grads_f.get(var.as_tensor()).unwrap_or_else(|| panic!("fused: no gradient for {name}"));
        let gc = grads_c.get(var.as_tensor()).unwrap_or_else(|| panic!("composed: no gradient for {name}"));
        let scale = gc.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()? as f64;
        let diff = max_diff(gf, gc)?;
        assert!(diff <= 1e-5 * scale.max(1.0), "{name}: gradients differ by {diff} (scale {scale})");
        assert!(scale > 0.0, "{name}: a zero gradient");
    }
    Ok(())
}

/// Both implementations against PyTorch's `nn.LSTM(4, 8, num_layers=2)` in float64 (composed)
/// and float32 (fused).
#[test]
fn both_layers_match_pytorch_nn_lstm() -> Result<()> {
    let fx = fixture();
    let case = &fx["lstm"];
    let n = |k: &str| case[k].as_u64().expect("a size") as usize;
    let (layers, input, hidden, t_len, batch) = (n("layers"), n("inputs"), n("hidden"), n("steps"), n("batch"));
    for (dtype, fused, tol) in [(DType::F64, false, 1e-10), (DType::F32, true, 2e-5), (DType::F32, false, 2e-5)] {
        let mut layer_vars = Vec::new();
        for l in 0..layers {
            let i = if l == 0 { input } else { hidden };
            let w = |name: &str, shape: &[usize]| -> Result<Var> {
                Var::from_tensor(&tensor(&case["weights"][format!("{name}_l{l}")], shape, dtype)?)
            };
            layer_vars.push([
                w("weight_ih", &[4 * hidden, i])?,
                w("weight_hh", &[4 * hidden, hidden])?,
                w("bias_ih", &[4 * hidden])?,
                w("bias_hh", &[4 * hidden])?,
            ]);
        }
        let h0 = tensor(&case["h0"], &[layers, batch, hidden], dtype)?;
        let c0 = tensor(&case["c0"], &[layers, batch, hidden], dtype)?;
        let stack = Stack {
            layers: layer_vars,
            x: Var::from_tensor(&tensor(&case["x"], &[t_len, batch, input], dtype)?)?,
            h0: (0..layers).map(|l| Var::from_tensor(&h0.get(l)?)).collect::<Result<_>>()?,
            c0: (0..layers).map(|l| Var::from_tensor(&c0.get(l)?)).collect::<Result<_>>()?,
        };
        let (out, states) = stack.run(fused)?;
        let what = format!("{dtype:?} fused {fused}");
        let expect = |got: &Tensor, key: &str, shape: &[usize]| -> Result<()> {
            let want = tensor(&case[key], shape, DType::F64)?;
            let diff = max_diff(got, &want)?;
            assert!(diff < tol, "{what}: {key} differs from PyTorch by {diff}");
            Ok(())
        };
        expect(&out, "out", &[t_len, batch, hidden])?;
        let hn = Tensor::stack(&states.iter().map(|s| s.h.clone()).collect::<Vec<_>>(), 0)?;
        let cn = Tensor::stack(&states.iter().map(|s| s.c.clone()).collect::<Vec<_>>(), 0)?;
        expect(&hn, "hn", &[layers, batch, hidden])?;
        expect(&cn, "cn", &[layers, batch, hidden])?;
        let r = |key: &str, shape: &[usize]| tensor(&case[key], shape, dtype);
        let loss = weighted_loss(
            &out,
            &states,
            &r("r_out", &[t_len, batch, hidden])?,
            &r("r_h", &[layers, batch, hidden])?,
            &r("r_c", &[layers, batch, hidden])?,
        )?;
        let grads = loss.backward()?;
        let grad = |var: &Var| grads.get(var.as_tensor()).expect("a gradient").clone();
        expect(&grad(&stack.x), "grad_x", &[t_len, batch, input])?;
        let gh0 = Tensor::stack(&stack.h0.iter().map(grad).collect::<Vec<_>>(), 0)?;
        let gc0 = Tensor::stack(&stack.c0.iter().map(grad).collect::<Vec<_>>(), 0)?;
        expect(&gh0, "grad_h0", &[layers, batch, hidden])?;
        expect(&gc0, "grad_c0", &[layers, batch, hidden])?;
        for l in 0..layers {
            for (k, name) in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].iter().enumerate() {
                let key = format!("{name}_l{l}");
                let var = &stack.layers[l][k];
                let want = tensor(&case["grads"][&key], var.dims(), DType::F64)?;
                let diff = max_diff(&grad(var), &want)?;
                assert!(diff < tol * 10.0, "{what}: d{key} differs from PyTorch by {diff}");
            }
        }
    }
    Ok(())
}

fn tiny_config() -> LstmLmConfig {
    LstmLmConfig {
        vocab: 23,
        emsize: 6,
        nhid: 9,
        layers: 3,
        tied: true,
        dropout: 0.4,
        dropouth: 0.25,
        dropouti: 0.4,
        dropoute: 0.1,
        wdrop: 0.5,
    }
}

fn tokens(t_len: usize, batch: usize, vocab: usize, seed: u64) -> Result<Tensor> {
    let mut rng = SeededRng::new(seed);
    let ids: Vec<u32> = (0..t_len * batch).map(|_| rng.below(vocab) as u32).collect();
    Tensor::from_vec(ids, (t_len, batch), &Device::Cpu)
}

#[test]
fn every_parameter_gets_a_gradient_with_every_dropout_on() -> Result<()> {
    for kernel in [LstmKernel::Fused, LstmKernel::Composed] {
        let params = Params::new(SeededRng::new(3), DType::F32, &Device::Cpu);
        let model = LstmLm::new(&params.root(), &tiny_config())?.with_kernel(kernel);
        let (t_len, batch) = (8, 4);
        let x = tokens(t_len, batch, 23, 1)?;
        let y = tokens(t_len, batch, 23, 2)?.flatten_all()?;
        let out = model.forward(&x, &model.zero_state(batch)?, true)?;
        assert_eq!(out.logits()?.dims(), &[t_len * batch, 23]);
        assert_eq!(out.state.len(), 3);
        assert_eq!(out.state[2].h.dims(), &[batch, 6], "the last layer has emsize units (tied)");
        assert_eq!(out.state[0].h.dims(), &[batch, 9]);
        let ce = out.loss(&y)?;
        let reference = candle_nn::loss::cross_entropy(&out.logits()?, &y)?;
        assert!((ce.to_scalar::<f32>()? - reference.to_scalar::<f32>()?).abs() < 1e-5, "the fused loss is candle's");
        let reg = activation_regularizers(&out, 2.0, 1.0)?.expect("alpha and beta are on");
        let grads = (ce + reg)?.backward()?;
        let named = params.named_trainable();
        let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            names.contains(&"encoder.weight") && names.contains(&"rnns.2.weight_hh") && names.contains(&"decoder.bias")
        );
        assert!(!names.contains(&"decoder.weight"), "tied: no decoder weight of its own");
        for (name, var) in named {
            let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{kernel:?}: {name} has no gradient"));
            let norm = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
            assert!(norm > 0.0, "{kernel:?}: {name} has a zero gradient");
        }
    }
    Ok(())
}

#[test]
fn parameter_counts_match_awd_lstm_for_the_papers_ptb_models() -> Result<()> {
    let fx = fixture();
    let awd = &fx["awd_parameters"];
    for layers in 1..=3usize {
        let config = LstmLmConfig { layers, ..LstmLmConfig::default() };
        assert_eq!((config.vocab, config.emsize, config.nhid), (10_000, 400, 1150));
        let params = Params::new(SeededRng::new(0), DType::F32, &Device::Cpu);
        LstmLm::new(&params.root(), &config)?;
        let want = awd["counts"][layers.to_string()].as_u64().expect("a count") as usize;
        assert_eq!(params.count(), want, "{layers} layers: ours vs AWD-LSTM's RNNModel in PyTorch");
    }
    Ok(())
}

#[test]
fn dropouts_are_awds_locked_row_and_weight_masks() -> Result<()> {
    // Locked dropout: one mask for every time step, scaled by 1 / (1 - p).
    let drop = LockedDropout::new(Dropout::new(0.5, SeededRng::new(4)));
    let x = Tensor::ones((6, 3, 40), DType::F32, &Device::Cpu)?;
    let y = drop.forward_t(&x, true)?;
    let first = y.get(0)?;
    for t in 1..6 {
        assert_eq!(max_diff(&y.get(t)?, &first)?, 0.0, "the mask changes over time at step {t}");
    }
    let kept: Vec<f32> = first.flatten_all()?.to_vec1()?;
    assert!(kept.iter().all(|&v| v == 0.0 || v == 2.0));
    let frac = kept.iter().filter(|&&v| v > 0.0).count() as f64 / kept.len() as f64;
    assert!((0.3..0.7).contains(&frac), "kept {frac}");
    assert_ne!(max_diff(&drop.forward_t(&x, true)?, &y)?, 0.0, "a new mask per call");
    assert_eq!(max_diff(&drop.forward_t(&x, false)?, &x)?, 0.0, "the identity in evaluation");

    // Embedding dropout drops whole word rows; evaluation and p = 0 give the plain lookup.
    let params = Params::new(SeededRng::new(5), DType::F32, &Device::Cpu);
    let config = LstmLmConfig { dropoute: 0.5, ..tiny_config() };
    let model = LstmLm::new(&params.root(), &config)?;
    let same_word = Tensor::from_vec(vec![7u32; 12], (4, 3), &Device::Cpu)?;
    let train = model.forward(&same_word, &model.zero_state(3)?, true)?;
    let eval = model.forward(&same_word, &model.zero_state(3)?, false)?;
    let eval_again = model.forward(&same_word, &model.zero_state(3)?, false)?;
    assert_eq!(max_diff(&eval.logits()?, &eval_again.logits()?)?, 0.0, "evaluation is deterministic");
    assert_ne!(max_diff(&train.logits()?, &eval.logits()?)?, 0.0, "training draws masks");

    // The same seed gives the same masks (and so the same training-mode outputs).
    let again = Params::new(SeededRng::new(5), DType::F32, &Device::Cpu);
    let model2 = LstmLm::new(&again.root(), &config)?;
    let train2 = model2.forward(&same_word, &model2.zero_state(3)?, true)?;
    assert_eq!(max_diff(&train.logits()?, &train2.logits()?)?, 0.0);
    Ok(())
}

#[test]
fn weight_drop_masks_hidden_to_hidden_weights_per_forward() -> Result<()> {
    // With only wdrop on, the first step does not see W_hh (h_0 = 0): equal across calls; later
    // steps differ (as weight_drop.py's own test).
    let config = LstmLmConfig {
        dropout: 0.0,
        dropouth: 0.0,
        dropouti: 0.0,
        dropoute: 0.0,
        wdrop: 0.9,
        layers: 1,
        ..tiny_config()
    };
    let params = Params::new(SeededRng::new(6), DType::F32, &Device::Cpu);
    let model = LstmLm::new(&params.root(), &config)?;
    let x = tokens(3, 2, 23, 9)?;
    let a = model.forward(&x, &model.zero_state(2)?, true)?.last_raw;
    let b = model.forward(&x, &model.zero_state(2)?, true)?.last_raw;
    assert!(max_diff(&a.get(0)?, &b.get(0)?)? < 1e-7, "step 0 does not use W_hh");
    assert!(max_diff(&a.get(1)?, &b.get(1)?)? > 1e-6, "later steps see a new mask");
    let ce = |logits: &Tensor| -> Result<f32> {
        token_cross_entropy(logits, &tokens(3, 2, 23, 10)?.flatten_all()?)?.to_scalar::<f32>()
    };
    assert!(ce(&model.forward(&x, &model.zero_state(2)?, false)?.logits()?)?.is_finite());
    // An eval pass is not affected by the training masks.
    let e1 = model.forward(&x, &model.zero_state(2)?, false)?.logits()?;
    let e2 = model.forward(&x, &model.zero_state(2)?, false)?.logits()?;
    assert_eq!(max_diff(&e1, &e2)?, 0.0);
    Ok(())
}

#[test]
fn the_fused_cross_entropy_equals_candles_in_value_and_gradients() -> Result<()> {
    let mut rng = SeededRng::new(21);
    let (n, v) = (37, 53);
    let scores = Var::from_tensor(&(random(&[n, v], &mut rng, DType::F32)? * 3.0)?)?;
    let bias = Var::from_tensor(&random(&[v], &mut rng, DType::F32)?)?;
    let targets = Tensor::from_vec((0..n).map(|_| rng.below(v) as u32).collect::<Vec<_>>(), n, &Device::Cpu)?;
    // A factor of 3 on the loss checks that the incoming gradient is used.
    let fused = (models::lstm::biased_cross_entropy(scores.as_tensor(), bias.as_tensor(), &targets)? * 3.0)?;
    let logits = scores.as_tensor().broadcast_add(bias.as_tensor())?;
    let reference = (candle_nn::loss::cross_entropy(&logits, &targets)? * 3.0)?;
    let diff = (fused.to_scalar::<f32>()? - reference.to_scalar::<f32>()?).abs();
    assert!(diff < 1e-5, "loss differs by {diff}");
    let (gf, gr) = (fused.backward()?, reference.backward()?);
    for (name, var) in [("scores", &scores), ("bias", &bias)] {
        let diff =
            max_diff(gf.get(var.as_tensor()).expect("fused gradient"), gr.get(var.as_tensor()).expect("gradient"))?;
        assert!(diff < 1e-6, "d{name} differs by {diff}");
    }
    assert!(models::lstm::biased_cross_entropy(scores.as_tensor(), bias.as_tensor(), &(targets + 100.0)?).is_err());
    Ok(())
}
