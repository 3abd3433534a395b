#!/usr/bin/env python3
"""pytorch-fid's Inception-v3 on generated weights: the fixture of `models/tests/inception.rs`,
which builds the suite's network (`models/src/inception.rs`) with the same weights and compares
the resize, the four block outputs and the 2048 features.

The network is pytorch-fid's own `InceptionV3(use_fid_inception=True)` (torchvision's
Inception-v3 with the FID blocks); only its weights download is replaced by the generated state
dict. Nothing of pytorch-fid is committed.

Regenerate (torch, torchvision and pytorch-fid on the CPU; about ten seconds):

    .venv/bin/pip install torchvision pytorch-fid      # torchvision matching torch's version
    .venv/bin/python scripts/fid/inception_fixture.py --out models/tests/fixtures/inception.json

or with a checkout of mseitzer/pytorch-fid (tested at b9c18118) instead of the package:
`--pytorch-fid PATH/src`.

The weights are a function both sides compute, so the fixture stays small (the weights
themselves are 87 MB): tensor number `t` (its position in torchvision's `state_dict` without
`num_batches_tracked` and `fc.*`, which the suite's `expected_tensors()` lists in the same
order) of `n` elements holds `offset + scale * u(t, i)`, `i < n`, with `u` the splitmix64
generator of `scripts/fidelity/torch_models.py`; the scale is sqrt(6 / fan_in) for the
convolution weights (He-like: activations keep their size through the 94 layers), 0.1 for
BatchNorm biases and running means; BatchNorm weights are 1 + 0.25 u, running variances
1 + 0.5 u. The input batch (2, 3, 32, 32) (CIFAR-10's size) is 0.5 + 0.5 u(1000, i).
Everything runs in float64.

The fixture holds the tensors (name, shape, offset, scale and the sum of the values, a check
of the generator), the 2048 features of both images, three checksums of every block output
(sum, sum of squares, dot product with u(2000 + block, i)), and `F.interpolate` (bilinear,
align_corners=False) of a (2, 3, 5, 7) input u(3000, i) to a few sizes.
"""

import argparse
import json
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

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


def offset_scale(name, shape):
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "weight" and len(shape) == 4:
        return 0.0, float(np.sqrt(6.0 / np.prod(shape[1:])))
    if leaf == "weight":
        return 1.0, 0.25
    if leaf == "running_var":
        return 1.0, 0.5
    if leaf in ("bias", "running_mean"):
        return 0.0, 0.1
    raise ValueError(f"no rule for tensor {name} {shape}")


def generated_state_dict(skeleton):
    """The generated values of every tensor of torchvision's state dict (fc left as it is)."""
    state, tensors = {}, []
    t = 0
    for name, value in skeleton.state_dict().items():
        if name.endswith("num_batches_tracked") or name.startswith("fc."):
            state[name] = value
            continue
        shape = list(value.shape)
        offset, scale = offset_scale(name, shape)
        values = offset + scale * unit(t, value.numel())
        state[name] = torch.from_numpy(values).reshape(shape).to(value.dtype)
        tensors.append({"name": name, "shape": shape, "offset": offset, "scale": scale, "sum": float(values.sum())})
        t += 1
    return state, tensors


def checks(x, block):
    flat = x.reshape(-1).numpy()
    return {"shape": list(x.shape), "sum": float(flat.sum()), "sum_sq": float(flat @ flat),
            "dot": float(flat @ unit(2000 + block, flat.size))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--pytorch-fid", help="the `src` folder of a pytorch-fid checkout (else the installed package)")
    args = ap.parse_args()
    if args.pytorch_fid:
        sys.path.insert(0, args.pytorch_fid)
    import torchvision
    from pytorch_fid import inception as fid_inception

    skeleton = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    state, tensors = generated_state_dict(skeleton)
    # pytorch-fid's network, its download replaced by the generated weights.
    fid_inception.load_state_dict_from_url = lambda *a, **k: state
    model = fid_inception.InceptionV3(output_blocks=[0, 1, 2, 3], use_fid_inception=True).double().eval()

    x = torch.from_numpy(0.5 + 0.5 * unit(1000, 2 * 3 * 32 * 32)).reshape(2, 3, 32, 32)
    with torch.no_grad():
        blocks = model(x)
    images = []
    for i in range(2):
        images.append({"blocks": [checks(b[i], k) for k, b in enumerate(blocks)],
                       "features": blocks[3][i].reshape(-1).tolist()})

    small = torch.from_numpy(unit(3000, 2 * 3 * 5 * 7)).reshape(2, 3, 5, 7)
    resizes = []
    for size in [(11, 13), (3, 4), (5, 7), (16, 2)]:
        out = F.interpolate(small, size=size, mode="bilinear", align_corners=False)
        resizes.append({"size": list(size), "values": out.reshape(-1).tolist()})

    try:
        version = subprocess.run([sys.executable, "-m", "pip", "show", "pytorch-fid"], capture_output=True,
                                 text=True).stdout.split("Version: ")[1].split()[0]
    except (IndexError, OSError):
        version = "checkout"
    fixture = {
        "reference": "mseitzer/pytorch-fid src/pytorch_fid/inception.py InceptionV3(use_fid_inception=True)",
        "pytorch_fid": version,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "value_count": int(sum(np.prod(t["shape"]) for t in tensors)),
        "tensors": tensors,
        "images": images,
        "resize_input_shape": [2, 3, 5, 7],
        "resizes": resizes,
    }
    with open(args.out, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}: {len(tensors)} tensors, {fixture['value_count']} values")


if __name__ == "__main__":
    main()
