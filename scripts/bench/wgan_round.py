#!/usr/bin/env python3
"""PyTorch side of the WGAN-GP round benchmark: 5 critic steps with the gradient penalty
(`torch.autograd.grad(create_graph=True)`, as AdaBelief's `calc_gradient_penalty`) and one
generator step, DCGAN 64x64 (ngf = ndf = 64, nz 100, the critic without BatchNorm), batch 64,
Adam lr 2e-4 betas (0.5, 0.999): the same work as `cargo bench -p tasks --bench wgan_round`.

    python3 scripts/bench/wgan_round.py [--rounds 3] [--batch 64] [--width 64] [--threads 2] [--device cpu|cuda]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fidelity"))
from gan_penalty import Critic, Generator  # noqa: E402  the suite's PyTorch definitions
from benchlib import emit  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    g = Generator(64, 3, 100, args.width).to(dev)
    d = Critic(64, 3, args.width).to(dev)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(args.batch, 3, 64, 64, device=dev) * 2 - 1
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    totals, critic = [], []
    for i in range(args.rounds + 1):
        t0 = time.perf_counter()
        for _ in range(5):
            opt_d.zero_grad()
            z = torch.randn(args.batch, 100, device=dev)
            fake = g(z).detach()
            loss = d(fake).mean() - d(real).mean()
            eps = torch.rand(args.batch, 1, 1, 1, device=dev)
            x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
            out = d(x_hat)
            (grad,) = torch.autograd.grad(out, x_hat, torch.ones_like(out), create_graph=True)
            penalty = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean() * 10
            (loss + penalty).backward()
            opt_d.step()
        sync()
        t1 = time.perf_counter()
        opt_g.zero_grad()
        (-d(g(z)).mean()).backward()
        opt_g.step()
        sync()
        t2 = time.perf_counter()
        if i > 0:
            totals.append(t2 - t0)
            critic.append(t1 - t0)
    med = lambda v: sorted(v)[len(v) // 2]
    print(f"pytorch WGAN-GP round (DCGAN 64x64, width {args.width}), batch {args.batch}, {dev}: "
          f"median {med(totals):.3f} s (5 critic steps {med(critic):.3f} s) over {args.rounds} rounds")
    emit("wgan", totals, f"width {args.width}, batch {args.batch}", critic=critic)


if __name__ == "__main__":
    main()
