#!/usr/bin/env python3
"""Record golden optimizer trajectories from the reference implementations.

Each case runs one reference optimizer on a few parameters of different shapes, feeding it
seeded random gradients (some elements exactly zero, some steps with no gradient for a
parameter, a learning-rate change in the middle), and writes every parameter after every
step in the `optbench-golden/1` format (../shared/spec/golden-format.md). The Rust tests and
`optbench replay` replay these files; CI needs no Python.

Set-up, once (torch from PyPI is about 5 GB; the CPU is enough):

    python3 -m venv .venv
    .venv/bin/pip install -r scripts/golden/requirements.txt

Run from the project root:

    .venv/bin/python scripts/golden/generate.py --out optimizers/tests/fixtures/golden

Fresh trajectories that none of the committed fixtures use (other seed, shapes, step count,
and hyperparameters jittered around each case's):

    .venv/bin/python scripts/golden/generate.py --out /tmp/fresh --seed 7 \\
        --shapes '7;2,5;3,1,4' --steps 31 --perturb
    cargo run --release -p tasks -- replay /tmp/fresh/*.json

The official RAdam and Adai are single files in their authors' repositories, not packages:
the script downloads them at pinned commits into ~/.cache/optbench/references (checking their
md5), or takes local copies with --radam-file / --adai-file.

The `adashift-tf` and `amsgrad-tf` fixtures (`variant = "tf"`: the AdaShift authors'
TensorFlow code) come from generate_tf.py, which uses this file's helpers (see ADASHIFT_TF.md).
"""

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import sys
import urllib.request
import zlib
from pathlib import Path

import numpy as np

try:
    import torch
except ModuleNotFoundError:  # generate_tf.py imports the helpers below from a TensorFlow venv
    torch = None

REFERENCE_FILES = {
    "radam": (
        "https://raw.githubusercontent.com/LiyuanLucasLiu/RAdam/"
        "d9fd30a337894c4003768561d45e8730dbd41333/radam/radam.py",
        "914464ad71b9c71d5221a49e38b99e28",
        "RAdam",
    ),
    "adai": (
        "https://raw.githubusercontent.com/zeke-xie/adaptive-inertia-adai/"
        "e6c1b9d01c7c5605af2ed46e0cfd738bcda8cf4d/adai_optim/adai.py",
        "7ee7599bf42d8d7d939c6c491cf47aad",
        "Adai",
    ),
}

# Each case: name, optimizer spec in the project's terms (keys left out take the contract's
# defaults, which must be the reference's), and options of the trajectory.
CASES = [
    ("sgd/plain", {"name": "sgd", "lr": 0.1}),
    ("sgd/momentum-l2", {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-2}),
    ("sgd/nesterov", {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-3}),
    ("sgd/dampening", {"name": "sgd", "lr": 0.05, "momentum": 0.8, "dampening": 0.3}),
    ("adam/defaults", {"name": "adam"}),
    ("adam/l2", {"name": "adam", "lr": 0.02, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 1e-2}),
    ("adam/decoupled", {"name": "adam", "lr": 0.01, "weight_decay": 0.05, "decoupled": True}),
    ("adam/amsgrad-l2", {"name": "adam", "lr": 0.01, "amsgrad": True, "weight_decay": 1e-2}),
    ("adamw/defaults", {"name": "adamw"}),
    ("adamw/strong-decay", {"name": "adamw", "lr": 0.01, "weight_decay": 0.1, "beta2": 0.95}),
    ("amsgrad/defaults", {"name": "amsgrad"}),
    ("amsgrad/decoupled", {"name": "amsgrad", "lr": 0.01, "weight_decay": 0.05, "decoupled": True}),
    # pytorch-optimizer's AdaShift; the contract's default variant is the authors' TensorFlow code
    # (scripts/golden/generate_tf.py writes the adashift-tf cases).
    ("adashift/defaults", {"name": "adashift", "variant": "pytorch-optimizer"}),
    ("adashift/max", {"name": "adashift", "variant": "pytorch-optimizer", "lr": 0.01, "keep_num": 3, "phi": "max"}),
    ("adashift/mean", {"name": "adashift", "variant": "pytorch-optimizer", "lr": 0.01, "keep_num": 4, "beta1": 0.8,
                       "phi": "mean"}),
    ("adashift/none", {"name": "adashift", "variant": "pytorch-optimizer", "lr": 0.005, "keep_num": 2, "beta2": 0.99,
                       "phi": "none"}),
    ("adashift/beta1-zero", {"name": "adashift", "variant": "pytorch-optimizer", "lr": 0.01, "keep_num": 1,
                             "beta1": 0.0, "eps": 1e-8}),
    ("adai/defaults", {"name": "adai", "lr": 0.1}),
    ("adai/l2", {"name": "adai", "lr": 0.05, "weight_decay": 1e-2}),
    ("adai/decoupled", {"name": "adai", "lr": 0.05, "weight_decay": 1e-2, "decoupled": True}),
    ("adai/tight-bound", {"name": "adai", "lr": 0.1, "beta0": 0.5, "beta2": 0.9, "eps": 0.1}),
    ("adaiw/defaults", {"name": "adaiw", "lr": 0.1, "weight_decay": 5e-3}),
    ("adabelief/defaults", {"name": "adabelief"}),
    ("adabelief/l2-norectify", {"name": "adabelief", "lr": 0.02, "eps": 1e-8, "weight_decay": 5e-3,
                                "decoupled": False, "rectify": False}),
    ("adabelief/decoupled-norectify", {"name": "adabelief", "lr": 0.01, "eps": 1e-12, "weight_decay": 1e-2,
                                       "rectify": False}),
    ("adabelief/fixed-decay", {"name": "adabelief", "lr": 0.01, "weight_decay": 1e-2, "fixed_decay": True}),
    ("adabelief/amsgrad", {"name": "adabelief", "lr": 0.01, "eps": 1e-8, "amsgrad": True, "rectify": False}),
    ("adabelief/amsgrad-rectify", {"name": "adabelief", "lr": 0.01, "amsgrad": True, "weight_decay": 1e-3}),
    ("adabelief/rectify-nosgd", {"name": "adabelief", "lr": 0.01, "degenerated_to_sgd": False,
                                 "decoupled": False, "weight_decay": 1e-2}),
    ("adamod/defaults", {"name": "adamod"}),
    ("adamod/decay", {"name": "adamod", "lr": 0.01, "beta3": 0.9, "weight_decay": 1e-2}),
    ("adabound/defaults", {"name": "adabound"}),
    ("adabound/amsbound-l2", {"name": "adabound", "lr": 0.01, "amsbound": True, "weight_decay": 1e-2}),
    ("adabound/fast-bounds", {"name": "adabound", "lr": 0.01, "final_lr": 0.05, "gamma": 0.1}),
    ("radam/defaults", {"name": "radam"}),
    ("radam/degenerated", {"name": "radam", "lr": 0.01, "degenerated_to_sgd": True, "weight_decay": 1e-2}),
    ("radam/short-memory", {"name": "radam", "lr": 0.01, "beta2": 0.9, "weight_decay": 1e-3}),
    ("diffgrad/defaults", {"name": "diffgrad"}),
    ("diffgrad/l2", {"name": "diffgrad", "lr": 0.01, "beta1": 0.8, "weight_decay": 1e-2}),
]

# The contract's defaults (../shared/spec/optimizers.md), to fill in what a case leaves out.
DEFAULTS = {
    "sgd": dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0),
    "adam": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False, amsgrad=False),
    "adamw": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2, decoupled=True, amsgrad=False),
    "amsgrad": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False, amsgrad=True),
    "adashift": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-10, keep_num=10, phi="max", variant="tf"),
    "adai": dict(beta0=0.1, beta2=0.99, eps=1e-3, weight_decay=0.0, decoupled=False),
    "adaiw": dict(beta0=0.1, beta2=0.99, eps=1e-3, weight_decay=0.0, decoupled=True),
    "adabelief": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-16, weight_decay=0.0, decoupled=True,
                      fixed_decay=False, rectify=True, amsgrad=False, degenerated_to_sgd=True),
    "adamod": dict(lr=1e-3, beta1=0.9, beta2=0.999, beta3=0.999, eps=1e-8, weight_decay=0.0),
    "adabound": dict(lr=1e-3, beta1=0.9, beta2=0.999, final_lr=0.1, gamma=1e-3, eps=1e-8, weight_decay=0.0,
                     amsbound=False),
    "radam": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, degenerated_to_sgd=False),
    "diffgrad": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0),
}


PINNED = {"adabelief-pytorch": "0.2.1", "adamod": "0.0.3", "adabound": "0.0.5",
          "pytorch-optimizer": "4.1.0", "torch-optimizer": "0.3.0"}


def check_pinned_versions():
    for package, version in PINNED.items():
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            sys.exit(f"{package} is not installed: pip install -r scripts/golden/requirements.txt")
        if installed != version:
            sys.exit(f"{package} {installed} is installed, the references are {package}=={version}")


def checked_reference_file(key, url, md5, local_path):
    """The pinned file: local_path, or a cached download of url; exits unless its md5 is md5."""
    if local_path is None:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "optbench" / "references"
        local_path = cache / f"{key}.py"
        if not local_path.exists():
            cache.mkdir(parents=True, exist_ok=True)
            print(f"downloading {url}", file=sys.stderr)
            with urllib.request.urlopen(url, timeout=60) as response:
                local_path.write_bytes(response.read())
    local_path = Path(local_path)
    digest = hashlib.md5(local_path.read_bytes()).hexdigest()
    if digest != md5:
        sys.exit(f"{local_path}: md5 {digest} is not the pinned reference's {md5}; pass the file from {url}")
    return local_path


def write_golden(out, record):
    """Writes record as OUT/NAME--CASE.DTYPE.json (the case's '/' becomes '--'); returns the path."""
    path = Path(out) / f"{record['case'].replace('/', '--')}.{record['dtype']}.json"
    path.write_text(json.dumps(record, separators=(",", ":")) + "\n")
    return path


def load_reference_file(key, local_path):
    url, md5, cls = REFERENCE_FILES[key]
    local_path = checked_reference_file(key, url, md5, local_path)
    spec = importlib.util.spec_from_file_location(f"reference_{key}", local_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, cls)


class OwnPrecision:
    """The official RAdam computes in f32 (`p.data.float()`); the contract asks for the
    parameters' own precision, so `.float()` is the identity while it runs on f64."""

    def __init__(self, active):
        self.active = active

    def __enter__(self):
        if self.active:
            self.saved = torch.Tensor.float
            torch.Tensor.float = lambda tensor, *args, **kwargs: tensor

    def __exit__(self, *exc):
        if self.active:
            torch.Tensor.float = self.saved


def reference_optimizer(spec, params, refs):
    """The reference implementation, built from a spec in the project's terms."""
    name = spec["name"]
    h = dict(DEFAULTS[name])
    h.update({k: v for k, v in spec.items() if k != "name"})
    betas = (h.get("beta1"), h.get("beta2"))
    if name == "sgd":
        return torch.optim.SGD(params, lr=h["lr"], momentum=h["momentum"], dampening=h["dampening"],
                               nesterov=h["nesterov"], weight_decay=h["weight_decay"]), "torch " + torch.__version__
    if name in ("adam", "adamw", "amsgrad"):
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        kwargs = dict(lr=h["lr"], betas=betas, eps=h["eps"], weight_decay=h["weight_decay"], amsgrad=h["amsgrad"])
        if name != "adamw":
            kwargs["decoupled_weight_decay"] = h["decoupled"]
        elif not h["decoupled"]:
            raise ValueError("adamw is decoupled by definition")
        return cls(params, **kwargs), f"torch {torch.__version__} {cls.__name__}"
    if name == "adashift":
        if h["variant"] != "pytorch-optimizer":
            raise ValueError(f"adashift variant {h['variant']!r} is not torch code: scripts/golden/generate_tf.py")
        import pytorch_optimizer
        reduce = {"max": torch.max, "mean": torch.mean, "none": None}[h["phi"]]
        return pytorch_optimizer.AdaShift(params, lr=h["lr"], betas=betas, keep_num=h["keep_num"],
                                          reduce_func=reduce, eps=h["eps"]), \
            "pytorch-optimizer 4.1.0 AdaShift"
    if name in ("adai", "adaiw"):
        return refs["adai"](params, lr=h["lr"], betas=(h["beta0"], h["beta2"]), eps=h["eps"],
                            weight_decay=h["weight_decay"], decoupled=h["decoupled"]), \
            "official adai_optim.Adai @e6c1b9d"
    if name == "adabelief":
        from adabelief_pytorch import AdaBelief
        return AdaBelief(params, lr=h["lr"], betas=betas, eps=h["eps"], weight_decay=h["weight_decay"],
                         amsgrad=h["amsgrad"], weight_decouple=h["decoupled"], fixed_decay=h["fixed_decay"],
                         rectify=h["rectify"], degenerated_to_sgd=h["degenerated_to_sgd"],
                         print_change_log=False), "adabelief-pytorch 0.2.1"
    if name == "adamod":
        from adamod import AdaMod
        return AdaMod(params, lr=h["lr"], betas=betas, beta3=h["beta3"], eps=h["eps"],
                      weight_decay=h["weight_decay"]), "adamod 0.0.3"
    if name == "adabound":
        from adabound import AdaBound
        return AdaBound(params, lr=h["lr"], betas=betas, final_lr=h["final_lr"], gamma=h["gamma"], eps=h["eps"],
                        weight_decay=h["weight_decay"], amsbound=h["amsbound"]), "adabound 0.0.5"
    if name == "radam":
        return refs["radam"](params, lr=h["lr"], betas=betas, eps=h["eps"], weight_decay=h["weight_decay"],
                             degenerated_to_sgd=h["degenerated_to_sgd"]), "official RAdam radam/radam.py @d9fd30a"
    if name == "diffgrad":
        import torch_optimizer
        return torch_optimizer.DiffGrad(params, lr=h["lr"], betas=betas, eps=h["eps"],
                                        weight_decay=h["weight_decay"]), "torch-optimizer 0.3.0 DiffGrad"
    raise ValueError(f"no reference for {name}")


def perturbed(spec, rng):
    """The case's hyperparameters jittered, so that a replay proves more than the fixtures."""
    out = dict(spec)
    for key, value in spec.items():
        if isinstance(value, bool) or key == "name":
            continue
        if key in ("beta1", "beta2", "beta3", "momentum") and value > 0:
            out[key] = 1 - (1 - value) * float(rng.uniform(0.5, 2.0))
        elif key == "dampening":
            out[key] = value * float(rng.uniform(0.5, 1.5))
        elif key == "keep_num":
            out[key] = max(1, value + int(rng.integers(-1, 4)))
        elif isinstance(value, float) and value > 0:
            out[key] = value * float(rng.uniform(0.5, 2.0))
    if "lr" not in out or spec["name"] in ("adamw", "amsgrad"):
        out["lr"] = DEFAULTS[spec["name"]].get("lr", 0.05) * float(rng.uniform(0.5, 3.0))
    return out


def trajectory(case, spec, dtype, args, refs):
    torch_dtype = {"f64": torch.float64, "f32": torch.float32}[dtype]
    rng = np.random.default_rng([args.seed, zlib.crc32(case.encode())])
    if args.perturb:
        spec = perturbed(spec, rng)
    shapes = args.shapes
    scales = [1.0, 0.1, 3.0, 0.5, 2.0][: len(shapes)] + [1.0] * max(0, len(shapes) - 5)
    params = [torch.tensor(rng.normal(size=shape), dtype=torch_dtype) for shape in shapes]
    opt, reference = reference_optimizer(spec, params, refs)
    record = {
        "format": "optbench-golden/1",
        "case": case,
        "reference": reference,
        "dtype": dtype,
        "optimizer": spec,
        "params": [
            {"name": f"p{i}", "shape": list(shape), "init": p.flatten().tolist()}
            for i, (shape, p) in enumerate(zip(shapes, params))
        ],
        "steps": [],
    }
    # The last parameter misses its gradient in two steps, except for AdaShift, whose reference
    # counts steps per group where the contract counts them per variable.
    missing = set() if spec["name"] == "adashift" or len(shapes) < 2 else {3, args.steps // 2 + 1}
    lr_change_at = max(2, (3 * args.steps) // 5)
    for t in range(1, args.steps + 1):
        step = {}
        if t == lr_change_at:
            new_lr = opt.param_groups[0]["lr"] * 0.3
            for group in opt.param_groups:
                group["lr"] = new_lr
            step["lr"] = new_lr
        grads = []
        for i, (shape, p) in enumerate(zip(shapes, params)):
            if i == len(shapes) - 1 and t in missing:
                p.grad = None
                grads.append(None)
                continue
            g = rng.normal(size=shape) * scales[i]
            if i == 1:
                g[rng.random(size=shape) < 0.2] = 0.0
            p.grad = torch.tensor(g, dtype=torch_dtype)
            grads.append(p.grad.flatten().tolist())
        with OwnPrecision(spec["name"] == "radam" and dtype == "f64"), torch.no_grad():
            opt.step()
        step["grads"] = grads
        step["expected"] = [p.detach().flatten().tolist() for p in params]
        for p in params:
            if not all(math.isfinite(x) for x in p.flatten().tolist()):
                raise RuntimeError(f"{case}: the reference produced a non-finite value at step {t}")
        record["steps"].append(step)
    return record


def write_cases(cases, args, make):
    """Writes `make(case, spec, dtype)` for every case matching `--only` in every `--dtypes`
    into `--out`; says how many."""
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    for case, spec in cases:
        if args.only not in case:
            continue
        for dtype in args.dtypes.split(","):
            write_golden(args.out, make(case, spec, dtype))
            written += 1
    print(f"wrote {written} golden files to {args.out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder for the golden files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=25, help="steps per trajectory (default 25)")
    parser.add_argument("--shapes", default="5;3,4;2,3,2",
                        help="parameter shapes, ';' between parameters (default '5;3,4;2,3,2')")
    parser.add_argument("--dtypes", default="f64,f32")
    parser.add_argument("--only", default="", help="keep the cases whose name contains this")
    parser.add_argument("--perturb", action="store_true", help="jitter every case's hyperparameters")
    parser.add_argument("--radam-file", type=Path)
    parser.add_argument("--adai-file", type=Path)
    args = parser.parse_args()
    args.shapes = [tuple(int(d) for d in s.split(",")) for s in args.shapes.split(";")]
    if torch is None:
        sys.exit("torch is not installed: pip install -r scripts/golden/requirements.txt")
    check_pinned_versions()
    refs = {"radam": load_reference_file("radam", args.radam_file),
            "adai": load_reference_file("adai", args.adai_file)}
    torch.set_num_threads(1)
    write_cases(CASES, args, lambda case, spec, dtype: trajectory(case, spec, dtype, args, refs))


if __name__ == "__main__":
    main()
