//! The encoder-decoder Transformer of Vaswani et al. (2017), post-LN, as fairseq's `transformer`
//! model (`github.com/facebookresearch/fairseq` at 3d262bb: `fairseq/models/transformer/
//! transformer_legacy.py` `transformer_iwslt_de_en`, `transformer_encoder.py`,
//! `transformer_decoder.py`, `fairseq/modules/transformer_layer.py`, `multihead_attention.py`,
//! `sinusoidal_positional_embedding.py`), with every size an option ([`TransformerConfig`];
//! [`TransformerConfig::iwslt_de_en`] is `transformer_iwslt_de_en`: 6 + 6 layers, d 512,
//! FFN 1024, 4 heads).
//!
//! Encoder: `x = dropout(sqrt(d) E[src] + P[pos])`, then per layer
//! `x = LN(x + dropout(SelfAttn(x)))`, `x = LN(x + dropout(W2 act_dropout(relu(W1 x))))`.
//! Decoder: the same embedding of the previous tokens, then per layer causal self-attention,
//! attention over the encoder output, the feed-forward block, each `LN(x + dropout(.))`; the
//! logits `x O^T` with `O` the decoder's embedding (`share_decoder_input_output_embed`) or its
//! own `output_projection`. `share_all_embeddings` uses one table for both sides (one joint
//! vocabulary). No final layer norm, except with `normalize_before` (pre-LN, as fairseq's
//! `transformer_iwslt_de_en_v2` of AdaBelief's recipe: `x + dropout(f(LN(x)))` per block and a
//! final `layer_norm` after the encoder and the decoder).
//!
//! Attention: `softmax(q k^T / sqrt(d_h) + mask) v` per head, q/k/v/out projections with bias,
//! attention dropout on the weights; masks are additive (-1e9 on padded keys, and on later
//! positions in the decoder's self-attention). Positions are fairseq's sinusoidal table
//! (`[sin | cos]` halves, `exp(-i ln(10000) / (d/2 - 1))`), position `pad + 1 + i` for the i-th
//! real token and the zero row `pad` for padding (sequences here are right-padded; fairseq pads
//! sources on the left, which the masks and positions make equivalent).
//!
//! Initialisation as fairseq: embeddings `N(0, d^-1/2)` with the padding row 0; q/k/v weights
//! Xavier-uniform with gain `1/sqrt(2)`, the out projection Xavier-uniform with bias 0, other
//! biases and the FFN as `nn.Linear`; `output_projection` `N(0, d^-1/2)`; layer norms 1 and 0,
//! eps 1e-5. Layer norm and softmax are candle's composed ops (`layer_norm_slow`,
//! `softmax(x, D::Minus1)`), whose backward candle records. Dropout masks come from the suite's
//! seeded generator ([`crate::Dropout`]).
//!
//! Parameter names follow fairseq's state dict (`encoder.layers.0.self_attn.k_proj.weight`).
//! `transformer_iwslt_de_en` with share_decoder_input_output_embed over vocabularies of 8,848
//! (de) and 6,632 (en) has 39,469,056 parameters, as fairseq's own model
//! (`scripts/models/transformer_params.py`).

use candle::{DType, Device, IndexOp, Module, ModuleT, Result, Tensor, D};

use crate::{Dropout, ParamBuilder};

/// The sizes and options of a Transformer (fairseq's names).
#[derive(Clone, Debug, PartialEq)]
pub struct TransformerConfig {
    pub src_vocab: usize,
    pub tgt_vocab: usize,
    /// The padding token's id (fairseq's dictionaries: 1).
    pub pad: u32,
    /// `encoder_embed_dim` = `decoder_embed_dim`.
    pub d_model: usize,
    /// `encoder_ffn_embed_dim` = `decoder_ffn_embed_dim`.
    pub ffn: usize,
    pub heads: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub dropout: f64,
    pub attention_dropout: f64,
    /// fairseq's `activation_dropout` (`relu_dropout`).
    pub activation_dropout: f64,
    pub share_all_embeddings: bool,
    pub share_decoder_input_output_embed: bool,
    /// Pre-LN (`encoder_normalize_before` = `decoder_normalize_before`): each block
    /// `x + dropout(f(LN(x)))`, and a final layer norm after the encoder and the decoder.
    pub normalize_before: bool,
    /// The longest sequence (fairseq's `max_source_positions` / `max_target_positions`).
    pub max_positions: usize,
}

impl TransformerConfig {
    /// fairseq's `transformer_iwslt_de_en` (dropout 0.3 as its IWSLT'14 recipe sets it).
    pub fn iwslt_de_en(src_vocab: usize, tgt_vocab: usize) -> Self {
        Self {
            src_vocab,
            tgt_vocab,
            pad: 1,
            d_model: 512,
            ffn: 1024,
            heads: 4,
            encoder_layers: 6,
            decoder_layers: 6,
            dropout: 0.3,
            attention_dropout: 0.0,
            activation_dropout: 0.0,
            share_all_embeddings: false,
            share_decoder_input_output_embed: true,
            normalize_before: false,
            max_positions: 1024,
        }
    }
}

/// fairseq's sinusoidal position table, `rows` x `dim`, row `pad` zero.
pub fn sinusoidal_table(rows: usize, dim: usize, pad: usize) -> Vec<f32> {
    let half = dim / 2;
    let step = (10000f64.ln() / (half as f64 - 1.0)) as f32;
    let freqs: Vec<f32> = (0..half).map(|i| (i as f32 * -step).exp()).collect();
    let mut out = vec![0f32; rows * dim];
    for r in 0..rows {
        if r == pad {
            continue;
        }
        for (i, f) in freqs.iter().enumerate() {
            let a = r as f32 * f;
            out[r * dim + i] = a.sin();
            out[r * dim + half + i] = a.cos();
        }
    }
    out
}

/// A dense layer applied to the last dimension of any input (flattened to 2-D for one matmul).
#[derive(Clone, Debug)]
struct Dense {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Dense {
    fn torch(b: &ParamBuilder, inputs: usize, outputs: usize) -> Result<Self> {
        let bound = 1.0 / (inputs as f64).sqrt();
        Ok(Self {
            weight: b.uniform("weight", (outputs, inputs), bound)?,
            bias: Some(b.uniform("bias", outputs, bound)?),
        })
    }

    /// Xavier-uniform weights with `gain`; the bias as `nn.Linear` or 0.
    fn xavier(b: &ParamBuilder, inputs: usize, outputs: usize, gain: f64, zero_bias: bool) -> Result<Self> {
        let bound = gain * (6.0 / (inputs + outputs) as f64).sqrt();
        let weight = b.uniform("weight", (outputs, inputs), bound)?;
        let bias = if zero_bias {
            b.constant("bias", outputs, 0.0)?
        } else {
            b.uniform("bias", outputs, 1.0 / (inputs as f64).sqrt())?
        };
        Ok(Self { weight, bias: Some(bias) })
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let inputs = dims[dims.len() - 1];
        let rows = x.elem_count() / inputs;
        let mut y = x.reshape((rows, inputs))?.matmul(&self.weight.t()?)?;
        if let Some(bias) = &self.bias {
            y = y.broadcast_add(bias)?;
        }
        let mut out = dims;
        *out.last_mut().expect("rank >= 1") = self.weight.dim(0)?;
        y.reshape(out)
    }
}

/// Layer normalisation over the last dimension with a gain and a bias (eps 1e-5).
#[derive(Clone, Debug)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn new(b: &ParamBuilder, dim: usize) -> Result<Self> {
        Ok(Self { weight: b.constant("weight", dim, 1.0)?, bias: b.constant("bias", dim, 0.0)? })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm_slow(x, &self.weight, &self.bias, 1e-5)
    }
}

/// Multi-head attention as fairseq's `MultiheadAttention`.
#[derive(Clone, Debug)]
struct Attention {
    q: Dense,
    k: Dense,
    v: Dense,
    out: Dense,
    heads: usize,
    dropout: Dropout,
}

impl Attention {
    fn new(b: &ParamBuilder, d: usize, heads: usize, dropout: f64) -> Result<Self> {
        let gain = 1.0 / 2f64.sqrt();
        Ok(Self {
            k: Dense::xavier(&b.pp("k_proj"), d, d, gain, false)?,
            v: Dense::xavier(&b.pp("v_proj"), d, d, gain, false)?,
            q: Dense::xavier(&b.pp("q_proj"), d, d, gain, false)?,
            out: Dense::xavier(&b.pp("out_proj"), d, d, 1.0, true)?,
            heads,
            dropout: b.dropout("dropout", dropout)?,
        })
    }

    /// (B, T, d) -> (B, H, T, d_h).
    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        x.reshape((b, t, self.heads, d / self.heads))?.transpose(1, 2)?.contiguous()
    }

    /// Keys and values of `memory`, split into heads.
    fn keys_values(&self, memory: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.split(&self.k.forward(memory)?)?, self.split(&self.v.forward(memory)?)?))
    }

    /// Attention of `x` (B, T, d) over split keys and values (B, H, S, d_h) with an additive
    /// mask broadcast to (B, H, T, S).
    fn attend(&self, x: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, train: bool) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let scale = ((d / self.heads) as f64).powf(-0.5);
        let q = self.split(&(self.q.forward(x)? * scale)?)?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let weights = self.dropout.forward_t(&candle_nn::ops::softmax(&scores, D::Minus1)?, train)?;
        let y = weights.matmul(v)?.transpose(1, 2)?.reshape((b, t, d))?;
        self.out.forward(&y)
    }
}

/// The feed-forward block: `fc2(act_dropout(relu(fc1 x)))`.
#[derive(Clone, Debug)]
struct FeedForward {
    fc1: Dense,
    fc2: Dense,
    dropout: Dropout,
}

impl FeedForward {
    fn new(b: &ParamBuilder, d: usize, ffn: usize, dropout: f64) -> Result<Self> {
        Ok(Self {
            fc1: Dense::torch(&b.pp("fc1"), d, ffn)?,
            fc2: Dense::torch(&b.pp("fc2"), ffn, d)?,
            dropout: b.dropout("activation_dropout", dropout)?,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.fc2.forward(&self.dropout.forward_t(&self.fc1.forward(x)?.relu()?, train)?)
    }
}

#[derive(Clone, Debug)]
struct EncoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
    dropout: Dropout,
}

#[derive(Clone, Debug)]
struct DecoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: Attention,
    encoder_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    final_layer_norm: LayerNorm,
    dropout: Dropout,
}

/// The encoder's output for a batch: (B, S, d), and the additive mask of padded source
/// positions (B, 1, 1, S).
#[derive(Clone, Debug)]
pub struct Encoded {
    pub out: Tensor,
    pub mask: Tensor,
}

impl Encoded {
    /// The rows `index` (a beam's expansion or reordering).
    pub fn select(&self, index: &Tensor) -> Result<Self> {
        Ok(Self { out: self.out.index_select(index, 0)?, mask: self.mask.index_select(index, 0)? })
    }
}

/// What incremental decoding keeps per layer: the self-attention's keys and values so far and
/// the encoder attention's keys and values, each (N, H, ., d_h).
#[derive(Clone, Debug)]
pub struct DecoderCache {
    layers: Vec<LayerCache>,
    /// Tokens decoded so far.
    pub steps: usize,
}

#[derive(Clone, Debug)]
struct LayerCache {
    self_kv: Option<(Tensor, Tensor)>,
    memory_kv: (Tensor, Tensor),
}

impl DecoderCache {
    /// The cache of the hypotheses `index` (beam search's reordering).
    pub fn select(&self, index: &Tensor) -> Result<Self> {
        let pick = |(k, v): &(Tensor, Tensor)| -> Result<(Tensor, Tensor)> {
            Ok((k.index_select(index, 0)?, v.index_select(index, 0)?))
        };
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(LayerCache { self_kv: l.self_kv.as_ref().map(pick).transpose()?, memory_kv: pick(&l.memory_kv)? })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers, steps: self.steps })
    }
}

/// The encoder-decoder Transformer.
#[derive(Clone, Debug)]
pub struct Transformer {
    config: TransformerConfig,
    encoder_embed: Tensor,
    decoder_embed: Tensor,
    /// The output projection (the decoder's embedding when shared), (V, d).
    output: Tensor,
    positions: Tensor,
    encoder_layers: Vec<EncoderLayer>,
    decoder_layers: Vec<DecoderLayer>,
    encoder_dropout: Dropout,
    decoder_dropout: Dropout,
    /// The final layer norms of pre-LN models.
    encoder_norm: Option<LayerNorm>,
    decoder_norm: Option<LayerNorm>,
}

/// One residual block, post-LN `LN(x + dropout(f(x)))` or pre-LN `x + dropout(f(LN(x)))`.
fn residual(
    x: &Tensor,
    norm: &LayerNorm,
    pre: bool,
    dropout: &Dropout,
    train: bool,
    f: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    if pre {
        x + dropout.forward_t(&f(&norm.forward(x)?)?, train)?
    } else {
        norm.forward(&(x + dropout.forward_t(&f(x)?, train)?)?)
    }
}

/// An embedding table `N(0, d^-1/2)` with the padding row 0.
fn embedding(b: &ParamBuilder, vocab: usize, d: usize, pad: u32) -> Result<Tensor> {
    let table = b.normal("weight", (vocab, d), (d as f64).powf(-0.5))?;
    // In place: the tensor shares the variable's storage.
    table.slice_set(&Tensor::zeros((1, d), table.dtype(), table.device())?, 0, pad as usize)?;
    Ok(table)
}

impl Transformer {
    pub fn new(b: &ParamBuilder, config: &TransformerConfig) -> Result<Self> {
        let c = config.clone();
        let d = c.d_model;
        if !d.is_multiple_of(c.heads) || !d.is_multiple_of(2) {
            candle::bail!("d_model {d} must be even and a multiple of the {} heads", c.heads)
        }
        if c.share_all_embeddings && c.src_vocab != c.tgt_vocab {
            candle::bail!(
                "share_all_embeddings needs one vocabulary ({} source, {} target tokens)",
                c.src_vocab,
                c.tgt_vocab
            )
        }
        let (enc, dec) = (b.pp("encoder"), b.pp("decoder"));
        let encoder_embed = embedding(&enc.pp("embed_tokens"), c.src_vocab, d, c.pad)?;
        let decoder_embed = if c.share_all_embeddings {
            encoder_embed.clone()
        } else {
            embedding(&dec.pp("embed_tokens"), c.tgt_vocab, d, c.pad)?
        };
        let rows = c.max_positions + c.pad as usize + 1;
        let (device, dtype) = (encoder_embed.device(), encoder_embed.dtype());
        let positions =
            Tensor::from_vec(sinusoidal_table(rows, d, c.pad as usize), (rows, d), device)?.to_dtype(dtype)?;
        let mut encoder_layers = Vec::new();
        for i in 0..c.encoder_layers {
            let l = enc.pp("layers").pp(i);
            encoder_layers.push(EncoderLayer {
                self_attn: Attention::new(&l.pp("self_attn"), d, c.heads, c.attention_dropout)?,
                self_attn_layer_norm: LayerNorm::new(&l.pp("self_attn_layer_norm"), d)?,
                ffn: FeedForward::new(&l, d, c.ffn, c.activation_dropout)?,
                final_layer_norm: LayerNorm::new(&l.pp("final_layer_norm"), d)?,
                dropout: l.dropout("dropout", c.dropout)?,
            });
        }
        let mut decoder_layers = Vec::new();
        for i in 0..c.decoder_layers {
            let l = dec.pp("layers").pp(i);
            decoder_layers.push(DecoderLayer {
                self_attn: Attention::new(&l.pp("self_attn"), d, c.heads, c.attention_dropout)?,
                self_attn_layer_norm: LayerNorm::new(&l.pp("self_attn_layer_norm"), d)?,
                encoder_attn: Attention::new(&l.pp("encoder_attn"), d, c.heads, c.attention_dropout)?,
                encoder_attn_layer_norm: LayerNorm::new(&l.pp("encoder_attn_layer_norm"), d)?,
                ffn: FeedForward::new(&l, d, c.ffn, c.activation_dropout)?,
                final_layer_norm: LayerNorm::new(&l.pp("final_layer_norm"), d)?,
                dropout: l.dropout("dropout", c.dropout)?,
            });
        }
        let output = if c.share_all_embeddings || c.share_decoder_input_output_embed {
            decoder_embed.clone()
        } else {
            dec.pp("output_projection").normal("weight", (c.tgt_vocab, d), (d as f64).powf(-0.5))?
        };
        let (encoder_norm, decoder_norm) = if c.normalize_before {
            (Some(LayerNorm::new(&enc.pp("layer_norm"), d)?), Some(LayerNorm::new(&dec.pp("layer_norm"), d)?))
        } else {
            (None, None)
        };
        Ok(Self {
            encoder_norm,
            decoder_norm,
            encoder_dropout: enc.dropout("dropout", c.dropout)?,
            decoder_dropout: dec.dropout("dropout", c.dropout)?,
            config: c,
            encoder_embed,
            decoder_embed,
            output,
            positions,
            encoder_layers,
            decoder_layers,
        })
    }

    pub fn config(&self) -> &TransformerConfig {
        &self.config
    }

    /// `sqrt(d) E[tokens] + P[positions]` for (B, T) token ids; positions counted over the
    /// non-padding tokens from `first` (the decoder's incremental steps start later).
    fn embed(&self, table: &Tensor, tokens: &[Vec<u32>], first: usize) -> Result<Tensor> {
        let (b, t) = (tokens.len(), tokens.first().map_or(0, Vec::len));
        let pad = self.config.pad;
        let d = self.config.d_model;
        let mut ids = Vec::with_capacity(b * t);
        let mut pos = Vec::with_capacity(b * t);
        for row in tokens {
            let mut real = first;
            for &id in row {
                ids.push(id);
                if id == pad {
                    pos.push(pad);
                } else {
                    real += 1;
                    if real > self.config.max_positions {
                        candle::bail!("a sequence of more than {} tokens (max_positions)", self.config.max_positions)
                    }
                    pos.push(pad + real as u32);
                }
            }
        }
        let device = table.device();
        let ids = Tensor::from_vec(ids, b * t, device)?;
        let pos = Tensor::from_vec(pos, b * t, device)?;
        let x = (table.index_select(&ids, 0)? * (d as f64).sqrt())?;
        (x + self.positions.index_select(&pos, 0)?)?.reshape((b, t, d))
    }

    /// The additive mask of padded keys, (B, 1, 1, S).
    fn padding_mask(&self, tokens: &[Vec<u32>], device: &Device) -> Result<Tensor> {
        let (b, s) = (tokens.len(), tokens.first().map_or(0, Vec::len));
        let values: Vec<f32> = tokens
            .iter()
            .flat_map(|row| row.iter().map(|&id| if id == self.config.pad { -1e9 } else { 0.0 }))
            .collect();
        Tensor::from_vec(values, (b, 1, 1, s), device)?.to_dtype(self.positions.dtype())
    }

    /// Encodes right-padded source ids (B rows of equal length).
    pub fn encode(&self, src: &[Vec<u32>], train: bool) -> Result<Encoded> {
        let device = self.positions.device();
        let mask = self.padding_mask(src, device)?;
        let mut x = self.encoder_dropout.forward_t(&self.embed(&self.encoder_embed, src, 0)?, train)?;
        let pre = self.config.normalize_before;
        for l in &self.encoder_layers {
            x = residual(&x, &l.self_attn_layer_norm, pre, &l.dropout, train, |h| {
                let (k, v) = l.self_attn.keys_values(h)?;
                l.self_attn.attend(h, &k, &v, Some(&mask), train)
            })?;
            x = residual(&x, &l.final_layer_norm, pre, &l.dropout, train, |h| l.ffn.forward_t(h, train))?;
        }
        if let Some(norm) = &self.encoder_norm {
            x = norm.forward(&x)?;
        }
        Ok(Encoded { out: x, mask })
    }

    /// The decoder's logits (B, T, V) for the previous target tokens (B, T), right-padded
    /// (fairseq's `prev_output_tokens`: `</s>` then the target shifted).
    pub fn decode(&self, encoded: &Encoded, prev: &[Vec<u32>], train: bool) -> Result<Tensor> {
        let device = self.positions.device();
        let (b, t) = (prev.len(), prev.first().map_or(0, Vec::len));
        let mut mask = vec![0f32; b * t * t];
        for (r, row) in prev.iter().enumerate() {
            for i in 0..t {
                for j in 0..t {
                    if j > i || row[j] == self.config.pad {
                        mask[(r * t + i) * t + j] = -1e9;
                    }
                }
            }
        }
        let mask = Tensor::from_vec(mask, (b, 1, t, t), device)?.to_dtype(self.positions.dtype())?;
        let mut x = self.decoder_dropout.forward_t(&self.embed(&self.decoder_embed, prev, 0)?, train)?;
        let pre = self.config.normalize_before;
        for l in &self.decoder_layers {
            x = residual(&x, &l.self_attn_layer_norm, pre, &l.dropout, train, |h| {
                let (k, v) = l.self_attn.keys_values(h)?;
                l.self_attn.attend(h, &k, &v, Some(&mask), train)
            })?;
            x = residual(&x, &l.encoder_attn_layer_norm, pre, &l.dropout, train, |h| {
                let (k, v) = l.encoder_attn.keys_values(&encoded.out)?;
                l.encoder_attn.attend(h, &k, &v, Some(&encoded.mask), train)
            })?;
            x = residual(&x, &l.final_layer_norm, pre, &l.dropout, train, |h| l.ffn.forward_t(h, train))?;
        }
        self.project(&x)
    }

    fn project(&self, x: &Tensor) -> Result<Tensor> {
        let normed;
        let x = match &self.decoder_norm {
            Some(norm) => {
                normed = norm.forward(x)?;
                &normed
            }
            None => x,
        };
        let dims = x.dims().to_vec();
        let d = self.config.d_model;
        let rows = x.elem_count() / d;
        let logits = x.reshape((rows, d))?.matmul(&self.output.t()?)?;
        let mut out = dims;
        *out.last_mut().expect("rank 3") = self.config.tgt_vocab;
        logits.reshape(out)
    }

    /// Logits of the whole model for a batch: (B, T, V).
    pub fn forward(&self, src: &[Vec<u32>], prev: &[Vec<u32>], train: bool) -> Result<Tensor> {
        let encoded = self.encode(src, train)?;
        self.decode(&encoded, prev, train)
    }

    /// An empty cache for incremental decoding over `encoded` (its encoder-attention keys and
    /// values computed once).
    pub fn start_decoding(&self, encoded: &Encoded) -> Result<DecoderCache> {
        let layers = self
            .decoder_layers
            .iter()
            .map(|l| Ok(LayerCache { self_kv: None, memory_kv: l.encoder_attn.keys_values(&encoded.out)? }))
            .collect::<Result<Vec<_>>>()?;
        Ok(DecoderCache { layers, steps: 0 })
    }

    /// One step of incremental decoding (evaluation mode): the log-probabilities (N, V) of the
    /// next token after `tokens` (N: one token each, none padding), the cache extended. The
    /// same as the last position of [`Transformer::decode`] over the whole prefix.
    pub fn decode_step(&self, encoded: &Encoded, cache: &mut DecoderCache, tokens: &[u32]) -> Result<Tensor> {
        let rows: Vec<Vec<u32>> = tokens.iter().map(|&t| vec![t]).collect();
        let mut x = self.embed(&self.decoder_embed, &rows, cache.steps)?;
        let pre = self.config.normalize_before;
        for (l, c) in self.decoder_layers.iter().zip(cache.layers.iter_mut()) {
            x = residual(&x, &l.self_attn_layer_norm, pre, &l.dropout, false, |h| {
                let (k, v) = l.self_attn.keys_values(h)?;
                let (k, v) = match &c.self_kv {
                    Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
                    None => (k, v),
                };
                let a = l.self_attn.attend(h, &k, &v, None, false)?;
                c.self_kv = Some((k, v));
                Ok(a)
            })?;
            let (mk, mv) = &c.memory_kv;
            x = residual(&x, &l.encoder_attn_layer_norm, pre, &l.dropout, false, |h| {
                l.encoder_attn.attend(h, mk, mv, Some(&encoded.mask), false)
            })?;
            x = residual(&x, &l.final_layer_norm, pre, &l.dropout, false, |h| l.ffn.forward_t(h, false))?;
        }
        cache.steps += 1;
        let logits = self.project(&x)?.i((.., 0, ..))?;
        candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)
    }
}
