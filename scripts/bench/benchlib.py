"""Shared by the PyTorch halves under scripts/bench/: the machine-readable line `optbench bench`
reads (`OPTBENCH_RESULT {json}`), one per benchmark, besides each script's human line.

    from benchlib import emit
    emit("resnet18", times, forward=fwd, backward=bwd)   # seconds of each timed unit, and parts
"""
import json

import torch


def emit(name, seconds, note="", **parts):
    """Prints `OPTBENCH_RESULT {"name", "seconds": [...], "median", "parts": {...}, "torch", "threads"}`."""
    med = sorted(seconds)[len(seconds) // 2] if seconds else float("nan")
    print("OPTBENCH_RESULT " + json.dumps({
        "name": name,
        "seconds": list(seconds),
        "median": med,
        "parts": {k: list(v) for k, v in parts.items()},
        "note": note,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }), flush=True)
