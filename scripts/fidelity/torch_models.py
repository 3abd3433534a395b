#!/usr/bin/env python3
"""Forward outputs of the papers' own PyTorch CIFAR models on fixed weights: the fixtures of
`models/tests/fidelity.rs`, which builds the suite's models, gives them the same weights by
name and compares.

The authors' model files are imported from checkouts given on the command line (nothing of
theirs is committed):

- `--adabelief`: juntang-zhuang/Adabelief-Optimizer (tested at 2855178e),
  `PyTorch_Experiments/classification_cifar10/models/vgg.py`, `vgg11()`;
- `--adai`: zeke-xie/adaptive-inertia-adai (tested at e6c1b9d0), `model/googlenet.py`
  (`GoogleNet(num_class=100)`), `model/resnet.py` (`ResNet18()`), `model/vgg.py`
  (`VGG('VGG16')`), `model/densenet.py` (`DenseNet121(num_classes=100)`).

Regenerate (torch on the CPU is enough; a few seconds):

    .venv/bin/python scripts/fidelity/torch_models.py --adabelief PATH --adai PATH \\
        --out models/tests/fixtures/fidelity

Weights and inputs are a function both sides compute, so the fixtures stay small: tensor
number `t` (its position in the authors' `state_dict`, `num_batches_tracked` left out) of `n`
elements holds `offset + scale * u(t, i)`, `i < n`, where `u` maps splitmix64(`(t + 1) << 32
| i`) to [-1, 1) with 53 bits; the scale is sqrt(6 / fan_in) for convolution and linear
weights (He-like, so that activations keep their size without BatchNorm), 0.1 for biases and
running means, and BatchNorm weights are 1 + 0.25 u, running variances 1 + 0.5 u. The input
batch (2, 3, 32, 32) is `u(1000, i)`. Everything runs in float64.

Each fixture holds the tensors (name, shape, offset, scale, and the sum of the values as a
check of the generator), the parameter count, the logits in evaluation mode, and for models
with BatchNorm the logits of one forward pass in training mode (dropout off) with two
checksums of every running statistic after it: the sum, and the dot product with
`u(5000 + k, i)` for the k-th buffer.
"""

import argparse
import importlib.util
import json
import os
import subprocess

import numpy as np
import torch

MASK = (1 << 64) - 1


def unit(t, n):
    """u(t, i) for i < n: splitmix64 of (t + 1) << 32 | i, to [-1, 1)."""
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) | np.uint64(((t + 1) << 32) & MASK)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -52 - 1.0


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def commit(repo):
    try:
        return subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def offset_scale(name, shape):
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "weight" and len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        return 0.0, float(np.sqrt(6.0 / fan_in))
    if leaf == "weight":
        return 1.0, 0.25
    if leaf == "running_var":
        return 1.0, 0.5
    if leaf in ("bias", "running_mean"):
        return 0.0, 0.1
    raise ValueError(f"no rule for tensor {name} {shape}")


def assign(model):
    """Sets every tensor of the state_dict; returns their descriptions."""
    tensors = []
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    with torch.no_grad():
        for t, (name, value) in enumerate(state.items()):
            shape = list(value.shape)
            offset, scale = offset_scale(name, shape)
            values = offset + scale * unit(t, value.numel())
            value.copy_(torch.from_numpy(values).reshape(shape))
            tensors.append({"name": name, "shape": shape, "offset": offset, "scale": scale,
                            "sum": float(values.sum())})
    return tensors


def buffer_checks(model):
    buffers = [(k, v) for k, v in model.state_dict().items() if k.endswith(("running_mean", "running_var"))]
    out = []
    for k, (name, value) in enumerate(buffers):
        flat = value.detach().reshape(-1).numpy()
        out.append({"name": name, "sum": float(flat.sum()), "dot": float(flat @ unit(5000 + k, flat.size))})
    return out


def record(model, name, reference, repo, notes, out_dir, train_check):
    model = model.double()
    tensors = assign(model)
    x = torch.from_numpy(unit(1000, 2 * 3 * 32 * 32)).reshape(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
    fixture = {
        "model": name,
        "reference": reference,
        "commit": commit(repo),
        "notes": notes,
        "parameter_count": sum(p.numel() for p in model.parameters()),
        "tensors": tensors,
        "logits_eval": logits_eval.tolist(),
    }
    if name == "googlenet-adai":
        # The same network with every BatchNorm at PyTorch's eps (the suite's default, quirk off).
        eps = {m: m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
        fixture["quirk_batch_norms"] = sum(1 for e in eps.values() if e != 1e-5)
        for m in eps:
            m.eps = 1e-5
        with torch.no_grad():
            fixture["logits_eval_standard_eps"] = model(x).tolist()
        for m, e in eps.items():
            m.eps = e
    if train_check:
        model.train()
        for m in model.modules():
            if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)):
                m.eval()
        with torch.no_grad():
            fixture["logits_train"] = model(x).tolist()
        fixture["buffers_after_train"] = buffer_checks(model)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{name}.json")
    with open(path, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"{path}: {fixture['parameter_count']:,} parameters, {len(tensors)} tensors")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adabelief", required=True, help="checkout of juntang-zhuang/Adabelief-Optimizer")
    parser.add_argument("--adai", required=True, help="checkout of zeke-xie/adaptive-inertia-adai")
    parser.add_argument("--out", default="models/tests/fixtures/fidelity")
    args = parser.parse_args()
    torch.manual_seed(0)

    ab_file = "PyTorch_Experiments/classification_cifar10/models/vgg.py"
    ab = load(os.path.join(args.adabelief, ab_file), "adabelief_vgg")
    record(ab.vgg11(), "vgg11-adabelief", f"juntang-zhuang/Adabelief-Optimizer {ab_file} vgg11()", args.adabelief,
           "no BatchNorm; no training-mode check (the model has no running statistics)", args.out, False)

    googlenet = load(os.path.join(args.adai, "model/googlenet.py"), "adai_googlenet")
    record(googlenet.GoogleNet(num_class=100), "googlenet-adai",
           "zeke-xie/adaptive-inertia-adai model/googlenet.py GoogleNet(num_class=100)", args.adai,
           "BatchNorm2d(n5x5, n5x5): eps = n5x5 in nine BatchNorms (the suite's bn_eps_quirk); "
           "training-mode check with Dropout2d off", args.out, True)

    resnet = load(os.path.join(args.adai, "model/resnet.py"), "adai_resnet")
    record(resnet.ResNet18(), "resnet18-adai", "zeke-xie/adaptive-inertia-adai model/resnet.py ResNet18()",
           args.adai, "kuangliu/pytorch-cifar's ResNet-18 (AdaBelief's resnet.py is the same network)", args.out, True)

    vgg = load(os.path.join(args.adai, "model/vgg.py"), "adai_vgg")
    record(vgg.VGG("VGG16"), "vgg16-adai", "zeke-xie/adaptive-inertia-adai model/vgg.py VGG('VGG16')", args.adai,
           "kuangliu/pytorch-cifar's VGG-16 with BatchNorm", args.out, True)

    densenet = load(os.path.join(args.adai, "model/densenet.py"), "adai_densenet")
    record(densenet.DenseNet121(num_classes=100), "densenet121-adai",
           "zeke-xie/adaptive-inertia-adai model/densenet.py DenseNet121(num_classes=100)", args.adai,
           "kuangliu/pytorch-cifar's DenseNet-121 (AdaBelief's densenet.py is the same network)", args.out, True)


if __name__ == "__main__":
    main()
