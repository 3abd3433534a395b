//! The translation family: BLEU against sacreBLEU's fixtures, the BPE tokenizer and its cache,
//! bad corpora, and a trimmed end-to-end run of the task.

use std::path::Path;

use serde_json::Value;
use tasks::task::translation::bleu::{corpus_bleu, tokenize_13a};

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/translation").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// Made by `scripts/bleu/make_fixtures.py` with the sacrebleu package.
#[test]
fn bleu_equals_sacrebleu_on_its_fixtures() {
    let f = fixture("sacrebleu.json");
    for t in f["tokenized"].as_array().unwrap() {
        assert_eq!(tokenize_13a(t["line"].as_str().unwrap().trim_end()), t["tokens"].as_str().unwrap());
    }
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let bleu = corpus_bleu(&strings(&case["hypotheses"]), &strings(&case["references"])).unwrap();
        let ints = |k: &str| case[k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect::<Vec<_>>();
        assert_eq!(bleu.stats.correct.to_vec(), ints("counts"), "{name}: matches");
        assert_eq!(bleu.stats.total.to_vec(), ints("totals"), "{name}: n-grams");
        assert_eq!(bleu.stats.hyp_len, case["sys_len"].as_u64().unwrap(), "{name}");
        assert_eq!(bleu.stats.ref_len, case["ref_len"].as_u64().unwrap(), "{name}");
        let expected = case["score"].as_f64().unwrap();
        assert!((bleu.score - expected).abs() < 1e-9, "{name}: BLEU {} where sacreBLEU says {expected}", bleu.score);
        assert!(case["signature"].as_str().unwrap().starts_with(tasks::task::translation::bleu::SIGNATURE));
    }
}
