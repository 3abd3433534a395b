//! Word-level LSTM language model in the manner of AWD-LSTM (Merity, Keskar & Socher, 2018), the
//! code base AdaBelief's Penn Treebank experiments used.
//!
//! Reference: `salesforce/awd-lstm-lm` at commit `1d466ec5875675ca6b6f0caacbb741240a29da9e`,
//! `model.py` (`RNNModel`, rnn type `LSTM`), `embed_regularize.py` (`embedded_dropout`),
//! `locked_dropout.py` (`LockedDropout`), `weight_drop.py` (`WeightDrop`), as copied into
//! `juntang-zhuang/Adabelief-Optimizer` `PyTorch_Experiments/LSTM/` at commit
//! `2855178eff6776762793f915ce2c615f776a1e4b` (the files the paper ran; read, not copied).
//!
//! ```text
//! tokens (T, B) --embedded_dropout(dropoute)--> emb (T, B, E)        rows of the embedding
//!                                                                    zeroed per word, kept / (1 - p)
//! x_0 = LockedDropout(emb, dropouti)                                 one mask (1, B, E) over time
//! for l in 0..L:  y_l, (h_l, c_l) = LSTM_l(x_l, (h_l, c_l))          W_hh of each layer masked by
//!                                                                    DropConnect (wdrop) per forward
//!                 x_{l+1} = LockedDropout(y_l, dropouth)  (l < L - 1)
//! out = LockedDropout(y_{L-1}, dropout)
//! logits = out W_enc^T + b_dec                                       tied: the decoder's weight is
//!                                                                    the (unmasked) embedding
//! ```
//!
//! Layer `l` has input size `E` (l = 0) or `nhid`, and hidden size `nhid`, except the last one,
//! whose hidden size is `E` so that the tied decoder fits (`model.py:20`). One LSTM step is
//! PyTorch's `nn.LSTM` (gates in the order i, f, g, o):
//!
//! ```text
//! a = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh         (4H)
//! i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o)
//! c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)
//! ```
//!
//! Initialisation as `RNNModel`: the LSTM's weights and biases U(±1/sqrt(H)) (`nn.LSTM`'s
//! `reset_parameters`), the embedding U(±0.1) and the decoder bias 0 (`init_weights`). The paper's
//! PTB models (10,000 words, E 400, nhid 1150, tied) have 5,293,200 (1 layer: one LSTM(400, 400)),
//! 13,632,400 (2) and 24,221,600 (3 layers) parameters, as AWD's `RNNModel` counted by PyTorch
//! (`scripts/fidelity/lstm.py`, checked in `tests/lstm.rs`).
//!
//! Every mask is drawn by the suite's seeded [`Dropout`] (Philox, registered with the
//! parameters so that checkpoints continue the masks): `embedded_dropout`'s (V, 1) mask, the
//! locked (1, B, D) masks and WeightDrop's mask over `W_hh`, each made by applying the dropout
//! to ones (or to the weight) and broadcast as AWD-LSTM's code does.
//!
//! Two implementations of a layer over a whole sequence: [`lstm_composed`], candle tensor ops one
//! step at a time (any device, any float type: the reference), and [`lstm_fused`], a CPU op for
//! f32 ([`FusedLstm`]) that runs the recurrence with the `gemm` crate (one `B x H` by `H x 4H`
//! product per step, the input projection `x W_ih^T` done by one candle matmul over the whole
//! sequence beforehand), keeps the gates and cells, and has its own backward pass (one reverse
//! sweep for the gate gradients and `dh_0, dc_0`, then `dW_hh` as one product over all steps).
//! [`lstm_sequence`] picks the fused op on the CPU in f32 and the composed one elsewhere.

use std::sync::{Arc, Mutex};

use candle::{DType, Device, ModuleT, Result, Tensor};

use crate::cpu::{contiguous, matmul, output, Threads};
use crate::init::ParamBuilder;
use crate::layers::Dropout;

/// The hidden and cell state of one layer, each (B, H).
#[derive(Clone, Debug)]
pub struct LstmState {
    pub h: Tensor,
    pub c: Tensor,
}

impl LstmState {
    /// Zeros for `batch` sequences of `hidden` units.
    pub fn zeros(batch: usize, hidden: usize, dtype: DType, device: &Device) -> Result<Self> {
        Ok(Self {
            h: Tensor::zeros((batch, hidden), dtype, device)?,
            c: Tensor::zeros((batch, hidden), dtype, device)?,
        })
    }

    /// The same values, cut from the graph (truncated backpropagation through time).
    pub fn detach(&self) -> Self {
        Self { h: self.h.detach(), c: self.c.detach() }
    }
}

/// The weights of one LSTM layer, as `nn.LSTM`'s `weight_ih_l0` (4H, I), `weight_hh_l0` (4H, H),
/// `bias_ih_l0`, `bias_hh_l0` (4H).
#[derive(Clone, Debug)]
pub struct LstmWeights {
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    pub b_ih: Tensor,
    pub b_hh: Tensor,
}

impl LstmWeights {
    /// A layer of `hidden` units over `input` features with `nn.LSTM`'s initialisation:
    /// every weight and bias U(±1/sqrt(hidden)).
    pub fn new(b: &ParamBuilder, input: usize, hidden: usize) -> Result<Self> {
        let bound = 1.0 / (hidden as f64).sqrt();
        Ok(Self {
            w_ih: b.uniform("weight_ih", (4 * hidden, input), bound)?,
            w_hh: b.uniform("weight_hh", (4 * hidden, hidden), bound)?,
            b_ih: b.uniform("bias_ih", 4 * hidden, bound)?,
            b_hh: b.uniform("bias_hh", 4 * hidden, bound)?,
        })
    }

    pub fn hidden(&self) -> usize {
        self.w_hh.dim(1).unwrap_or(0)
    }
}

/// Which implementation a layer runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LstmKernel {
    /// The fused CPU op where it applies (CPU, f32), else the composed one.
    #[default]
    Auto,
    /// Candle tensor ops, one step at a time.
    Composed,
    /// The fused CPU op (an error elsewhere).
    Fused,
}

/// One layer over a sequence `x` (T, B, I) from `state`, with the given weights (`w_hh` already
/// masked when DropConnect is on): the outputs (T, B, H) and the last state.
pub fn lstm_sequence(
    x: &Tensor,
    state: &LstmState,
    w: &LstmWeights,
    kernel: LstmKernel,
) -> Result<(Tensor, LstmState)> {
    let fused_applies = x.device().is_cpu() && x.dtype() == DType::F32;
    match kernel {
        LstmKernel::Auto if fused_applies => lstm_fused(x, state, w),
        LstmKernel::Fused => lstm_fused(x, state, w),
        LstmKernel::Auto | LstmKernel::Composed => lstm_composed(x, state, w),
    }
}

/// The reference: `nn.LSTM`'s recurrence in candle tensor ops, one step at a time.
pub fn lstm_composed(x: &Tensor, state: &LstmState, w: &LstmWeights) -> Result<(Tensor, LstmState)> {
    let (t_len, _, _) = x.dims3()?;
    let hidden = w.hidden();
    let bias = (&w.b_ih + &w.b_hh)?;
    let (mut h, mut c) = (state.h.clone(), state.c.clone());
    let w_ih_t = w.w_ih.t()?;
    let w_hh_t = w.w_hh.t()?;
    let mut outputs = Vec::with_capacity(t_len);
    for t in 0..t_len {
        let x_t = x.get(t)?;
        let a = (x_t.matmul(&w_ih_t)? + h.matmul(&w_hh_t)?)?.broadcast_add(&bias)?;
        let i = candle_nn::ops::sigmoid(&a.narrow(1, 0, hidden)?)?;
        let f = candle_nn::ops::sigmoid(&a.narrow(1, hidden, hidden)?)?;
        let g = a.narrow(1, 2 * hidden, hidden)?.tanh()?;
        let o = candle_nn::ops::sigmoid(&a.narrow(1, 3 * hidden, hidden)?)?;
        c = ((f * &c)? + (i * g)?)?;
        h = (o * c.tanh()?)?;
        outputs.push(h.clone());
    }
    Ok((Tensor::stack(&outputs, 0)?, LstmState { h, c }))
}

/// The fused CPU layer (f32): the input projection as one candle matmul, then [`FusedLstm`].
pub fn lstm_fused(x: &Tensor, state: &LstmState, w: &LstmWeights) -> Result<(Tensor, LstmState)> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        candle::bail!("the fused LSTM runs on the CPU in f32 (use LstmKernel::Composed or Auto elsewhere)")
    }
    let (t_len, batch, input) = x.dims3()?;
    let hidden = w.hidden();
    let projected = x
        .reshape((t_len * batch, input))?
        .matmul(&w.w_ih.t()?)?
        .broadcast_add(&(&w.b_ih + &w.b_hh)?)?
        .reshape((t_len, batch, 4 * hidden))?;
    let state0 = Tensor::stack(&[&state.h, &state.c], 0)?.contiguous()?;
    let op = FusedLstm { t_len, batch, hidden, saved: Arc::default() };
    let packed = projected.contiguous()?.apply_op3(&w.w_hh.contiguous()?, &state0, op)?;
    // packed: (T + 1, B, H), rows 0..T the outputs h_1..h_T, row T the last cell c_T.
    let outputs = packed.narrow(0, 0, t_len)?;
    let h = if t_len == 0 { state.h.clone() } else { packed.get(t_len - 1)? };
    Ok((outputs, LstmState { h, c: packed.get(t_len)? }))
}

/// What the forward pass of [`FusedLstm`] keeps for its backward pass: `h_0..h_T` and
/// `c_0..c_T` ((T + 1) B H each) and the activated gates `i, f, g, o` of every step (T B 4H).
#[derive(Debug, Default)]
struct Saved {
    hs: Vec<f32>,
    cs: Vec<f32>,
    gates: Vec<f32>,
}

/// The recurrence of an LSTM layer on the CPU in f32, from the projected inputs
/// `x W_ih^T + b_ih + b_hh` (T, B, 4H), `W_hh` (4H, H) and the initial state stacked (2, B, H).
/// Its output is (T + 1, B, H): `h_1..h_T`, then `c_T`. The states and gates stay with the op
/// (in the graph) for the backward pass. Per step, the gates are one `gemm` product
/// `a (B x 4H) += h_{t-1} W_hh^T`, `W_hh` read in place.
#[derive(Clone, Debug)]
pub struct FusedLstm {
    t_len: usize,
    batch: usize,
    hidden: usize,
    saved: Arc<Mutex<Saved>>,
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl FusedLstm {
    /// The forward recurrence; returns the op's output and fills [`Saved`].
    fn forward(&self, xp: &[f32], w_hh: &[f32], state0: &[f32]) -> Vec<f32> {
        use rayon::prelude::*;
        let (t_len, b, h) = (self.t_len, self.batch, self.hidden);
        let bh = b * h;
        let mut hs = output::<f32>((t_len + 1) * bh);
        let mut cs = output::<f32>((t_len + 1) * bh);
        hs[..bh].copy_from_slice(&state0[..bh]);
        cs[..bh].copy_from_slice(&state0[bh..2 * bh]);
        let mut gates = output::<f32>(t_len * b * 4 * h);
        for t in 1..=t_len {
            let a = &mut gates[(t - 1) * b * 4 * h..t * b * 4 * h];
            a.copy_from_slice(&xp[(t - 1) * b * 4 * h..t * b * 4 * h]);
            // a (B x 4H) += h_{t-1} (B x H) . W_hh^T (H x 4H, W_hh read in place)
            let h_prev = &hs[(t - 1) * bh..t * bh];
            matmul((b, 4 * h, h), a, (4 * h, 1), true, h_prev, (h, 1), w_hh, (1, h), Threads::IfLarge);
            let (h_done, h_rest) = hs.split_at_mut(t * bh);
            let (c_done, c_rest) = cs.split_at_mut(t * bh);
            let _ = h_done;
            let c_prev = &c_done[(t - 1) * bh..];
            h_rest[..bh]
                .par_chunks_mut(h)
                .zip(c_rest[..bh].par_chunks_mut(h))
                .zip(a.par_chunks_mut(4 * h))
                .enumerate()
                .for_each(|(s, ((h_out, c_out), a))| {
                    let c_prev = &c_prev[s * h..(s + 1) * h];
                    for j in 0..h {
                        let i = sigmoid(a[j]);
                        let f = sigmoid(a[h + j]);
                        let g = a[2 * h + j].tanh();
                        let o = sigmoid(a[3 * h + j]);
                        let c = f * c_prev[j] + i * g;
                        c_out[j] = c;
                        h_out[j] = o * c.tanh();
                        a[j] = i;
                        a[h + j] = f;
                        a[2 * h + j] = g;
                        a[3 * h + j] = o;
                    }
                });
        }
        let mut out = output::<f32>((t_len + 1) * bh);
        out[..t_len * bh].copy_from_slice(&hs[bh..]);
        out[t_len * bh..].copy_from_slice(&cs[t_len * bh..]);
        *self.saved.lock().expect("lstm workspace") = Saved { hs, cs, gates };
        out
    }
}

impl candle::CustomOp3 for FusedLstm {
    fn name(&self) -> &'static str {
        "optbench-lstm"
    }

    fn cpu_fwd(
        &self,
        s1: &candle::CpuStorage,
        l1: &candle::Layout,
        s2: &candle::CpuStorage,
        l2: &candle::Layout,
        s3: &candle::CpuStorage,
        l3: &candle::Layout,
    ) -> Result<(candle::CpuStorage, candle::Shape)> {
        use candle::CpuStorage;
        let (CpuStorage::F32(xp), CpuStorage::F32(w), CpuStorage::F32(s0)) = (s1, s2, s3) else {
            candle::bail!("the fused LSTM takes f32 operands")
        };
        let xp = contiguous(xp, l1, "lstm", "projected input")?;
        let w = contiguous(w, l2, "lstm", "hidden-to-hidden weight")?;
        let s0 = contiguous(s0, l3, "lstm", "initial state")?;
        let (t_len, b, h) = (self.t_len, self.batch, self.hidden);
        if xp.len() != t_len * b * 4 * h || w.len() != 4 * h * h || s0.len() != 2 * b * h {
            candle::bail!(
                "lstm: operands of {} / {} / {} elements for T {t_len} B {b} H {h}",
                xp.len(),
                w.len(),
                s0.len()
            )
        }
        let out = self.forward(xp, w, s0);
        Ok((CpuStorage::F32(out), candle::Shape::from((t_len + 1, b, h))))
    }

    fn bwd(
        &self,
        _xp: &Tensor,
        w_hh: &Tensor,
        _state0: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (t_len, b, h) = (self.t_len, self.batch, self.hidden);
        let backward = FusedLstmBackward(self.clone());
        let grads = grad_res.contiguous()?.apply_op2_no_bwd(&w_hh.contiguous()?, &backward)?;
        let dxp = grads.narrow(0, 0, t_len * b * 4 * h)?.reshape((t_len, b, 4 * h))?;
        let dw = grads.narrow(0, t_len * b * 4 * h, 4 * h * h)?.reshape((4 * h, h))?;
        let ds = grads.narrow(0, t_len * b * 4 * h + 4 * h * h, 2 * b * h)?.reshape((2, b, h))?;
        Ok((Some(dxp), Some(dw), Some(ds)))
    }
}

/// The backward pass of [`FusedLstm`] on (the gradient of its output, `W_hh`), from the states
/// and gates it saved: `d(projected input)` (T B 4H), `dW_hh` (4H H) and `d(state0)` (2 B H),
/// concatenated flat.
///
/// ```text
/// for t = T..1:  dh = ∂h_t + dh',  dc = ∂c_t + dc' + dh o (1 - tanh²c_t)
///                da = [dc g i(1-i), dc c_{t-1} f(1-f), dc i (1-g²), dh tanh(c_t) o(1-o)]
///                dc' = dc f,  dh' = da W_hh
/// dW_hh = Σ_t da_t^T h_{t-1} (one product over all steps);  dh_0 = dh', dc_0 = dc'
/// ```
/// (`∂c_t` is zero but for `t = T`: only `c_T` leaves the op.)
struct FusedLstmBackward(FusedLstm);

impl FusedLstmBackward {
    fn run(&self, grad: &[f32], w_hh: &[f32]) -> Result<Vec<f32>> {
        use rayon::prelude::*;
        let FusedLstm { t_len, batch: b, hidden: h, ref saved } = self.0;
        let saved = saved.lock().expect("lstm workspace");
        if saved.hs.len() != (t_len + 1) * b * h {
            candle::bail!("lstm backward: the forward pass's states are missing")
        }
        let bh = b * h;
        let gsize = b * 4 * h;
        let mut result = output::<f32>(t_len * gsize + 4 * h * h + 2 * bh);
        let (dxp, rest) = result.split_at_mut(t_len * gsize);
        let (dw, ds) = rest.split_at_mut(4 * h * h);
        let mut dh_next = vec![0f32; bh];
        let mut dc_next = grad[t_len * bh..].to_vec();
        for t in (1..=t_len).rev() {
            let gates = &saved.gates[(t - 1) * gsize..t * gsize];
            let c_cur = &saved.cs[t * bh..(t + 1) * bh];
            let c_prev = &saved.cs[(t - 1) * bh..t * bh];
            let g_h = &grad[(t - 1) * bh..t * bh];
            let da_t = &mut dxp[(t - 1) * gsize..t * gsize];
            da_t.par_chunks_mut(4 * h).zip(dc_next.par_chunks_mut(h)).zip(dh_next.par_chunks(h)).enumerate().for_each(
                |(s, ((da, dc_n), dh_n))| {
                    let a = &gates[s * 4 * h..(s + 1) * 4 * h];
                    let (c_cur, c_prev, g_h) =
                        (&c_cur[s * h..(s + 1) * h], &c_prev[s * h..(s + 1) * h], &g_h[s * h..(s + 1) * h]);
                    for j in 0..h {
                        let (i, f, g, o) = (a[j], a[h + j], a[2 * h + j], a[3 * h + j]);
                        let tc = c_cur[j].tanh();
                        let dh = g_h[j] + dh_n[j];
                        let dc = dc_n[j] + dh * o * (1.0 - tc * tc);
                        da[j] = dc * g * i * (1.0 - i);
                        da[h + j] = dc * c_prev[j] * f * (1.0 - f);
                        da[2 * h + j] = dc * i * (1.0 - g * g);
                        da[3 * h + j] = dh * tc * o * (1.0 - o);
                        dc_n[j] = dc * f;
                    }
                },
            );
            // dh' (B x H) = da (B x 4H) . W_hh (4H x H)
            matmul((b, h, 4 * h), &mut dh_next, (h, 1), false, da_t, (4 * h, 1), w_hh, (h, 1), Threads::IfLarge);
        }
        ds[..bh].copy_from_slice(&dh_next);
        ds[bh..].copy_from_slice(&dc_next);
        // dW_hh (4H x H) = da^T (4H x T B) . h_{0..T-1} (T B x H)
        if t_len == 0 {
            dw.fill(0.0);
        } else {
            matmul(
                (4 * h, h, t_len * b),
                dw,
                (h, 1),
                false,
                dxp,
                (1, 4 * h),
                &saved.hs[..t_len * bh],
                (h, 1),
                Threads::IfLarge,
            );
        }
        Ok(result)
    }
}

impl candle::CustomOp2 for FusedLstmBackward {
    fn name(&self) -> &'static str {
        "optbench-lstm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &candle::CpuStorage,
        l1: &candle::Layout,
        s2: &candle::CpuStorage,
        l2: &candle::Layout,
    ) -> Result<(candle::CpuStorage, candle::Shape)> {
        use candle::CpuStorage;
        let (CpuStorage::F32(grad), CpuStorage::F32(w)) = (s1, s2) else {
            candle::bail!("the fused LSTM's backward takes f32 operands")
        };
        let grad = contiguous(grad, l1, "lstm backward", "output gradient")?;
        let w = contiguous(w, l2, "lstm backward", "hidden-to-hidden weight")?;
        let result = self.run(grad, w)?;
        let n = result.len();
        Ok((CpuStorage::F32(result), candle::Shape::from(n)))
    }
}

/// The mean token cross-entropy of `logits` (N, V) against `targets` (N) of u32 ids (see
/// [`biased_cross_entropy`]).
pub fn token_cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (_, v) = logits.dims2()?;
    biased_cross_entropy(logits, &Tensor::zeros(v, logits.dtype(), logits.device())?, targets)
}

/// The mean token cross-entropy of `scores + bias` ((N, V) plus (V)) against `targets` (N) of
/// u32 ids: on the CPU in f32 one fused op (the bias added, the softmax and its log-sum-exp in
/// one pass per row, the softmax kept; the backward `(softmax - onehot) / N` and the bias's
/// column sums in one more), elsewhere candle's `cross_entropy` (log-softmax and NLL in tensor
/// ops) of `scores + bias`.
pub fn biased_cross_entropy(scores: &Tensor, bias: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (n, v) = scores.dims2()?;
    if bias.dims() != [v] || targets.dims() != [n] {
        candle::bail!(
            "cross-entropy: bias {:?} and targets {:?} for scores {:?}",
            bias.dims(),
            targets.dims(),
            scores.dims()
        )
    }
    if scores.device().is_cpu() && scores.dtype() == DType::F32 && targets.dtype() == DType::U32 {
        let op = CrossEntropy { softmax: Arc::default() };
        return scores.contiguous()?.apply_op3(&bias.contiguous()?, &targets.contiguous()?, op);
    }
    candle_nn::loss::cross_entropy(&scores.broadcast_add(bias)?, targets)
}

/// The fused cross-entropy of [`biased_cross_entropy`]; keeps the softmax for its backward pass.
struct CrossEntropy {
    softmax: Arc<Mutex<Vec<f32>>>,
}

impl candle::CustomOp3 for CrossEntropy {
    fn name(&self) -> &'static str {
        "optbench-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &candle::CpuStorage,
        l1: &candle::Layout,
        s2: &candle::CpuStorage,
        l2: &candle::Layout,
        s3: &candle::CpuStorage,
        l3: &candle::Layout,
    ) -> Result<(candle::CpuStorage, candle::Shape)> {
        use candle::CpuStorage;
        use rayon::prelude::*;
        let (CpuStorage::F32(x), CpuStorage::F32(bias), CpuStorage::U32(y)) = (s1, s2, s3) else {
            candle::bail!("cross-entropy: f32 scores and bias, u32 targets")
        };
        let x = contiguous(x, l1, "cross-entropy", "scores")?;
        let bias = contiguous(bias, l2, "cross-entropy", "bias")?;
        let y = contiguous(y, l3, "cross-entropy", "targets")?;
        let (n, v) = l1.shape().dims2()?;
        if let Some(&t) = y.iter().find(|&&t| t as usize >= v) {
            candle::bail!("cross-entropy: target {t} outside the {v} classes")
        }
        let mut softmax = output::<f32>(n * v);
        let losses: Vec<f64> = softmax
            .par_chunks_mut(v.max(1))
            .zip(x.par_chunks(v.max(1)))
            .zip(y.par_iter())
            .map(|((p, row), &t)| {
                let mut max = f32::NEG_INFINITY;
                for ((p, &a), &b) in p.iter_mut().zip(row).zip(bias) {
                    *p = a + b;
                    max = max.max(*p);
                }
                let target = p[t as usize];
                let mut sum = 0f32;
                for p in p.iter_mut() {
                    *p = (*p - max).exp();
                    sum += *p;
                }
                let inv = 1.0 / sum;
                for p in p.iter_mut() {
                    *p *= inv;
                }
                (sum.ln() + max - target) as f64
            })
            .collect();
        let mean = if n == 0 { 0.0 } else { losses.iter().sum::<f64>() / n as f64 };
        *self.softmax.lock().expect("cross-entropy workspace") = softmax;
        Ok((CpuStorage::F32(vec![mean as f32]), candle::Shape::from(())))
    }

    fn bwd(
        &self,
        scores: &Tensor,
        _bias: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, v) = scores.dims2()?;
        let g = grad_res.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let scale = g / n.max(1) as f32;
        let softmax = self.softmax.lock().expect("cross-entropy workspace");
        let y = targets.to_vec1::<u32>()?;
        if softmax.len() != n * v {
            candle::bail!("cross-entropy backward: the forward pass's softmax is missing")
        }
        use rayon::prelude::*;
        let mut dx = output::<f32>(n * v);
        dx.par_chunks_mut(v.max(1)).zip(softmax.par_chunks(v.max(1))).zip(y.par_iter()).for_each(|((d, p), &t)| {
            for (d, &p) in d.iter_mut().zip(p) {
                *d = p * scale;
            }
            d[t as usize] -= scale;
        });
        // The bias's gradient: the column sums, over row blocks in parallel.
        let block = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
        let partial: Vec<Vec<f32>> = dx
            .par_chunks(block * v.max(1))
            .map(|rows| {
                let mut acc = vec![0f32; v];
                for row in rows.chunks(v.max(1)) {
                    for (a, &d) in acc.iter_mut().zip(row) {
                        *a += d;
                    }
                }
                acc
            })
            .collect();
        let mut db = vec![0f32; v];
        for p in partial {
            for (a, b) in db.iter_mut().zip(p) {
                *a += b;
            }
        }
        let device = scores.device();
        Ok((Some(Tensor::from_vec(dx, (n, v), device)?), Some(Tensor::from_vec(db, v, device)?), None))
    }
}

/// AWD-LSTM's `LockedDropout`: one mask of shape (1, B, D), scaled by 1 / (1 - p), for every
/// time step of a (T, B, D) input; the identity in evaluation or at p = 0.
#[derive(Clone, Debug)]
pub struct LockedDropout(Dropout);

impl LockedDropout {
    pub fn new(dropout: Dropout) -> Self {
        Self(dropout)
    }
}

impl ModuleT for LockedDropout {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.0.p() == 0.0 {
            return Ok(xs.clone());
        }
        let (_, b, d) = xs.dims3()?;
        let mask = self.0.forward_t(&Tensor::ones((1, b, d), xs.dtype(), xs.device())?, true)?;
        xs.broadcast_mul(&mask)
    }
}

/// AWD-LSTM's `embedded_dropout`: in training, each word's whole embedding row is zeroed with
/// probability p (one (V, 1) mask per call) and the kept rows scaled by 1 / (1 - p); then the
/// lookup. The identity mask in evaluation or at p = 0.
#[derive(Clone, Debug)]
pub struct EmbeddingDropout(Dropout);

impl EmbeddingDropout {
    pub fn new(dropout: Dropout) -> Self {
        Self(dropout)
    }

    /// The embeddings of `tokens` (any shape of u32 ids) from `weight` (V, E): shape
    /// `tokens.dims() + [E]`.
    pub fn lookup(&self, weight: &Tensor, tokens: &Tensor, train: bool) -> Result<Tensor> {
        let weight = if train && self.0.p() > 0.0 {
            let (v, _) = weight.dims2()?;
            let mask = self.0.forward_t(&Tensor::ones((v, 1), weight.dtype(), weight.device())?, true)?;
            weight.broadcast_mul(&mask)?
        } else {
            weight.clone()
        };
        let mut dims = tokens.dims().to_vec();
        dims.push(weight.dim(1)?);
        weight.index_select(&tokens.flatten_all()?, 0)?.reshape(dims)
    }
}

/// The sizes and dropouts of an [`LstmLm`]; the defaults are AdaBelief's PTB setup
/// (`main.py:25-53` and `run_all_layer*.py`: dropouti 0.4, dropouth 0.25), 3 layers.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmLmConfig {
    pub vocab: usize,
    pub emsize: usize,
    pub nhid: usize,
    pub layers: usize,
    /// Tie the decoder's weight to the embedding (then the last layer has `emsize` units).
    pub tied: bool,
    /// Locked dropout on the last layer's outputs.
    pub dropout: f64,
    /// Locked dropout between layers.
    pub dropouth: f64,
    /// Locked dropout on the embeddings.
    pub dropouti: f64,
    /// Dropout of whole embedding rows (words).
    pub dropoute: f64,
    /// DropConnect on every layer's hidden-to-hidden weight.
    pub wdrop: f64,
}

impl Default for LstmLmConfig {
    fn default() -> Self {
        Self {
            vocab: 10_000,
            emsize: 400,
            nhid: 1150,
            layers: 3,
            tied: true,
            dropout: 0.4,
            dropouth: 0.25,
            dropouti: 0.4,
            dropoute: 0.1,
            wdrop: 0.5,
        }
    }
}

impl LstmLmConfig {
    /// The hidden size of layer `l`.
    pub fn hidden(&self, l: usize) -> usize {
        if l + 1 == self.layers && self.tied {
            self.emsize
        } else {
            self.nhid
        }
    }

    /// The input size of layer `l`.
    pub fn input(&self, l: usize) -> usize {
        if l == 0 {
            self.emsize
        } else {
            self.nhid
        }
    }
}

/// What one forward pass returns: the decoder's input (T B, E), the new state, and the last
/// layer's outputs before and after its dropout (for AWD-LSTM's activation regularisers); the
/// logits and the loss from [`LmOutput::logits`] and [`LmOutput::loss`].
pub struct LmOutput {
    /// The last layer's dropped outputs, flattened to (T B, E) in time-major order.
    pub features: Tensor,
    decoder_weight: Tensor,
    decoder_bias: Tensor,
    pub state: Vec<LstmState>,
    /// The last layer's outputs (T, B, E), before its dropout (TAR's `rnn_hs[-1]`).
    pub last_raw: Tensor,
    /// The same after the output dropout (AR's `dropped_rnn_hs[-1]`).
    pub last_dropped: Tensor,
}

impl LmOutput {
    /// The logits (T B, V): `features W^T + b`.
    pub fn logits(&self) -> Result<Tensor> {
        self.features.matmul(&self.decoder_weight.t()?)?.broadcast_add(&self.decoder_bias)
    }

    /// The mean cross-entropy against `targets` (T B) of u32 ids, the bias folded into the
    /// fused loss on the CPU ([`biased_cross_entropy`]).
    pub fn loss(&self, targets: &Tensor) -> Result<Tensor> {
        let scores = self.features.matmul(&self.decoder_weight.t()?)?;
        biased_cross_entropy(&scores, &self.decoder_bias, targets)
    }
}

/// One LSTM layer with its DropConnect.
#[derive(Clone, Debug)]
struct Layer {
    weights: LstmWeights,
    wdrop: Dropout,
}

/// AWD-LSTM's `RNNModel` with LSTM layers (see the module documentation).
#[derive(Clone, Debug)]
pub struct LstmLm {
    config: LstmLmConfig,
    encoder: Tensor,
    decoder_weight: Option<Tensor>,
    decoder_bias: Tensor,
    layers: Vec<Layer>,
    embed_drop: EmbeddingDropout,
    input_drop: LockedDropout,
    hidden_drops: Vec<LockedDropout>,
    output_drop: LockedDropout,
    kernel: LstmKernel,
}

impl LstmLm {
    /// The model with its parameters named as AWD's state dict (`encoder.weight`,
    /// `rnns.{l}.weight_ih` ... (`weight_hh` is `weight_hh_l0_raw` there), `decoder.bias`, and
    /// `decoder.weight` when untied).
    pub fn new(b: &ParamBuilder, config: &LstmLmConfig) -> Result<Self> {
        if config.layers == 0 || config.vocab == 0 || config.emsize == 0 || config.nhid == 0 {
            candle::bail!("an LSTM language model needs at least one layer, word, and unit: {config:?}")
        }
        let encoder = b.uniform("encoder.weight", (config.vocab, config.emsize), 0.1)?;
        let mut layers = Vec::with_capacity(config.layers);
        let mut hidden_drops = Vec::new();
        for l in 0..config.layers {
            let lb = b.pp(format!("rnns.{l}"));
            let weights = LstmWeights::new(&lb, config.input(l), config.hidden(l))?;
            layers.push(Layer { weights, wdrop: lb.dropout("wdrop", config.wdrop)? });
            if l + 1 < config.layers {
                hidden_drops.push(LockedDropout::new(b.dropout(&format!("dropouth.{l}"), config.dropouth)?));
            }
        }
        let last = config.hidden(config.layers - 1);
        let decoder_weight =
            if config.tied { None } else { Some(b.uniform("decoder.weight", (config.vocab, last), 0.1)?) };
        let decoder_bias = b.constant("decoder.bias", config.vocab, 0.0)?;
        Ok(Self {
            config: config.clone(),
            encoder,
            decoder_weight,
            decoder_bias,
            layers,
            embed_drop: EmbeddingDropout::new(b.dropout("dropoute", config.dropoute)?),
            input_drop: LockedDropout::new(b.dropout("dropouti", config.dropouti)?),
            hidden_drops,
            output_drop: LockedDropout::new(b.dropout("dropout", config.dropout)?),
            kernel: LstmKernel::Auto,
        })
    }

    /// Runs the layers with `kernel` from now on.
    pub fn with_kernel(mut self, kernel: LstmKernel) -> Self {
        self.kernel = kernel;
        self
    }

    pub fn config(&self) -> &LstmLmConfig {
        &self.config
    }

    /// The zero state for `batch` streams (AWD's `init_hidden`).
    pub fn zero_state(&self, batch: usize) -> Result<Vec<LstmState>> {
        let (dtype, device) = (self.encoder.dtype(), self.encoder.device());
        (0..self.config.layers).map(|l| LstmState::zeros(batch, self.config.hidden(l), dtype, device)).collect()
    }

    /// One forward pass over `tokens` (T, B) of u32 word ids from `state`.
    pub fn forward(&self, tokens: &Tensor, state: &[LstmState], train: bool) -> Result<LmOutput> {
        if state.len() != self.layers.len() {
            candle::bail!("the state has {} layers, the model {}", state.len(), self.layers.len())
        }
        let emb = self.embed_drop.lookup(&self.encoder, tokens, train)?;
        let mut x = self.input_drop.forward_t(&emb, train)?;
        let mut new_state = Vec::with_capacity(self.layers.len());
        let mut last_raw = x.clone();
        for (l, layer) in self.layers.iter().enumerate() {
            let w_hh = layer.wdrop.forward_t(&layer.weights.w_hh, train)?;
            let weights = LstmWeights { w_hh, ..layer.weights.clone() };
            let (y, s) = lstm_sequence(&x, &state[l], &weights, self.kernel)?;
            new_state.push(s);
            x = match self.hidden_drops.get(l) {
                Some(drop) => drop.forward_t(&y, train)?,
                None => y.clone(),
            };
            last_raw = y;
        }
        let last_dropped = self.output_drop.forward_t(&last_raw, train)?;
        let (t_len, b, e) = last_dropped.dims3()?;
        let flat = last_dropped.reshape((t_len * b, e))?;
        let weight = self.decoder_weight.as_ref().unwrap_or(&self.encoder).clone();
        Ok(LmOutput {
            features: flat,
            decoder_weight: weight,
            decoder_bias: self.decoder_bias.clone(),
            state: new_state,
            last_raw,
            last_dropped,
        })
    }
}

/// AWD-LSTM's activation regulariser `alpha mean(dropped²)` plus its temporal one
/// `beta mean((raw[1:] - raw[:-1])²)` over the last layer (`main.py:224-227`).
pub fn activation_regularizers(output: &LmOutput, alpha: f64, beta: f64) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    let mut add = |t: Tensor| -> Result<()> {
        total = Some(match total.take() {
            Some(sum) => (sum + t)?,
            None => t,
        });
        Ok(())
    };
    if alpha != 0.0 {
        add(output.last_dropped.sqr()?.mean_all()?.affine(alpha, 0.0)?)?;
    }
    let t_len = output.last_raw.dim(0)?;
    if beta != 0.0 && t_len > 1 {
        let raw = &output.last_raw;
        let diff = (raw.narrow(0, 1, t_len - 1)? - raw.narrow(0, 0, t_len - 1)?)?;
        add(diff.sqr()?.mean_all()?.affine(beta, 0.0)?)?;
    }
    Ok(total)
}
