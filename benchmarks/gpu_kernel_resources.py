"""Registers, spills and instruction count of each GPU kernel (gpu_kernels.py), compiled for an H100 (sm_90a)
on a machine without a GPU: JAX lowers the kernels for CUDA, Triton and its ptxas compile them.

    python -m venv /tmp/triton && /tmp/triton/bin/pip install triton==3.6.0
    python benchmarks/gpu_kernel_resources.py --triton-python /tmp/triton/bin/python

Triton here is pip's, not the one inside jaxlib that compiles the kernels on a GPU, so the figures are a
guide (spills and address arithmetic are what made the kernels slow; see README), not a measurement. The
kernels' text comes from Pallas's debug print, with its source locations removed; a barrier is dropped,
since pip's Triton does not parse the `gpu` dialect it belongs to.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

TRITON_COMPILE = """
import sys, triton
from triton.backends.compiler import GPUTarget
kernel = triton.compile(sys.argv[1], target=GPUTarget("cuda", 90, 32), options={"num_warps": 1, "num_stages": 1})
open(sys.argv[2], "w").write(kernel.asm["ptx"])
bin_dir = triton.__path__[0] + "/backends/nvidia/bin/"
print(bin_dir)
"""


def triton_text(call) -> str:
    """The Triton module of the one pallas_call in `call`, lowered for CUDA, without source locations."""
    import jax
    from vanishing_gradients.train.jax import gpu_kernels
    printed = io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(printed))
        stack.enter_context(mock.patch.object(gpu_kernels.jax, "default_backend", lambda: "gpu"))  # not interpreted
        stack.enter_context(mock.patch.object(gpu_kernels.pl, "pallas_call",
                                              functools.partial(gpu_kernels.pl.pallas_call, debug=True)))
        jax.jit(call).trace().lower(lowering_platforms=("cuda",))
    lines = printed.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("module @"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("}"))
    kept = []
    for line in lines[start:end + 1]:
        if line.startswith("#loc") or "gpu.barrier" in line:
            continue
        line = re.sub(r' "[^"]*"\(#loc\d*\)| loc\([^)]*\)| #loc\d*| \[unknown\]', "", line)
        kept.append(line)
    return "\n".join(kept) + "\n"


def kernels(depth: int) -> dict:
    """Each kernel as the engine calls it, for 64 replicas of a depth-`depth`, width-5 tanh model with SGD."""
    import jax.numpy as jnp
    from vanishing_gradients.train.jax import gpu_kernels as gk
    from vanishing_gradients.train.jax import program as je
    from vanishing_gradients.train.jax import initializers as ji
    from vanishing_gradients.train.jax import optimizers as jo
    from vanishing_gradients.core.models import ModelSpec
    K, uniform = 64, {"name": "random_uniform", "minval": 0.0, "maxval": 1.0}
    params = ji.init_params([ModelSpec(depth, 5, "tanh", uniform, uniform)] * K, list(range(K)), depth)
    cfg = je.Training("tanh", "sgd", 1, 32)
    hp = jo.hyperparameters([{"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}] * K)
    state = jo.zeros_state(params, "sgd")
    x, y = jnp.zeros((K, 16, 32, 2)), jnp.zeros((K, 16, 32))
    rows, labels = jnp.zeros((500, 2)), jnp.zeros(500)
    return {"train_epoch": lambda: gk.train_epoch(cfg, 500, params, state, hp, 0, None, x, y),
            "shared_rows": lambda: gk.shared_rows(params, rows, labels, "tanh", None, 0.5),
            "shared_rows(stats)": lambda: gk.shared_rows(params, rows, labels, "tanh", None, 0.5, stats=True),
            "val_grad_means": lambda: gk.val_grad_means(cfg, params, None, rows, labels)}


def resources(text: str, triton_python: str, work: Path) -> str:
    source, ptx, cubin = work / "kernel.ttir", work / "kernel.ptx", work / "kernel.cubin"
    source.write_text(text)
    bin_dir = subprocess.run([triton_python, "-c", TRITON_COMPILE, source, ptx], check=True, capture_output=True,
                             text=True).stdout.strip()
    report = subprocess.run([bin_dir + "ptxas", "-arch=sm_90a", "-v", ptx, "-o", cubin], check=True,
                            capture_output=True, text=True).stderr
    sass = subprocess.run([bin_dir + "cuobjdump", "-sass", cubin], check=True, capture_output=True, text=True).stdout
    registers = re.search(r"Used (\d+) registers", report).group(1)
    spills = re.search(r"(\d+) bytes spill stores", report).group(1)
    instructions = len(re.findall(r"/\*[0-9a-f]{4,}\*/\s+\S", sass))
    return f"{registers:>9} {spills:>12} {instructions:>12}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triton-python", required=True, help="a Python that has triton (see above)")
    parser.add_argument("--depths", default="5,20")
    args = parser.parse_args()
    print(f"{'kernel':<20} {'depth':>5} {'registers':>9} {'spill bytes':>12} {'instructions':>12}")
    with tempfile.TemporaryDirectory() as work:
        for depth in map(int, args.depths.split(",")):
            for name, call in kernels(depth).items():
                print(f"{name:<20} {depth:>5} {resources(triton_text(call), args.triton_python, Path(work))}",
                      flush=True)


if __name__ == "__main__":
    sys.exit(main())
