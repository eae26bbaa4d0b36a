"""The train stage for either engine: every variant of a study trained, then written as event files.

The fast engine trains all seeds of many variants at once (jax_train.py); the reference engine
trains one `model.fit` after another. Both hand over the same arrays (seed axis last), which
run_events.py writes alike.
"""
from __future__ import annotations

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
                per_seed = [keras_engine.train_one(variant.spec, variant.optimizer, train, events, data, seed,
                                                   detail=k < events["detail_seeds"])
                            for k, seed in enumerate(variant.seeds)]
                yield variant, _stack_seeds(per_seed)
        return device, run()

    from . import jax_train

    jax_device, device = jax_train.select_device(train["device"])
    return device, jax_train.train_variants(variants, train, events, data, jax_device, log)
