"""Stage `gradients`: tidy tables built from the TensorBoard event files, not from training memory."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .events import read_events
from .training import seed_dir

SCALARS_FILE, HISTOGRAMS_FILE = "scalars.parquet", "histograms.parquet"


def extract_experiment(experiment: str, run_dir: str | Path, seeds: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scalars and histograms of every seed of one experiment, with experiment and seed columns."""
    scalars, histograms = [], []
    for seed in seeds:
        directory = seed_dir(run_dir, seed)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: no run for seed {seed}; re-run the train stage")
        s, h = read_events(directory)
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
