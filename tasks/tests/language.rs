//! The language-model tasks (`ptb-lstm`, `wikitext2-lstm`): on a small corpus the test writes in
//! PTB's layout (always): training from a data dir with Adam and SGD with NT-ASGD, a checkpoint
//! round trip, and the bad inputs (a missing or empty split, bptt longer than the data, words
//! outside the vocabulary); and on the real PTB and WikiText-2 when `../shared/data` has them
//! (the corpus sizes AWD-LSTM's `data.py` gives).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use candle::Device;
use optimizers::{HyperValue, OptimizerSpec};
use tasks::data::{DataRecord, DataSettings, TextData};
use tasks::task::language::{corpus, UNK};
use tasks::task::{self, Task, TaskContext};

/// A tiny "language": sentences of a small grammar, deterministic, with `<unk>` in the vocabulary.
fn sentences(n: usize, seed: usize) -> String {
    let subjects = ["the cat", "a dog", "the bird", "my friend", "the <unk>"];
    let verbs = ["sees", "likes", "eats", "finds"];
    let objects = ["the fish", "a ball", "the tree", "some food", "the house"];
    (0..n)
        .map(|i| {
            let k = i * 7 + seed * 3;
            format!(" {} {} {} \n", subjects[k % 5], verbs[(k / 5) % 4], objects[(k / 3) % 5])
        })
        .collect()
}

fn write_ptb(dir: &Path, train: &str, valid: Option<&str>, test: &str) {
    let ptb = dir.join("ptb");
    std::fs::create_dir_all(&ptb).unwrap();
    std::fs::write(ptb.join("ptb.train.txt"), train).unwrap();
    if let Some(valid) = valid {
        std::fs::write(ptb.join("ptb.valid.txt"), valid).unwrap();
    }
    std::fs::write(ptb.join("ptb.test.txt"), test).unwrap();
}

fn settings(dir: &Path) -> DataSettings {
    DataSettings { data_dirs: vec![dir.to_path_buf()], offline: true, ..common::test_data_settings() }
}

/// Options of a tiny model on the tiny corpus.
fn tiny(extra: &[(&str, HyperValue)]) -> BTreeMap<String, HyperValue> {
    let mut options: BTreeMap<String, HyperValue> = [
        ("layers", HyperValue::Int(2)),
        ("emsize", HyperValue::Int(8)),
        ("nhid", HyperValue::Int(12)),
        ("bptt", HyperValue::Int(8)),
        ("eval_batch_size", HyperValue::Int(2)),
        ("test_batch_size", HyperValue::Int(2)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        options.insert(k.to_string(), v.clone());
    }
    options
}

/// Builds `ptb-lstm` on the data in `dir` (Adam, lr 1e-2, batch 4).
fn build(dir: &Path, options: &BTreeMap<String, HyperValue>) -> anyhow::Result<Box<dyn Task>> {
    let info = task::find("ptb-lstm").expect("the task exists");
    let options = info.resolve_options(options).map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))?;
    let optimizer = OptimizerSpec::new("adam").with("lr", 1e-2).resolve()?;
    let roles = BTreeMap::new();
    let data = settings(dir);
    let ctx = TaskContext {
        info,
        options: &options,
        optimizer: &optimizer,
        roles: &roles,
        clip_norm: Some(0.25),
        batch_size: Some(4),
        seed: 3,
        device: &Device::Cpu,
        data: &data,
    };
    (info.build)(&ctx)
}

fn error_of(result: anyhow::Result<Box<dyn Task>>) -> String {
    match result {
        Ok(_) => panic!("the task was built"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_small_corpus_trains_with_adam_and_nt_asgd_from_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    write_ptb(dir.path(), &sentences(300, 0), Some(&sentences(40, 1)), &sentences(40, 2));
    let config = common::write_config(
        dir.path(),
        "lm.toml",
        r#"
name = "tiny-lm"
data_dir = "."
[[tasks]]
name = "ptb-lstm"
epochs = 3
batch_size = 4
options = { layers = 2, emsize = 8, nhid = 12, bptt = 8, eval_batch_size = 2, test_batch_size = 2, asgd = true, nonmono = 1 }
[[optimizers]]
name = "adam"
lr = 1e-2
[[optimizers]]
name = "sgd"
lr = 10.0
"#,
    );
    let out = dir.path().join("out");
    let plan = common::load(&config, &out);
    let summary = common::sweep_with(&plan, 1, settings(dir.path()));
    assert_eq!(summary.completed, 2, "{summary:?}");
    for r in common::results(&out) {
        assert_eq!(r.metrics[0].name, "test_ppl");
        let test = r.final_metrics["test_ppl"].unwrap();
        let valid = r.final_metrics["valid_ppl"].unwrap();
        // 19 words: a model that learned nothing is near 19; the grammar allows far less (SGD
        // with clipping at 0.25 learns more slowly in three short epochs).
        let bound = if r.id.contains("adam") { 12.0 } else { 17.0 };
        assert!(test.is_finite() && test < bound && valid < bound, "{}: test {test}, valid {valid}", r.id);
        assert_eq!(r.history.metrics["test_ppl"].len(), 3, "{}: one evaluation per epoch", r.id);
    }
}

#[test]
fn a_restored_checkpoint_continues_exactly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    write_ptb(dir.path(), &sentences(200, 0), Some(&sentences(30, 1)), &sentences(30, 2));
    let options = tiny(&[("dropoute", HyperValue::Float(0.2)), ("wdrop", HyperValue::Float(0.3))]);
    let mut a = build(dir.path(), &options)?;
    for step in 1..=5 {
        a.train_step(step)?;
    }
    let saved = a.state(5)?;
    let mut b = build(dir.path(), &options)?;
    b.restore(&saved, 5)?;
    // The runner saves and restores the optimizers itself.
    let optimizer = a.optimizers()[0].1.state()?;
    b.optimizers()[0].1.load_state(&optimizer)?;
    // Past the end of the first pass (the streams are 2,000 / 4 tokens): the position, the
    // state, the generators and the dropout masks all continue.
    for step in 6..=40 {
        let (la, lb) = (a.train_step(step)?, b.train_step(step)?);
        assert_eq!(la[0].1.to_bits(), lb[0].1.to_bits(), "step {step}: {la:?} vs {lb:?}");
    }
    assert_eq!(a.evaluate()?, b.evaluate()?);
    Ok(())
}

#[test]
fn bad_inputs_get_messages_that_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    // No valid split.
    write_ptb(dir.path(), &sentences(100, 0), None, &sentences(10, 2));
    let e = error_of(build(dir.path(), &tiny(&[])));
    assert!(e.contains("ptb.valid.txt"), "{e}");
    // An empty test split.
    write_ptb(dir.path(), &sentences(100, 0), Some(&sentences(10, 1)), "\n\n");
    let e = error_of(build(dir.path(), &tiny(&[])));
    assert!(e.contains("`test` split has no words"), "{e}");
    // bptt longer than the training streams: 100 lines of 5 words and <eos> in 4 streams.
    write_ptb(dir.path(), &sentences(100, 0), Some(&sentences(10, 1)), &sentences(10, 2));
    let e = error_of(build(dir.path(), &tiny(&[("bptt", HyperValue::Int(500))])));
    assert!(e.contains("bptt = 500 is longer than the training streams") && e.contains("150 rows"), "{e}");
    // Evaluation streams that leave fewer than two rows.
    let e = error_of(build(dir.path(), &tiny(&[("test_batch_size", HyperValue::Int(100))])));
    assert!(e.contains("test_batch_size"), "{e}");
    // Out-of-range options are refused at plan time, by name.
    let info = task::find("ptb-lstm").unwrap();
    let given = BTreeMap::from([("layers".to_string(), HyperValue::Int(4))]);
    assert_eq!(info.resolve_options(&given).unwrap_err().0, "layers");
}

fn text(train: &str, valid: &str, test: &str) -> TextData {
    let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    TextData {
        name: "toy".into(),
        source: "memory".into(),
        record: DataRecord::in_memory("toy"),
        splits: vec![("train".into(), lines(train)), ("valid".into(), lines(valid)), ("test".into(), lines(test))],
    }
}

#[test]
fn the_corpus_is_awds_and_unknown_words_map_to_unk() -> anyhow::Result<()> {
    let c = corpus(&text("b a <unk>\n\na c\n", "a zz c\n", "yy b\nqq\n"), 0)?;
    // Training words in order of appearance, <eos> after every line (the empty one too).
    assert_eq!(c.words, ["b", "a", UNK, "<eos>", "c"]);
    assert_eq!(c.train, [0, 1, 2, 3, 3, 1, 4, 3]);
    assert_eq!(c.valid, [1, 2, 4, 3]);
    assert_eq!(c.test, [2, 0, 3, 2, 3]);
    assert_eq!(c.unknown, [("valid".to_string(), 1), ("test".to_string(), 2)]);
    let e = corpus(&text("b a\n", "a zz\n", "b\n"), 0).unwrap_err().to_string();
    assert!(e.contains("`zz`") && e.contains("no `<unk>`") && e.contains("valid"), "{e}");
    assert_eq!(corpus(&text("b a <unk>\n", "a\n", "b\n"), 2)?.train, [0, 1]);
    Ok(())
}

/// The real corpora: AWD-LSTM's `data.py` gives PTB 10,000 words and 929,589 / 73,760 / 82,430
/// tokens, WikiText-2 33,278 words and 2,088,628 / 217,646 / 245,569 tokens.
#[test]
fn the_real_ptb_and_wikitext2_have_awds_sizes() -> anyhow::Result<()> {
    let shared = common::root().join("../shared/data");
    for (name, task, vocab, sizes) in [
        ("ptb", "ptb-lstm", 10_000, [929_589, 73_760, 82_430]),
        ("wikitext-2", "wikitext2-lstm", 33_278, [2_088_628, 217_646, 245_569]),
    ] {
        if !shared.join(name).exists() {
            println!("skipped: no {name} in {}", shared.display());
            continue;
        }
        let data = DataSettings { data_dirs: vec![shared.clone()], offline: true, ..common::test_data_settings() };
        let c = corpus(&tasks::data::load_text(name, &data)?, 0)?;
        assert_eq!(c.words.len(), vocab, "{name}");
        assert_eq!([c.train.len(), c.valid.len(), c.test.len()], sizes, "{name}");
        assert!(c.unknown.iter().all(|(_, n)| *n == 0), "{name}: {:?}", c.unknown);
        // The parameter count `optbench plan` shows uses this vocabulary size.
        let info = task::find(task).unwrap();
        let options = info.resolve_options(&BTreeMap::new()).unwrap();
        let optimizer = OptimizerSpec::new("sgd").with("lr", 30.0).resolve()?;
        let roles = BTreeMap::new();
        let ctx = TaskContext {
            info,
            options: &options,
            optimizer: &optimizer,
            roles: &roles,
            clip_norm: None,
            batch_size: None,
            seed: 0,
            device: &Device::Cpu,
            data: &data,
        };
        let count = (info.parameters.as_ref().unwrap())(&ctx)?;
        assert_eq!(count, 24_221_600 + (vocab - 10_000) * 401, "{task}: 3 layers, tied");
    }
    Ok(())
}
