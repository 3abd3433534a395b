#!/usr/bin/env python3
"""Fixtures of `models/tests/gan.rs`: the DCGAN generator and critic as PyTorch modules, their
parameter counts, and the WGAN-GP gradient penalty with its gradient with respect to every
critic weight from `torch.autograd.grad(create_graph=True)`.

The modules follow `juntang-zhuang/Adabelief-Optimizer` at 2855178e,
`PyTorch_Experiments/wgan-gp/main.py` (`Generator` lines 160-192, `Discriminator` 202-235,
`calc_gradient_penalty` 138-158) and `PyTorch_Experiments/wgan/main.py` (the sigmoid head);
they are rewritten here (their file trains at import) with the suite's sizes as arguments
(image side 28 / 32 / 64, see `models/src/dcgan.rs`), the critic of the penalty without
BatchNorm. Their `calc_gradient_penalty` is reproduced as `gp` below; `max_gp` is AdaShift's
`bMaxGP` (`mknbv/adashift:author_code_base/WGAN/wgan_gp-master/gan_realdata4.py`, lines
863-871): `weight * max_n ||g_n||²`.

Regenerate (torch on the CPU, a second):

    .venv/bin/python scripts/fidelity/gan_penalty.py --out models/tests/fixtures/gan

Everything runs in float64; the weights and inputs are written into the fixture (they are
small), named as the Rust models name them; the inputs are `fill` below, which the test computes
too: real images `fill(k=50, scale 1)`, fake ones `fill(k=51, 1)`, eps `0.5 + fill(k=52, 0.45)`,
the generator's z `fill(k=99, 1)` and the weights of its output sum `fill(k=77, 1)`.
"""

import argparse
import json
import math
import os

import torch
from torch import nn


def stages(size):
    return {64: (4, 4), 32: (4, 3), 28: (7, 2)}[size]


class Generator(nn.Module):
    def __init__(self, size, channels, latent, width):
        super().__init__()
        side, n = stages(size)
        c = width << (n - 1)
        layers = [nn.ConvTranspose2d(latent, c, side, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(1, n):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.latent = latent

    def forward(self, z):
        return self.main(z.view(z.size(0), self.latent, 1, 1))

    def named(self):
        """(suite name, tensor) of every parameter."""
        out, convt, bn = [], 0, 0
        for m in self.main:
            if isinstance(m, nn.ConvTranspose2d):
                out.append((f"convt{convt}.weight", m.weight))
                convt += 1
            elif isinstance(m, nn.BatchNorm2d):
                out += [(f"bn{bn}.weight", m.weight), (f"bn{bn}.bias", m.bias)]
                bn += 1
        return out


class Critic(nn.Module):
    def __init__(self, size, channels, width, batch_norm=False, sigmoid_head=False):
        super().__init__()
        side, n = stages(size)
        layers, cin = [], channels
        for i in range(n):
            layers.append(nn.Conv2d(cin, width << i, 4, 2, 1, bias=False))
            if batch_norm and i > 0:
                layers.append(nn.BatchNorm2d(width << i))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = width << i
        self.main = nn.Sequential(*layers)
        self.sigmoid_head = sigmoid_head
        if sigmoid_head:
            self.head = nn.Sequential(nn.Conv2d(cin, 1, side, 1, 0, bias=False), nn.Sigmoid())
        else:
            self.linear = nn.Linear(cin * side * side, 1)

    def forward(self, x):
        h = self.main(x)
        if self.sigmoid_head:
            return self.head(h).view(-1)
        return self.linear(h.view(h.size(0), -1)).view(-1)

    def named(self):
        out, conv = [], 0
        for m in self.main:
            if isinstance(m, nn.Conv2d):
                out.append((f"conv{conv}.weight", m.weight))
                conv += 1
        if not self.sigmoid_head:
            out += [("linear.weight", self.linear.weight), ("linear.bias", self.linear.bias)]
        return out


def count(m):
    return sum(p.numel() for p in m.parameters())


def input_gradients(critic, x_hat):
    x_hat = x_hat.detach().requires_grad_(True)
    out = critic(x_hat)
    (g,) = torch.autograd.grad(out, x_hat, grad_outputs=torch.ones_like(out), create_graph=True)
    return g.reshape(g.size(0), -1)


def gp(critic, real, fake, eps, lam):
    x_hat = eps.view(-1, 1, 1, 1) * real + (1 - eps.view(-1, 1, 1, 1)) * fake
    g = input_gradients(critic, x_hat)
    return ((g.norm(2, dim=1) - 1) ** 2).mean() * lam, g.norm(2, dim=1)


def max_gp(critic, real, fake, eps, weight):
    x_hat = eps.view(-1, 1, 1, 1) * real + (1 - eps.view(-1, 1, 1, 1)) * fake
    g = input_gradients(critic, x_hat)
    return weight * (g.norm(2, dim=1) ** 2).max(), g.norm(2, dim=1)


def fill(t, k, scale):
    """Deterministic values: scale * sin(0.37 i + 1.3 k + 0.1)."""
    i = torch.arange(t.numel(), dtype=torch.float64)
    return (scale * torch.sin(0.37 * i + 1.3 * k + 0.1)).view_as(t)


def tensor_json(t):
    return {"shape": list(t.shape), "values": t.detach().flatten().tolist()}


def critic_case(size, channels, width, batch, seed):
    torch.manual_seed(seed)
    critic = Critic(size, channels, width).double()
    named = critic.named()
    with torch.no_grad():
        for k, (name, p) in enumerate(named):
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(fill(p, k, 1.5 / math.sqrt(fan_in)) if p.dim() > 1 else fill(p, k, 0.1))
    shape = torch.zeros(batch, channels, size, size, dtype=torch.float64)
    real, fake = fill(shape, 50, 1.0), fill(shape, 51, 1.0)
    eps = 0.5 + fill(torch.zeros(batch, dtype=torch.float64), 52, 0.45)
    case = {
        "size": size,
        "channels": channels,
        "width": width,
        "weights": {name: tensor_json(p) for name, p in named},
        "batch": batch,
        "scores_real": tensor_json(critic(real)),
    }
    params = [p for _, p in named]
    for kind, fn, coef in [("gp", gp, 10.0), ("max_gp", max_gp, 0.1)]:
        value, slopes = fn(critic, real, fake, eps, coef)
        grads = torch.autograd.grad(value, params, allow_unused=True)
        # The penalty does not depend on the head's bias: no gradient (zeros here).
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        case[kind] = {
            "coefficient": coef,
            "value": value.item(),
            "slopes": slopes.tolist(),
            "gradients": {name: tensor_json(g) for (name, _), g in zip(named, grads)},
        }
    return case


def generator_case(size, channels, latent, width, batch):
    gen = Generator(size, channels, latent, width).double()
    named = gen.named()
    with torch.no_grad():
        for k, (name, p) in enumerate(named):
            if name.startswith("bn") and name.endswith("weight"):
                p.copy_(1 + fill(p, k, 0.2))
            elif name.startswith("bn"):
                p.copy_(fill(p, k, 0.1))
            else:
                p.copy_(fill(p, k, 1.5 / math.sqrt(p.shape[0])))
    z = fill(torch.zeros(batch, latent, dtype=torch.float64), 99, 1.0)
    gen.train()
    out = gen(z)
    r = fill(torch.zeros_like(out), 77, 1.0)
    grads = torch.autograd.grad((out * r).sum(), [p for _, p in named])
    return {
        "size": size,
        "channels": channels,
        "latent": latent,
        "width": width,
        "weights": {name: tensor_json(p) for name, p in named},
                "output_sum": out.sum().item(),
        "output": tensor_json(out.flatten()[::37]),
        "weighted_sum": (out * r).sum().item(),
        "gradients": {name: tensor_json(g) for (name, _), g in zip(named, grads)},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    counts = []
    for size, channels, latent, gw, cw in [(64, 3, 100, 64, 64), (32, 3, 100, 64, 64), (28, 1, 64, 32, 32),
                                           (32, 3, 16, 8, 4)]:
        counts.append({
            "size": size, "channels": channels, "latent": latent, "generator_width": gw, "critic_width": cw,
            "generator": count(Generator(size, channels, latent, gw)),
            "critic": count(Critic(size, channels, cw)),
            "critic_batch_norm": count(Critic(size, channels, cw, batch_norm=True)),
            "critic_wgan": count(Critic(size, channels, cw, batch_norm=True, sigmoid_head=True)),
        })
    with open(os.path.join(args.out, "param_counts.json"), "w") as f:
        json.dump(counts, f, indent=1)
    fixture = {
        "critics": [critic_case(28, 1, 3, 3, 0), critic_case(32, 3, 2, 2, 1)],
        "generator": generator_case(28, 1, 3, 2, 2),
    }
    with open(os.path.join(args.out, "penalty.json"), "w") as f:
        json.dump(fixture, f)
    print("wrote", args.out, [c["gp"]["value"] for c in fixture["critics"]])


if __name__ == "__main__":
    main()
