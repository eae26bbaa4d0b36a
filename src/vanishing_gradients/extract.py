"""Stage `gradients`: tidy tables built from the TensorBoard event files, not from training memory."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import StageError
from .events import FINAL_PREFIX, LAYER_STATISTICS, MODEL_STATISTICS, read_events
from .training import seed_dir

SCALARS_FILE, HISTOGRAMS_FILE = "scalars.parquet", "histograms.parquet"



class IncompleteRunError(StageError):
    """An event file lacks records a finished run writes: it was cut short or corrupted."""


def check_complete(scalars: pd.DataFrame, epochs: int, layers: list[str], where: Path) -> None:
    """Every scalar a finished run writes is there, for every epoch: a truncated or corrupted event
    file (which TensorBoard's reader reads up to the damage, silently) fails here instead."""
    have = scalars.groupby(["statistic", "layer"])["epoch"].apply(set).to_dict()
    expected = {(s, "model"): set(range(1, epochs + 1)) for s in MODEL_STATISTICS}
    expected |= {(FINAL_PREFIX + s, "model"): {epochs} for s in MODEL_STATISTICS}
    expected |= {(s, layer): set(range(0 if s != "grad_train_mean_abs" else 1, epochs + 1))
                 for s in LAYER_STATISTICS for layer in layers}
    missing = {key: sorted(want - have.get(key, set())) for key, want in expected.items() if want - have.get(key, set())}
    if missing:
        (statistic, layer), lost = next(iter(missing.items()))
        raise IncompleteRunError(f"{where}: incomplete or corrupted event file: {len(missing)} statistics lack "
                                 f"epochs, e.g. {statistic}/{layer} from epoch {lost[0]} ({len(lost)} missing); "
                                 f"re-run the train stage for this experiment")


def extract_experiment(experiment: str, run_dir: str | Path, seeds: list[int], epochs: int,
                       layers: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scalars and histograms of every seed of one experiment, with experiment and seed columns."""
    scalars, histograms = [], []
    for seed in seeds:
        directory = seed_dir(run_dir, seed)
        if not directory.is_dir():
            raise IncompleteRunError(f"{directory}: no run for seed {seed}; re-run the train stage")
        s, h = read_events(directory)
        check_complete(s, epochs, layers, directory)
        scalars.append(s.assign(experiment=experiment, seed=seed))
        histograms.append(h.assign(experiment=experiment, seed=seed))
    return _tidy(pd.concat(scalars)), _tidy(pd.concat(histograms))


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Key columns first, rows in a stable order so equal runs give equal files."""
    keys = ["experiment", "seed", "statistic", "layer", "epoch"]
    extra = [c for c in frame.columns if c not in keys]
    order = keys + (["bin_left"] if "bin_left" in extra else [])
    return frame[keys + extra].sort_values(order, kind="stable").reset_index(drop=True)


def write_tables(scalars: pd.DataFrame, histograms: pd.DataFrame, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    scalars.to_parquet(out_dir / SCALARS_FILE, index=False)
    histograms.to_parquet(out_dir / HISTOGRAMS_FILE, index=False)


def read_scalars(tables_dir: str | Path, experiments: list[str]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(Path(tables_dir) / e / SCALARS_FILE) for e in experiments], ignore_index=True)
