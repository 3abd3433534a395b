//! A joint byte-pair-encoding vocabulary (Sennrich et al., 2016, as `subword-nmt` learns it:
//! the most frequent adjacent pair of symbols merged, over the training split's words weighted
//! by frequency, until the vocabulary has its size), learned on both sides of the training
//! split, cached on disk, and an exactly reversible pre-tokenization so that decoded output is
//! plain text.
//!
//! Pre-tokenization: the text is split on whitespace into words; each word into runs of letters
//! and digits and single other characters; the first piece of each word carries the marker
//! `▁` (U+2581, as SentencePiece). Decoding joins the pieces and turns each marker into a space,
//! so `decode(encode(s))` is `s` with its whitespace collapsed to single spaces (no Moses
//! tokenizer is needed, and none has to be undone: BLEU is computed on that plain text).
//!
//! Why not the `tokenizers` crate: its BPE needs a regex engine (onig, a C library, or
//! fancy-regex) and pulls rayon, esaxx, spm_precompiled and serde machinery that takes minutes
//! to build on this project's 2-core machines, for a learner and encoder of about 200 lines.
//!
//! The vocabulary's ids follow fairseq's dictionary: `<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3,
//! then the training split's characters (sorted) and the merges in the order learned.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const BOS: u32 = 0;
pub const PAD: u32 = 1;
pub const EOS: u32 = 2;
pub const UNK: u32 = 3;
const SPECIALS: [&str; 4] = ["<s>", "<pad>", "</s>", "<unk>"];

/// The word marker.
pub const MARKER: char = '\u{2581}';

/// Bumped when the learner or the file format changes: older caches are then learned again.
const VERSION: u32 = 1;

/// Splits a line into pre-tokens (see the module documentation).
pub fn pretokenize(line: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    for word in line.split_whitespace() {
        let mut first = true;
        let mut current = String::new();
        let flush = |current: &mut String, first: &mut bool, pieces: &mut Vec<String>| {
            if !current.is_empty() {
                let piece = if *first { format!("{MARKER}{current}") } else { current.clone() };
                pieces.push(piece);
                *first = false;
                current.clear();
            }
        };
        for c in word.chars() {
            if c.is_alphanumeric() {
                current.push(c);
            } else {
                flush(&mut current, &mut first, &mut pieces);
                current.push(c);
                flush(&mut current, &mut first, &mut pieces);
            }
        }
        flush(&mut current, &mut first, &mut pieces);
    }
    pieces
}

/// Why a line cannot be used: a character the scheme cannot round-trip.
pub fn check_line(line: &str) -> Result<(), String> {
    if line.trim().is_empty() {
        return Err("the line is empty".into());
    }
    if let Some(c) = line.chars().find(|&c| c == MARKER || (c.is_control() && !c.is_whitespace())) {
        return Err(format!(
            "it holds the character U+{:04X}, which the tokenizer cannot represent (the word marker ▁ or a \
             control character); remove it from the corpus",
            c as u32
        ));
    }
    Ok(())
}

/// A learned vocabulary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bpe {
    version: u32,
    /// The SHA-256 of the corpus it was learned on (see [`corpus_hash`]).
    pub corpus_sha256: String,
    /// The requested size.
    pub vocab_size: usize,
    /// Every token by id (the specials first).
    pub tokens: Vec<String>,
    /// The merges by rank, as (left id, right id).
    merges: Vec<(u32, u32)>,
    #[serde(skip)]
    index: HashMap<String, u32>,
    #[serde(skip)]
    ranks: HashMap<(u32, u32), (usize, u32)>,
}

/// The SHA-256 of a corpus's lines (each followed by a newline).
pub fn corpus_hash<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for line in lines {
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    format!("{:x}", h.finalize())
}

impl Bpe {
    /// Learns a vocabulary of (at most) `vocab_size` tokens on `lines`.
    pub fn learn<'a>(lines: impl Iterator<Item = &'a str> + Clone, vocab_size: usize) -> Self {
        let corpus_sha256 = corpus_hash(lines.clone());
        let mut freq: HashMap<String, u64> = HashMap::new();
        for line in lines {
            for piece in pretokenize(line) {
                *freq.entry(piece).or_insert(0) += 1;
            }
        }
        let mut words: Vec<(String, u64)> = freq.into_iter().collect();
        words.sort();
        let chars: std::collections::BTreeSet<char> = words.iter().flat_map(|(w, _)| w.chars()).collect();
        let mut tokens: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
        tokens.extend(chars.iter().map(|c| c.to_string()));
        let char_id: HashMap<char, u32> = chars.iter().enumerate().map(|(i, &c)| (c, (i + 4) as u32)).collect();
        let mut symbols: Vec<Vec<u32>> = words.iter().map(|(w, _)| w.chars().map(|c| char_id[&c]).collect()).collect();
        let counts: Vec<i64> = words.iter().map(|(_, f)| *f as i64).collect();
        let mut pairs: HashMap<(u32, u32), i64> = HashMap::new();
        let mut places: HashMap<(u32, u32), HashSet<usize>> = HashMap::new();
        for (i, s) in symbols.iter().enumerate() {
            for w in s.windows(2) {
                *pairs.entry((w[0], w[1])).or_insert(0) += counts[i];
                places.entry((w[0], w[1])).or_default().insert(i);
            }
        }
        // Ties go to the smallest pair of ids (a fixed order, so the same corpus gives the same
        // vocabulary on every machine).
        let mut heap: BinaryHeap<(i64, Reverse<(u32, u32)>)> = pairs.iter().map(|(&p, &c)| (c, Reverse(p))).collect();
        let mut merges = Vec::new();
        while tokens.len() < vocab_size {
            let Some((count, Reverse(pair))) = heap.pop() else { break };
            if pairs.get(&pair).copied() != Some(count) {
                continue; // stale
            }
            if count < 2 {
                break;
            }
            let new = tokens.len() as u32;
            tokens.push(format!("{}{}", tokens[pair.0 as usize], tokens[pair.1 as usize]));
            merges.push(pair);
            let mut changed: HashSet<(u32, u32)> = HashSet::new();
            let mut at: Vec<usize> = places.remove(&pair).unwrap_or_default().into_iter().collect();
            at.sort_unstable();
            for i in at {
                let old = &symbols[i];
                let merged = merge_pair(old, pair, new);
                if merged.len() == old.len() {
                    continue;
                }
                for w in old.windows(2) {
                    *pairs.get_mut(&(w[0], w[1])).expect("counted") -= counts[i];
                    changed.insert((w[0], w[1]));
                }
                for w in merged.windows(2) {
                    *pairs.entry((w[0], w[1])).or_insert(0) += counts[i];
                    places.entry((w[0], w[1])).or_default().insert(i);
                    changed.insert((w[0], w[1]));
                }
                symbols[i] = merged;
            }
            pairs.remove(&pair);
            for p in changed {
                if let Some(&c) = pairs.get(&p) {
                    if c > 0 {
                        heap.push((c, Reverse(p)));
                    }
                }
            }
        }
        Self::from_parts(corpus_sha256, vocab_size, tokens, merges)
    }

    fn from_parts(corpus_sha256: String, vocab_size: usize, tokens: Vec<String>, merges: Vec<(u32, u32)>) -> Self {
        let mut bpe = Self {
            version: VERSION,
            corpus_sha256,
            vocab_size,
            tokens,
            merges,
            index: HashMap::new(),
            ranks: HashMap::new(),
        };
        bpe.index_tokens();
        bpe
    }

    fn index_tokens(&mut self) {
        self.index = self.tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let first_merge = self.tokens.len() - self.merges.len();
        self.ranks = self.merges.iter().enumerate().map(|(r, &p)| (p, (r, (first_merge + r) as u32))).collect();
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The ids of one pre-token (characters unseen in training: `<unk>`).
    fn encode_piece(&self, piece: &str) -> Vec<u32> {
        let mut s: Vec<u32> =
            piece.chars().map(|c| self.index.get(c.to_string().as_str()).copied().unwrap_or(UNK)).collect();
        loop {
            let best = s
                .windows(2)
                .enumerate()
                .filter_map(|(i, w)| self.ranks.get(&(w[0], w[1])).map(|&(rank, id)| (rank, i, id)))
                .min();
            let Some((_, i, id)) = best else { break };
            s[i] = id;
            s.remove(i + 1);
        }
        s
    }

    /// The ids of a line (no `</s>`), memoizing pieces in `cache`.
    pub fn encode(&self, line: &str, cache: &mut HashMap<String, Vec<u32>>) -> Vec<u32> {
        let mut ids = Vec::new();
        for piece in pretokenize(line) {
            if let Some(known) = cache.get(&piece) {
                ids.extend_from_slice(known);
            } else {
                let encoded = self.encode_piece(&piece);
                ids.extend_from_slice(&encoded);
                cache.insert(piece, encoded);
            }
        }
        ids
    }

    /// The plain text of ids (specials other than `<unk>` left out; `</s>` ends it).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut text = String::new();
        for &id in ids {
            match id {
                EOS => break,
                BOS | PAD => {}
                _ => text.push_str(self.tokens.get(id as usize).map_or("<unk>", String::as_str)),
            }
        }
        text.replace(MARKER, " ").trim().to_string()
    }

    /// Reads a cached vocabulary; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, String> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read the BPE cache {}: {e}", path.display())),
        };
        let mut bpe: Bpe = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the BPE cache {} is not a vocabulary ({e})", path.display()))?;
        let valid = bpe.version == VERSION
            && bpe.tokens.len() >= SPECIALS.len() + bpe.merges.len()
            && bpe.merges.iter().all(|&(a, b)| (a as usize) < bpe.tokens.len() && (b as usize) < bpe.tokens.len());
        if !valid {
            return Err(format!("the BPE cache {} is of another version or inconsistent", path.display()));
        }
        bpe.index_tokens();
        Ok(Some(bpe))
    }

    /// Writes the vocabulary atomically (a temporary file, then a rename).
    pub fn store(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::util::atomic::write_atomically(path, &bytes)
    }
}

/// `s` with every occurrence of `pair` (left to right) replaced by `new`.
fn merge_pair(s: &[u32], pair: (u32, u32), new: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if i + 1 < s.len() && (s[i], s[i + 1]) == pair {
            out.push(new);
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// Where the vocabulary of a corpus is cached: `<cache>/bpe/<data set>-<size>-<hash>.json`.
pub fn cache_path(cache_root: &Path, dataset: &str, vocab_size: usize, corpus_sha256: &str) -> PathBuf {
    cache_root.join("bpe").join(format!("{dataset}-{vocab_size}-{}.json", &corpus_sha256[..16]))
}

/// The vocabulary of `lines` of size `vocab_size`: from the cache when it holds the one for
/// this corpus, else learned and stored (a cache that cannot be written only warns).
pub fn cached<'a>(
    cache_root: &Path,
    dataset: &str,
    lines: impl Iterator<Item = &'a str> + Clone,
    vocab_size: usize,
) -> Bpe {
    let hash = corpus_hash(lines.clone());
    let path = cache_path(cache_root, dataset, vocab_size, &hash);
    match Bpe::load(&path) {
        Ok(Some(bpe)) if bpe.corpus_sha256 == hash && bpe.vocab_size == vocab_size => return bpe,
        Ok(Some(_)) => eprintln!("the BPE cache {} is of another corpus; learning it again", path.display()),
        Ok(None) => {}
        Err(e) => eprintln!("{e}; learning it again"),
    }
    let bpe = Bpe::learn(lines, vocab_size);
    if let Err(e) = bpe.store(&path) {
        eprintln!("warning: could not store the BPE vocabulary {}: {e}", path.display());
    }
    bpe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretokens_mark_words_and_split_punctuation() {
        assert_eq!(pretokenize("Two young, White  males."), ["▁Two", "▁young", ",", "▁White", "▁males", "."]);
        assert_eq!(pretokenize("\"Don't\""), ["▁\"", "Don", "'", "t", "\""]);
    }

    #[test]
    fn decoding_inverts_encoding_up_to_whitespace() {
        let corpus = ["a man in a blue shirt.", "a man, a plan; a canal: Panama!", "Ünïcödé 1,000.50 \"x\""];
        let bpe = Bpe::learn(corpus.iter().copied(), 40);
        assert!(bpe.len() <= 40 && bpe.len() > 30, "{}", bpe.len());
        let mut cache = HashMap::new();
        for line in corpus {
            let ids = bpe.encode(line, &mut cache);
            assert_eq!(bpe.decode(&ids), line);
        }
        assert_eq!(bpe.decode(&bpe.encode("a  man\tin", &mut cache)), "a man in");
        assert!(bpe.encode("a Ω", &mut cache).contains(&UNK));
        assert!(check_line("").is_err() && check_line("a ▁ b").is_err() && check_line("a\u{7}").is_err());
        assert!(check_line("fine, thanks").is_ok());
    }
}
