"""The two forms of a fast-engine program on a CPU, side by side in one run, program by program.

    python benchmarks/program_forms.py                 # every shape below, 100 epochs
    python benchmarks/program_forms.py --epochs 20 --shapes tanh:5:1-5:100

"default": compiled with XLA's fusion emitters. "narrow": compiled without them (train/jax/program.py uses it
for mixed-depth programs of layers at most NARROW wide). Both trace the same program (model.py: scans over layers
unrolled where every replica has the full depth, rolled in mixed depths). Per shape and form: seconds to make the
program (trace, lower, compile, the disk cache off), seconds to run it, model-epochs per second, and whether the
two forms' final metrics are bit for bit equal (else their largest difference). The replicas are the study's kind:
Glorot (tanh) or He (ReLU) kernels, SGD with momentum, statistics every 10 epochs and one replica's histograms
every 50, as in the default study.
The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ["JAX_COMPILATION_CACHE_DIR"] = ""  # before the engine starts: every program really compiles

# activation:width:depths:replicas, the shapes of the default study's programs
SHAPES = ["tanh:5:1-5:100", "tanh:5:16-20:100", "tanh:5:26-30:100", "relu:5:21-25:100", "relu:3:1-12:120",
          "relu:8:14-24:60", "tanh:10:6-10:50", "tanh:15:1-10:100", "tanh:20:1-10:100", "tanh:25:6-10:50"]
SGD = {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}


def _form(narrow: bool):
    """The engine's program in one form (see the module docstring)."""
    import jax

    from vanishing_gradients.train.jax import program
    options = program.NARROW_OPTIONS if narrow else program.CPU_OPTIONS
    return jax.jit(program._training, static_argnums=(0, 1, 2, 3), compiler_options=options)


def measure(shape: str, epochs: int, data) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from vanishing_gradients.core.models import ModelSpec
    from vanishing_gradients.train.jax import program
    from vanishing_gradients.train.jax.initializers import init_params
    from vanishing_gradients.train.jax.optimizers import hyperparameters
    from vanishing_gradients.train.jax.shuffle import shuffle_keys

    activation, width, depths, replicas = shape.split(":")
    low, high = map(int, depths.split("-"))
    init = "he_uniform" if activation == "relu" else "glorot_uniform"
    depth = np.resize(np.arange(low, high + 1), int(replicas))  # (K,): every depth, in turn
    specs = [ModelSpec(int(d), int(width), activation, init, "glorot_uniform") for d in depth]
    seeds = list(range(1, len(specs) + 1))
    cfg = program.Training(activation, "sgd", epochs, 32, 0.5, 10, 50)
    args = (cfg, "cpu", low != high, False, init_params(specs, seeds, high), hyperparameters([SGD] * len(specs)),
            jnp.asarray(depth, jnp.int32), jnp.arange(min(len(specs), high - low + 1), dtype=jnp.int32),
            shuffle_keys(seeds), data)
    out, finals, run_s = {}, {}, {}
    for name, narrow in (("default", False), ("narrow", True)):
        start = time.perf_counter()
        compiled = _form(narrow).trace(*args).lower().compile()
        made = time.perf_counter()
        finals[name] = np.asarray(jax.block_until_ready(compiled(*args[4:]))["final"])  # (4, K)
        ran = run_s[name] = time.perf_counter() - made
        out[name] = {"compile_s": round(made - start, 1), "run_s": round(ran, 2),
                     "model_epochs_per_s": round(len(specs) * epochs / ran)}
        print(f"{shape:18s} {name:8s} compile {made - start:5.1f} s  run {ran:6.2f} s  "
              f"{len(specs) * epochs / ran:8,.0f} model-epochs/s", flush=True)
    out["speed_up"] = round(run_s["default"] / run_s["narrow"], 2)  # unrounded: a tiny run takes under 0.01 s
    out["same_final_metrics"] = bool(np.array_equal(finals["default"], finals["narrow"], equal_nan=True))
    out["final_max_abs_difference"] = float(np.nanmax(np.abs(finals["default"] - finals["narrow"])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--shapes", default=",".join(SHAPES), help="activation:width:depths:replicas, comma-separated")
    args = parser.parse_args()
    import jax.numpy as jnp

    from vanishing_gradients.core.data import arrays, make_dataset
    frame = make_dataset({"n_samples": 1000, "noise": 0.1, "random_state": 1, "n_train": 500, "scaler_fit": "all"})
    (x, y), (xt, yt) = arrays(frame, "train"), arrays(frame, "test")
    data = tuple(jnp.asarray(a, jnp.float32) for a in (x, y[:, 0], xt, yt[:, 0]))
    results = {shape: measure(shape, args.epochs, data) for shape in args.shapes.split(",")}
    print(json.dumps({"epochs": args.epochs, "shapes": results}))


if __name__ == "__main__":
    main()
