#!/usr/bin/env python3
"""PyTorch side of the Transformer step benchmark: one training step of a post-LN Transformer
of fairseq's `transformer_iwslt_de_en` sizes (6 + 6 layers, d 512, FFN 1024, 4 heads, dropout
0.3, decoder input and output embeddings shared, sinusoidal positions) on 128 x 32 tokens per
side, vocabulary 10,000, label-smoothed cross-entropy 0.1, Adam: the same work as
`cargo bench -p tasks --bench transformer_step`. Built from `torch.nn.Transformer` (which adds a
final layer norm to each stack, a negligible difference in cost).

    python3 scripts/bench/transformer_step.py [--steps 3] [--threads 2] [--device cpu|cuda]
"""
import argparse
import math
import time

import torch
from torch import nn
import torch.nn.functional as F

from benchlib import emit


class Model(nn.Module):
    def __init__(self, vocab, d, ffn, heads, layers):
        super().__init__()
        self.src_embed = nn.Embedding(vocab, d, padding_idx=1)
        self.tgt_embed = nn.Embedding(vocab, d, padding_idx=1)
        self.core = nn.Transformer(d, heads, layers, layers, ffn, dropout=0.3, batch_first=True)
        half = d // 2
        freq = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
        pos = torch.arange(1026, dtype=torch.float)[:, None] * freq[None]
        self.register_buffer("positions", torch.cat([pos.sin(), pos.cos()], 1))
        self.scale = math.sqrt(d)
        self.drop = nn.Dropout(0.3)

    def embed(self, table, x):
        return self.drop(table(x) * self.scale + self.positions[2:2 + x.shape[1]])

    def forward(self, src, prev):
        t = prev.shape[1]
        causal = torch.triu(torch.full((t, t), float("-inf"), device=src.device), 1)
        h = self.core(self.embed(self.src_embed, src), self.embed(self.tgt_embed, prev), tgt_mask=causal)
        return h @ self.tgt_embed.weight.t()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sentences", type=int, default=128)
    ap.add_argument("--len", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = Model(args.vocab, args.d, args.ffn, 4, args.layers).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.98))
    tok = lambda: torch.randint(4, args.vocab, (args.sentences, args.len), device=dev)
    src, prev, gold = tok(), tok(), tok()
    times = []
    for i in range(args.steps + 1):
        t0 = time.perf_counter()
        logits = model(src, prev)
        loss = F.cross_entropy(logits.reshape(-1, args.vocab), gold.reshape(-1), label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:
            times.append(time.perf_counter() - t0)
    times.sort()
    print(f"pytorch transformer step, {args.sentences} x {args.len} tokens: median {times[len(times) // 2]:.3f} s over {args.steps} steps")
    emit("transformer", times, f"{args.sentences} x {args.len} tokens, d {args.d}")


if __name__ == "__main__":
    main()
