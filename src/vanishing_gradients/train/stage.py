"""Stage `train`: every variant and seed of one study trained by the engine `train.engine` names, then
written as TensorBoard event files (record/runs.py).

The fast engine (jax/) trains all seeds of many variants at once; the reference engine (keras.py) trains
one `model.fit` after another. Both hand over the same arrays (seed axis last), written alike.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import numpy as np

from ..core.cost import estimate
from ..core.data import read_splits
from ..core.fileio import atomic_path, write_json
from ..core.provenance import say, versions
from ..core.statistics import MODEL
from ..core.study import Variant, variants
from ..record.runs import write_variant


def _stack_seeds(per_seed: list[dict]) -> dict:
    """One variant's per-seed arrays (the reference engine's) in the fast engine's layout: seed axis last."""
    out = {k: np.stack([s[k] for s in per_seed], axis=-1) for k in ("history", "final", "layer_stats", "anatomy")}
    detail = [s for s in per_seed if "hist_counts" in s]
    for k in ("hist_counts", "hist_ranges"):  # (H, L, 2, detail seeds, BUCKETS | 2)
        out[k] = np.stack([s[k] for s in detail], axis=-2) if detail else np.zeros((0, 0, 2, 0, 2))
    return out


def train_variants(todo: list[Variant], train: dict, events: dict, data: dict, threads: int,
                   log: Callable[[str], None], parts: dict) -> tuple[str, Iterator[tuple[Variant, dict]]]:
    """The device used, and an iterator over (variant, arrays) as variants finish training; adds the seconds
    of each part of training to `parts` (the reference engine: "fit"; the fast engine: see train_groups)."""
    if train["engine"] == "keras":
        from . import keras as keras_engine

        keras_engine.configure(threads)
        device = keras_engine.configure_device(train["device"])

        def run():
            for variant in todo:
                per_seed = []
                for k, seed in enumerate(variant.seeds):  # a model.fit is slow: say so after each one
                    start = time.perf_counter()
                    per_seed.append(keras_engine.train_one(variant.spec, variant.optimizer, train, events, data,
                                                           seed, detail=k < events["detail_seeds"]))
                    parts["fit"] += time.perf_counter() - start
                    accuracy = per_seed[-1]["final"][MODEL["accuracy_test"]]
                    log(f"{variant.name} seed {seed} ({k + 1}/{len(variant.seeds)}) in "
                        f"{time.perf_counter() - start:.0f} s: test acc {accuracy:.3f}")
                yield variant, _stack_seeds(per_seed)
        return device, run()

    from .jax import groups

    jax_device, device = groups.jax_device(train["device"])
    return device, groups.train_groups(todo, train, events, data, jax_device, log, parts)


def run(args, params: dict, timing: dict) -> None:
    """Stage `train`: one study's run folder, a logdir per variant and per seed, and run.json."""
    data = read_splits(args.data)  # {"train": (x, y), "test": (x, y)}
    train, events, stage = params["train"], params["events"], f"train {args.study}"
    todo = variants(params, args.study)
    n_models = sum(len(v.seeds) for v in todo)
    with atomic_path(args.out, is_dir=True) as out:
        say(stage, f"{len(todo)} variants, {n_models} models x {train['epochs']} epochs on the "
            f"{train['engine']} engine; estimate: {estimate(params, args.study)}")
        start, parts = time.time(), defaultdict(float)
        device, trained = train_variants(todo, train, events, data, args.threads, lambda m: say(stage, m), parts)
        timing.update(engine=train["engine"], device=device, n_models=n_models)
        for i, (variant, result) in enumerate(trained, 1):
            writing = time.perf_counter()
            seeds = write_variant(out / variant.name, variant, result, train, events)
            parts["write"] += time.perf_counter() - writing
            accuracy = [s["accuracy_test"] for s in seeds]
            lost = sum(s["diverged"] for s in seeds)
            say(stage, f"[{i}/{len(todo)}] {variant.name} at {time.time() - start:.1f} s: test acc "
                f"{min(accuracy):.3f}..{max(accuracy):.3f} over {len(seeds)} seeds"
                f"{f', {lost} DIVERGED' if lost else ''}")
        write_json(out / "run.json", {"study": args.study, "engine": train["engine"], "device": device,
                                      "variants": [v.name for v in todo], "n_models": n_models,
                                      "train_s": round(time.time() - start, 3), "versions": versions()})
        # where the time went, to the millisecond: a tiny study's programs run in less than 0.1 s
        timing["parts_s"] = {k: round(v, 3) for k, v in parts.items()}
