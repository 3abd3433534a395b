#!/usr/bin/env python3
"""Forward outputs of AdaShift's TensorFlow networks on fixed weights and inputs: the fixtures
of `models/tests/fidelity_tf.rs`, which builds the suite's models, gives them the same weights
by name and compares the logits.

The authors' code (github.com/mknbv/adashift at commit bf86b021d42e922078a39246770f0f875300a6f3,
`author_code_base/`) is TensorFlow 1 and leans on `tf.contrib`, which no TensorFlow installable
here has. So this is a transcription of their graphs in TensorFlow 2 ops, each block with a
comment naming the authors' file and lines it follows:

- `resnet18_adashift`: `ResNet-CIFAR10/ResNet.py` `ResNet.network` with `ops.py`, res_n 18;
- `densenet_adashift_cifar10`: `Densenet-Tensorflow/Cifar10/Densenet_Cifar10.py` `DenseNet`;
- `densenet_tiny_imagenet`: `densenet_tiny_imagenet/models/dense_net.py` `DenseNet`, depth 28,
  growth 12, plain layers (`--model_type DenseNet`), 200 classes, on 32x32 inputs.

Their layers map onto these ops:
- `tf.layers.conv2d(padding='SAME')` / `tf.nn.conv2d(.., 'SAME')` -> `tf.nn.conv2d(padding='SAME')`
  (+ `tf.nn.bias_add` where `use_bias`);
- `tf.layers.dense` / `matmul + bias` -> `tf.matmul` + bias;
- `tf.contrib.layers.batch_norm(.., updates_collections=None)` -> `tf.compat.v1.nn.fused_batch_norm`:
  with `updates_collections=None` contrib takes its fused path (`_fused_batch_norm`), whose
  TF 1.9 `tf.nn.fused_batch_norm` raised epsilon to at least 1.001e-5 (TF 2.21 no longer
  does, so the ResNet's 1e-5 is written 1.001e-5 here). Training mode normalises with the
  biased batch variance; the running statistics move by `assign_moving_average`,
  `v <- v - (v - batch) (1 - decay)`, with the batch variance TensorFlow returns (unbiased);
  the CIFAR DenseNet's `zero_debias_moving_mean=True` debiases the running mean.
- dropout is left out (rate 0): the suite's masks are its own; in inference mode it is the
  identity in both.

Weights and inputs are deterministic: the i-th element (row-major, TensorFlow's layout: HWIO
kernels, [in, out] dense kernels, NHWC images) of the k-th tensor created is
`offset + scale * sin(0.37 i + 0.0011 i^2 + 0.1 k)`, with `scale = sqrt(3 / fan_in)` for kernels. The
fixture lists, per tensor, the TensorFlow name, the suite's name, the shape, the layout and
(phase, offset, scale), so that the Rust test computes the same values without a copy of them.
It also records the parameter count of the transcribed graph (trainable variables: kernels,
biases, gamma, beta), the logits in inference mode (initial running statistics) and in
training mode (batch statistics), and the running statistics of the first and last BatchNorm
after that training pass.

The graph runs twice: in f32 with the fused BatchNorm op the authors' TensorFlow ran, and in f64
(which the fused op does not take) with `tf.nn.moments` + `tf.nn.batch_normalization`. The two
must agree to f32 accuracy (checked here, errors recorded in `fused_f32_errors`); the fixture
holds the f64 outputs, which the Rust test matches in f64 to 1e-9: in f32 the 100-layer
DenseNet's training-mode logits carry rounding of 2e-4, too loose to see small mistakes.

Regenerate (from the project root; needs TensorFlow, e.g. /work/tfvenv with tensorflow-cpu 2.21):

    /work/tfvenv/bin/python scripts/fidelity/tf_models.py --out models/tests/fixtures/fidelity
"""
import argparse
import json
import math
import os

import numpy as np
import tensorflow as tf

BATCH = 3


class Weights:
    """The deterministic tensors of one graph, in creation order, as `dtype` constants."""

    def __init__(self, dtype):
        self.entries = []
        self.dtype = dtype

    def make(self, tf_name, suite_name, shape, layout, offset, scale, trainable=True):
        # Rounded, so that the fixture states the numbers used exactly in few digits.
        phase, scale = round(0.1 * len(self.entries), 6), round(scale, 9)
        values = offset + scale * wave(int(np.prod(shape)), phase)
        entry = dict(tf=tf_name, suite=suite_name, shape=list(shape), layout=layout, phase=phase, offset=offset, scale=scale)
        if not trainable:
            entry["buffer"] = True
        self.entries.append(entry)
        return tf.constant(values.reshape(shape), dtype=self.dtype)

    def kernel(self, tf_name, suite_name, k, cin, cout):
        """A conv kernel, HWIO."""
        return self.make(tf_name, suite_name, [k, k, cin, cout], "hwio", 0.0, math.sqrt(3.0 / (k * k * cin)))

    def dense(self, tf_name, suite_name, cin, cout):
        return self.make(tf_name, suite_name, [cin, cout], "in_out", 0.0, math.sqrt(3.0 / cin))

    def bias(self, tf_name, suite_name, c):
        return self.make(tf_name, suite_name, [c], "vector", 0.0, 0.1)

    def count(self):
        return sum(int(np.prod(e["shape"])) for e in self.entries if not e.get("buffer"))


class BatchNorm:
    """`tf.contrib.layers.batch_norm(x, decay, epsilon, center=True, scale=True,
    updates_collections=None, is_training)` as its fused path computes it."""

    def __init__(self, w, tf_scope, suite, c, decay, eps, zero_debias_mean=False):
        self.gamma = w.make(tf_scope + "/gamma", suite + ".weight", [c], "vector", 1.0, 0.1)
        self.beta = w.make(tf_scope + "/beta", suite + ".bias", [c], "vector", 0.0, 0.1)
        self.mean = w.make(tf_scope + "/moving_mean", suite + ".running_mean", [c], "vector", 0.0, 0.1, False)
        self.var = w.make(tf_scope + "/moving_variance", suite + ".running_var", [c], "vector", 1.0, 0.2, False)
        self.suite, self.decay, self.eps, self.zero_debias_mean = suite, decay, eps, zero_debias_mean
        self.fused = w.dtype == tf.float32
        self.updated = None

    def __call__(self, x, training):
        if not self.fused:
            return self.unfused(x, training)
        if not training:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, self.gamma, self.beta, self.mean, self.var, epsilon=self.eps, is_training=False
            )
            return y
        y, batch_mean, batch_var = tf.compat.v1.nn.fused_batch_norm(
            x, self.gamma, self.beta, epsilon=self.eps, is_training=True
        )
        # moving_averages.assign_moving_average(v, value, decay): v - (v - value) (1 - decay);
        # with zero_debias the biased copy starts at 0 and is divided by 1 - decay^t (t = 1).
        if self.zero_debias_mean:
            mean = (batch_mean * (1 - self.decay)) / (1 - self.decay)
        else:
            mean = self.mean - (self.mean - batch_mean) * (1 - self.decay)
        var = self.var - (self.var - batch_var) * (1 - self.decay)
        self.updated = dict(suite=self.suite, running_mean=floats(mean), running_var=floats(var))
        return y

    def unfused(self, x, training):
        """The same in f64, which the fused op does not take: normalisation by the biased batch
        variance, and the unbiased one (x M / (M - 1)) for the running variance, as the fused
        op returns it; `main` checks the two against each other."""
        if not training:
            return tf.nn.batch_normalization(x, self.mean, self.var, self.beta, self.gamma, self.eps)
        batch_mean, batch_var = tf.nn.moments(x, axes=[0, 1, 2])
        y = tf.nn.batch_normalization(x, batch_mean, batch_var, self.beta, self.gamma, self.eps)
        m = int(np.prod(x.shape[:3]))
        batch_var = batch_var * m / (m - 1)
        if self.zero_debias_mean:
            mean = batch_mean
        else:
            mean = self.mean - (self.mean - batch_mean) * (1 - self.decay)
        var = self.var - (self.var - batch_var) * (1 - self.decay)
        self.updated = dict(suite=self.suite, running_mean=floats(mean), running_var=floats(var))
        return y


def wave(n, phase):
    """sin(0.37 i + 0.0011 i^2 + phase), i = 0 .. n - 1, in f64 (the quadratic term keeps a
    layer's outputs from being one sinusoid over its units)."""
    i = np.arange(n, dtype=np.float64)
    return np.sin(0.37 * i + 0.0011 * (i * i) + phase)


def floats(t):
    return [float(v) for v in np.asarray(t, dtype=np.float64).reshape(-1)]


def conv(x, kernel, stride, bias=None):
    y = tf.nn.conv2d(x, kernel, strides=[1, stride, stride, 1], padding="SAME")
    return y if bias is None else tf.nn.bias_add(y, bias)


# --- AdaShift's ResNet-18: ResNet-CIFAR10/ResNet.py, ops.py -------------------------------


class ResNet18:
    """`ResNet.network` (ResNet.py lines 65-111), res_n = 18."""

    def __init__(self, dtype, classes=10):
        w = self.w = Weights(dtype)
        # ops.py line 130: decay=0.9, epsilon=1e-05, raised to 1.001e-5 by TF 1.9's fused op.
        bn = lambda scope, suite, c: BatchNorm(w, "network/" + scope, suite, c, 0.9, 1.001e-5)

        def conv_layer(scope, suite, k, cin, cout):
            # ops.py lines 18-25: tf.layers.conv2d(.., use_bias=True, padding='SAME') in `scope`.
            kern = w.kernel("network/%s/conv2d/kernel" % scope, suite + ".weight", k, cin, cout)
            b = w.bias("network/%s/conv2d/bias" % scope, suite + ".bias", cout)
            return kern, b

        ch = 32  # ResNet.py line 75
        self.stem = conv_layer("conv", "conv", 3, 3, ch)  # line 76
        self.blocks = []
        cin = ch
        # get_residual_layer(18) = [2, 2, 2, 2] (ops.py lines 79-83); lines 78-100, the
        # authors' last stage is scoped `resblock_3_i`.
        for stage, tf_prefix in enumerate(["resblock0_", "resblock1_", "resblock2_", "resblock_3_"]):
            cout = ch << stage
            for i in range(2):
                downsample = stage > 0 and i == 0
                scope, suite = tf_prefix + str(i), "resblock%d_%d" % (stage, i)
                block = dict(
                    downsample=downsample,
                    # ops.py resblock, lines 34-54
                    bn0=bn(scope + "/batch_norm_0", suite + ".batch_norm_0", cin),
                    conv0=conv_layer(scope + "/conv_0", suite + ".conv_0", 3, cin, cout),
                )
                if downsample:
                    block["conv_init"] = conv_layer(scope + "/conv_init", suite + ".conv_init", 1, cin, cout)
                block["bn1"] = bn(scope + "/batch_norm_1", suite + ".batch_norm_1", cout)
                block["conv1"] = conv_layer(scope + "/conv_1", suite + ".conv_1", 3, cout, cout)
                self.blocks.append(block)
                cin = cout
        self.bn = bn("batch_norm", "batch_norm", cin)  # line 105
        # line 109, ops.py lines 27-32: tf.layers.dense(flatten(x), units, use_bias=True)
        self.logit_w = w.dense("network/logit/dense/kernel", "logit.weight", cin, classes)
        self.logit_b = w.bias("network/logit/dense/bias", "logit.bias", classes)
        self.first_bn, self.last_bn = self.blocks[0]["bn0"], self.bn

    def __call__(self, x, training):
        x = conv(x, self.stem[0], 1, self.stem[1])
        for b in self.blocks:
            # ops.py lines 37-54
            h = tf.nn.relu(b["bn0"](x, training))
            stride = 2 if b["downsample"] else 1
            h = conv(h, b["conv0"][0], stride, b["conv0"][1])
            shortcut = conv(x, b["conv_init"][0], 2, b["conv_init"][1]) if b["downsample"] else x
            h = tf.nn.relu(b["bn1"](h, training))
            h = conv(h, b["conv1"][0], 1, b["conv1"][1])
            x = h + shortcut
        x = tf.nn.relu(self.bn(x, training))  # ResNet.py lines 105-106
        x = tf.reduce_mean(x, axis=[1, 2])  # ops.py global_avg_pooling, lines 108-110, flatten
        return tf.matmul(x, self.logit_w) + self.logit_b


# --- AdaShift's CIFAR-10 DenseNet: Densenet-Tensorflow/Cifar10/Densenet_Cifar10.py ----------


class CifarDenseNet:
    """`DenseNet.Dense_net` (Densenet_Cifar10.py lines 206-235), growth_k 24."""

    def __init__(self, dtype, growth=24, classes=10):
        w = self.w = Weights(dtype)
        k = self.k = growth
        self.conv_count = 0

        def kernel(suite, kk, cin, cout):
            # lines 76-79: tf.layers.conv2d(use_bias=False, padding='SAME') inside a name_scope,
            # which get_variable ignores: the kernels are `conv2d/kernel`, `conv2d_1/kernel`, ..
            name = "conv2d" if self.conv_count == 0 else "conv2d_%d" % self.conv_count
            self.conv_count += 1
            return w.kernel(name + "/kernel", suite + ".weight", kk, cin, cout)

        # lines 94-104: batch_norm(decay=0.9, zero_debias_moving_mean=True), default epsilon 1e-3
        bn = lambda scope, suite, c: BatchNorm(w, scope, suite, c, 0.9, 1e-3, zero_debias_mean=True)

        channels = 2 * k
        self.stem = kernel("conv1", 7, 3, channels)  # line 207: 7x7, stride 2
        self.stages = []
        # lines 216-225: blocks of 6, 12, 48, 32 bottleneck layers, transitions after the first 3
        for i, (tf_name, layers) in enumerate([("dense_1", 6), ("dense_2", 12), ("dense_3", 48), ("dense_final", 32)]):
            block = []
            for l in range(layers):
                scope, suite = "%s_bottleN_%d" % (tf_name, l), "dense%d.%d" % (i + 1, l)
                # bottleneck_layer, lines 161-176
                block.append(
                    dict(
                        bn1=bn(scope + "_batch1", suite + ".a.bn", channels),
                        conv1=kernel(suite + ".a.conv", 1, channels, 4 * k),
                        bn2=bn(scope + "_batch2", suite + ".b.bn", 4 * k),
                        conv2=kernel(suite + ".b.conv", 3, 4 * k, k),
                    )
                )
                channels += k
            self.stages.append(("dense", block))
            if i < 3:
                # transition_layer, lines 178-186: to `filters` = k channels
                scope, suite = "trans_%d" % (i + 1), "trans%d" % (i + 1)
                self.stages.append(
                    ("trans", dict(bn=bn(scope + "_batch1", suite + ".bn", channels), conv=kernel(suite + ".conv", 1, channels, k)))
                )
                channels = k
        self.bn = bn("linear_batch", "bn", channels)  # line 228
        # line 122-123: tf.layers.dense(units=class_num, name='linear'), bias zero-initialised
        self.linear_w = w.dense("linear/kernel", "linear.weight", channels, classes)
        self.linear_b = w.bias("linear/bias", "linear.bias", classes)
        self.first_bn, self.last_bn = self.stages[0][1][0]["bn1"], self.bn

    def __call__(self, x, training):
        x = conv(x, self.stem, 2)
        for kind, stage in self.stages:
            if kind == "dense":
                # dense_block, lines 188-204: concat([input, x_0, x_1, ..]) on channels
                for layer in stage:
                    h = conv(tf.nn.relu(layer["bn1"](x, training)), layer["conv1"], 1)
                    h = conv(tf.nn.relu(layer["bn2"](h, training)), layer["conv2"], 1)
                    x = tf.concat([x, h], axis=3)
            else:
                x = conv(tf.nn.relu(stage["bn"](x, training)), stage["conv"], 1)
                x = tf.nn.avg_pool2d(x, 2, 2, "VALID")  # line 184, Average_pooling (VALID)
        x = tf.nn.relu(self.bn(x, training))  # lines 228-229
        x = tf.reduce_mean(x, axis=[1, 2])  # tflearn global_avg_pool, line 90; flatten
        return tf.matmul(x, self.linear_w) + self.linear_b


# --- AdaShift's Tiny-ImageNet DenseNet: densenet_tiny_imagenet/models/dense_net.py ----------


class TinyDenseNet:
    """`DenseNet._build_graph` (dense_net.py lines 346-366): depth 28, growth 12, 3 blocks,
    plain composite layers (bc_mode False, reduction 1.0)."""

    def __init__(self, dtype, depth=28, growth=12, classes=200):
        w = self.w = Weights(dtype)
        k = growth
        per_block = (depth - 4) // 3  # line 62: (depth - (total_blocks + 1)) // total_blocks

        # lines 313-317: tf.contrib.layers.batch_norm(scale=True, updates_collections=None):
        # decay 0.999, epsilon 1e-3 (contrib's defaults), scope `BatchNorm`
        def composite(scope, suite, cin, cout, kk):
            # composite_function, lines 205-222: BN, ReLU, conv (MSRA, no bias, SAME), dropout
            return dict(
                bn=BatchNorm(w, scope + "/composite_function/BatchNorm", suite + ".bn", cin, 0.999, 1e-3),
                conv=w.kernel(scope + "/composite_function/kernel", suite + ".conv.weight", kk, cin, cout),
            )

        channels = 2 * k  # line 60
        self.stem = w.kernel("Initial_convolution/kernel", "conv1.weight", 3, 3, channels)  # lines 350-354
        self.stages = []
        for block in range(3):
            layers = []
            for l in range(per_block):
                # add_internal_layer, lines 235-252: concat((input, composite(input)))
                layers.append(composite("Block_%d/layer_%d" % (block, l), "dense%d.%d.a" % (block + 1, l), channels, k, 3))
                channels += k
            self.stages.append(("dense", layers))
            if block != 2:
                # transition_layer, lines 262-272: composite 1x1 to int(channels * 1.0), avg pool 2
                self.stages.append(
                    ("trans", composite("Transition_after_block_%d" % block, "trans%d" % (block + 1), channels, channels, 1))
                )
        # transition_layer_to_classes, lines 274-295
        self.bn = BatchNorm(w, "Transition_to_classes/BatchNorm", "bn", channels, 0.999, 1e-3)
        self.fc_w = w.dense("Transition_to_classes/W", "linear.weight", channels, classes)  # xavier, line 291
        self.fc_b = w.bias("Transition_to_classes/bias", "linear.bias", classes)  # zeros, line 293
        self.first_bn, self.last_bn = self.stages[0][1][0]["bn"], self.bn

    def __call__(self, x, training):
        x = conv(x, self.stem, 1)
        for kind, stage in self.stages:
            if kind == "dense":
                for layer in stage:
                    h = conv(tf.nn.relu(layer["bn"](x, training)), layer["conv"], 1)
                    x = tf.concat([x, h], axis=3)  # line 249
            else:
                x = conv(tf.nn.relu(stage["bn"](x, training)), stage["conv"], 1)
                x = tf.nn.avg_pool2d(x, 2, 2, "VALID")  # avg_pool, lines 306-311
        x = tf.nn.relu(self.bn(x, training))
        size = int(x.shape[2])  # line 286: last_pool_kernel = width
        x = tf.nn.avg_pool2d(x, size, size, "VALID")
        x = tf.reshape(x, [-1, int(x.shape[-1])])
        return tf.matmul(x, self.fc_w) + self.fc_b


def images(size, channels=3):
    """The input batch, NHWC, by the same rule with phase 0.5."""
    n = BATCH * size * size * channels
    return wave(n, 0.5).reshape(BATCH, size, size, channels)


def run(model, size, dtype):
    x = tf.constant(images(size), dtype=dtype)
    eval_logits = model(x, training=False)
    train_logits = model(x, training=True)
    return np.asarray(eval_logits, np.float64), np.asarray(train_logits, np.float64)


def max_error(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / (1 + np.abs(np.asarray(b)))))


def record(name, build, size, reference):
    """The fixture: the f64 graph's outputs, after checking that TensorFlow's fused f32 graph
    (the op the authors' code ran) agrees with them to f32 accuracy."""
    model = build(tf.float64)
    eval_logits, train_logits = run(model, size, tf.float64)
    fused = build(tf.float32)
    eval32, train32 = run(fused, size, tf.float32)
    errors = dict(eval=max_error(eval32, eval_logits), train=max_error(train32, train_logits))
    for bn64, bn32 in [(model.first_bn, fused.first_bn), (model.last_bn, fused.last_bn)]:
        for stat in ["running_mean", "running_var"]:
            errors[bn64.suite + "." + stat] = max_error(bn32.updated[stat], bn64.updated[stat])
    # The deep DenseNet's training-mode logits carry f32 rounding of about 2e-4 (3 images,
    # 12 values per channel in the last block); everything else agrees to 1e-5.
    bounds = dict(eval=1e-4, train=1e-3)
    for what, err in errors.items():
        if err > bounds.get(what, 1e-4):
            raise SystemExit("%s: the fused f32 graph and the f64 one differ in %s by %g" % (name, what, err))
    fixture = dict(
        model=name,
        reference=reference,
        generator="scripts/fidelity/tf_models.py",
        tensorflow=tf.__version__,
        dtype="f64",
        fused_f32_errors=errors,
        input=dict(layout="nhwc", shape=[BATCH, size, size, 3], phase=0.5, offset=0.0, scale=1.0),
        value_rule="offset + scale * sin(0.37 i + 0.0011 i^2 + phase), i the row-major index in the TensorFlow layout",
        parameters=model.w.count(),
        tensors=model.w.entries,
        eval_logits=floats(eval_logits),
        train_logits=floats(train_logits),
        logits_shape=list(eval_logits.shape),
        running_after_train=[model.first_bn.updated, model.last_bn.updated],
        running_mean_zero_debiased=model.first_bn.zero_debias_mean,
    )
    return fixture


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="models/tests/fixtures/fidelity")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    commit = "mknbv/adashift@bf86b021d42e922078a39246770f0f875300a6f3"
    cases = [
        ("resnet18_adashift", ResNet18, 32, commit + ":author_code_base/ResNet-CIFAR10/ResNet.py, ops.py"),
        (
            "densenet_adashift_cifar10",
            CifarDenseNet,
            32,
            commit + ":author_code_base/Densenet-Tensorflow/Cifar10/Densenet_Cifar10.py",
        ),
        (
            "densenet_tiny_imagenet",
            TinyDenseNet,
            32,
            commit + ":author_code_base/densenet_tiny_imagenet/models/dense_net.py",
        ),
    ]
    for name, build, size, reference in cases:
        fixture = record(name, build, size, reference)
        path = os.path.join(args.out, name + ".json")
        with open(path, "w") as f:
            json.dump(fixture, f, separators=(",", ":"))
            f.write("\n")
        count, tensors = fixture["parameters"], len(fixture["tensors"])
        print("%s: %d parameters, %d tensors, logits %s -> %s" % (name, count, tensors, fixture["logits_shape"], path))


if __name__ == "__main__":
    main()
