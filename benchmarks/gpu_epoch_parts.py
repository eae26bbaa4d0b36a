"""Where a P3 epoch's time goes on the GPU kernels' path: each part of an epoch of train/jax/program.py's _program,
run on its own (jitted, the median of `--repeats` calls after one that compiles), as a share of their sum.

    python benchmarks/gpu_epoch_parts.py --depth 5 --replicas 100000      # on a GPU machine (see gpu_check.sh)

Parts: the row orders (train/jax/shuffle.py), each replica's batches gathered into the kernels' layout, the training
steps, validation loss and accuracy, the statistics of a statistics epoch (validation gradients, unit states)
and the detail replica's histograms (XLA). Per epoch, statistics count 1/--stats-freq and histograms
1/--histogram-freq, as in P3. Off a GPU the kernels are interpreted: only for checking the script.
The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time


def parts(depth: int, K: int) -> dict:
    """Each part as (function, arguments), for K replicas of engine_speed's depth-`depth` tanh model."""
    import jax
    import jax.numpy as jnp
    from engine_speed import SGD, SPEC, _data
    from vanishing_gradients.train.jax import gpu_kernels as gk
    from vanishing_gradients.train.jax import program as je
    from vanishing_gradients.train.jax import initializers as ji
    from vanishing_gradients.train.jax import statistics as js
    from vanishing_gradients.train.jax.model import pack
    from vanishing_gradients.train.jax.optimizers import hyperparameters, zeros_state
    from vanishing_gradients.train.jax.shuffle import permutations, shuffle_keys
    from vanishing_gradients.core.models import ModelSpec
    data = _data()
    x, y = (jnp.asarray(a, jnp.float32) for a in data["train"])
    xt, yt = (jnp.asarray(a, jnp.float32) for a in data["test"])
    y, yt = y[:, 0], yt[:, 0]
    spec, n, B = ModelSpec(**{**SPEC, "depth": depth}), x.shape[0], 32
    params, keys, hp = ji.init_params([spec] * K, range(K), depth), shuffle_keys(range(K)), hyperparameters([SGD] * K)
    cfg = je.Training(spec.activation, "sgd", 1, B)
    steps = -(-n // B)
    order = lambda keys: permutations(keys, 1, n, "gpu")  # (n, K)
    index = jnp.concatenate([order(keys), jnp.zeros((steps * B - n, K), jnp.int32)]).reshape(steps, B, K)
    batches = gk.batches_for_kernels(x, y, index, B)
    val = js.validation_batches(xt, yt, B)
    detail = lambda p: jax.tree.map(lambda a: a[..., :1], p)  # the one detail replica, as in P3
    return {"row orders": (order, (keys,)),
            "batches, kernels' layout": (lambda i: gk.batches_for_kernels(x, y, i, B), (index,)),
            "training steps": (lambda p, s, xb, yb: gk.train_epoch(cfg, n, p, s, hp, 0, None, xb, yb),
                               (params, zeros_state(params, "sgd"), *batches)),
            "validation": (lambda p: gk.shared_rows(p, xt, yt, spec.activation, None, cfg.threshold), (params,)),
            "statistics": (lambda p: gk.val_statistics(cfg, p, None, xt, yt), (params,)),
            "histograms": (lambda p: js.layer_histograms(js.val_grads(detail(p), val, spec.activation, None),
                                                         detail(p), jnp.arange(1)), (pack(params),))}


def median_ms(fn, args, repeats: int) -> float:
    import jax
    compiled = jax.jit(fn).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stats-freq", type=int, default=10)
    parser.add_argument("--histogram-freq", type=int, default=50)
    args = parser.parse_args()
    import jax
    weight = {"statistics": 1 / args.stats_freq, "histograms": 1 / args.histogram_freq}
    ms = {name: median_ms(fn, fn_args, args.repeats)
          for name, (fn, fn_args) in parts(args.depth, args.replicas).items()}
    per_epoch = {name: t * weight.get(name, 1.0) for name, t in ms.items()}
    total = sum(per_epoch.values())
    for name, t in ms.items():
        print(f"{name:<26} {t:9.2f} ms a call  {100 * per_epoch[name] / total:5.1f}% of an epoch", flush=True)
    print(f"{'epoch (sum)':<26} {total:9.2f} ms: {args.replicas / total * 1e3:,.0f} model-epochs/s")
    print(json.dumps({"device": str(jax.devices()[0]), "depth": args.depth, "replicas": args.replicas,
                      "ms_per_call": ms, "ms_per_epoch": total}))


if __name__ == "__main__":
    main()
