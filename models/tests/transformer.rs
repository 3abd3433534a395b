//! The Transformer: its parameters against the PyTorch definition
//! (`scripts/models/transformer_params.py`), a gradient for every variable, padding and
//! incremental decoding consistent with the full forward pass.

use candle::{DType, Device, IndexOp, Result, Tensor};
use models::transformer::{Transformer, TransformerConfig};
use models::{Params, SeededRng};
use serde_json::Value;

fn fixture() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transformer_params.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn config_of(v: &Value) -> TransformerConfig {
    let n = |k: &str| v[k].as_u64().unwrap() as usize;
    TransformerConfig {
        d_model: n("d"),
        ffn: n("ffn"),
        heads: if n("d") == 512 { 4 } else { 2 },
        encoder_layers: n("encoder_layers"),
        decoder_layers: n("decoder_layers"),
        share_all_embeddings: v["share_all"].as_bool().unwrap(),
        share_decoder_input_output_embed: v["share_io"].as_bool().unwrap(),
        normalize_before: v.get("pre_ln").and_then(Value::as_bool).unwrap_or(false),
        dropout: 0.1,
        attention_dropout: 0.1,
        activation_dropout: 0.1,
        ..TransformerConfig::iwslt_de_en(n("src_vocab"), n("tgt_vocab"))
    }
}

fn build(config: &TransformerConfig, seed: u64) -> Result<(Params, Transformer)> {
    let params = Params::new(SeededRng::new(seed), DType::F32, &Device::Cpu);
    let model = Transformer::new(&params.root(), config)?;
    Ok((params, model))
}

#[test]
fn parameters_equal_the_pytorch_definition() -> Result<()> {
    for (name, expected) in fixture().as_object().unwrap() {
        let config = config_of(&expected["config"]);
        let (params, _) = build(&config, 0)?;
        assert_eq!(params.count() as u64, expected["total"].as_u64().unwrap(), "{name}");
        let listed = expected["parameters"].as_array().unwrap();
        if !listed.is_empty() {
            let mut ours: Vec<(String, Vec<usize>)> =
                params.named_trainable().into_iter().map(|(n, v)| (n, v.dims().to_vec())).collect();
            let mut theirs: Vec<(String, Vec<usize>)> = listed
                .iter()
                .map(|p| {
                    let shape = p[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                    (p[0].as_str().unwrap().to_string(), shape)
                })
                .collect();
            ours.sort();
            theirs.sort();
            assert_eq!(ours, theirs, "{name}: names and shapes");
        }
    }
    let default = TransformerConfig::iwslt_de_en(8848, 6632);
    assert_eq!((default.d_model, default.ffn, default.heads, default.encoder_layers), (512, 1024, 4, 6));
    Ok(())
}

fn tiny(share_all: bool, pre: bool) -> TransformerConfig {
    TransformerConfig {
        d_model: 16,
        ffn: 24,
        heads: 2,
        encoder_layers: 2,
        decoder_layers: 2,
        share_all_embeddings: share_all,
        share_decoder_input_output_embed: false,
        normalize_before: pre,
        dropout: 0.1,
        attention_dropout: 0.1,
        activation_dropout: 0.1,
        ..TransformerConfig::iwslt_de_en(30, 30)
    }
}

const PAD: u32 = 1;

type Rows = Vec<Vec<u32>>;

fn batch() -> (Rows, Rows, Rows) {
    let src = vec![vec![5, 6, 7, 8, 2], vec![9, 10, 2, PAD, PAD]];
    let prev = vec![vec![2, 11, 12, 13], vec![2, 14, PAD, PAD]];
    let gold = vec![vec![11, 12, 13, 2], vec![14, 2, PAD, PAD]];
    (src, prev, gold)
}

#[test]
fn every_trainable_variable_gets_a_gradient() -> Result<()> {
    for (share_all, pre) in [(false, false), (true, false), (false, true)] {
        let (params, model) = build(&tiny(share_all, pre), 3)?;
        let (src, prev, gold) = batch();
        let logits = model.forward(&src, &prev, true)?;
        // Loss on the real target positions only.
        let flat: Vec<u32> = gold.concat();
        let weights: Vec<f32> = flat.iter().map(|&t| if t == PAD { 0.0 } else { 1.0 }).collect();
        let (b, t, v) = logits.dims3()?;
        let logp = candle_nn::ops::log_softmax(&logits.reshape((b * t, v))?, 1)?;
        let picked = logp.gather(&Tensor::from_vec(flat, (b * t, 1), &Device::Cpu)?, 1)?.squeeze(1)?;
        let loss = (picked * Tensor::from_vec(weights, b * t, &Device::Cpu)?)?.sum_all()?.neg()?;
        let grads = loss.backward()?;
        for (name, var) in params.named_trainable() {
            let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}"));
            let norm = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
            assert!(norm > 0.0 && norm.is_finite(), "{name}: gradient norm {norm}");
        }
    }
    Ok(())
}

fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
}

#[test]
fn padding_changes_nothing_and_incremental_decoding_equals_the_full_pass() -> Result<()> {
    for pre in [false, true] {
        padding_and_incremental(pre)?;
    }
    Ok(())
}

fn padding_and_incremental(pre: bool) -> Result<()> {
    let (_, model) = build(&tiny(false, pre), 4)?;
    let (src, prev, _) = batch();
    let batched = model.forward(&src, &prev, false)?;
    // The second sentence alone, without padding: the same logits at its real positions.
    let alone = model.forward(&[vec![9, 10, 2]], &[vec![2, 14]], false)?;
    assert!(max_diff(&batched.i((1, 0..2))?, &alone.i(0)?)? < 1e-5);
    // The padding row of each table is 0 and the positions of fairseq's table.
    let table = models::transformer::sinusoidal_table(4, 4, 1);
    assert_eq!(&table[4..8], &[0.0; 4]);
    assert_eq!(&table[0..4], &[0.0, 0.0, 1.0, 1.0]);
    assert!((table[8] - 2f32.sin()).abs() < 1e-7 && (table[9] - (2.0f32 * 1e-4).sin()).abs() < 1e-7);
    // Step by step with the cache: the log-softmax of the full pass at each position.
    let encoded = model.encode(&src[..1], false)?;
    let mut cache = model.start_decoding(&encoded)?;
    let full = candle_nn::ops::log_softmax(&model.decode(&encoded, &prev[..1], false)?, 2)?;
    for (t, &token) in prev[0].iter().enumerate() {
        let step = model.decode_step(&encoded, &mut cache, &[token])?;
        assert!(max_diff(&step.i(0)?, &full.i((0, t))?)? < 1e-5, "step {t}");
    }
    // Dropout is active in training and not in evaluation.
    let again = model.forward(&src, &prev, false)?;
    assert_eq!(max_diff(&again, &batched)?, 0.0);
    let train = model.forward(&src, &prev, true)?;
    assert!(max_diff(&train, &batched)? > 1e-4);
    Ok(())
}
