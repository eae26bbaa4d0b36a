"""Stage `gradients`: tidy tables of one study built from its TensorBoard event files (runs.py's
layout), not from training memory:

    variants.parquet    study, variant, statistic, layer, epoch, value   (mean over seeds)
    seeds.parquet       study, variant, config, depth, width, seed, final metrics, epochs_to_target, diverged
    detail.parquet      study, variant, seed, statistic, layer, epoch, value   (detail seeds)
    anatomy.parquet     study, variant, seed, statistic, layer, epoch, value   (every seed, epoch 0 and the last)
    histograms.parquet  study, variant, seed, statistic, layer, epoch, bin_left, bin_right, count
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.errors import StageError
from ..core.fileio import atomic_path
from ..core.provenance import say
from ..core.statistics import ANATOMY_STATISTICS, LAYER_STATISTICS, MODEL_STATISTICS, histogram_epochs, stats_epochs
from ..core.study import Variant, variants
from .events import read_events
from .runs import FINAL_PREFIX, SEED_STATISTICS, defined, seed_dir
from .tables import KEYS, TABLES, write_tables


class IncompleteRunError(StageError):
    """An event file lacks records a finished run writes: it was cut short or corrupted."""


def expected_records(layers: list[str], epochs: int, stats_freq: int) -> set[tuple[str, str, int]]:
    """(statistic, layer, epoch) of every scalar a run with per-epoch statistics holds."""
    want = {(s, "model", e) for s in MODEL_STATISTICS for e in range(1, epochs + 1)}
    return want | {(s, layer, e) for s in LAYER_STATISTICS for layer in layers
                   for e in stats_epochs(epochs, stats_freq) if defined(s, layer, e)}


def anatomy_records(layers: list[str], epochs: int) -> set[tuple[str, str, int]]:
    """(statistic, layer, epoch) of every anatomy scalar a seed's run holds."""
    return {(s, layer, e) for s in ANATOMY_STATISTICS for layer in layers for e in (0, epochs) if defined(s, layer, e)}


def check_complete(scalars: pd.DataFrame, want: set, where: Path) -> None:
    """Every record a finished run writes is there: a truncated or corrupted event file (which
    TensorBoard's reader reads up to the damage, silently) fails here instead."""
    # columns as lists first: iterating pandas' Arrow-backed strings one by one took most of this check's time
    missing = want - set(zip(*(scalars[c].tolist() for c in ("statistic", "layer", "epoch"))))
    if missing:
        statistic, layer, epoch = min(missing, key=lambda m: (m[2], m[0], m[1]))
        raise IncompleteRunError(f"{where}: incomplete or corrupted event file: {len(missing)} records missing, "
                                 f"e.g. {statistic}/{layer} at epoch {epoch}; re-run the train stage for this study")


def _read(directory: Path, want: set) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not directory.is_dir():
        raise IncompleteRunError(f"{directory}: no run there; re-run the train stage for this study")
    scalars, histograms = read_events(directory)
    check_complete(scalars, want, directory)
    return scalars, histograms


def extract_study(run_dir: str | Path, variants: list[Variant], epochs: int, events: dict) -> dict[str, pd.DataFrame]:
    """The four tables of one study (see the module docstring)."""
    tables = {name: [] for name in TABLES}
    final = {(FINAL_PREFIX + s, "model", epochs) for s in MODEL_STATISTICS} | \
        {(s, "model", epochs) for s in SEED_STATISTICS}
    final_statistics = [statistic for statistic, _, _ in final]
    hist_epochs = histogram_epochs(epochs, events["histogram_freq"])
    for variant in variants:
        where = Path(run_dir) / variant.name
        full = expected_records(variant.spec.layer_names, epochs, events["stats_freq"])
        anatomy = anatomy_records(variant.spec.layer_names, epochs)
        keys = {"study": variant.study, "variant": variant.name}
        scalars, _ = _read(where, full)
        tables["variants"].append(scalars.assign(**keys))
        for k, seed in enumerate(variant.seeds):
            is_detail = k < events["detail_seeds"]
            scalars, histograms = _read(seed_dir(where, seed), final | anatomy | (full if is_detail else set()))
            is_final = scalars["statistic"].isin(final_statistics)
            is_anatomy = scalars["statistic"].isin(list(ANATOMY_STATISTICS))
            tables["anatomy"].append(scalars[is_anatomy].assign(**keys, seed=seed))
            at_end = scalars[(scalars["epoch"] == epochs) & is_final]
            row = dict(zip(at_end["statistic"].str.removeprefix(FINAL_PREFIX), at_end["value"]))
            tables["seeds"].append({**keys, "config": variant.config, "depth": variant.depth, "width": variant.width,
                                    "seed": seed, **row})
            if is_detail:
                rest = scalars[~is_final & ~is_anatomy]
                tables["detail"].append(rest.assign(**keys, seed=seed))
                if not row["diverged"]:  # a diverged run's histograms are skipped (no finite range)
                    want = {(kind, layer, e) for kind in ("grad_val", "kernel") for layer in variant.spec.layer_names
                            for e in hist_epochs}
                    check_complete(histograms, want, seed_dir(where, seed))
                tables["histograms"].append(histograms.assign(**keys, seed=seed))
    out = {"seeds": pd.DataFrame(tables["seeds"])}
    out["seeds"]["diverged"] = out["seeds"]["diverged"].astype(bool)
    for name in ("variants", "detail", "histograms", "anatomy"):
        frame = pd.concat(tables[name], ignore_index=True) if tables[name] else pd.DataFrame(columns=KEYS)
        out[name] = _tidy(frame)
    return out


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Key columns first, rows in a stable order so equal runs give equal files."""
    keys = [k for k in KEYS if k in frame.columns]
    extra = [c for c in frame.columns if c not in keys]
    order = keys + (["bin_left"] if "bin_left" in extra else [])
    return frame[keys + extra].sort_values(order, kind="stable").reset_index(drop=True)


def run(args, params: dict, timing: dict) -> None:
    """Stage `gradients`: read one study's event files, check them, write its tables."""
    tables = extract_study(args.runs, variants(params, args.study), params["train"]["epochs"], params["events"])
    with atomic_path(args.out, is_dir=True) as out:
        write_tables(tables, out)
    say(f"gradients {args.study}", ", ".join(f"{len(t)} {name} rows" for name, t in tables.items())
        + f" -> {args.out}")
