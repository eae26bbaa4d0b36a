"""Stage `data`: the two-circles dataset (docs/study.md): make_circles, MinMaxScaler(-1, 1), first rows train."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .fileio import atomic_path
from .provenance import say

if TYPE_CHECKING:  # imported where used: the train stage reads the dataset without pandas (read_splits)
    import pandas as pd

COLUMNS = ["x1", "x2", "y", "split"]
SPLITS = ("train", "test")


def make_dataset(data_params: dict) -> pd.DataFrame:
    """One row per point: scaled features x1, x2, label y, split 'train' | 'test'."""
    import pandas as pd
    # imported here: every train job and the report read the dataset through this module, and scikit-learn's
    # import (with scipy's) would be a few seconds of each job's start on two cores
    from sklearn.datasets import make_circles
    from sklearn.preprocessing import MinMaxScaler

    x, y = make_circles(n_samples=data_params["n_samples"], noise=data_params["noise"],
                        random_state=data_params["random_state"])
    n_train = data_params["n_train"]
    fit_rows = x if data_params["scaler_fit"] == "all" else x[:n_train]
    x = MinMaxScaler(feature_range=(-1, 1)).fit(fit_rows).transform(x)  # (n_samples, 2)
    split = np.where(np.arange(len(x)) < n_train, "train", "test")
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y.astype(np.int64), "split": split})


def _check_columns(path, columns) -> None:
    if list(columns) != COLUMNS:
        raise ValueError(f"{path}: expected columns {COLUMNS}, found {list(columns)}")


def read_dataset(path) -> pd.DataFrame:
    import pandas as pd

    frame = pd.read_csv(path)
    _check_columns(path, frame.columns)
    return frame


def read_splits(path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each split's arrays as `arrays` gives them, read with numpy alone: every train job reads the dataset, and
    pandas' import would be a sizeable part of its start. Python's float parsing, so the same numbers as pandas'
    (tests/test_dataset.py)."""
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")  # (n,) records
    _check_columns(path, table.dtype.names)
    return {split: arrays(table, split) for split in SPLITS}


def arrays(frame: pd.DataFrame | np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, 2) float32 and labels (n, 1) float32 of one split, in file order, from the dataset as a
    DataFrame or as numpy records (read_splits)."""
    rows = np.asarray(frame["split"]) == split  # (n,)
    column = lambda name: np.asarray(frame[name])[rows, None]  # (rows, 1) as stored
    return (np.concatenate([column("x1"), column("x2")], axis=1).astype(np.float32),
            column("y").astype(np.float32))


def plot_dataset(frame: pd.DataFrame, path, noise: float) -> None:
    """Scatter of the points coloured by class, train and test side by side."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharex=True, sharey=True)
    for ax, split in zip(axes, ["train", "test"]):
        part = frame[frame["split"] == split]
        for label, colour in [(0, "tab:blue"), (1, "tab:orange")]:
            rows = part[part["y"] == label]
            ax.scatter(rows["x1"], rows["x2"], s=8, c=colour, label=f"class {label}")
        ax.set(title=f"{split} set ({len(part)} points)", xlabel="x1 (scaled)", ylabel="x2 (scaled)", aspect="equal")
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"Two circles: make_circles(noise={noise}), scaled to [-1, 1]")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def run(args, params: dict, timing: dict) -> None:
    """Stage `data`: write the dataset's CSV and its scatter plot."""
    frame = make_dataset(params["data"])
    with atomic_path(args.out_csv) as csv, atomic_path(args.out_plot) as png:
        frame.to_csv(csv, index=False, float_format="%.17g")
        plot_dataset(frame, png, params["data"]["noise"])
    say("data", f"{len(frame)} points ({(frame['split'] == 'train').sum()} train) -> {args.out_csv}")
