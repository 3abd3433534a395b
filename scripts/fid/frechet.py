#!/usr/bin/env python3
"""The fixture of the Fréchet-distance test in `tasks/tests/gan.rs`: two fixed sets of features
(float32), their statistics as pytorch-fid computes them (`np.mean(axis=0)`, `np.cov(rowvar=
False)`, `mseitzer/pytorch-fid` 0.3.0 `src/pytorch_fid/fid_score.py`,
`calculate_activation_statistics`) and pytorch-fid's own `calculate_frechet_distance` (scipy's
`linalg.sqrtm` of the product), imported from the installed package.

Regenerate (needs `pip install pytorch-fid scipy`; a second):

    .venv/bin/python scripts/fid/frechet.py --out tasks/tests/fixtures/gan/frechet.json
"""

import argparse
import json
import os

import numpy as np
from pytorch_fid.fid_score import calculate_frechet_distance


def features(n, d, k, shift):
    """n samples of d correlated, non-degenerate features (numpy's seeded generator k)."""
    rng = np.random.RandomState(k)
    mix = np.eye(d) + 0.4 * rng.randn(d, d)
    return (rng.randn(n, d) @ mix + shift).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    n, d = 200, 10
    a, b = features(n, d, 1, 0.0), features(n, d, 2, 0.3)
    stats = []
    for x in (a, b):
        x64 = x.astype(np.float64)
        stats.append((np.mean(x64, axis=0), np.cov(x64, rowvar=False)))
    fid = calculate_frechet_distance(stats[0][0], stats[0][1], stats[1][0], stats[1][1])
    out = {
        "dim": d,
        "a": [float(v) for v in a.flatten()],
        "b": [float(v) for v in b.flatten()],
        "mean_a": stats[0][0].tolist(),
        "cov_a_diagonal": np.diag(stats[0][1]).tolist(),
        "cov_a_01": float(stats[0][1][0, 1]),
        "fid": float(fid),
        "fid_same": float(calculate_frechet_distance(stats[0][0], stats[0][1], stats[0][0], stats[0][1])),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f)
    print("FID", fid)


if __name__ == "__main__":
    main()
