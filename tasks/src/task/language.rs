//! Word-level language modelling with AWD-LSTM's recipe: `ptb-lstm` (Penn Treebank) and
//! `wikitext2-lstm` (WikiText-2), the model of [`models::lstm`] with `layers` 1-3, as AdaBelief's
//! Fig. 5 trained it (`juntang-zhuang/Adabelief-Optimizer` 2855178e, `PyTorch_Experiments/LSTM/`,
//! an AWD-LSTM code base: `salesforce/awd-lstm-lm` 1d466ec5).
//!
//! - **Corpus** as AWD's `data.py`: every line's whitespace-separated words plus `<eos>`; the
//!   vocabulary is the training split's words in order of first appearance. AWD's `Dictionary`
//!   also adds the words of the valid and test splits; PTB and WikiText-2 have none outside the
//!   training vocabulary, so the two agree on them. Elsewhere a word outside it is mapped to
//!   `<unk>` and counted (one line on stderr per split), or refused when the corpus has no `<unk>`.
//! - **Batches** as `utils.py`: each split cut into `B` contiguous streams (`batchify`: training
//!   `batch_size` 20, validation `eval_batch_size` 10, test `test_batch_size` 1, the trailing
//!   tokens dropped); a training step takes the next `seq_len` rows (`get_batch`), the hidden state
//!   carried from the step before and detached (`repackage_hidden`). With `random_bptt` (AWD's
//!   `main.py:204-211`) `seq_len` is `bptt` with probability 0.95 and `bptt / 2` otherwise, then
//!   `max(5, int(N(that, 5)))`, and the step's learning rate is scaled by `seq_len / bptt` (every
//!   optimizer, as `main.py:210-211`). A pass over the training streams ends when fewer than two
//!   rows are left (`while i < len - 2`); the next pass starts at row 0 from a zero state (AWD's
//!   `train()` per epoch). An epoch is `ceil((rows - 2) / E[seq_len])` steps, `E[seq_len]` the
//!   mean of 100,000 seeded draws (`bptt` itself without `random_bptt`, so that then an epoch is
//!   exactly one pass); with random lengths a pass and an epoch end within a few steps of each
//!   other, and the data position simply runs on.
//! - **Loss** as `main.py:220-228`: the mean token cross-entropy plus AR `alpha mean(dropped
//!   last-layer outputs²)` and TAR `beta mean((h_{t+1} - h_t)²)` over the last layer's raw outputs
//!   (`alpha` 2, `beta` 1: `main.py:66-69`); `train_loss` is the cross-entropy alone (`raw_loss`).
//!   Gradients clipped to norm 0.25 (the task's default `clip_norm`, `run_all_layer*.py
//!   --clip 0.25`); weight decay is the optimizers' own `weight_decay` (`main.py:260-282` passes
//!   `--wdecay 1.2e-6` to every optimizer).
//! - **Metrics**: `test_ppl` (primary) and `valid_ppl`: `exp` of AWD's `evaluate` (`main.py:179-191`):
//!   for chunks of `bptt` rows, `len(chunk) x mean CE`, summed and divided by the split's rows
//!   (`len(data_source)`, one more than the positions predicted: AWD's convention, kept), the
//!   state carried through the split from zero, without dropout.
//! - **NT-ASGD** (`asgd = true`, for the `sgd` optimizer only, as `main.py:326`): after each
//!   evaluation the monitored loss (`asgd_monitor`: the validation split, as AWD's `main.py`;
//!   AdaBelief's copy monitors the test split, `main.py:314`) is compared with the losses before:
//!   once more than `nonmono` evaluations exist and it is worse than the best of all but the last
//!   `nonmono`, the run switches to averaging. AWD replaces SGD by `torch.optim.ASGD(t0=0,
//!   lambd=0)`, whose step is SGD's with the same weight decay and which keeps `ax`, the running
//!   mean of the iterates from the first ASGD step on; here the optimizer stays (the step is the
//!   same; the learning rate stays the schedule's, where AWD's ASGD restarts from `--lr`) and the
//!   task keeps the mean. Evaluation then uses the averaged weights (`asgd_eval_averaged`, as
//!   AWD's `main.py`, which swaps `ax` in to evaluate; AdaBelief's copy has those lines commented
//!   out, `main.py:291-295`, and evaluates the raw weights). Checkpoints hold the averages, the
//!   monitored losses and whether averaging is on.
//! - **State** for checkpoints: the model's variables and dropout generators, the hidden state,
//!   the data position and pass, the sequence-length generator, and NT-ASGD's state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use candle::{DType, Device, Tensor};
use models::lstm::{activation_regularizers, LstmKernel, LstmLm, LstmLmConfig, LstmState};
use models::{Params, RngState, SeededRng};
use optimizers::BoxedOptimizer;

use super::{
    Budget, DataRecord, Family, Goal, Losses, MetricInfo, Metrics, OptionSpec, Task, TaskContext, TaskInfo, TaskState,
    MAIN, MAIN_ONLY,
};
use crate::data::{self, DataSettings, TextData};
use crate::schedule::Schedule;

/// The end-of-sentence token AWD's `data.py` appends to every line.
pub const EOS: &str = "<eos>";
/// The unknown-word token of PTB and WikiText-2.
pub const UNK: &str = "<unk>";

/// A corpus as word ids: the vocabulary (training words in order of appearance) and the splits.
#[derive(Debug)]
pub struct Corpus {
    pub words: Vec<String>,
    pub train: Vec<u32>,
    pub valid: Vec<u32>,
    pub test: Vec<u32>,
    /// Per split (valid, test), the tokens outside the training vocabulary mapped to `<unk>`.
    pub unknown: Vec<(String, usize)>,
    pub record: DataRecord,
}

/// The token ids of one split's lines (each line's words plus `<eos>`), adding new words to the
/// vocabulary when `grow`, else mapping them to `<unk>`; returns the ids and how many were
/// mapped.
fn tokenize(
    lines: &[String],
    words: &mut Vec<String>,
    index: &mut HashMap<String, u32>,
    grow: bool,
) -> Result<(Vec<u32>, usize, Option<String>), String> {
    let mut ids = Vec::new();
    let mut unknown = 0;
    let mut first_unknown = None;
    for line in lines {
        for word in line.split_whitespace().chain(std::iter::once(EOS)) {
            let id = match index.get(word) {
                Some(&id) => id,
                None if grow => {
                    let id = u32::try_from(words.len()).map_err(|_| "more than 2^32 distinct words".to_string())?;
                    words.push(word.to_string());
                    index.insert(word.to_string(), id);
                    id
                }
                None => {
                    unknown += 1;
                    first_unknown.get_or_insert_with(|| word.to_string());
                    match index.get(UNK) {
                        Some(&id) => id,
                        None => {
                            return Err(format!(
                            "the word `{word}` is not in the training vocabulary, which has no `{UNK}` to map it to"
                        ))
                        }
                    }
                }
            };
            ids.push(id);
        }
    }
    Ok((ids, unknown, first_unknown))
}

/// Reads a corpus from a loaded text data set: the `train`, `valid` and `test` splits, each
/// present and non-empty; `train_tokens > 0` keeps the first that many training tokens (for
/// short runs; the vocabulary is still the whole training split's).
pub fn corpus(text: &TextData, train_tokens: usize) -> anyhow::Result<Corpus> {
    let split = |name: &str| -> anyhow::Result<&Vec<String>> {
        let lines = text.splits.iter().find(|(s, _)| s == name).map(|(_, lines)| lines).ok_or_else(|| {
            anyhow::anyhow!(
                "data set `{}` ({}) has no `{name}` split; a language model needs train, valid and test",
                text.name,
                text.source
            )
        })?;
        anyhow::ensure!(
            lines.iter().any(|l| !l.trim().is_empty()),
            "data set `{}` ({}): the `{name}` split has no words ({} lines); check that file",
            text.name,
            text.source,
            lines.len()
        );
        Ok(lines)
    };
    let (mut words, mut index) = (Vec::new(), HashMap::new());
    let (mut train, _, _) = tokenize(split("train")?, &mut words, &mut index, true)
        .map_err(|e| anyhow::anyhow!("data set `{}` train split: {e}", text.name))?;
    let mut unknown = Vec::new();
    let mut eval = |name: &str| -> anyhow::Result<Vec<u32>> {
        let (ids, count, first) = tokenize(split(name)?, &mut words, &mut index, false)
            .map_err(|e| anyhow::anyhow!("data set `{}` ({}), {name} split: {e}", text.name, text.source))?;
        if count > 0 {
            eprintln!(
                "{}: {count} {name} tokens outside the training vocabulary mapped to {UNK} (the first: `{}`)",
                text.name,
                first.unwrap_or_default()
            );
        }
        unknown.push((name.to_string(), count));
        Ok(ids)
    };
    let valid = eval("valid")?;
    let test = eval("test")?;
    if train_tokens > 0 {
        train.truncate(train_tokens);
    }
    Ok(Corpus { words, train, valid, test, unknown, record: text.record.clone() })
}

/// Loads and tokenises a corpus once per process while some task holds it.
fn shared_corpus(name: &str, settings: &DataSettings, train_tokens: usize) -> anyhow::Result<Arc<Corpus>> {
    static LOADED: OnceLock<Mutex<HashMap<String, Weak<Corpus>>>> = OnceLock::new();
    let key = format!("{name} {train_tokens} {settings:?}");
    let mut loaded = LOADED.get_or_init(Default::default).lock().expect("corpus lock");
    if let Some(c) = loaded.get(&key).and_then(Weak::upgrade) {
        return Ok(c);
    }
    let text = data::load_text(name, settings)?;
    let c = Arc::new(corpus(&text, train_tokens)?);
    loaded.insert(key, Arc::downgrade(&c));
    Ok(c)
}

/// A split cut into `batch` contiguous streams, as AWD's `batchify`: row `t` holds token `t` of
/// every stream (row-major, `rows x batch`).
#[derive(Clone, Debug)]
pub struct Streams {
    data: Vec<u32>,
    pub rows: usize,
    pub batch: usize,
}

impl Streams {
    pub fn new(tokens: &[u32], batch: usize) -> Self {
        let rows = tokens.len() / batch.max(1);
        let mut data = vec![0u32; rows * batch];
        for b in 0..batch {
            for t in 0..rows {
                data[t * batch + b] = tokens[b * rows + t];
            }
        }
        Self { data, rows, batch }
    }

    /// The inputs and targets of rows `i..i + len` (`len` cut to the rows left, as `get_batch`),
    /// as (len, B) and (len B) u32 tensors, with that length.
    pub fn batch(&self, i: usize, seq_len: usize, device: &Device) -> candle::Result<(Tensor, Tensor, usize)> {
        let len = seq_len.min(self.rows - 1 - i);
        let b = self.batch;
        let x = Tensor::from_slice(&self.data[i * b..(i + len) * b], (len, b), device)?;
        let y = Tensor::from_slice(&self.data[(i + 1) * b..(i + 1 + len) * b], len * b, device)?;
        Ok((x, y, len))
    }
}

/// AWD's random sequence length (`main.py:204-206`): `bptt` with probability 0.95, else
/// `bptt / 2`; then `max(5, int(N(that, 5)))`.
pub fn draw_seq_len(rng: &mut SeededRng, bptt: usize) -> usize {
    let base = if rng.uniform() < 0.95 { bptt as f64 } else { bptt as f64 / 2.0 };
    let drawn = (base + 5.0 * rng.normal()).trunc();
    drawn.max(5.0) as usize
}

/// The mean of [`draw_seq_len`] over 100,000 seeded draws (the same for every run).
fn mean_seq_len(bptt: usize) -> f64 {
    let mut rng = SeededRng::new(0).fork("mean-seq-len");
    let n = 100_000;
    (0..n).map(|_| draw_seq_len(&mut rng, bptt) as f64).sum::<f64>() / n as f64
}

/// NT-ASGD's state (see the module documentation).
#[derive(Debug)]
struct Asgd {
    nonmono: usize,
    eval_averaged: bool,
    monitor_test: bool,
    /// The monitored losses before averaging started (AWD's `best_val_loss`).
    history: Vec<f64>,
    averaging: bool,
    /// Steps averaged so far.
    count: u64,
    /// The running means of the trainable variables (sorted by name), after the first averaged step.
    averages: Vec<Tensor>,
}

impl Asgd {
    /// AWD's switch: `len(best_val_loss) > nonmono and val_loss > min(best_val_loss[:-nonmono])`.
    fn should_switch(&self, loss: f64) -> bool {
        let n = self.history.len();
        n > self.nonmono && loss > self.history[..n - self.nonmono].iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// A language model being trained.
pub struct LanguageModel {
    model: LstmLm,
    params: Params,
    optimizer: BoxedOptimizer,
    corpus: Arc<Corpus>,
    train: Streams,
    valid: Streams,
    test: Streams,
    state: Vec<LstmState>,
    /// The next training row, and the passes begun before the current one.
    position: usize,
    pass: u64,
    bptt: usize,
    random_bptt: bool,
    lengths: SeededRng,
    alpha: f64,
    beta: f64,
    asgd: Option<Asgd>,
    steps_per_epoch: u64,
    device: Device,
}

/// A data set the language-model tasks train on.
struct Dataset {
    prefix: &'static str,
    name: &'static str,
    title: &'static str,
    /// The vocabulary's size, for counting parameters without the data (checked against the
    /// real files in `tests/language.rs`).
    vocab: usize,
}

static PTB: Dataset = Dataset { prefix: "ptb", name: "ptb", title: "Penn Treebank", vocab: 10_000 };
static WIKITEXT2: Dataset = Dataset { prefix: "wikitext2", name: "wikitext-2", title: "WikiText-2", vocab: 33_278 };

/// The model of a run's options over `vocab` words.
fn model_config(ctx: &TaskContext, vocab: usize) -> LstmLmConfig {
    LstmLmConfig {
        vocab,
        emsize: ctx.count("emsize"),
        nhid: ctx.count("nhid"),
        layers: ctx.count("layers"),
        tied: ctx.flag("tied"),
        dropout: ctx.f64("dropout"),
        dropouth: ctx.f64("dropouth"),
        dropouti: ctx.f64("dropouti"),
        dropoute: ctx.f64("dropoute"),
        wdrop: ctx.f64("wdrop"),
    }
}

fn kernel(ctx: &TaskContext) -> LstmKernel {
    match ctx.string("kernel") {
        "composed" => LstmKernel::Composed,
        "fused" => LstmKernel::Fused,
        _ => LstmKernel::Auto,
    }
}

impl LanguageModel {
    fn new(ctx: &TaskContext, dataset: &Dataset) -> anyhow::Result<Self> {
        let name = &ctx.info.name;
        let corpus = shared_corpus(dataset.name, ctx.data, ctx.count("train_tokens"))?;
        let batch = ctx.batch_size.unwrap_or(20);
        let bptt = ctx.count("bptt");
        let (eval_batch, test_batch) = (ctx.count("eval_batch_size"), ctx.count("test_batch_size"));
        anyhow::ensure!(batch > 0 && eval_batch > 0 && test_batch > 0, "task `{name}`: batch sizes must be at least 1");
        let train = Streams::new(&corpus.train, batch);
        anyhow::ensure!(
            train.rows > bptt,
            "task `{name}`: bptt = {bptt} is longer than the training streams: {} training tokens in {batch} \
             streams (batch_size) are {} rows each; lower `bptt` or `batch_size`, or use more of the data \
             (`train_tokens`)",
            corpus.train.len(),
            train.rows
        );
        let valid = Streams::new(&corpus.valid, eval_batch);
        let test = Streams::new(&corpus.test, test_batch);
        for (split, streams, key, tokens) in [
            ("valid", &valid, "eval_batch_size", corpus.valid.len()),
            ("test", &test, "test_batch_size", corpus.test.len()),
        ] {
            anyhow::ensure!(
                streams.rows >= 2,
                "task `{name}`: the {split} split's {tokens} tokens in {} streams (`{key}`) leave fewer than two \
                 rows per stream; lower `{key}`",
                streams.batch
            );
        }
        let params = Params::new(SeededRng::new(ctx.seed).fork("init"), DType::F32, ctx.device);
        let model = LstmLm::new(&params.root(), &model_config(ctx, corpus.words.len()))?.with_kernel(kernel(ctx));
        let optimizer = ctx.build_optimizer(MAIN, params.trainable())?;
        let random_bptt = ctx.flag("random_bptt");
        let mean = if random_bptt { mean_seq_len(bptt) } else { bptt as f64 };
        let steps_per_epoch = (((train.rows - 2) as f64 / mean).ceil() as u64).max(1);
        let asgd = (ctx.flag("asgd") && ctx.spec_for(MAIN).name == "sgd").then(|| Asgd {
            nonmono: ctx.count("nonmono"),
            eval_averaged: ctx.flag("asgd_eval_averaged"),
            monitor_test: ctx.string("asgd_monitor") == "test",
            history: Vec::new(),
            averaging: false,
            count: 0,
            averages: Vec::new(),
        });
        Ok(Self {
            state: model.zero_state(batch)?,
            model,
            params,
            optimizer,
            corpus,
            train,
            valid,
            test,
            position: 0,
            pass: 0,
            bptt,
            random_bptt,
            lengths: SeededRng::new(ctx.seed).fork("bptt"),
            alpha: ctx.f64("alpha"),
            beta: ctx.f64("beta"),
            asgd,
            steps_per_epoch,
            device: ctx.device.clone(),
        })
    }

    /// AWD's `evaluate`: the summed `len(chunk) x mean CE` over chunks of `bptt` rows, divided
    /// by the rows, from a zero state, without dropout.
    fn split_loss(&self, streams: &Streams) -> anyhow::Result<f64> {
        let mut state = self.model.zero_state(streams.batch)?;
        let mut total = 0.0;
        let mut i = 0;
        while i < streams.rows - 1 {
            let (x, y, len) = streams.batch(i, self.bptt, &self.device)?;
            let out = self.model.forward(&x.detach(), &state, false)?;
            let ce = out.loss(&y)?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            total += len as f64 * ce;
            state = out.state.iter().map(LstmState::detach).collect();
            i += self.bptt;
        }
        Ok(total / streams.rows as f64)
    }

    /// Runs `f` with the averaged weights in the model, when NT-ASGD averages and evaluates so.
    fn with_eval_weights<T>(&mut self, f: impl FnOnce(&Self) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let swap = self.asgd.as_ref().is_some_and(|a| a.averaging && a.eval_averaged && !a.averages.is_empty());
        if !swap {
            return f(self);
        }
        let vars = self.params.trainable();
        let saved: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().copy()).collect::<candle::Result<_>>()?;
        let averages = &self.asgd.as_ref().expect("averaging").averages;
        for (var, avg) in vars.iter().zip(averages) {
            var.set(avg)?;
        }
        let result = f(self);
        for (var, value) in vars.iter().zip(&saved) {
            var.set(value)?;
        }
        result
    }
}

impl Task for LanguageModel {
    fn steps_per_epoch(&self) -> Option<u64> {
        Some(self.steps_per_epoch)
    }

    fn optimizers(&mut self) -> Vec<(&'static str, &mut BoxedOptimizer)> {
        vec![(MAIN, &mut self.optimizer)]
    }

    fn train_step(&mut self, _step: u64) -> anyhow::Result<Losses> {
        if self.position + 2 >= self.train.rows {
            self.position = 0;
            self.pass += 1;
            self.state = self.model.zero_state(self.train.batch)?;
        }
        let seq_len = if self.random_bptt { draw_seq_len(&mut self.lengths, self.bptt) } else { self.bptt };
        let (x, y, _) = self.train.batch(self.position, seq_len, &self.device)?;
        let state: Vec<LstmState> = self.state.iter().map(LstmState::detach).collect();
        let out = self.model.forward(&x, &state, true)?;
        let raw = out.loss(&y)?;
        let loss = match activation_regularizers(&out, self.alpha, self.beta)? {
            Some(reg) => (&raw + reg)?,
            None => raw.clone(),
        };
        let lr = self.optimizer.learning_rate();
        let scaled = seq_len != self.bptt;
        if scaled {
            self.optimizer.set_learning_rate(lr * seq_len as f64 / self.bptt as f64);
        }
        let stepped = self.optimizer.backward_step(&loss);
        if scaled {
            self.optimizer.set_learning_rate(lr);
        }
        stepped?;
        self.state = out.state.iter().map(LstmState::detach).collect();
        self.position += seq_len;
        if let Some(asgd) = self.asgd.as_mut().filter(|a| a.averaging) {
            asgd.count += 1;
            let vars = self.params.trainable();
            if asgd.averages.is_empty() {
                asgd.averages = vars.iter().map(|v| v.as_tensor().copy()).collect::<candle::Result<_>>()?;
            } else {
                let mu = 1.0 / asgd.count as f64;
                for (avg, var) in asgd.averages.iter_mut().zip(&vars) {
                    *avg = (&*avg + ((var.as_tensor() - &*avg)? * mu)?)?;
                }
            }
        }
        Ok(vec![("loss", raw.to_dtype(DType::F64)?.to_scalar::<f64>()?)])
    }

    fn evaluate(&mut self) -> anyhow::Result<Metrics> {
        let (valid, test) = self.with_eval_weights(|lm| Ok((lm.split_loss(&lm.valid)?, lm.split_loss(&lm.test)?)))?;
        if let Some(asgd) = self.asgd.as_mut().filter(|a| !a.averaging) {
            let monitored = if asgd.monitor_test { test } else { valid };
            if asgd.should_switch(monitored) {
                asgd.averaging = true;
            }
            asgd.history.push(monitored);
        }
        Ok(vec![("test_ppl".into(), test.exp()), ("valid_ppl".into(), valid.exp())])
    }

    fn state(&self, _step: u64) -> anyhow::Result<TaskState> {
        let mut state = super::model_state(&self.params);
        for (l, s) in self.state.iter().enumerate() {
            state.tensors.insert(format!("hidden.{l}.h"), s.h.clone());
            state.tensors.insert(format!("hidden.{l}.c"), s.c.clone());
        }
        let mut asgd_meta = serde_json::Value::Null;
        if let Some(asgd) = &self.asgd {
            for ((name, _), avg) in self.params.named_trainable().iter().zip(&asgd.averages) {
                state.tensors.insert(format!("asgd.{name}"), avg.clone());
            }
            asgd_meta = serde_json::json!({
                "history": asgd.history, "averaging": asgd.averaging, "count": asgd.count,
                "averaged": !asgd.averages.is_empty(),
            });
        }
        state.meta["position"] = self.position.into();
        state.meta["pass"] = self.pass.into();
        state.meta["lengths"] = serde_json::to_value(self.lengths.state())?;
        state.meta["asgd"] = asgd_meta;
        Ok(state)
    }

    fn restore(&mut self, state: &TaskState, _step: u64) -> anyhow::Result<()> {
        super::restore_model(&self.params, state)?;
        let meta = &state.meta;
        let number = |key: &str| {
            meta[key].as_u64().ok_or_else(|| anyhow::anyhow!("the checkpoint has no `{key}` of the language model"))
        };
        for (l, s) in self.state.iter_mut().enumerate() {
            let get = |part: &str| -> anyhow::Result<Tensor> {
                let name = format!("hidden.{l}.{part}");
                let t = state.tensors.get(&name).ok_or_else(|| anyhow::anyhow!("the checkpoint has no `{name}`"))?;
                anyhow::ensure!(
                    t.dims() == s.h.dims(),
                    "the checkpoint's `{name}` is {:?}, the run's {:?}",
                    t.dims(),
                    s.h.dims()
                );
                Ok(t.to_device(&self.device)?)
            };
            *s = LstmState { h: get("h")?, c: get("c")? };
        }
        self.position = number("position")? as usize;
        self.pass = number("pass")?;
        let lengths: RngState = serde_json::from_value(meta["lengths"].clone())
            .map_err(|e| anyhow::anyhow!("the checkpoint's sequence-length generator: {e}"))?;
        self.lengths = SeededRng::from_state(lengths);
        if let Some(asgd) = self.asgd.as_mut() {
            let saved = &meta["asgd"];
            anyhow::ensure!(saved.is_object(), "the checkpoint has no NT-ASGD state, the run averages");
            asgd.history = serde_json::from_value(saved["history"].clone())?;
            asgd.averaging = saved["averaging"].as_bool().unwrap_or(false);
            asgd.count = saved["count"].as_u64().unwrap_or(0);
            asgd.averages.clear();
            if saved["averaged"].as_bool().unwrap_or(false) {
                for (name, _) in self.params.named_trainable() {
                    let key = format!("asgd.{name}");
                    let t = state.tensors.get(&key).ok_or_else(|| anyhow::anyhow!("the checkpoint has no `{key}`"))?;
                    asgd.averages.push(t.to_device(&self.device)?);
                }
            }
        }
        Ok(())
    }

    fn data(&self) -> Vec<DataRecord> {
        vec![self.corpus.record.clone()]
    }
}

fn options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new("layers", 3i64, "LSTM layers (the paper: 1, 2, 3)").at_least(1.0).at_most(3.0),
        OptionSpec::new("emsize", 400i64, "embedding size (and the last layer's units when tied)").at_least(1.0),
        OptionSpec::new("nhid", 1150i64, "units of every layer but the last").at_least(1.0),
        OptionSpec::new("tied", true, "the decoder's weight is the embedding (Press & Wolf)"),
        OptionSpec::new("dropout", 0.4, "locked dropout on the last layer's outputs").at_least(0.0).below(1.0),
        OptionSpec::new("dropouth", 0.25, "locked dropout between layers (AdaBelief's --dropouth 0.25)")
            .at_least(0.0)
            .below(1.0),
        OptionSpec::new("dropouti", 0.4, "locked dropout on the embeddings (AdaBelief's --dropouti 0.4)")
            .at_least(0.0)
            .below(1.0),
        OptionSpec::new("dropoute", 0.1, "dropout of whole words' embeddings").at_least(0.0).below(1.0),
        OptionSpec::new("wdrop", 0.5, "DropConnect on the hidden-to-hidden weights").at_least(0.0).below(1.0),
        OptionSpec::new("bptt", 70i64, "sequence length of truncated backpropagation through time").at_least(1.0),
        OptionSpec::new(
            "random_bptt",
            true,
            "AWD's random length: bptt w.p. 0.95 else bptt/2, then max(5, int(N(., 5))), lr scaled by seq_len/bptt",
        ),
        OptionSpec::new("alpha", 2.0, "AR: alpha mean(dropped last-layer outputs^2)").at_least(0.0),
        OptionSpec::new("beta", 1.0, "TAR: beta mean((h_t+1 - h_t)^2) of the last layer").at_least(0.0),
        OptionSpec::new("eval_batch_size", 10i64, "streams of the validation split (AWD: 10)").at_least(1.0),
        OptionSpec::new("test_batch_size", 1i64, "streams of the test split (AWD: 1)").at_least(1.0),
        OptionSpec::new(
            "asgd",
            false,
            "NT-ASGD for the sgd optimizer: average the iterates once the monitored loss stalls",
        ),
        OptionSpec::new("nonmono", 5i64, "NT-ASGD's non-monotone window (evaluations)").at_least(1.0),
        OptionSpec::new("asgd_eval_averaged", true, "evaluate with the averaged weights once NT-ASGD averages (AWD)"),
        OptionSpec::choice(
            "asgd_monitor",
            "valid",
            &["valid", "test"],
            "the split whose loss triggers NT-ASGD (AWD: valid; AdaBelief's copy: test)",
        ),
        OptionSpec::new("train_tokens", 0i64, "train on the first N training tokens (0: all)"),
        OptionSpec::choice(
            "kernel",
            "auto",
            &["auto", "fused", "composed"],
            "the LSTM layer: auto (the fused CPU op in f32, else composed), fused, composed",
        ),
    ]
}

fn info(dataset: &'static Dataset) -> TaskInfo {
    TaskInfo {
        name: format!("{}-lstm", dataset.prefix),
        family: Family::LanguageModel,
        summary: format!("{}: AWD-LSTM word language model (tied, 1-3 layers), test perplexity", dataset.title),
        options: options(),
        // AdaBelief's run_all_layer*.py: --epoch 200 --batch_size 20.
        budget: Budget::Epochs(200),
        batch_size: Some(20),
        eval_every: None,
        log_every: 50,
        schedule: Schedule::Constant,
        metrics: vec![MetricInfo::new("test_ppl", Goal::Min), MetricInfo::new("valid_ppl", Goal::Min)],
        optimizers: MAIN_ONLY,
        clip_norm: Some(0.25),
        build: Box::new(move |ctx| Ok(Box::new(LanguageModel::new(ctx, dataset)?) as Box<dyn Task>)),
        parameters: Some(Box::new(move |ctx| {
            let params = Params::new(SeededRng::new(0).fork("init"), DType::F32, &Device::Cpu);
            LstmLm::new(&params.root(), &model_config(ctx, dataset.vocab))?;
            Ok(params.count())
        })),
    }
}

pub fn tasks() -> Vec<TaskInfo> {
    vec![info(&PTB), info(&WIKITEXT2)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_awds_batchify_and_get_batch() {
        // 11 tokens in 3 streams: 3 rows each, the last two tokens dropped.
        let tokens: Vec<u32> = (0..11).collect();
        let s = Streams::new(&tokens, 3);
        assert_eq!((s.rows, s.batch), (3, 3));
        // batchify: data.view(bsz, -1).t(): row t is token t of each stream.
        assert_eq!(s.data, vec![0, 3, 6, 1, 4, 7, 2, 5, 8]);
        let (x, y, len) = s.batch(0, 70, &Device::Cpu).unwrap();
        assert_eq!(len, 2, "get_batch cuts seq_len to len(source) - 1 - i");
        assert_eq!(x.to_vec2::<u32>().unwrap(), vec![vec![0, 3, 6], vec![1, 4, 7]]);
        assert_eq!(y.to_vec1::<u32>().unwrap(), vec![1, 4, 7, 2, 5, 8]);
    }

    #[test]
    fn random_lengths_follow_awd() {
        let mut rng = SeededRng::new(1);
        let draws: Vec<usize> = (0..20_000).map(|_| draw_seq_len(&mut rng, 70)).collect();
        assert!(draws.iter().all(|&d| d >= 5));
        let short = draws.iter().filter(|&&d| d < 50).count() as f64 / draws.len() as f64;
        assert!((0.04..0.06).contains(&short), "bptt / 2 about 5% of the time: {short}");
        let mean = mean_seq_len(70);
        // 0.95 (70 - 0.5) + 0.05 (35 - 0.5): int() truncates.
        assert!((mean - 67.75).abs() < 0.1, "{mean}");
        assert_eq!(draw_seq_len(&mut SeededRng::new(0), 3).max(5), draw_seq_len(&mut SeededRng::new(0), 3));
    }

    #[test]
    fn the_asgd_switch_is_awds_non_monotone_test() {
        let mut a = Asgd {
            nonmono: 2,
            eval_averaged: true,
            monitor_test: false,
            history: vec![5.0, 4.0],
            averaging: false,
            count: 0,
            averages: Vec::new(),
        };
        assert!(!a.should_switch(9.0), "not more than nonmono evaluations yet");
        a.history.push(3.0);
        // min(history[:-2]) = 5.0
        assert!(!a.should_switch(4.5));
        assert!(a.should_switch(5.5));
    }
}
