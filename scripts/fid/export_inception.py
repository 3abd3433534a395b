#!/usr/bin/env python3
"""Converts pytorch-fid's Inception weights into the safetensors file the suite's CIFAR-10 FID
loads (`models/src/inception.rs`, task options `fid_weights` / `fid_weights_repo`).

The input is pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (the TensorFlow FID
Inception ported to PyTorch, 91 MB), which pytorch-fid downloads from

    https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth

(or finds in torch's hub cache, `~/.cache/torch/hub/checkpoints/`). The output is that state
dict with `fc.*` and `num_batches_tracked` dropped, every tensor float32 and contiguous, under
torchvision's names (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`, ...):
470 tensors, 21,820,000 values, 87 MB.

    pip install torch safetensors
    python scripts/fid/export_inception.py --pth pt_inception-2015-12-05-6726825d.pth \\
        --out pt_inception-2015-12-05-6726825d.safetensors

With `--check`, pytorch-fid (`pip install pytorch-fid`) is loaded with the same weights and its
features of two random images are printed, to compare with the suite's on the same input.
"""

import argparse
import hashlib

import torch
from safetensors.torch import save_file


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pth", required=True, help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth")
    ap.add_argument("--out", required=True, help="the safetensors file to write")
    ap.add_argument("--check", action="store_true", help="print pytorch-fid's features of a fixed input")
    args = ap.parse_args()
    state = torch.load(args.pth, map_location="cpu", weights_only=True)
    kept = {k: v.detach().to(torch.float32).contiguous() for k, v in state.items()
            if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    dropped = sorted(set(state) - set(kept))
    if len(kept) != 470:
        raise SystemExit(f"{args.pth}: {len(kept)} tensors after dropping fc and num_batches_tracked; "
                         "pytorch-fid's FID Inception has 470 (is this the FID weights file?)")
    save_file(kept, args.out)
    values = sum(v.numel() for v in kept.values())
    with open(args.out, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    print(f"wrote {args.out}: {len(kept)} tensors, {values} values (dropped {len(dropped)}: fc, "
          f"num_batches_tracked); sha256 {digest}")
    if args.check:
        from pytorch_fid import inception as fid_inception
        fid_inception.load_state_dict_from_url = lambda *a, **k: state
        model = fid_inception.InceptionV3([3]).eval()
        torch.manual_seed(0)
        x = torch.rand(2, 3, 32, 32)
        with torch.no_grad():
            features = model(x)[0].reshape(2, -1)
        print("pytorch-fid features of torch.manual_seed(0); torch.rand(2, 3, 32, 32), first 8 of each:")
        print(features[:, :8])


if __name__ == "__main__":
    main()
