//! Every data set the papers use: where it lives on the Hugging Face Hub, its local folder and
//! format, and what it holds. Layouts and columns as in `../shared/spec/candle-notes.md`.

/// How a data set's local folder (`<data-dir>/<folder>/`) is laid out, besides parquet files at
/// their Hub paths, which every data set accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalFormat {
    /// `{train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    /// t10k-labels-idx1-ubyte}`, each raw or `.gz`.
    Idx,
    /// `cifar-10-batches-bin/`: `data_batch_{1..5}.bin`, `test_batch.bin`.
    Cifar10Binary,
    /// `cifar-100-binary/`: `train.bin`, `test.bin`.
    Cifar100Binary,
    /// `tiny-imagenet-200/`: `wnids.txt`, `train/<wnid>/images/*.JPEG`, `val/images/*.JPEG` with
    /// `val/val_annotations.txt`.
    TinyImageNet,
    /// One text file per split, `.gz` or not: the names are tried in order.
    TextFiles(&'static [(&'static str, &'static [&'static str])]),
    /// Aligned source / target files per split (`train.de` + `train.en`), `.gz` or not.
    Parallel(&'static [(&'static str, &'static str)]),
}

/// What a data set holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    Images {
        channels: usize,
        height: usize,
        width: usize,
        classes: usize,
        /// Names the image column has on the Hub.
        image_columns: &'static [&'static str],
        /// The label column, then any other label columns kept (CIFAR-100's coarse labels).
        label_columns: &'static [&'static str],
    },
    /// Lines of text (language modelling); the Hub column.
    Text { column: &'static str },
    /// Sentence pairs (translation).
    Pairs { source: &'static str, target: &'static str, jsonl: bool },
}

/// One data set.
#[derive(Clone, Copy, Debug)]
pub struct DatasetSpec {
    /// The suite's name, also the local folder unless `folder` says otherwise.
    pub name: &'static str,
    pub summary: &'static str,
    /// `owner/name` on the Hub.
    pub repo: &'static str,
    pub revision: &'static str,
    /// Each split with the pattern of its files at that revision (`*` matches anything).
    pub splits: &'static [(&'static str, &'static str)],
    pub folder: &'static str,
    pub local: LocalFormat,
    pub content: Content,
    /// About how much the Hub files weigh.
    pub size: &'static str,
}

const PARQUET: &str = "refs/convert/parquet";

pub const DATASETS: &[DatasetSpec] = &[
    DatasetSpec {
        name: "mnist",
        summary: "MNIST handwritten digits, 60k/10k, 28x28 grey, 10 classes",
        repo: "ylecun/mnist",
        revision: PARQUET,
        splits: &[("train", "mnist/train/*.parquet"), ("test", "mnist/test/*.parquet")],
        folder: "mnist",
        local: LocalFormat::Idx,
        content: Content::Images {
            channels: 1,
            height: 28,
            width: 28,
            classes: 10,
            image_columns: &["image"],
            label_columns: &["label"],
        },
        size: "~18 MB",
    },
    DatasetSpec {
        name: "fashion-mnist",
        summary: "Fashion-MNIST clothing images, 60k/10k, 28x28 grey, 10 classes",
        repo: "zalando-datasets/fashion_mnist",
        revision: PARQUET,
        splits: &[("train", "fashion_mnist/train/*.parquet"), ("test", "fashion_mnist/test/*.parquet")],
        folder: "fashion-mnist",
        local: LocalFormat::Idx,
        content: Content::Images {
            channels: 1,
            height: 28,
            width: 28,
            classes: 10,
            image_columns: &["image"],
            label_columns: &["label"],
        },
        size: "~31 MB",
    },
    DatasetSpec {
        name: "cifar10",
        summary: "CIFAR-10, 50k/10k, 32x32 colour, 10 classes",
        repo: "uoft-cs/cifar10",
        revision: PARQUET,
        splits: &[("train", "plain_text/train/*.parquet"), ("test", "plain_text/test/*.parquet")],
        folder: "cifar-10-batches-bin",
        local: LocalFormat::Cifar10Binary,
        content: Content::Images {
            channels: 3,
            height: 32,
            width: 32,
            classes: 10,
            image_columns: &["img", "image"],
            label_columns: &["label"],
        },
        size: "~144 MB",
    },
    DatasetSpec {
        name: "cifar100",
        summary: "CIFAR-100, 50k/10k, 32x32 colour, 100 fine classes (20 coarse kept)",
        repo: "uoft-cs/cifar100",
        revision: PARQUET,
        splits: &[("train", "cifar100/train/*.parquet"), ("test", "cifar100/test/*.parquet")],
        folder: "cifar-100-binary",
        local: LocalFormat::Cifar100Binary,
        content: Content::Images {
            channels: 3,
            height: 32,
            width: 32,
            classes: 100,
            image_columns: &["img", "image"],
            label_columns: &["fine_label", "coarse_label"],
        },
        size: "~144 MB",
    },
    DatasetSpec {
        name: "tiny-imagenet",
        summary: "Tiny-ImageNet, 100k train / 10k validation, 64x64 colour, 200 classes",
        repo: "zh-plus/tiny-imagenet",
        revision: PARQUET,
        splits: &[("train", "*/train/*.parquet"), ("test", "*/valid/*.parquet")],
        folder: "tiny-imagenet-200",
        local: LocalFormat::TinyImageNet,
        content: Content::Images {
            channels: 3,
            height: 64,
            width: 64,
            classes: 200,
            image_columns: &["image"],
            label_columns: &["label"],
        },
        size: "~160 MB",
    },
    DatasetSpec {
        name: "multi30k",
        summary: "Multi30k task 1, English-German image descriptions, 29k/1014/1000 pairs",
        repo: "bentrevett/multi30k",
        revision: "main",
        splits: &[("train", "train.jsonl"), ("valid", "val.jsonl"), ("test", "test.jsonl")],
        folder: "multi30k",
        local: LocalFormat::Parallel(&[("train", "train"), ("valid", "val"), ("test", "test_2016_flickr")]),
        content: Content::Pairs { source: "de", target: "en", jsonl: true },
        size: "~5 MB",
    },
    DatasetSpec {
        name: "iwslt14",
        summary: "IWSLT'14 German-English TED talks",
        repo: "bbaaaa/iwslt14-de-en",
        revision: PARQUET,
        splits: &[("train", "*/train/*.parquet"), ("valid", "*/validation/*.parquet"), ("test", "*/test/*.parquet")],
        folder: "iwslt14",
        local: LocalFormat::Parallel(&[("train", "train"), ("valid", "valid"), ("test", "test")]),
        content: Content::Pairs { source: "de", target: "en", jsonl: false },
        size: "~20 MB",
    },
    DatasetSpec {
        name: "ptb",
        summary: "Penn Treebank, Mikolov's language-modelling version (10k words)",
        repo: "ptb-text-only/ptb_text_only",
        revision: PARQUET,
        splits: &[
            ("train", "penn_treebank/train/*.parquet"),
            ("valid", "penn_treebank/validation/*.parquet"),
            ("test", "penn_treebank/test/*.parquet"),
        ],
        folder: "ptb",
        local: LocalFormat::TextFiles(&[
            ("train", &["ptb.train.txt"]),
            ("valid", &["ptb.valid.txt"]),
            ("test", &["ptb.test.txt"]),
        ]),
        content: Content::Text { column: "sentence" },
        size: "~3 MB",
    },
    DatasetSpec {
        name: "wikitext-2",
        summary: "WikiText-2, tokenized (v1), as word language models use it",
        repo: "Salesforce/wikitext",
        revision: "main",
        splits: &[
            ("train", "wikitext-2-v1/train-*.parquet"),
            ("valid", "wikitext-2-v1/validation-*.parquet"),
            ("test", "wikitext-2-v1/test-*.parquet"),
        ],
        folder: "wikitext-2",
        local: LocalFormat::TextFiles(&[
            ("train", &["train.txt", "wiki.train.tokens"]),
            ("valid", &["valid.txt", "wiki.valid.tokens"]),
            ("test", &["test.txt", "wiki.test.tokens"]),
        ]),
        content: Content::Text { column: "text" },
        size: "~7 MB",
    },
];

/// The data set of that name.
pub fn find(name: &str) -> Option<&'static DatasetSpec> {
    DATASETS.iter().find(|d| d.name == name)
}

/// Every name, for error messages.
pub fn names() -> Vec<&'static str> {
    DATASETS.iter().map(|d| d.name).collect()
}

/// Glob match where `*` matches any run of characters (slashes included).
pub fn matches(pattern: &str, path: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == path;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !path.starts_with(first) || !path.ends_with(last) || path.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &path[first.len()..path.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("mnist/train/*.parquet", "mnist/train/0000.parquet"));
        assert!(!matches("mnist/train/*.parquet", "mnist/test/0000.parquet"));
        assert!(matches("*/valid/*.parquet", "default/valid/0001.parquet"));
        assert!(matches("train.jsonl", "train.jsonl") && !matches("train.jsonl", "xtrain.jsonl"));
        assert!(matches("wikitext-2-v1/train-*.parquet", "wikitext-2-v1/train-00000-of-00001.parquet"));
        assert!(!matches("a*b*c", "acb"));
    }

    #[test]
    fn names_are_unique_and_splits_named() {
        let mut names = names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DATASETS.len());
        for d in DATASETS {
            assert!(
                d.splits.iter().any(|(s, _)| *s == "train") && d.splits.iter().any(|(s, _)| *s == "test"),
                "{}",
                d.name
            );
        }
    }
}
