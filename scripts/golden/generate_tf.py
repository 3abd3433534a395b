#!/usr/bin/env python3
"""Record golden trajectories of AdaShift and its AMSGrad baseline as the AdaShift authors'
TensorFlow code computes them (`variant = "tf"` of `adashift` and `amsgrad` in
../shared/spec/optimizers.md; what that code computes, line by line: ADASHIFT_TF.md).

The reference is `author_code_base/optimizer_all.py` of github.com/mknbv/adashift at commit
bf86b021d42e922078a39246770f0f875300a6f3 (the file is unchanged since the repository's first
commit 1b85356), md5 348cf07a5b082bc604c0c29a8f1aafce. Its `AdaShift` and `AMSGrad` are TF1
`tf.train.Optimizer` subclasses; this script runs them under TensorFlow 2's `tf.compat.v1` in
graph mode, on reference (non-resource) variables as TF1 made them (the classes define only
`_apply_dense`, which TF calls for reference variables only), feeding recorded gradients and the
learning rate through placeholders into `apply_gradients`, one `Session.run` per step. A NumPy
transcription of both updates (`adashift_numpy`, `amsgrad_numpy`) runs alongside as a
cross-check: it must agree with TensorFlow to 1e-12 in f64 (1e-6 relative in f32), or the script
stops.

Set-up, once (TensorFlow for the CPU, about 600 MB; torch is not needed):

    python3 -m venv /work/tfvenv
    /work/tfvenv/bin/pip install -r scripts/golden/requirements-tf.txt

The machine that records the fixtures has no internet: get the authors' file from a checkout
of mknbv/adashift at the pinned commit, e.g.

    git -C adashift show bf86b021d42e922078a39246770f0f875300a6f3:author_code_base/optimizer_all.py \\
        > /tmp/optimizer_all.py

and pass it with --adashift-file PATH (or ADASHIFT_OPTIMIZER_ALL=PATH); its md5 must be
348cf07a5b082bc604c0c29a8f1aafce. With neither, the script downloads it from the raw GitHub URL
at that commit into ~/.cache/optbench/references (like generate.py's RAdam and Adai). Then,
from the project root:

    /work/tfvenv/bin/python scripts/golden/generate_tf.py --adashift-file /tmp/optimizer_all.py \\
        --out optimizers/tests/fixtures/golden

Fresh trajectories (other seed, shapes, steps, jittered hyperparameters), as in generate.py:

    /work/tfvenv/bin/python scripts/golden/generate_tf.py --adashift-file /tmp/optimizer_all.py \\
        --out /tmp/fresh --seed 7 --shapes '7;2,5;3,1,4' --steps 41 --perturb

Precision. TF creates every slot in the variable's dtype. The authors only ran float32; their
AdaShift cannot run on float64 variables at all (line 396 casts the activation flag to a
hard-coded tf.float32, and line 399's `tf.maximum(1e-8, ...)` makes 1e-8 a float32 tensor: both
are TypeErrors against float64 operands), so for f64 this script makes those two the variable's
dtype (F64_PATCHES; nothing else changes) and says so in `reference`. Python-float hyperparameters become float32 tensors in TF (and AMSGrad's
beta powers float32 variables), which would put float32-rounded constants into a float64 run:
the f64 runs pass the hyperparameters as np.float64, so that everything is in the parameters'
precision as the contract says; the f32 runs pass Python floats, exactly as the authors did.

If TensorFlow cannot be imported (`--engine numpy`, or automatically with the reason printed),
the fixtures come from the NumPy transcription and `reference` says so.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN's fused kernels may reorder float arithmetic; the authors' TF 1.x had none of them.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import argparse
import sys
import types
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import checked_reference_file, perturbed, write_cases  # noqa: E402

COMMIT = "bf86b021d42e922078a39246770f0f875300a6f3"
AUTHORS_FILE = (
    f"https://raw.githubusercontent.com/mknbv/adashift/{COMMIT}/author_code_base/optimizer_all.py",
    "348cf07a5b082bc604c0c29a8f1aafce",
)
ENV_FILE = "ADASHIFT_OPTIMIZER_ALL"
# The two changes that let the authors' AdaShift build on float64 variables: line 396 casts the
# flag z to a hard-coded tf.float32, and line 399's `tf.maximum(1e-8, x)` makes 1e-8 a float32
# tensor first (both are TypeErrors against float64 operands). Both become the variable's dtype.
F64_PATCHES = [
    ("tf.logical_or(v_t > 0.0, z > 0.0), tf.float32))",
     "tf.logical_or(v_t > 0.0, z > 0.0), var.dtype.base_dtype))"),
    ("b2_fix = tf.maximum(1e-8, 1.0 - b2p_t)",
     "b2_fix = tf.maximum(tf.constant(1e-8, dtype=var.dtype.base_dtype), 1.0 - b2p_t)"),
]

# The contract's `phi` is the authors' `pred_g_op`, with the same three values.
PHI_TO_PRED_G_OP = {"none": "none", "max": "max", "mean": "mean"}

# Every spec gives every hyperparameter explicitly (the authors' AMSGrad default eps is 1e-10,
# the contract's amsgrad default 1e-8; see ADASHIFT_TF.md).
CASES = [
    ("adashift-tf/max-zeros", {"name": "adashift", "variant": "tf", "lr": 0.01, "beta1": 0.9, "beta2": 0.999,
                               "eps": 1e-10, "keep_num": 10, "phi": "max"}),
    ("adashift-tf/mean-zeros", {"name": "adashift", "variant": "tf", "lr": 0.01, "beta1": 0.9, "beta2": 0.999,
                                "eps": 1e-8, "keep_num": 3, "phi": "mean"}),
    ("adashift-tf/none-zeros", {"name": "adashift", "variant": "tf", "lr": 0.001, "beta1": 0.9, "beta2": 0.999,
                                "eps": 1e-10, "keep_num": 10, "phi": "none"}),
    ("adashift-tf/none-short", {"name": "adashift", "variant": "tf", "lr": 0.005, "beta1": 0.8, "beta2": 0.99,
                                "eps": 1e-8, "keep_num": 3, "phi": "none"}),
    ("adashift-tf/max-beta1-zero", {"name": "adashift", "variant": "tf", "lr": 0.01, "beta1": 0.0, "beta2": 0.999,
                                    "eps": 1e-8, "keep_num": 3, "phi": "max"}),
    ("adashift-tf/mean-beta1-zero", {"name": "adashift", "variant": "tf", "lr": 0.01, "beta1": 0.0, "beta2": 0.99,
                                     "eps": 1e-10, "keep_num": 10, "phi": "mean"}),
    ("amsgrad-tf/authors-defaults", {"name": "amsgrad", "variant": "tf", "lr": 0.001, "beta1": 0.9, "beta2": 0.999,
                                     "eps": 1e-10}),
    ("amsgrad-tf/fast", {"name": "amsgrad", "variant": "tf", "lr": 0.01, "beta1": 0.8, "beta2": 0.99,
                         "eps": 1e-8}),
    ("amsgrad-tf/beta1-zero", {"name": "amsgrad", "variant": "tf", "lr": 0.005, "beta1": 0.0, "beta2": 0.9,
                               "eps": 1e-8}),
]

NP_DTYPES = {"f64": np.float64, "f32": np.float32}


def authors_source(local_path):
    path = checked_reference_file("adashift_optimizer_all", *AUTHORS_FILE, local_path)
    return path.read_text()


def authors_module(source, dtype):
    """optimizer_all.py as a module; for f64 with the dtype patches of lines 396 and 399."""
    name = "adashift_optimizer_all"
    if dtype == "f64":
        for old, new in F64_PATCHES:
            if source.count(old) != 1:
                sys.exit(f"optimizer_all.py: {old!r} is not there once; not the pinned file?")
            source = source.replace(old, new)
        name += "_f64"
    module = types.ModuleType(name)
    module.__file__ = f"optimizer_all.py@{COMMIT[:7]}"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def hyper(value, dtype):
    """Hyperparameters as the constructor gets them: Python floats for f32 (as the authors ran
    it: TF makes them float32 tensors), np.float64 for f64 (float64 tensors)."""
    return np.float64(value) if dtype == "f64" else float(value)


# ---------------------------------------------------------------------------------------------
# TensorFlow: the authors' classes, tf.compat.v1 graph mode.

def run_tf(module, tf, spec, dtype, init, grads, lrs):
    """Runs the authors' optimizer; returns the parameters after each step (lists of arrays)."""
    tf_dtype = {"f64": tf.float64, "f32": tf.float32}[dtype]
    graph = tf.Graph()
    with graph.as_default():
        params = [tf.compat.v1.Variable(x, dtype=tf_dtype, name=f"p{i}", use_resource=False)
                  for i, x in enumerate(init)]
        grad_phs = [tf.compat.v1.placeholder(tf_dtype, x.shape, name=f"g{i}") for i, x in enumerate(init)]
        lr_ph = tf.compat.v1.placeholder(tf_dtype, [], name="learning_rate")
        if spec["name"] == "adashift":
            opt = module.AdaShift(learning_rate=lr_ph, keep_num=int(spec["keep_num"]),
                                  beta1=hyper(spec["beta1"], dtype), beta2=hyper(spec["beta2"], dtype),
                                  epsilon=hyper(spec["eps"], dtype), pred_g_op=PHI_TO_PRED_G_OP[spec["phi"]])
        else:
            opt = module.AMSGrad(learning_rate=lr_ph, beta1=hyper(spec["beta1"], dtype),
                                 beta2=hyper(spec["beta2"], dtype), epsilon=hyper(spec["eps"], dtype))
        train = opt.apply_gradients(list(zip(grad_phs, params)))
        for p in params + [opt.get_slot(p, n) for p in params for n in opt.get_slot_names()]:
            if p.dtype.base_dtype != tf_dtype or "_ref" not in p.dtype.name:
                raise RuntimeError(f"{p.name}: {p.dtype} is not a {dtype} reference variable")
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        out = []
        with tf.compat.v1.Session(graph=graph, config=config) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for g, lr in zip(grads, lrs):
                feed = {ph: x for ph, x in zip(grad_phs, g)}
                feed[lr_ph] = lr
                sess.run(train, feed_dict=feed)
                out.append([np.asarray(x) for x in sess.run(params)])
    return out


# ---------------------------------------------------------------------------------------------
# NumPy transcription; the comments name the line of optimizer_all.py each statement follows.

def adashift_numpy(spec, dtype, init, grads, lrs):
    D = NP_DTYPES[dtype]
    n, beta1 = int(spec["keep_num"]), spec["beta1"]
    # 341-342: the weights, in float64 NumPy; `g[i]*self.s[i]` (392) makes each a D constant.
    s = np.asarray([(beta1 ** (n - i - 1)) for i in range(n)])
    s = (s / np.sum(s)).astype(D)
    beta2, eps = D(spec["beta2"]), D(spec["eps"])           # 350-351, 367-368 (cast to var dtype)
    one = D(1)
    state = []
    for x in init:
        zeros = np.zeros_like(x, dtype=D)
        # 357-362: slots g0..g{n} (g0 oldest), v, z, b2p: all zeros in the variable's dtype.
        state.append(dict(g=[zeros.copy() for _ in range(n + 1)], v=zeros.copy(), z=zeros.copy(),
                          b2p=zeros.copy()))
    params = [np.array(x, dtype=D) for x in init]
    out = []
    for g_step, lr in zip(grads, lrs):
        lr = D(lr)                                              # 366
        for p, st, grad in zip(params, state, g_step):
            g, v = st["g"], st["v"]
            sq = np.square(g[0])                                # g[0]: the gradient of step t-n
            r = {"none": sq, "max": np.max(sq), "mean": np.mean(sq)}[spec["phi"]]  # 376-381
            v = v * beta2 + r * (one - beta2)                   # 377 / 379 / 381
            g[-1] = grad.copy()                                 # 386
            for i in range(n):                                  # 387-389: g[i] = g[i+1]
                g[i] = g[i + 1].copy()
            m = np.sum(np.stack([g[i] * s[i] for i in range(n)]), axis=0)  # 392 (after the shift)
            z = np.logical_or(v > 0, st["z"] > 0).astype(D)    # 396
            b2p = st["b2p"] * beta2 * np.sign(z) + (one - np.sign(z))      # 398
            b2_fix = np.maximum(D(1e-8), one - b2p)             # 399
            step = z * m / (np.sqrt(v / b2_fix) + eps)          # 401
            p -= lr * step                                      # 403
            st.update(v=v, z=z, b2p=b2p)
        out.append([x.copy() for x in params])
    return out


def amsgrad_numpy(spec, dtype, init, grads, lrs):
    D = NP_DTYPES[dtype]
    beta1, beta2, eps = D(spec["beta1"]), D(spec["beta2"]), D(spec["eps"])   # 179-182, 204-206
    one = D(1)
    # 194-195: one beta1_power / beta2_power per optimizer, created with the hyperparameters'
    # dtype (float32 from Python floats, float64 in the f64 runs: `hyper`), starting at beta.
    P = np.float64 if dtype == "f64" else np.float32
    b1p, b2p = P(spec["beta1"]), P(spec["beta2"])
    m = [np.zeros_like(x, dtype=D) for x in init]              # 198
    v = [np.zeros_like(x, dtype=D) for x in init]              # 199
    params = [np.array(x, dtype=D) for x in init]
    out = []
    for g_step, lr in zip(grads, lrs):
        lr = D(lr)                                              # 203
        beta1_fix = one - D(b1p)                                # 208, 211
        beta2_fix = one - D(b2p)                                # 209, 212
        for i, (p, grad) in enumerate(zip(params, g_step)):
            m[i] = beta1 * m[i] + grad * (one - beta1)                               # 217
            v[i] = np.maximum(beta2 * v[i] + (grad * grad) * (one - beta2), v[i])    # 218
            p -= lr * (m[i] / beta1_fix) / (np.sqrt(v[i] / beta2_fix) + eps)         # 220
        b1p, b2p = P(b1p * P(spec["beta1"])), P(b2p * P(spec["beta2"]))             # 229-230 (_finish)
        out.append([x.copy() for x in params])
    return out


# ---------------------------------------------------------------------------------------------

def gradients(rng, shapes, steps, dtype, lead):
    """Seeded gradients with exact zeros: p0's element j is 0 for its first 3j steps; p1 has a
    fixed always-zero element, 25% zeros in random steps and is all zero in one step; the last
    tensor is all zero for its first `lead` steps (lead > keep_num)."""
    D = NP_DTYPES[dtype]
    scales = [1.0, 0.1, 3.0, 0.5, 2.0][: len(shapes)] + [1.0] * max(0, len(shapes) - 5)
    all_zero_step = lead + 3
    out = []
    for t in range(1, steps + 1):
        step = []
        for i, shape in enumerate(shapes):
            g = rng.normal(size=shape) * scales[i]
            flat = g.reshape(-1)
            if i == 0:
                flat[np.arange(flat.size) * 3 >= t] = 0.0
            if i == 1:
                flat[min(5, flat.size - 1)] = 0.0
                if rng.random() < 0.4:
                    flat[rng.random(size=flat.size) < 0.25] = 0.0
                if t == all_zero_step:
                    flat[:] = 0.0
            if i == len(shapes) - 1 and t <= lead:
                flat[:] = 0.0
            step.append(g.astype(D))
        out.append(step)
    return out


def trajectory(case, spec, dtype, args, engine):
    rng = np.random.default_rng([args.seed, zlib.crc32(case.encode())])
    if args.perturb:
        spec = perturbed(spec, rng)
    D = NP_DTYPES[dtype]
    shapes = args.shapes
    init = [rng.normal(size=shape).astype(D) for shape in shapes]
    lead = int(spec["keep_num"]) + 4 if spec["name"] == "adashift" else 8
    grads = gradients(rng, shapes, args.steps, dtype, lead)
    lr_change_at = max(2, (3 * args.steps) // 5)
    lrs, lr = [], spec["lr"]
    for t in range(1, args.steps + 1):
        if t == lr_change_at:
            lr = lr * 0.3
        lrs.append(lr)
    transcription = (adashift_numpy if spec["name"] == "adashift" else amsgrad_numpy)(spec, dtype, init, grads,
                                                                                       lrs)
    file_ref = f"mknbv/adashift author_code_base/optimizer_all.py @{COMMIT[:7]} (md5 {AUTHORS_FILE[1]})"
    cls = "AdaShift" if spec["name"] == "adashift" else "AMSGrad"
    if engine["tf"] is not None:
        tf = engine["tf"]
        expected = run_tf(engine["modules"][dtype], tf, spec, dtype, init, grads, lrs)
        worst = check_agreement(case, dtype, expected, transcription)
        engine["agreement"].append((case, dtype, worst))
        reference = f"{file_ref} {cls}, TensorFlow {tf.__version__} tf.compat.v1 graph mode"
        if dtype == "f64":
            reference += ", float64 hyperparameters"
            if spec["name"] == "adashift":
                reference += (", lines 396 and 399 patched to the variable's dtype (they hard-code "
                              "float32 and do not build on float64)")
    else:
        expected = transcription
        reference = (f"NumPy transcription (scripts/golden/generate_tf.py) of {file_ref} {cls}; "
                     f"TensorFlow not run: {engine['why']}")
    record = {
        "format": "optbench-golden/1",
        "case": case,
        "reference": reference,
        "dtype": dtype,
        "optimizer": spec,
        "params": [{"name": f"p{i}", "shape": list(shape), "init": [float(x) for x in x0.reshape(-1)]}
                   for i, (shape, x0) in enumerate(zip(shapes, init))],
        "steps": [],
    }
    for t, (g, lr, after) in enumerate(zip(grads, lrs, expected), start=1):
        step = {}
        if t == lr_change_at:
            step["lr"] = lr
        step["grads"] = [[float(x) for x in gi.reshape(-1)] for gi in g]
        step["expected"] = [[float(x) for x in np.asarray(a, dtype=D).reshape(-1)] for a in after]
        if not all(np.all(np.isfinite(a)) for a in after):
            raise RuntimeError(f"{case}: the reference produced a non-finite value at step {t}")
        record["steps"].append(step)
    return record


def check_agreement(case, dtype, tf_out, np_out):
    """TF against the NumPy transcription: 1e-12 absolute + relative in f64, 1e-6 in f32."""
    tol = 1e-12 if dtype == "f64" else 1e-6
    worst = 0.0
    for t, (a_step, b_step) in enumerate(zip(tf_out, np_out), start=1):
        for i, (a, b) in enumerate(zip(a_step, b_step)):
            a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
            err = float(np.max(np.abs(a - b) / (1.0 + np.abs(b))))
            worst = max(worst, err)
            if err > tol:
                raise RuntimeError(f"{case} {dtype}: TensorFlow and the NumPy transcription differ by {err:.3g} "
                                   f"at step {t}, p{i}")
    return worst


def import_tensorflow():
    try:
        import tensorflow as tf
    except Exception as e:  # noqa: BLE001 - any failure to import means: fall back, say why
        return None, f"import tensorflow failed: {type(e).__name__}: {e}"
    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.disable_resource_variables()
    tf.get_logger().setLevel("ERROR")
    return tf, None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder for the golden files")
    parser.add_argument("--adashift-file", type=Path, default=os.environ.get(ENV_FILE) or None,
                        help=f"the authors' optimizer_all.py at {COMMIT[:7]} (md5 {AUTHORS_FILE[1]}); "
                             f"default ${ENV_FILE}, else downloaded")
    parser.add_argument("--engine", choices=["auto", "tf", "numpy"], default="auto",
                        help="tf: the authors' code under TensorFlow (auto: if it imports); numpy: the transcription")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=36, help="steps per trajectory (default 36)")
    parser.add_argument("--shapes", default="5;3,4;2,3,2",
                        help="parameter shapes, ';' between parameters (default '5;3,4;2,3,2')")
    parser.add_argument("--dtypes", default="f64,f32")
    parser.add_argument("--only", default="", help="keep the cases whose name contains this")
    parser.add_argument("--perturb", action="store_true", help="jitter every case's hyperparameters")
    args = parser.parse_args()
    args.shapes = [tuple(int(d) for d in s.split(",")) for s in args.shapes.split(";")]
    source = authors_source(args.adashift_file)
    engine = {"tf": None, "why": "--engine numpy", "modules": {}, "agreement": []}
    if args.engine != "numpy":
        engine["tf"], why = import_tensorflow()
        if engine["tf"] is None:
            if args.engine == "tf":
                sys.exit(why)
            engine["why"] = why
            print(f"{why}; the fixtures come from the NumPy transcription", file=sys.stderr)
        else:
            engine["modules"] = {d: authors_module(source, d) for d in ("f64", "f32")}
    write_cases(CASES, args, lambda case, spec, dtype: trajectory(case, spec, dtype, args, engine))
    for case, dtype, worst in engine["agreement"]:
        print(f"{case} {dtype}: TensorFlow vs NumPy transcription, worst |a-b|/(1+|b|) = {worst:.3g}")


if __name__ == "__main__":
    main()
