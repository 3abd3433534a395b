#!/usr/bin/env python3
"""Parameter counts of the suite's models as PyTorch definitions: the numbers the Rust tests
(`models/tests/models.rs`) pin. The definitions follow the CIFAR models of kuangliu/pytorch-cifar
(used by the AdaBound, AdaBelief, Adai and AdaMod repositories) and AdaShift's TensorFlow
DenseNets, with a `width` that scales channels as `max(1, round(c * width))`.

    python3 scripts/models/param_counts.py      # needs torch
"""
import torch
from torch import nn


def scaled(c, width):
    return max(1, round(c * width))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


def resnet(blocks, classes, width):
    m = nn.Module()
    stem = scaled(64, width)
    m.conv1, m.bn1 = nn.Conv2d(3, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem)
    cin, layers = stem, []
    for stage, n in enumerate(blocks):
        cout = scaled(64 << stage, width)
        for i in range(n):
            layers.append(BasicBlock(cin, cout, 2 if stage > 0 and i == 0 else 1))
            cin = cout
    m.layers = nn.ModuleList(layers)
    m.linear = nn.Linear(cin, classes)
    return m


def vgg(cfg, classes, width):
    layers, cin = [], 3
    for c in cfg:
        if c == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            c = scaled(c, width)
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
            cin = c
    return nn.Sequential(nn.Sequential(*layers), nn.Linear(cin, classes))


def vgg_adabelief(cfg, classes, width):
    """AdaBelief's VGG (`PyTorch_Experiments/classification_cifar10/models/vgg.py`): no
    BatchNorm, head Dropout Linear(512, 512) ReLU Dropout Linear(512, 512) ReLU Linear."""
    layers, cin = [], 3
    for c in cfg:
        if c == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            c = scaled(c, width)
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU()]
            cin = c
    hidden = scaled(512, width)
    head = nn.Sequential(nn.Dropout(), nn.Linear(cin, hidden), nn.ReLU(), nn.Dropout(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, classes))
    return nn.Sequential(nn.Sequential(*layers), head)


def densenet(growth, blocks, bottleneck, transition, stem_kernel, classes):
    mods, ch = [nn.Conv2d(3, 2 * growth, stem_kernel, bias=False)], 2 * growth
    for i, n in enumerate(blocks):
        for _ in range(n):
            if bottleneck:
                mods += [nn.BatchNorm2d(ch), nn.Conv2d(ch, 4 * growth, 1, bias=False),
                         nn.BatchNorm2d(4 * growth), nn.Conv2d(4 * growth, growth, 3, bias=False)]
            else:
                mods += [nn.BatchNorm2d(ch), nn.Conv2d(ch, growth, 3, bias=False)]
            ch += growth
        if i + 1 < len(blocks):
            out = growth if transition == "growth" else max(1, int(ch * transition))
            mods += [nn.BatchNorm2d(ch), nn.Conv2d(ch, out, 1, bias=False)]
            ch = out
    mods += [nn.BatchNorm2d(ch), nn.Linear(ch, classes)]
    return nn.ModuleList(mods)


def inception(cin, n1, n3r, n3, n5r, n5, pool, width):
    n1, n3r, n3, n5r, n5, pool = (scaled(c, width) for c in (n1, n3r, n3, n5r, n5, pool))
    conv = lambda a, b, k: [nn.Conv2d(a, b, k, padding=k // 2), nn.BatchNorm2d(b)]
    mods = conv(cin, n1, 1) + conv(cin, n3r, 1) + conv(n3r, n3, 3) + conv(cin, n5r, 1) + conv(n5r, n5, 3) \
        + conv(n5, n5, 3) + conv(cin, pool, 1)
    return nn.ModuleList(mods), n1 + n3 + n5 + pool


def googlenet(classes, width):
    stem = scaled(192, width)
    mods, ch = [nn.Conv2d(3, stem, 3, padding=1), nn.BatchNorm2d(stem)], stem
    for cfg in [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), (192, 96, 208, 16, 48, 64),
                (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
                (256, 160, 320, 32, 128, 128), (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]:
        block, ch = inception(ch, *cfg, width)
        mods.append(block)
    mods.append(nn.Linear(ch, classes))
    return nn.ModuleList(mods)


def count(m):
    return sum(p.numel() for p in m.parameters())


MODELS = {
    "resnet18": lambda c, w: resnet([2, 2, 2, 2], c, w),
    "resnet34": lambda c, w: resnet([3, 4, 6, 3], c, w),
    "vgg11": lambda c, w: vgg([64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"], c, w),
    "vgg11-adabelief": lambda c, w: vgg_adabelief([64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
                                                  c, w),
    "vgg16": lambda c, w: vgg([64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                               512, 512, 512, "M"], c, w),
    "densenet121": lambda c, w: densenet(scaled(32, w), [6, 12, 24, 16], True, 0.5, 3, c),
    "googlenet": googlenet,
    "adashift-densenet-cifar(k)": lambda c, k: densenet(k, [6, 12, 48, 32], True, "growth", 7, c),
    "adashift-densenet-tiny(k), depth 28": lambda c, k: densenet(k, [8, 8, 8], False, 1.0, 3, c),
}

if __name__ == "__main__":
    for name, make in MODELS.items():
        for classes in (10, 100, 200):
            for w in ((1.0, 0.25, 0.125) if "(k)" not in name else (24, 12, 4)):
                print(f"{name:40} classes {classes:3} width/growth {w:>5}: {count(make(classes, w)):>10,}")
