"""What each fast-engine program of a study costs on this machine, and core/cost.py's constants fitted to it.

    python benchmarks/program_costs.py                      # every program of params.yaml's studies, 20 epochs
    python benchmarks/program_costs.py --studies breadth --epochs 5

Each program that core/cost.py's `programs` makes of a study's variants is made (trace, lower, XLA's compile, the
disk cache off) and run alone, one after another, with the study's initialisers, optimiser and statistics. Per
program: CPU seconds making it, CPU seconds running it (`--epochs`, scaled to the parameters' train.epochs, so the
fixed parts, the anatomy and the final evaluation, count more than once), and the estimate's two parts. A program
whose shape was made before (another study of the same shapes) comes from JAX's memory, as it would come from the
disk cache in the pipeline: its making counts zero and is left out of the fit. Then the least-squares fit (of
relative errors) of the estimate's constants to these figures, where core/cost.py's constants come from (its
MIN_REPLICAS does not: programs timed alone do not show what small ones cost in a train job). The last line printed
is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ["JAX_COMPILATION_CACHE_DIR"] = ""  # before the engine starts: every program really compiles


def _arrays(params: dict):
    import jax.numpy as jnp

    from vanishing_gradients.core.data import arrays, make_dataset
    frame = make_dataset(params["data"])
    (x, y), (xt, yt) = arrays(frame, "train"), arrays(frame, "test")
    return tuple(jnp.asarray(a, jnp.float32) for a in (x, y[:, 0], xt, yt[:, 0]))


def measure(group, params: dict, epochs: int, data) -> dict:
    """Make and run one program of `epochs` epochs: its shape, CPU seconds making it and running it."""
    import jax
    import jax.numpy as jnp

    from vanishing_gradients.train.jax import program
    from vanishing_gradients.train.jax.initializers import init_params
    from vanishing_gradients.train.jax.optimizers import hyperparameters
    from vanishing_gradients.train.jax.shuffle import shuffle_keys

    specs, seeds, optimizers, detail = [], [], [], []
    for variant in group:  # as train/jax/groups.py assembles a program
        detail += [len(seeds) + j for j in range(min(params["events"]["detail_seeds"], len(variant.seeds)))]
        specs += [variant.spec] * len(variant.seeds)
        seeds += list(variant.seeds)
        optimizers += [variant.optimizer] * len(variant.seeds)
    deepest, first = max(s.depth for s in specs), group[0]
    mixed = any(s.depth != deepest for s in specs)
    events = params["events"]
    cfg = program.Training(first.spec.activation, first.optimizer["name"], epochs, params["train"]["batch_size"],
                           params["train"]["threshold"], events["stats_freq"], events["histogram_freq"],
                           first.optimizer.get("nesterov", False))
    args = (cfg, "cpu", mixed, False, init_params(specs, seeds, deepest), hyperparameters(optimizers),
            jnp.asarray([s.depth for s in specs], jnp.int32),
            jnp.asarray(detail, jnp.int32), shuffle_keys(seeds), data)
    start = time.process_time()
    made = program.compiled("cpu", mixed, first.width).trace(*args).lower().compile()
    making = time.process_time()
    jax.block_until_ready(made(*args[4:]))
    return {"width": first.width, "depths": [group[0].depth, group[-1].depth], "replicas": len(seeds),
            "activation": first.spec.activation, "optimizer": first.optimizer["name"],
            "make_cpu_s": round(making - start, 2), "run_cpu_s": time.process_time() - making}


def fit(rows: list[dict], n_rows: int) -> dict:
    """core/cost.py's constants fitted to the measured programs: least squares of relative errors."""
    import numpy as np

    made = [r for r in rows if r["make_cpu_s"] > 0]
    depth, width = (np.array([r[key] for r in made], float) for key in ("deepest", "width"))
    making = np.stack([np.ones_like(depth), depth, width], 1) / np.array([r["make_cpu_s"] for r in made])[:, None]
    constants = np.linalg.lstsq(making, np.ones(len(made)), rcond=None)[0]
    k, d, w = (np.array([r[key] for r in rows], float) for key in ("replicas", "deepest", "width"))
    per_epoch = np.array([r["run_cpu_s_per_epoch"] for r in rows])
    terms = np.stack([k * d * w * n_rows, k * d * w * w * n_rows, d * w, np.ones_like(k)], 1)
    run = np.linalg.lstsq(terms / per_epoch[:, None], np.ones(len(rows)), rcond=None)[0]
    return {"COMPILE_S": float(constants[0]), "COMPILE_S_PER_LAYER": float(constants[1]),
            "COMPILE_S_PER_WIDTH": float(constants[2]),
            "UNIT_ROW_S": float(run[0]), "UNIT_ROW_S_PER_WIDTH": float(run[1]), "UNIT_EPOCH_S": float(run[2]),
            "PROGRAM_EPOCH_S": float(run[3])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--studies", help="comma-separated (default: every study)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs each program runs (its time is scaled)")
    args = parser.parse_args()
    from vanishing_gradients.core import cost, params as parameters, study

    params = parameters.load(args.params)
    epochs, n_rows = params["train"]["epochs"], params["data"]["n_samples"]
    data, rows = _arrays(params), []
    for name in args.studies.split(",") if args.studies else params["studies"]:
        for group in cost.programs(study.variants(params, name), epochs, n_rows):
            row = {"study": name, **measure(group, params, args.epochs, data)}
            row["deepest"] = row["depths"][1]
            row["run_cpu_s_per_epoch"] = row.pop("run_cpu_s") / args.epochs
            row["run_cpu_s"] = round(row["run_cpu_s_per_epoch"] * epochs, 3)  # a tiny program: milliseconds
            whole = cost.program_seconds(group, epochs, n_rows)
            made = cost.making_seconds(max(group, key=lambda v: v.depth))
            row["estimate_s"] = {"make": round(made, 1), "run": round(whole - made, 1)}
            rows.append(row)
            print(f"{name:24s} width {row['width']:2d} depths {row['depths'][0]:2d}-{row['depths'][1]:2d} "
                  f"{row['replicas']:5d} replicas: making {row['make_cpu_s']:5.1f} s (estimate {made:5.1f}), running "
                  f"{row['run_cpu_s']:7.1f} s (estimate {whole - made:7.1f}) of CPU", flush=True)
    fitted = fit(rows, n_rows) if len(rows) >= 4 else None
    if fitted:
        print("fitted:", ", ".join(f"{k} = {v:.3g}" for k, v in fitted.items()))
    print(json.dumps({"epochs_run": args.epochs, "epochs": epochs, "programs": rows, "fitted": fitted,
                      "make_cpu_s": round(sum(r["make_cpu_s"] for r in rows), 1),
                      "run_cpu_s": round(sum(r["run_cpu_s"] for r in rows), 3)}))


if __name__ == "__main__":
    main()
