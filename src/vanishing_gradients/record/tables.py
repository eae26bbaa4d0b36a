"""The extracted tables on disk, one parquet file per table in each study's folder: written by the
`gradients` stage (gradients.py), read by the metrics and the report."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

TABLES = ("variants", "seeds", "detail", "histograms", "anatomy")
KEYS = ["study", "variant", "seed", "statistic", "layer", "epoch"]


def write_tables(tables: dict[str, pd.DataFrame], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)


def read_table(tables_dir: str | Path, studies: list[str], name: str) -> pd.DataFrame:
    """Table `name` of every study, concatenated."""
    return pd.concat([pd.read_parquet(Path(tables_dir) / s / f"{name}.parquet") for s in studies], ignore_index=True)
