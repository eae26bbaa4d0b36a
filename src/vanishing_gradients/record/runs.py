"""A variant's event files, the same for both engines, written from its per-seed arrays:

    <study>/<variant>/              mean over the seeds that did not diverge: model statistics every
                                    epoch, per-layer statistics every `events.stats_freq` epochs
    <study>/<variant>/seed_<n>/     the seed's final metrics, epochs to reach the target accuracy,
                                    the slope of its training loss at the end and whether it diverged;
                                    its anatomy at epoch 0 and the last epoch; detail seeds also their
                                    own statistics and histograms
Each run carries an hparams summary so TensorBoard's HParams dashboard can compare variants.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .events import EventWriter
from ..core.statistics import (ANATOMY_STATISTICS, LAYER, LAYER_STATISTICS, MODEL, MODEL_STATISTICS,
                               histogram_epochs, stats_epochs)
from ..core.study import Variant

FINAL_PREFIX = "final_"
SEED_STATISTICS = ("epochs_to_target", "loss_slope", "diverged")  # per seed, at the last epoch, with the final_* ones
SLOPE_PER = 100  # loss_slope is the training loss's change per this many epochs
SEED_DIR = "seed_{seed}"


def seed_dir(variant_dir: str | Path, seed: int) -> Path:
    return Path(variant_dir) / SEED_DIR.format(seed=seed)


def diverged(history: np.ndarray, final: np.ndarray, layer_stats: np.ndarray | None = None) -> np.ndarray:
    """(seeds,) whether any loss, of an epoch or final, is not finite, or (given layer_stats (stats epochs,
    statistics, L, seeds)) any kernel's L1 norm: weights that overflowed while a saturated network's loss stayed
    finite diverged too. A result, not an error."""
    rows = [MODEL["loss_train"], MODEL["loss_test"]]
    losses = np.concatenate([history[:, rows].reshape(-1, history.shape[-1]), final[rows]])
    if layer_stats is not None:
        norms = layer_stats[:, LAYER["kernel_l1"]].reshape(-1, layer_stats.shape[-1])  # every epoch and layer
        losses = np.concatenate([losses, norms])
    return ~np.all(np.isfinite(losses), axis=0)


def epochs_to_target(history: np.ndarray, target: float) -> np.ndarray:
    """(seeds,) first epoch (1-based) whose test accuracy is at least `target`; NaN if none."""
    reached = history[:, MODEL["accuracy_test"]] >= target  # (epochs, seeds)
    return np.where(reached.any(axis=0), reached.argmax(axis=0) + 1.0, np.nan)


def loss_slope(history: np.ndarray) -> np.ndarray:
    """(seeds,) least-squares slope of the training loss over the last tenth of the epochs (at least two), per
    SLOPE_PER epochs: clearly negative for a seed still learning when training stopped. NaN if it diverged."""
    tail = history[-max(2, len(history) // 10):, MODEL["loss_train"]]  # (epochs, seeds)
    finite = np.all(np.isfinite(tail), axis=0)  # (seeds,)
    tail = np.where(finite, tail, 0.0)
    t = np.arange(len(tail)) - (len(tail) - 1) / 2
    return np.where(finite, SLOPE_PER * np.einsum("e,es->s", t, tail - tail.mean(axis=0)) / np.sum(t * t), np.nan)


def hparams(variant: Variant, train: dict, seed: int | None = None) -> dict:
    """A run's settings as TensorBoard hparams (numbers and strings)."""
    def init(i):
        return i if isinstance(i, str) else f"{i['name']}({', '.join(str(v) for k, v in i.items() if k != 'name')})"
    spec = variant.spec
    values = {"study": variant.study, "variant": variant.name, "config": variant.config, "depth": spec.depth,
              "width": spec.width, "activation": spec.activation, "hidden_init": init(spec.hidden_init),
              "output_init": init(spec.output_init), "engine": train["engine"], "epochs": train["epochs"],
              "batch_size": train["batch_size"], **{f"optimizer_{k}": v for k, v in variant.optimizer.items()}}
    return values | ({"seed": seed} if seed is not None else {"n_seeds": len(variant.seeds)})


def defined(statistic: str, layer: str, epoch: int) -> bool:
    """Whether a per-layer statistic exists there (else it is never written, rather than written as NaN)."""
    entry = LAYER_STATISTICS.get(statistic) or ANATOMY_STATISTICS[statistic]
    return not ((entry.hidden_only and layer == "output") or (entry.after_training and epoch == 0))


def _layer_values(names, layers: list[str], per_statistic: np.ndarray, epoch: int) -> dict[str, float]:
    """{`statistic/layer`: value} of per_statistic (statistics, L) at `epoch`, where the statistic is defined;
    names: the statistics in per_statistic's order (a table of them)."""
    return {f"{statistic}/{layer}": value for statistic, per_layer in zip(names, per_statistic)
            for layer, value in zip(layers, per_layer) if defined(statistic, layer, epoch)}


def _write_statistics(writer: EventWriter, layers: list[str], history: np.ndarray, layer_stats: np.ndarray,
                      train: dict, events: dict) -> None:
    """history (epochs, 4), layer_stats (stats epochs, 6, L) of one run (a seed, or a mean over seeds), one record
    per epoch; NaN is written as NaN (a diverged run), so every run holds the same records."""
    per_epoch = dict(zip(stats_epochs(train["epochs"], events["stats_freq"]), layer_stats))
    writer.scalars(_layer_values(LAYER_STATISTICS, layers, per_epoch[0], 0), 0)  # at initialisation
    for epoch, row in enumerate(history, 1):
        layer = _layer_values(LAYER_STATISTICS, layers, per_epoch[epoch], epoch) if epoch in per_epoch else {}
        writer.scalars(dict(zip(MODEL_STATISTICS, row)) | layer, epoch)


def write_variant(variant_dir: Path, variant: Variant, arrays: dict, train: dict, events: dict) -> list[dict]:
    """Write the variant's event files; returns per seed its final metrics, epochs to target, divergence."""
    history, final, stats = arrays["history"], arrays["final"], arrays["layer_stats"]
    lost = diverged(history, final, stats)
    to_target, slope = epochs_to_target(history, events["target_accuracy"]), loss_slope(history)
    layers = variant.spec.layer_names
    writer = EventWriter(variant_dir)
    writer.hparams(hparams(variant, train), f"{variant.study}/{variant.name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every seed diverged: the mean is NaN, not written
        kept = ~lost
        _write_statistics(writer, layers, np.nanmean(np.where(kept, history, np.nan), axis=-1),
                          np.nanmean(np.where(kept, stats, np.nan), axis=-1), train, events)
    writer.close()
    seeds = []
    for k, seed in enumerate(variant.seeds):
        writer = EventWriter(seed_dir(variant_dir, seed))
        writer.hparams(hparams(variant, train, seed), f"{variant.study}/{variant.name}/seed_{seed}")
        summary = {**dict(zip(MODEL_STATISTICS, final[:, k].tolist())),
                   "epochs_to_target": float(to_target[k]), "diverged": bool(lost[k])}
        at_end = dict(zip([FINAL_PREFIX + s for s in MODEL_STATISTICS] + list(SEED_STATISTICS),
                          [*final[:, k], to_target[k], slope[k], float(lost[k])]))
        anatomy = [_layer_values(ANATOMY_STATISTICS, layers, per_statistic, epoch)  # (A, L) each
                   for epoch, per_statistic in zip((0, train["epochs"]), arrays["anatomy"][..., k])]
        writer.scalars(anatomy[0], 0)
        writer.scalars(at_end | anatomy[1], train["epochs"])
        if k < arrays["hist_counts"].shape[-2]:  # a detail seed
            _write_statistics(writer, layers, history[..., k], stats[..., k], train, events)
            counts, ranges = arrays["hist_counts"][..., k, :], arrays["hist_ranges"][..., k, :]  # (H, L, 2, .)
            for h, epoch in enumerate(histogram_epochs(train["epochs"], events["histogram_freq"])):
                for i, layer in enumerate(layers):
                    for j, kind in enumerate(("grad_val", "kernel")):
                        writer.histogram_counts(f"{kind}/{layer}", *ranges[h, i, j], counts[h, i, j], epoch)
        writer.close()
        seeds.append({"seed": seed, **summary})
    return seeds
