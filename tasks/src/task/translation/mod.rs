//! Translation: `multi30k-transformer` and `iwslt14-transformer`, De -> En with fairseq's
//! `transformer` ([`models::transformer`]) as its IWSLT'14 recipe trains it
//! (`facebookresearch/fairseq` at 3d262bb, `examples/translation/README.md`).
//!
//! - **Tokens**: a joint BPE vocabulary learned on both sides of the training split, cached on
//!   disk ([`bpe`]); sources and targets end with `</s>`, the decoder reads `</s>` then the
//!   target shifted right (fairseq's `prev_output_tokens`).
//! - **Batches** by token count as fairseq's `batch_by_size`: the training pairs shuffled once
//!   from the seed, stably sorted by (target, source) length, cut into batches whose
//!   `sentences * longest` stays within `max_tokens` (a pair's length is the longer side, with
//!   `</s>`); the batches' order reshuffled every epoch from the seed, so the data position is
//!   the step alone. Pairs longer than `max_positions` are left out of training, as fairseq's
//!   `filter_by_size`.
//! - **Loss**: fairseq's `label_smoothed_cross_entropy` (`fairseq/criterions/
//!   label_smoothed_cross_entropy.py`): `(1 - eps - eps/(V-1)) nll + eps/(V-1) sum_v -log p_v`
//!   over the non-padding target tokens, divided by their number (fairseq's `sample_size` is
//!   the token count and it divides the gradients by it).
//! - **Evaluation**: `valid_loss` (that loss on the validation split, nats per token) and
//!   `valid_nll_loss`; the test set decoded (`decode = "beam"`: fairseq's
//!   `sequence_generator.py` beam search, `beam` hypotheses, finished ones scored
//!   `sum log p / len^lenpen`, at most `max_len_a * src_len + max_len_b` tokens, `</s>` not
//!   before the first token; `greedy` is that search with one hypothesis), decoded to plain
//!   text and scored with sacreBLEU's BLEU ([`bleu`]): `test_bleu`, in points. The
//!   hypotheses of the last evaluation are written beside the result (`seed-<n>.test.hyp.txt`,
//!   one line per test pair in order).

pub mod bleu;
pub mod bpe;

use std::collections::HashMap;
use std::path::PathBuf;

use candle::{DType, Device, Tensor};
use models::transformer::{Encoded, Transformer, TransformerConfig};
use models::{Params, SeededRng};
use optimizers::BoxedOptimizer;

use self::bpe::{Bpe, EOS, PAD};
use super::{
    Budget, Family, Goal, Losses, MetricInfo, Metrics, OptionSpec, Task, TaskContext, TaskInfo, TaskState, MAIN,
    MAIN_ONLY,
};
use crate::data::{self, DataRecord, DataSettings, PairData};
use crate::schedule::Schedule;

/// The metrics, the primary first.
pub fn metrics() -> Vec<MetricInfo> {
    vec![
        MetricInfo::new("test_bleu", Goal::Max),
        MetricInfo::new("valid_loss", Goal::Min),
        MetricInfo::new("valid_nll_loss", Goal::Min),
    ]
}

/// The options of both tasks; the model's defaults are `transformer_iwslt_de_en`.
fn options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new("d_model", 512i64, "embedding and model width (encoder_embed_dim = decoder_embed_dim)")
            .at_least(2.0),
        OptionSpec::new("ffn", 1024i64, "feed-forward width (encoder_ffn_embed_dim)").at_least(1.0),
        OptionSpec::new("heads", 4i64, "attention heads (d_model must be a multiple)").at_least(1.0),
        OptionSpec::new("encoder_layers", 6i64, "encoder layers"),
        OptionSpec::new("decoder_layers", 6i64, "decoder layers"),
        OptionSpec::new("dropout", 0.3, "dropout after embeddings and each residual branch").below(1.0),
        OptionSpec::new("attention_dropout", 0.0, "dropout on the attention weights").below(1.0),
        OptionSpec::new("activation_dropout", 0.0, "dropout after the FFN's ReLU (relu_dropout)").below(1.0),
        OptionSpec::new("share_all_embeddings", false, "one embedding table for encoder, decoder and output"),
        OptionSpec::new(
            "share_decoder_input_output_embed",
            true,
            "the decoder's embedding table is its output projection",
        ),
        OptionSpec::new(
            "normalize_before",
            false,
            "pre-LN blocks and a final layer norm (fairseq's encoder/decoder_normalize_before; transformer_iwslt_de_en_v2)",
        ),
        OptionSpec::new("max_positions", 1024i64, "longest sequence; longer training pairs are left out")
            .at_least(2.0),
        OptionSpec::new("bpe_vocab", 10000i64, "size of the joint BPE vocabulary (with the 4 specials)").at_least(8.0),
        OptionSpec::new("max_tokens", 4096i64, "tokens per batch (sentences x longest, fairseq's --max-tokens)")
            .at_least(1.0),
        OptionSpec::new("label_smoothing", 0.1, "label smoothing epsilon").at_least(0.0).below(1.0),
        OptionSpec::choice("decode", "beam", &["beam", "greedy"], "how the test set is translated"),
        OptionSpec::new("beam", 5i64, "beam size").at_least(1.0),
        OptionSpec::new("lenpen", 1.0, "length penalty: finished hypotheses score sum log p / len^lenpen"),
        OptionSpec::new("max_len_a", 0.0, "longest translation: max_len_a * source length + max_len_b"),
        OptionSpec::new("max_len_b", 200i64, "see max_len_a"),
        OptionSpec::new("train_subset", 0i64, "train on the first N pairs (0: all)"),
        OptionSpec::new("valid_subset", 0i64, "validate on the first N pairs (0: all)"),
        OptionSpec::new("test_subset", 0i64, "translate the first N test pairs (0: all)"),
    ]
}

pub fn tasks() -> Vec<TaskInfo> {
    let mut out = Vec::new();
    for (dataset, title, budget) in [("multi30k", "Multi30k", 30), ("iwslt14", "IWSLT'14", 55)] {
        out.push(TaskInfo {
            name: format!("{dataset}-transformer"),
            family: Family::Translation,
            summary: format!(
                "{title} De->En: fairseq's transformer_iwslt_de_en, joint BPE, label smoothing, beam search, sacreBLEU"
            ),
            options: options(),
            budget: Budget::Epochs(budget),
            batch_size: None,
            eval_every: None,
            log_every: 50,
            schedule: Schedule::WarmupInverseSqrt { warmup: 4000, init_lr: 0.0 },
            metrics: metrics(),
            optimizers: MAIN_ONLY,
            clip_norm: None,
            build: Box::new(move |ctx| Ok(Box::new(Translation::new(ctx, dataset)?) as Box<dyn Task>)),
            parameters: Some(Box::new(|ctx| {
                // The vocabulary is learned from the data: counted at `bpe_vocab` tokens.
                let v = ctx.count("bpe_vocab");
                let params = Params::new(SeededRng::new(0).fork("init"), DType::F32, &Device::Cpu);
                Transformer::new(&params.root(), &model_config(ctx, v))?;
                Ok(params.count())
            })),
        });
    }
    out
}

/// The model of a run's options over a joint vocabulary of `vocab` tokens.
fn model_config(ctx: &TaskContext, vocab: usize) -> TransformerConfig {
    TransformerConfig {
        d_model: ctx.count("d_model"),
        ffn: ctx.count("ffn"),
        heads: ctx.count("heads"),
        encoder_layers: ctx.count("encoder_layers"),
        decoder_layers: ctx.count("decoder_layers"),
        dropout: ctx.f64("dropout"),
        attention_dropout: ctx.f64("attention_dropout"),
        activation_dropout: ctx.f64("activation_dropout"),
        share_all_embeddings: ctx.flag("share_all_embeddings"),
        share_decoder_input_output_embed: ctx.flag("share_decoder_input_output_embed"),
        normalize_before: ctx.flag("normalize_before"),
        max_positions: ctx.count("max_positions"),
        ..TransformerConfig::iwslt_de_en(vocab, vocab)
    }
}

/// The file a split's side is read from, for messages.
fn side_file(dataset: &str, split: &str, language: &str) -> String {
    let stem = data::catalog::find(dataset)
        .and_then(|spec| match spec.local {
            data::catalog::LocalFormat::Parallel(stems) => stems.iter().find(|(s, _)| *s == split).map(|(_, f)| *f),
            _ => None,
        })
        .unwrap_or(split);
    format!("{stem}.{language} (or the {split} split's file on the Hub)")
}

/// Checks every line of a loaded corpus; the first bad one is an error naming the file and line.
pub fn check_corpus(data: &PairData) -> anyhow::Result<()> {
    let (src, tgt) = match data::catalog::find(&data.name).map(|s| &s.content) {
        Some(data::catalog::Content::Pairs { source, target, .. }) => (*source, *target),
        _ => ("source", "target"),
    };
    for (split, pairs) in &data.splits {
        for (i, (s, t)) in pairs.iter().enumerate() {
            for (line, language) in [(s, src), (t, tgt)] {
                if let Err(why) = bpe::check_line(line) {
                    anyhow::bail!(
                        "data set `{}` ({}): line {} of {}: {why}",
                        data.name,
                        data.source,
                        i + 1,
                        side_file(&data.name, split, language)
                    );
                }
            }
        }
    }
    Ok(())
}

fn split<'a>(data: &'a PairData, name: &str) -> anyhow::Result<&'a [(String, String)]> {
    data.splits
        .iter()
        .find(|(s, _)| s == name)
        .map(|(_, p)| p.as_slice())
        .ok_or_else(|| anyhow::anyhow!("data set `{}` has no `{name}` split", data.name))
}

fn subset<T>(items: &[T], n: usize) -> &[T] {
    if n == 0 {
        items
    } else {
        &items[..n.min(items.len())]
    }
}

/// One encoded pair: source ids and target ids, each ending with `</s>`.
#[derive(Clone, Debug)]
pub struct Example {
    pub src: Vec<u32>,
    pub tgt: Vec<u32>,
}

impl Example {
    fn tokens(&self) -> usize {
        self.src.len().max(self.tgt.len())
    }
}

/// fairseq's `batch_by_size` over `order`: consecutive examples while `sentences * longest`
/// stays within `max_tokens` (an example longer than that alone is a batch of one).
pub fn batch_by_size(examples: &[Example], order: &[usize], max_tokens: usize) -> Vec<Vec<usize>> {
    let mut batches = Vec::new();
    let mut batch: Vec<usize> = Vec::new();
    let mut longest = 0;
    for &i in order {
        let n = examples[i].tokens();
        let longer = longest.max(n);
        if !batch.is_empty() && (batch.len() + 1) * longer > max_tokens {
            batches.push(std::mem::take(&mut batch));
            longest = 0;
        }
        longest = longest.max(n);
        batch.push(i);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// fairseq's `ordered_indices`: a seeded permutation, stably sorted by (target, source) length.
pub fn length_order(examples: &[Example], rng: &mut SeededRng) -> Vec<usize> {
    let mut order = rng.permutation(examples.len());
    order.sort_by_key(|&i| (examples[i].tgt.len(), examples[i].src.len()));
    order
}

/// Right-padded rows.
fn pad_rows(rows: impl Iterator<Item = Vec<u32>>) -> Vec<Vec<u32>> {
    let rows: Vec<Vec<u32>> = rows.collect();
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    rows.into_iter()
        .map(|mut r| {
            r.resize(width, PAD);
            r
        })
        .collect()
}

/// A teacher-forced batch: sources, the decoder's inputs and the gold targets, right-padded.
struct Batch {
    src: Vec<Vec<u32>>,
    prev: Vec<Vec<u32>>,
    gold: Vec<Vec<u32>>,
}

fn make_batch(examples: &[Example], indices: &[usize]) -> Batch {
    let pick = |f: &dyn Fn(&Example) -> Vec<u32>| pad_rows(indices.iter().map(|&i| f(&examples[i])));
    Batch {
        src: pick(&|e| e.src.clone()),
        prev: pick(&|e| {
            let mut p = vec![EOS];
            p.extend_from_slice(&e.tgt[..e.tgt.len() - 1]);
            p
        }),
        gold: pick(&|e| e.tgt.clone()),
    }
}

/// fairseq's label-smoothed loss summed over the non-padding tokens, and the summed NLL.
pub fn label_smoothed_loss(
    logits: &Tensor,
    gold: &[Vec<u32>],
    epsilon: f64,
) -> candle::Result<(Tensor, Tensor, usize)> {
    let (b, t, v) = logits.dims3()?;
    let flat: Vec<u32> = gold.iter().flatten().copied().collect();
    let keep: Vec<f32> = flat.iter().map(|&g| if g == PAD { 0.0 } else { 1.0 }).collect();
    let tokens = keep.iter().filter(|&&k| k > 0.0).count();
    let device = logits.device();
    let lprobs = candle_nn::ops::log_softmax(&logits.reshape((b * t, v))?.to_dtype(DType::F32)?, 1)?;
    let target = Tensor::from_vec(flat, (b * t, 1), device)?;
    let keep = Tensor::from_vec(keep, b * t, device)?;
    let nll = (lprobs.gather(&target, 1)?.squeeze(1)?.neg()? * &keep)?.sum_all()?;
    let smooth = (lprobs.sum(1)?.neg()? * &keep)?.sum_all()?;
    let eps_i = epsilon / (v as f64 - 1.0);
    let loss = ((&nll * (1.0 - epsilon - eps_i))? + (smooth * eps_i)?)?;
    Ok((loss, nll, tokens))
}

/// How the test set is translated.
#[derive(Clone, Copy, Debug)]
pub struct Search {
    pub beam: usize,
    pub lenpen: f64,
    pub max_len_a: f64,
    pub max_len_b: usize,
    pub max_positions: usize,
}

struct Hypothesis {
    tokens: Vec<u32>,
    score: f64,
}

/// fairseq's beam search for the sources `src` (each ending with `</s>`), `search.beam`
/// hypotheses per sentence: the best finished hypothesis of each, without `</s>`.
pub fn beam_search(model: &Transformer, src: &[Vec<u32>], search: Search) -> candle::Result<Vec<Vec<u32>>> {
    let k = search.beam;
    let n = src.len();
    let encoded = model.encode(&pad_rows(src.iter().cloned()), false)?;
    let device = encoded.out.device().clone();
    let expand: Vec<u32> = (0..n as u32).flat_map(|i| std::iter::repeat_n(i, k)).collect();
    let mut enc: Encoded = encoded.select(&Tensor::from_vec(expand, n * k, &device)?)?;
    let mut cache = model.start_decoding(&enc)?;
    let max_len: Vec<usize> = src
        .iter()
        .map(|s| ((search.max_len_a * s.len() as f64) as usize + search.max_len_b).min(search.max_positions - 1))
        .collect();
    // Active sentences (their index) with `k` live hypotheses each, rows in that order.
    let mut active: Vec<usize> = (0..n).collect();
    let mut beams: Vec<Vec<Hypothesis>> =
        (0..n).map(|_| (0..k).map(|_| Hypothesis { tokens: Vec::new(), score: 0.0 }).collect()).collect();
    let mut finished: Vec<Vec<Hypothesis>> = (0..n).map(|_| Vec::new()).collect();
    let mut step = 0;
    while !active.is_empty() {
        let last: Vec<u32> = active
            .iter()
            .flat_map(|&s| beams[s].iter().map(|h| h.tokens.last().copied().unwrap_or(EOS)).collect::<Vec<_>>())
            .collect();
        let lprobs = model.decode_step(&enc, &mut cache, &last)?;
        let v = lprobs.dim(1)?;
        let lprobs: Vec<f32> = lprobs.flatten_all()?.to_vec1()?;
        let mut keep_rows: Vec<u32> = Vec::new();
        let mut still = Vec::new();
        for (a, &s) in active.iter().enumerate() {
            let forced_end = step >= max_len[s];
            // (score, beam, token) of the best 2k candidates.
            let mut cands: Vec<(f64, usize, u32)> = Vec::with_capacity(2 * k + 1);
            let beams_now = if step == 0 { 1 } else { k };
            for b in 0..beams_now {
                let row = &lprobs[(a * k + b) * v..(a * k + b + 1) * v];
                let base = beams[s][b].score;
                for (token, &lp) in row.iter().enumerate() {
                    let token = token as u32;
                    if token == PAD || (forced_end && token != EOS) || (step == 0 && token == EOS) {
                        continue;
                    }
                    if !lp.is_finite() {
                        continue;
                    }
                    let score = base + lp as f64;
                    if cands.len() < 2 * k || score > cands[cands.len() - 1].0 {
                        let at = cands.partition_point(|c| c.0 >= score);
                        cands.insert(at, (score, b, token));
                        cands.truncate(2 * k);
                    }
                }
            }
            let mut next = Vec::with_capacity(k);
            for (rank, &(score, b, token)) in cands.iter().enumerate() {
                if token == EOS {
                    if rank < k && finished[s].len() < k {
                        let len = (beams[s][b].tokens.len() + 1) as f64;
                        let tokens = beams[s][b].tokens.clone();
                        finished[s].push(Hypothesis { tokens, score: score / len.powf(search.lenpen) });
                    }
                } else if next.len() < k {
                    let mut tokens = beams[s][b].tokens.clone();
                    tokens.push(token);
                    next.push((Hypothesis { tokens, score }, b));
                }
            }
            if finished[s].len() >= k || next.is_empty() {
                continue;
            }
            while next.len() < k {
                // Fewer live candidates than beams (a tiny vocabulary): repeat the last.
                let (h, b) = next.last().expect("not empty");
                let copy = (Hypothesis { tokens: h.tokens.clone(), score: f64::NEG_INFINITY }, *b);
                next.push(copy);
            }
            for (_, b) in &next {
                keep_rows.push((a * k + b) as u32);
            }
            beams[s] = next.into_iter().map(|(h, _)| h).collect();
            still.push(s);
        }
        if !still.is_empty() {
            let index = Tensor::from_vec(keep_rows, still.len() * k, &device)?;
            cache = cache.select(&index)?;
            enc = enc.select(&index)?;
        }
        active = still;
        step += 1;
    }
    Ok(finished
        .into_iter()
        .map(|mut f| {
            f.sort_by(|a, b| b.score.total_cmp(&a.score));
            f.into_iter().next().map(|h| h.tokens).unwrap_or_default()
        })
        .collect())
}

/// A translation task being trained.
pub struct Translation {
    model: Transformer,
    params: Params,
    optimizer: BoxedOptimizer,
    bpe: Bpe,
    train: Vec<Example>,
    /// The training batches (indices into `train`), formed once.
    batches: Vec<Vec<usize>>,
    /// The batch order's generator at step 0.
    order: SeededRng,
    /// The current epoch's batch order, and its epoch.
    epoch_order: (u64, Vec<usize>),
    valid: Vec<Example>,
    valid_batches: Vec<Vec<usize>>,
    test_src: Vec<Vec<u32>>,
    test_refs: Vec<String>,
    search: Search,
    label_smoothing: f64,
    record: DataRecord,
    hypotheses: Vec<String>,
}

/// Encodes pairs (source and target each with `</s>`).
fn encode_pairs(bpe: &Bpe, pairs: &[(String, String)], cache: &mut HashMap<String, Vec<u32>>) -> Vec<Example> {
    pairs
        .iter()
        .map(|(s, t)| {
            let mut src = bpe.encode(s, cache);
            src.push(EOS);
            let mut tgt = bpe.encode(t, cache);
            tgt.push(EOS);
            Example { src, tgt }
        })
        .collect()
}

fn cache_root(settings: &DataSettings) -> PathBuf {
    settings.cache_dir.clone().unwrap_or_else(data::cache::default_cache_dir)
}

impl Translation {
    pub fn new(ctx: &TaskContext, dataset: &str) -> anyhow::Result<Self> {
        let data = data::load_pairs(dataset, ctx.data)?;
        check_corpus(&data)?;
        let train_pairs = subset(split(&data, "train")?, ctx.count("train_subset"));
        let valid_pairs = subset(split(&data, "valid")?, ctx.count("valid_subset"));
        let test_pairs = subset(split(&data, "test")?, ctx.count("test_subset"));
        anyhow::ensure!(!train_pairs.is_empty(), "data set `{dataset}` has no training pairs");
        let lines = train_pairs.iter().flat_map(|(s, t)| [s.as_str(), t.as_str()]);
        let bpe = bpe::cached(&cache_root(ctx.data), dataset, lines, ctx.count("bpe_vocab"));
        let mut cache = HashMap::new();
        let max_positions = ctx.count("max_positions");
        let train: Vec<Example> = encode_pairs(&bpe, train_pairs, &mut cache)
            .into_iter()
            .filter(|e| e.src.len() <= max_positions && e.tgt.len() <= max_positions)
            .collect();
        anyhow::ensure!(!train.is_empty(), "every training pair of `{dataset}` is longer than max_positions");
        let valid = encode_pairs(&bpe, valid_pairs, &mut cache);
        let test_src = test_pairs
            .iter()
            .map(|(s, _)| {
                let mut ids = bpe.encode(s, &mut cache);
                ids.truncate(max_positions - 1);
                ids.push(EOS);
                ids
            })
            .collect();
        let max_tokens = ctx.count("max_tokens");
        let mut rng = SeededRng::new(ctx.seed).fork("data-order");
        let batches = batch_by_size(&train, &length_order(&train, &mut rng), max_tokens);
        let valid_order = {
            let mut o: Vec<usize> = (0..valid.len()).collect();
            o.sort_by_key(|&i| (valid[i].tgt.len(), valid[i].src.len()));
            o
        };
        let valid_batches = batch_by_size(&valid, &valid_order, max_tokens);
        let params = Params::new(SeededRng::new(ctx.seed).fork("init"), DType::F32, ctx.device);
        let model = Transformer::new(&params.root(), &model_config(ctx, bpe.len()))?;
        let optimizer = ctx.build_optimizer(MAIN, params.trainable())?;
        let search = Search {
            beam: if ctx.string("decode") == "greedy" { 1 } else { ctx.count("beam") },
            lenpen: ctx.f64("lenpen"),
            max_len_a: ctx.f64("max_len_a"),
            max_len_b: ctx.count("max_len_b"),
            max_positions,
        };
        Ok(Self {
            model,
            params,
            optimizer,
            bpe,
            train,
            batches,
            order: rng,
            epoch_order: (u64::MAX, Vec::new()),
            valid,
            valid_batches,
            test_src,
            test_refs: test_pairs.iter().map(|(_, t)| t.clone()).collect(),
            search,
            label_smoothing: ctx.f64("label_smoothing"),
            record: data.record,
            hypotheses: Vec::new(),
        })
    }

    /// The batch of a 1-based step: epoch `(step - 1) / batches`, its order drawn from the seed.
    fn batch_of(&mut self, step: u64) -> &[usize] {
        let per_epoch = self.batches.len() as u64;
        let (epoch, at) = ((step - 1) / per_epoch, ((step - 1) % per_epoch) as usize);
        if self.epoch_order.0 != epoch {
            let mut rng = self.order.fork(&format!("epoch-{epoch}"));
            self.epoch_order = (epoch, rng.permutation(self.batches.len()));
        }
        &self.batches[self.epoch_order.1[at]]
    }

    /// The test set's translations, in order, as plain text.
    pub fn translate(&self) -> anyhow::Result<Vec<String>> {
        let mut order: Vec<usize> = (0..self.test_src.len()).collect();
        order.sort_by_key(|&i| self.test_src[i].len());
        let mut out = vec![String::new(); self.test_src.len()];
        // Batches of about 2048 source tokens times the beam.
        let budget = (8192 / self.search.beam).max(64);
        for chunk in batch_by_size(
            &self.test_src.iter().map(|s| Example { src: s.clone(), tgt: vec![EOS] }).collect::<Vec<_>>(),
            &order,
            budget,
        ) {
            let src: Vec<Vec<u32>> = chunk.iter().map(|&i| self.test_src[i].clone()).collect();
            for (i, ids) in chunk.iter().zip(beam_search(&self.model, &src, self.search)?) {
                out[*i] = self.bpe.decode(&ids);
            }
        }
        Ok(out)
    }
}

impl Task for Translation {
    fn steps_per_epoch(&self) -> Option<u64> {
        Some(self.batches.len() as u64)
    }

    fn optimizers(&mut self) -> Vec<(&'static str, &mut BoxedOptimizer)> {
        vec![(MAIN, &mut self.optimizer)]
    }

    fn train_step(&mut self, step: u64) -> anyhow::Result<Losses> {
        let indices = self.batch_of(step).to_vec();
        let batch = make_batch(&self.train, &indices);
        let logits = self.model.forward(&batch.src, &batch.prev, true)?;
        let (loss, _, tokens) = label_smoothed_loss(&logits, &batch.gold, self.label_smoothing)?;
        let loss = (loss / tokens.max(1) as f64)?;
        self.optimizer.backward_step(&loss)?;
        Ok(vec![("loss", loss.to_dtype(DType::F64)?.to_scalar::<f64>()?)])
    }

    fn evaluate(&mut self) -> anyhow::Result<Metrics> {
        let (mut loss_sum, mut nll_sum, mut tokens) = (0.0, 0.0, 0usize);
        for indices in &self.valid_batches {
            let batch = make_batch(&self.valid, indices);
            let logits = self.model.forward(&batch.src, &batch.prev, false)?;
            let (loss, nll, n) = label_smoothed_loss(&logits, &batch.gold, self.label_smoothing)?;
            loss_sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            nll_sum += nll.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            tokens += n;
        }
        let hypotheses = self.translate()?;
        let bleu = bleu::corpus_bleu(&hypotheses, &self.test_refs)?;
        self.hypotheses = hypotheses;
        let per = |x: f64| if tokens == 0 { f64::NAN } else { x / tokens as f64 };
        Ok(vec![
            ("test_bleu".into(), bleu.score),
            ("valid_loss".into(), per(loss_sum)),
            ("valid_nll_loss".into(), per(nll_sum)),
        ])
    }

    fn state(&self, _step: u64) -> anyhow::Result<TaskState> {
        // The data position is the step: each epoch's batch order is drawn from the seed.
        Ok(super::model_state(&self.params))
    }

    fn restore(&mut self, state: &TaskState, _step: u64) -> anyhow::Result<()> {
        super::restore_model(&self.params, state)
    }

    fn data(&self) -> Vec<DataRecord> {
        vec![self.record.clone()]
    }

    fn artifacts(&mut self, _step: u64) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        if self.hypotheses.is_empty() {
            return Ok(Vec::new()); // not evaluated yet
        }
        let mut text = self.hypotheses.join("\n");
        text.push('\n');
        Ok(vec![("test.hyp.txt".into(), text.into_bytes())])
    }
}
