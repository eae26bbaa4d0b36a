"""The train stage for either engine: every variant of a study trained, then written as event files.

The fast engine trains all seeds of many variants at once (jax_train.py); the reference engine
trains one `model.fit` after another. Both hand over the same arrays (seed axis last), which
run_events.py writes alike.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np

from .study import Variant


def _stack_seeds(per_seed: list[dict]) -> dict:
    """One variant's per-seed arrays (the reference engine's) in the fast engine's layout: seed axis last."""
    out = {k: np.stack([s[k] for s in per_seed], axis=-1) for k in ("history", "final", "layer_stats")}
    detail = [s for s in per_seed if "hist_counts" in s]
    for k in ("hist_counts", "hist_ranges"):  # (H, L, 2, detail seeds, BUCKETS | 2)
        out[k] = np.stack([s[k] for s in detail], axis=-2) if detail else np.zeros((0, 0, 2, 0, 2))
    return out


def train_variants(variants: list[Variant], train: dict, events: dict, data: dict, threads: int,
                   log: Callable[[str], None]) -> tuple[str, Iterator[tuple[Variant, dict]]]:
    """The device used, and an iterator over (variant, arrays) as variants finish training."""
    if train["engine"] == "keras":
        from . import keras_engine

        keras_engine.configure(threads)
        device = keras_engine.select_device(train["device"])

        def run():
            for variant in variants:
                per_seed = []
                for k, seed in enumerate(variant.seeds):  # a model takes ~30 s: say so after each one
                    start = time.perf_counter()
                    per_seed.append(keras_engine.train_one(variant.spec, variant.optimizer, train, events, data,
                                                           seed, detail=k < events["detail_seeds"]))
                    log(f"{variant.name} seed {seed} ({k + 1}/{len(variant.seeds)}) in "
                        f"{time.perf_counter() - start:.0f} s: test acc {per_seed[-1]['final'][3]:.3f}")
                yield variant, _stack_seeds(per_seed)
        return device, run()

    from . import jax_train

    jax_device, device = jax_train.select_device(train["device"])
    return device, jax_train.train_variants(variants, train, events, data, jax_device, log)
