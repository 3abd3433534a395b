//! Corpus BLEU exactly as sacreBLEU's default `BLEU()` computes it (sacreBLEU 2.x,
//! `github.com/mjpost/sacrebleu` at f615c72: `sacrebleu/metrics/bleu.py` `compute_bleu`,
//! `sacrebleu/tokenizers/tokenizer_13a.py`, `tokenizer_re.py`): the `13a` tokenizer (mteval-v13a),
//! case-sensitive, one reference per segment, n-grams up to 4, `exp` smoothing, in BLEU points
//! (0-100). Its signature: `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.x`.
//!
//! With `c_n` the clipped n-gram matches and `t_n` the hypothesis n-grams summed over the corpus,
//! `p_n = 100 c_n / t_n`, and where `c_n = 0` the exp smoothing `p_n = 100 / (2^k t_n)` for the
//! k-th such order; `BLEU = BP exp(mean_n ln p_n)`, `BP = exp(1 - r / h)` when the hypotheses'
//! length `h` is below the references' `r`, else 1. No match at all scores 0; an order with no
//! hypothesis n-gram stops the precisions there (the rest stay 0, so the score is 0).

use std::collections::HashMap;

/// The highest n-gram order.
pub const MAX_ORDER: usize = 4;

/// What sacreBLEU prints as the metric's signature.
pub const SIGNATURE: &str = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp";

/// Corpus statistics: clipped matches and hypothesis n-grams per order, and the lengths.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BleuStats {
    pub correct: [u64; MAX_ORDER],
    pub total: [u64; MAX_ORDER],
    pub hyp_len: u64,
    pub ref_len: u64,
}

/// A corpus score with its parts, as sacreBLEU's `BLEUScore`.
#[derive(Clone, Debug, PartialEq)]
pub struct Bleu {
    pub score: f64,
    pub precisions: [f64; MAX_ORDER],
    pub brevity_penalty: f64,
    pub stats: BleuStats,
}

/// Python's `str.isspace` (what `str.split()` and `rstrip()` split on): Unicode White_Space plus
/// the ASCII separators U+001C..U+001F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The first rule's class `[\{-\~\[-\` -\&\(-\+\:-\@\/]`: ASCII symbols and the space, not `'`,
/// `-`, `.`, `,`, letters or digits.
fn symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// `re.sub` of a two-character pattern `(a)(b)`: left to right, non-overlapping.
fn sub_pairs(line: &[char], hit: impl Fn(char, char) -> bool, out: impl Fn(char, char, &mut Vec<char>)) -> Vec<char> {
    let mut result = Vec::with_capacity(line.len() + 8);
    let mut i = 0;
    while i < line.len() {
        if i + 1 < line.len() && hit(line[i], line[i + 1]) {
            out(line[i], line[i + 1], &mut result);
            i += 2;
        } else {
            result.push(line[i]);
            i += 1;
        }
    }
    result
}

/// sacreBLEU's `13a` tokenization of one segment (already right-stripped), tokens joined by
/// single spaces.
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line.replace("<skipped>", "").replace("-\n", "").replace('\n', " ");
    if line.contains('&') {
        line = line.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    }
    let padded: Vec<char> = format!(" {line} ").chars().collect();
    let mut chars = Vec::with_capacity(padded.len() * 2);
    for c in padded {
        if symbol(c) {
            chars.extend([' ', c, ' ']);
        } else {
            chars.push(c);
        }
    }
    let digit = |c: char| c.is_ascii_digit();
    let period = |c: char| c == '.' || c == ',';
    let chars = sub_pairs(&chars, |a, b| !digit(a) && period(b), |a, b, o| o.extend([a, ' ', b, ' ']));
    let chars = sub_pairs(&chars, |a, b| period(a) && !digit(b), |a, b, o| o.extend([' ', a, ' ', b]));
    let chars = sub_pairs(&chars, |a, b| digit(a) && b == '-', |a, b, o| o.extend([a, ' ', b, ' ']));
    let text: String = chars.into_iter().collect();
    text.split(py_space).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(" ")
}

/// What sacreBLEU does to each hypothesis and reference before counting: `rstrip`, then 13a.
fn preprocess(sentence: &str) -> String {
    tokenize_13a(sentence.trim_end_matches(py_space))
}

fn ngrams(tokens: &[&str]) -> HashMap<Vec<String>, u64> {
    let mut counts = HashMap::new();
    for n in 1..=MAX_ORDER {
        for window in tokens.windows(n) {
            *counts.entry(window.iter().map(|t| t.to_string()).collect()).or_insert(0) += 1;
        }
    }
    counts
}

impl BleuStats {
    /// Adds one hypothesis and its reference.
    pub fn add(&mut self, hypothesis: &str, reference: &str) {
        let (hyp, reference) = (preprocess(hypothesis), preprocess(reference));
        let hyp: Vec<&str> = hyp.split(' ').filter(|t| !t.is_empty()).collect();
        let reference: Vec<&str> = reference.split(' ').filter(|t| !t.is_empty()).collect();
        self.hyp_len += hyp.len() as u64;
        self.ref_len += reference.len() as u64;
        let ref_counts = ngrams(&reference);
        for (gram, count) in ngrams(&hyp) {
            let n = gram.len() - 1;
            self.total[n] += count;
            self.correct[n] += count.min(ref_counts.get(&gram).copied().unwrap_or(0));
        }
    }

    /// The score of these statistics (sacreBLEU's `compute_bleu` with `smooth_method = "exp"`).
    pub fn score(&self) -> Bleu {
        let (h, r) = (self.hyp_len as f64, self.ref_len as f64);
        let brevity_penalty = if h < r {
            if h > 0.0 {
                (1.0 - r / h).exp()
            } else {
                0.0
            }
        } else {
            1.0
        };
        let mut precisions = [0.0; MAX_ORDER];
        if self.correct.iter().all(|&c| c == 0) {
            return Bleu { score: 0.0, precisions, brevity_penalty, stats: self.clone() };
        }
        let mut smooth = 1.0;
        for (n, precision) in precisions.iter_mut().enumerate() {
            if self.total[n] == 0 {
                break;
            }
            *precision = if self.correct[n] == 0 {
                smooth *= 2.0;
                100.0 / (smooth * self.total[n] as f64)
            } else {
                100.0 * self.correct[n] as f64 / self.total[n] as f64
            };
        }
        // sacreBLEU's `my_log(0)` is -9999999999.
        let log = |p: f64| if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
        let mean = precisions.iter().map(|&p| log(p)).sum::<f64>() / MAX_ORDER as f64;
        Bleu { score: brevity_penalty * mean.exp(), precisions, brevity_penalty, stats: self.clone() }
    }
}

/// Corpus BLEU of `hypotheses` against one reference each, in order.
pub fn corpus_bleu<H: AsRef<str>, R: AsRef<str>>(hypotheses: &[H], references: &[R]) -> anyhow::Result<Bleu> {
    anyhow::ensure!(
        hypotheses.len() == references.len(),
        "BLEU of {} hypotheses against {} references: each hypothesis needs one reference",
        hypotheses.len(),
        references.len()
    );
    let mut stats = BleuStats::default();
    for (h, r) in hypotheses.iter().zip(references) {
        stats.add(h.as_ref(), r.as_ref());
    }
    Ok(stats.score())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_13a_rules_split_symbols_and_periods_but_not_inside_numbers() {
        assert_eq!(tokenize_13a("Hello, world."), "Hello , world .");
        assert_eq!(tokenize_13a("It costs $1,000.50 now."), "It costs $ 1,000.50 now .");
        assert_eq!(tokenize_13a("1990-2000 don't"), "1990 - 2000 don't");
        assert_eq!(tokenize_13a("&quot;a&quot; &amp; b"), "\" a \" & b");
        assert_eq!(tokenize_13a(""), "");
    }

    #[test]
    fn identical_text_scores_100_and_nothing_in_common_0() {
        let s = ["the cat sat on the mat", "a dog runs in the park today"];
        assert!((corpus_bleu(&s, &s).unwrap().score - 100.0).abs() < 1e-9);
        assert_eq!(corpus_bleu(&["x y z w"], &["a b c d"]).unwrap().score, 0.0);
        assert!(corpus_bleu(&["a"], &["a", "b"]).is_err());
    }
}
