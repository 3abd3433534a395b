"""Fixtures for optbench's BLEU: corpus scores, n-gram statistics and 13a tokenizations computed
by the sacrebleu package (default `BLEU()`: 13a, mixed case, exp smoothing), so that
`tasks/tests/translation.rs` checks the Rust BLEU against sacreBLEU without Python.

Regenerate (from the repository root):
    /work/main/.venv/bin/pip install sacrebleu==2.6.0
    /work/main/.venv/bin/python scripts/bleu/make_fixtures.py tasks/tests/fixtures/translation/sacrebleu.json

The corpora are deterministic: hand-written tricky lines (punctuation, numbers with commas and
periods, quotes, dashes, HTML entities, unicode, empty hypotheses) and pseudo-random
perturbations of them (seeded), with some corpora that score 0 or have hypotheses shorter than
four tokens.
"""
import json
import random
import sys

import sacrebleu
from sacrebleu.metrics import BLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

REFERENCES = [
    "Two young, White males are outside near many bushes.",
    "Several men in hard hats are operating a giant pulley system.",
    "A little girl climbing into a wooden playhouse.",
    "It costs $1,000.50 -- or 3.5% more than in 1990-2000.",
    "\"Don't do that,\" she said; (he didn't listen).",
    "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.",
    "Café, naïve, façade — and “curly quotes” … plus 中文 text.",
    "The U.S.A. & the U.K. signed it on 12.05.2003, at 10:30.",
    "Email me at a.b@example.com or visit http://x.org/a-b?c=d&e=f.",
    "&quot;Quoted&quot; &amp; escaped &lt;tags&gt; stay as text.",
    "A dash-separated, well-known fact: 2-3 people, 4 - 5 dogs.",
    "Numbers: 1,234,567 and 0.001 and .5 and 5. and 1.,2",
    "   leading and trailing spaces   ",
    "Tabs\tand\u00a0no-break spaces\u2009too.",
    "<skipped> words vanish here.",
    "A man in a blue shirt is standing on a ladder cleaning a window.",
    "Ünïcödé: Ärger, Öl, Übermut, Straße!",
    "Wait... what?! Really?!",
    "{braces} [brackets] ~tilde~ `backtick` ^caret^ |pipe| \\backslash\\",
    "He said: 'single quotes' aren't split.",
]


def perturb(line, rng):
    words = line.split()
    out = []
    for w in words:
        r = rng.random()
        if r < 0.12:
            continue
        if r < 0.22:
            out.append(rng.choice(words))
        elif r < 0.27:
            out.append(w.upper())
        else:
            out.append(w)
        if rng.random() < 0.05:
            out.append(rng.choice(["the", "a", ",", ".", "-", "1,000"]))
    return " ".join(out)


def case(name, hyps, refs):
    bleu = BLEU()
    score = bleu.corpus_score(hyps, [refs])
    return {
        "name": name,
        "hypotheses": hyps,
        "references": refs,
        "score": score.score,
        "counts": list(score.counts),
        "totals": list(score.totals),
        "sys_len": score.sys_len,
        "ref_len": score.ref_len,
        "signature": str(bleu.get_signature()),
    }


def main(out):
    rng = random.Random(1234)
    tok = Tokenizer13a()
    cases = [
        case("identical", REFERENCES, REFERENCES),
        case("perturbed", [perturb(r, rng) for r in REFERENCES], REFERENCES),
        case("perturbed-with-empty-lines",
             ["" if i % 5 == 0 else perturb(r, rng) for i, r in enumerate(REFERENCES)], REFERENCES),
        case("short-hypotheses", [" ".join(r.split()[:2]) for r in REFERENCES], REFERENCES),
        case("no-4-grams", ["a man", "two", "the cat"], ["a man sat", "two dogs run", "the cat"]),
        case("no-match", ["xyz qqq"], ["abc def ghi"]),
        case("all-empty", ["", ""], ["a b", "c d"]),
        case("longer-than-references", [r + " and then some more words here" for r in REFERENCES[:6]],
             REFERENCES[:6]),
    ]
    for k in range(4):
        lines = [perturb(r, rng) for r in REFERENCES]
        cases.append(case(f"random-{k}", lines, REFERENCES))
    tokenized = [{"line": line, "tokens": tok(line.rstrip())} for line in REFERENCES]
    data = {"sacrebleu_version": sacrebleu.__version__, "cases": cases, "tokenized": tokenized}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
