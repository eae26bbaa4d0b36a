"""Stage `metrics`: per-experiment summaries over seeds, and plot data for `dvc plots`."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

DIGITS = 6  # rounding keeps metrics.json stable and readable; far below seed-to-seed spread


def _num(value) -> float | None:
    """A JSON-safe rounded float; None for NaN/inf (JSON has neither)."""
    value = float(value)
    return round(value, DIGITS) if math.isfinite(value) else None


def per_seed(scalars: pd.DataFrame) -> pd.DataFrame:
    """One row per (experiment, seed): final accuracies and losses, and whether it diverged."""
    final = scalars[scalars["statistic"].str.startswith("final_")]
    table = final.pivot_table(index=["experiment", "seed"], columns="statistic", values="value", aggfunc="first",
                              dropna=False)
    table.columns = [c.removeprefix("final_") for c in table.columns]
    losses = scalars[scalars["statistic"].isin(["loss_train", "loss_test", "final_loss_train", "final_loss_test"])]
    finite = losses.groupby(["experiment", "seed"])["value"].apply(lambda v: bool(np.isfinite(v).all()))
    table["diverged"] = ~finite.reindex(table.index).fillna(False).astype(bool)
    return table.reset_index()


def layer_means(scalars: pd.DataFrame, statistic: str) -> pd.DataFrame:
    """Mean over seeds and training epochs (>= 1) of a per-layer statistic."""
    rows = scalars[(scalars["statistic"] == statistic) & (scalars["epoch"] >= 1)]
    return rows.groupby(["experiment", "layer"], sort=False)["value"].mean().reset_index()


def summarise(scalars: pd.DataFrame, experiments: list[str], success_accuracy: float) -> dict:
    """metrics.json's content: per experiment, accuracy over seeds, success rate, gradients per layer."""
    seeds = per_seed(scalars)
    grads = {stat: layer_means(scalars, stat) for stat in ("grad_val_mean_abs", "grad_train_mean_abs")}
    out = {}
    for name in experiments:
        rows = seeds[seeds["experiment"] == name]
        entry = {"n_seeds": int(len(rows)), "diverged": int(rows["diverged"].sum()),
                 "success_rate": _num((rows["accuracy_test"] >= success_accuracy).mean())}
        for split in ("train", "test"):
            values = rows[f"accuracy_{split}"]
            entry[f"{split}_accuracy"] = {"mean": _num(values.mean()),
                                          "sd": _num(values.std(ddof=1)) if len(values) > 1 else None}
        for stat, table in grads.items():
            part = table[table["experiment"] == name]
            entry[stat] = {row.layer: _num(row.value) for row in part.itertuples()}
        out[name] = entry
    return out


def learning_curves(scalars: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and epoch: mean over seeds of train/test loss and accuracy (long format)."""
    stats = ["loss_train", "loss_test", "accuracy_train", "accuracy_test"]
    rows = scalars[scalars["statistic"].isin(stats)]
    table = rows.pivot_table(index=["experiment", "epoch"], columns="statistic", values="value", aggfunc="mean")
    return table[stats].round(DIGITS).reset_index()


def gradient_profile(scalars: pd.DataFrame, layer_order: dict[str, list[str]]) -> pd.DataFrame:
    """Per experiment and layer (input to output): mean |validation gradient| over seeds and epochs."""
    table = layer_means(scalars, "grad_val_mean_abs")
    table["layer_index"] = [layer_order[e].index(layer) + 1 for e, layer in zip(table["experiment"], table["layer"])]
    table = table.rename(columns={"value": "grad_val_mean_abs"}).sort_values(["experiment", "layer_index"])
    return table[["experiment", "layer", "layer_index", "grad_val_mean_abs"]].round(DIGITS)
