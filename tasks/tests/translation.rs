//! The translation family: BLEU against sacreBLEU's fixtures, the BPE tokenizer and its cache,
//! bad corpora, and a trimmed end-to-end run of the task.

mod common;

use std::fs;
use std::path::Path;

use common::hub::StandInHub;
use serde_json::Value;
use tasks::data::{self, DataSettings};
use tasks::task::translation::bleu::{corpus_bleu, tokenize_13a};
use tasks::task::translation::bpe::{self, Bpe};
use tasks::task::translation::{batch_by_size, check_corpus, Example};

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

/// A small De-En corpus, word by word from a fixed dictionary (a model can learn it).
fn corpus(n: usize, seed: usize) -> Vec<(String, String)> {
    let words = [
        ("ein", "a"),
        ("hund", "dog"),
        ("mann", "man"),
        ("läuft", "runs"),
        ("springt", "jumps"),
        ("rot", "red"),
        ("im", "in the"),
        ("park", "park"),
        ("schnell", "quickly"),
    ];
    (0..n)
        .map(|i| {
            let len = 3 + (i * 7 + seed) % 4;
            let picks: Vec<usize> = (0..len).map(|j| (i * 31 + j * 17 + seed * 5) % words.len()).collect();
            let de: Vec<&str> = picks.iter().map(|&p| words[p].0).collect();
            let en: Vec<&str> = picks.iter().map(|&p| words[p].1).collect();
            (format!("{}.", de.join(" ")), format!("{}.", en.join(" ")))
        })
        .collect()
}

/// Writes Multi30k's local layout (`train.de`, `train.en`, `val.*`, `test_2016_flickr.*`).
fn write_multi30k(root: &Path, splits: &[(&str, Vec<(String, String)>)]) {
    let dir = root.join("multi30k");
    fs::create_dir_all(&dir).unwrap();
    for (stem, pairs) in splits {
        let side =
            |f: fn(&(String, String)) -> &String| pairs.iter().map(|p| format!("{}\n", f(p))).collect::<String>();
        fs::write(dir.join(format!("{stem}.de")), side(|p| &p.0)).unwrap();
        fs::write(dir.join(format!("{stem}.en")), side(|p| &p.1)).unwrap();
    }
}

fn local(root: &Path) -> DataSettings {
    DataSettings { data_dirs: vec![root.to_path_buf()], offline: true, ..common::test_data_settings() }
}

#[test]
fn bad_corpora_are_one_message_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = corpus(5, 0);
    write_multi30k(dir.path(), &[("train", good.clone()), ("val", good.clone()), ("test_2016_flickr", good.clone())]);
    let data = data::load_pairs("multi30k", &local(dir.path())).unwrap();
    check_corpus(&data).unwrap();
    // Line counts that differ.
    fs::write(dir.path().join("multi30k/val.en"), "one\n").unwrap();
    let err = data::load_pairs("multi30k", &local(dir.path())).unwrap_err().to_string();
    assert!(err.contains("val.de has 5 lines, val.en has 1"), "{err}");
    // An empty line, and a character the tokenizer cannot represent.
    for (line, expected) in [("   ", "the line is empty"), ("a \u{7} b", "U+0007"), ("x ▁ y", "U+2581")] {
        let mut bad = good.clone();
        bad[3].1 = line.to_string();
        write_multi30k(dir.path(), &[("train", bad), ("val", good.clone())]);
        let data = data::load_pairs("multi30k", &local(dir.path())).unwrap();
        let err = check_corpus(&data).unwrap_err().to_string();
        assert!(err.contains("line 4 of train.en") && err.contains(expected), "{err}");
    }
    // No data set at all, offline.
    let empty = tempfile::tempdir().unwrap();
    let err = data::load_pairs("multi30k", &local(empty.path())).unwrap_err().to_string();
    assert!(err.contains("multi30k") && err.contains("--data-dir"), "{err}");
}

#[test]
fn the_bpe_vocabulary_is_cached_by_corpus_and_size_and_written_whole() {
    let root = tempfile::tempdir().unwrap();
    let pairs = corpus(50, 1);
    let lines: Vec<&str> = pairs.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]).collect();
    let learned = bpe::cached(root.path(), "multi30k", lines.iter().copied(), 60);
    assert!(learned.len() <= 60 && learned.len() > 30, "{}", learned.len());
    let path = bpe::cache_path(root.path(), "multi30k", 60, &bpe::corpus_hash(lines.iter().copied()));
    assert!(path.exists());
    let names: Vec<String> =
        fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
    assert_eq!(Bpe::load(&path).unwrap().unwrap(), learned);
    // Another size or corpus is another file.
    let other = bpe::cached(root.path(), "multi30k", lines.iter().copied(), 50);
    assert_ne!(other.tokens, learned.tokens);
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 2);
    // A damaged cache is learned again and rewritten.
    fs::write(&path, b"{ half").unwrap();
    assert!(Bpe::load(&path).is_err());
    assert_eq!(bpe::cached(root.path(), "multi30k", lines.iter().copied(), 60), learned);
    assert_eq!(Bpe::load(&path).unwrap().unwrap(), learned);
    // Every line decodes back to itself.
    let mut memo = std::collections::HashMap::new();
    for line in &lines {
        assert_eq!(learned.decode(&learned.encode(line, &mut memo)), *line);
    }
}

#[test]
fn batches_hold_at_most_max_tokens_as_fairseq_counts_them() {
    let lens = [3usize, 5, 5, 8, 2, 9, 1, 4];
    let examples: Vec<Example> =
        lens.iter().map(|&n| Example { src: vec![4; n], tgt: vec![4; n.max(2) - 1] }).collect();
    let order: Vec<usize> = (0..examples.len()).collect();
    let batches = batch_by_size(&examples, &order, 16);
    assert_eq!(batches, vec![vec![0, 1, 2], vec![3, 4], vec![5], vec![6, 7]]);
    let huge = batch_by_size(&examples, &order, 4);
    assert!(huge.iter().any(|b| b == &vec![5]), "an example longer than max_tokens is a batch alone");
    assert_eq!(huge.concat().len(), examples.len());
}

/// Writes an IWSLT'14 split in the Hub's schema: a `translation` struct {de, en}.
fn translation_parquet(path: &Path, pairs: &[(String, String)]) {
    use std::sync::Arc;

    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    let schema =
        "message schema { optional group translation { optional binary de (STRING); optional binary en (STRING); } }";
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let file = fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build())).unwrap();
    let mut group = writer.next_row_group().unwrap();
    for side in 0..2 {
        let mut col = group.next_column().unwrap().unwrap();
        let values: Vec<ByteArray> =
            pairs.iter().map(|p| ByteArray::from(if side == 0 { p.0.as_str() } else { p.1.as_str() })).collect();
        col.typed::<ByteArrayType>().write_batch(&values, Some(&vec![2; pairs.len()]), None).unwrap();
        col.close().unwrap();
    }
    group.close().unwrap();
    writer.close().unwrap();
}

#[test]
fn iwslt14_comes_from_the_hub_in_its_translation_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let splits = [("train", corpus(12, 2)), ("validation", corpus(3, 3)), ("test", corpus(4, 4))];
    for (split, pairs) in &splits {
        let path = tmp.path().join(format!("{split}.parquet"));
        translation_parquet(&path, pairs);
        files.push((format!("default/{split}/0000.parquet"), fs::read(&path).unwrap()));
    }
    let hub = StandInHub::start("bbaaaa/iwslt14-de-en", "refs/convert/parquet", files);
    let settings = DataSettings {
        hub_endpoint: Some(hub.url.clone()),
        hub_cache: Some(tmp.path().join("hf")),
        cache_dir: Some(tmp.path().join("optbench")),
        ..Default::default()
    };
    let data = data::load_pairs("iwslt14", &settings).unwrap();
    assert_eq!(
        data.splits.iter().map(|(s, p)| (s.as_str(), p.len())).collect::<Vec<_>>(),
        [("train", 12), ("valid", 3), ("test", 4)]
    );
    assert_eq!(data.splits[0].1, splits[0].1);
    assert!(data.source.contains("bbaaaa/iwslt14-de-en"), "{}", data.source);
    check_corpus(&data).unwrap();
}

/// The whole pipeline from the command line on a small corpus: training, validation loss,
/// beam search, BLEU and the hypotheses file beside the result.
#[test]
fn a_tiny_run_trains_decodes_and_writes_its_hypotheses() {
    let dir = tempfile::tempdir().unwrap();
    write_multi30k(
        dir.path(),
        &[("train", corpus(120, 5)), ("val", corpus(10, 6)), ("test_2016_flickr", corpus(7, 7))],
    );
    let config = dir.path().join("tiny.toml");
    fs::write(
        &config,
        r#"
name = "mt-tiny"
seeds = [0]
[[tasks]]
name = "multi30k-transformer"
steps = 60
eval_every = 30
schedule = { kind = "warmup-inverse-sqrt", warmup = 20, init_lr = 1e-7 }
options = { d_model = 32, ffn = 64, heads = 2, encoder_layers = 1, decoder_layers = 1, dropout = 0.1, bpe_vocab = 60, max_tokens = 200, share_all_embeddings = true, beam = 3, max_len_a = 1.5, max_len_b = 4 }
[[optimizers]]
name = "adam"
lr = 0.005
beta2 = 0.98
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let data_dir = dir.path().to_str().unwrap().to_string();
    let (ok, stdout, stderr) = common::optbench(
        &["run", config.to_str().unwrap(), "--data-dir", &data_dir, "--offline", "--out", out.to_str().unwrap(), "-q"],
        dir.path(),
    );
    assert!(ok, "{stdout}\n{stderr}");
    let runs = out.join("mt-tiny/multi30k-transformer/adam/beta2-0.98_lr-0.005");
    let result: Value = serde_json::from_str(&fs::read_to_string(runs.join("seed-0.json")).unwrap()).unwrap();
    let metrics = &result["history"];
    let bleu = metrics["test_bleu"].as_array().unwrap();
    let valid = metrics["valid_loss"].as_array().unwrap();
    assert_eq!((bleu.len(), valid.len()), (2, 2), "{metrics}");
    let (first, last) = (valid[0].as_f64().unwrap(), valid[1].as_f64().unwrap());
    assert!(last < first, "validation loss {first} -> {last}");
    let hyps = fs::read_to_string(runs.join("seed-0.test.hyp.txt")).unwrap();
    assert_eq!(hyps.lines().count(), 7, "{hyps}");
    // The file's BLEU is the result's.
    let refs: Vec<String> = corpus(7, 7).into_iter().map(|p| p.1).collect();
    let rescored = corpus_bleu(&hyps.lines().collect::<Vec<_>>(), &refs).unwrap().score;
    assert!((rescored - bleu[1].as_f64().unwrap()).abs() < 1e-9, "{rescored} vs {bleu:?}");
}
