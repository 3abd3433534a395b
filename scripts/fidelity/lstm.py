"""Fixtures for models/tests/lstm.rs: PyTorch's nn.LSTM on fixed weights, and the parameter counts
of AWD-LSTM's RNNModel for the AdaBelief paper's Penn Treebank models.

Regenerate (from the repository root):

    git --git-dir=<mirror of salesforce/awd-lstm-lm> archive 1d466ec5875675ca6b6f0caacbb741240a29da9e \
        | tar -x -C /tmp/awd-lstm-lm
    /work/main/.venv/bin/python scripts/fidelity/lstm.py --awd /tmp/awd-lstm-lm \
        --out models/tests/fixtures/lstm.json

`--awd` is a checkout of awd-lstm-lm (or AdaBelief's PyTorch_Experiments/LSTM, the same
model.py): its `model.py` is imported to build RNNModel(LSTM, ntoken 10000, emsize 400, nhid 1150,
nlayers 1-3, tied, wdrop 0.5) and count `model.parameters()` (the tied weight once), as
main.py:170-171 does.
"""

import argparse
import json
import sys

import torch


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def lstm_case(seed=0, layers=2, inputs=4, hidden=8, steps=5, batch=3):
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(inputs, hidden, num_layers=layers).double()
    x = torch.randn(steps, batch, inputs, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(layers, batch, hidden, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(layers, batch, hidden, dtype=torch.float64, requires_grad=True)
    out, (hn, cn) = lstm(x, (h0, c0))
    # A loss that weighs every output, and the last state, differently.
    r_out = torch.randn_like(out)
    r_h = torch.randn_like(hn)
    r_c = torch.randn_like(cn)
    loss = (out * r_out).sum() + (hn * r_h).sum() + (cn * r_c).sum()
    loss.backward()
    case = {
        "layers": layers, "inputs": inputs, "hidden": hidden, "steps": steps, "batch": batch,
        "x": flat(x), "h0": flat(h0), "c0": flat(c0),
        "r_out": flat(r_out), "r_h": flat(r_h), "r_c": flat(r_c),
        "out": flat(out), "hn": flat(hn), "cn": flat(cn), "loss": float(loss),
        "grad_x": flat(x.grad), "grad_h0": flat(h0.grad), "grad_c0": flat(c0.grad),
        "weights": {}, "grads": {},
    }
    for name, p in lstm.named_parameters():
        case["weights"][name] = flat(p)
        case["grads"][name] = flat(p.grad)
    return case


def awd_counts(awd_dir):
    sys.path.insert(0, awd_dir)
    import model as awd_model  # noqa: E402  (AWD-LSTM's model.py)

    counts = {}
    for layers in (1, 2, 3):
        m = awd_model.RNNModel("LSTM", 10000, 400, 1150, layers, 0.4, 0.25, 0.4, 0.1, 0.5, True)
        counts[str(layers)] = sum(p.numel() for p in m.parameters())
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--awd", required=True, help="a checkout of salesforce/awd-lstm-lm")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    fixture = {
        "torch": torch.__version__,
        "lstm": lstm_case(),
        "awd_parameters": {"ntoken": 10000, "emsize": 400, "nhid": 1150, "tied": True,
                           "counts": awd_counts(args.awd)},
    }
    with open(args.out, "w") as f:
        json.dump(fixture, f)
    print(fixture["awd_parameters"])


if __name__ == "__main__":
    main()
