#!/usr/bin/env python3
"""PyTorch side of the LSTM language-model step benchmark: one training step of AdaBelief's PTB
model (AWD-LSTM's RNNModel, LSTM, tied, emsize 400, nhid 1150, 3 layers, dropout 0.4, dropouth
0.25, dropouti 0.4, dropoute 0.1, wdrop 0.5) at batch 20, bptt 70 on random tokens of 10,000
words: forward in training mode, cross-entropy + AR (alpha 2) + TAR (beta 1), backward,
clip_grad_norm_(0.25), SGD (lr 30, weight decay 1.2e-6). The same work as
`cargo bench -p tasks --bench lstm_step`.

The model is written here with the same structure as AWD-LSTM's model.py, embed_regularize.py,
locked_dropout.py and weight_drop.py (one nn.LSTM per layer; WeightDrop as
`F.dropout(weight_hh_raw)` into `torch._VF.lstm` via `torch.func.functional_call`, since AWD's
parameter swap no longer works on PyTorch 2).

    python3 scripts/bench/lstm_step.py [--steps 5] [--threads 2] [--layers 3] [--batch 20]
        [--bptt 70] [--emsize 400] [--nhid 1150] [--vocab 10000] [--device cpu|cuda]
"""
import argparse
import time

import torch
from torch import nn
import torch.nn.functional as F

from benchlib import emit


def locked_dropout(x, p, training):
    if not training or not p:
        return x
    m = x.new_empty(1, x.size(1), x.size(2)).bernoulli_(1 - p) / (1 - p)
    return m * x


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.4, dropouth=0.25, dropouti=0.4, dropoute=0.1, wdrop=0.5):
        super().__init__()
        self.encoder = nn.Embedding(ntoken, ninp)
        sizes = [(ninp if l == 0 else nhid, nhid if l != nlayers - 1 else ninp) for l in range(nlayers)]
        self.rnns = nn.ModuleList([nn.LSTM(i, h, 1) for i, h in sizes])
        self.decoder = nn.Linear(ninp, ntoken)
        self.decoder.weight = self.encoder.weight
        self.encoder.weight.data.uniform_(-0.1, 0.1)
        self.decoder.bias.data.fill_(0)
        self.dropout, self.dropouth, self.dropouti, self.dropoute, self.wdrop = dropout, dropouth, dropouti, dropoute, wdrop
        self.nlayers = nlayers

    def forward(self, tokens, hidden):
        w = self.encoder.weight
        if self.training and self.dropoute:
            mask = w.new_empty(w.size(0), 1).bernoulli_(1 - self.dropoute) / (1 - self.dropoute)
            w = mask * w
        x = locked_dropout(F.embedding(tokens, w), self.dropouti, self.training)
        new_hidden, raw = [], None
        for l, rnn in enumerate(self.rnns):
            params = dict(rnn.named_parameters())
            params["weight_hh_l0"] = F.dropout(params["weight_hh_l0"], self.wdrop, self.training)
            raw, h = torch.func.functional_call(rnn, params, (x, hidden[l]))
            new_hidden.append(h)
            x = locked_dropout(raw, self.dropouth, self.training) if l != self.nlayers - 1 else raw
        out = locked_dropout(raw, self.dropout, self.training)
        return self.decoder(out.view(-1, out.size(2))), new_hidden, raw, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--bptt", type=int, default=70)
    ap.add_argument("--emsize", type=int, default=400)
    ap.add_argument("--nhid", type=int, default=1150)
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = RNNModel(a.vocab, a.emsize, a.nhid, a.layers).to(dev)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=30, weight_decay=1.2e-6)
    ids = torch.randint(0, a.vocab, (a.bptt + 1, a.batch), device=dev)
    x, y = ids[:-1], ids[1:].reshape(-1)
    hidden = [(torch.zeros(1, a.batch, rnn.hidden_size, device=dev), torch.zeros(1, a.batch, rnn.hidden_size, device=dev))
              for rnn in model.rnns]
    times, fwd, bwd = [], [], []
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    for i in range(a.steps + 1):
        t0 = time.perf_counter()
        logits, new_hidden, raw, dropped = model(x, hidden)
        loss = F.cross_entropy(logits, y)
        loss = loss + 2 * dropped.pow(2).mean() + 1 * (raw[1:] - raw[:-1]).pow(2).mean()
        loss.item()
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
        sync()
        t3 = time.perf_counter()
        hidden = [(h.detach(), c.detach()) for h, c in new_hidden]
        if i > 0:
            times.append(t3 - t0)
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
    med = lambda v: sorted(v)[len(v) // 2]
    print(f"pytorch LSTM LM step ({a.layers} layers, emsize {a.emsize}, nhid {a.nhid}), batch {a.batch}, bptt {a.bptt}, "
          f"{a.device}, {a.threads} threads, torch {torch.__version__}: median {med(times):.3f} s "
          f"(forward {med(fwd):.3f} s, backward {med(bwd):.3f} s) over {a.steps} steps")
    emit("lstm", times, f"{a.layers} layers, nhid {a.nhid}", forward=fwd, backward=bwd)


if __name__ == "__main__":
    main()
