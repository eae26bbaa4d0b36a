"""Figures of the report, built from the extracted event tables."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "figure.dpi": 100})


def learning_curves(scalars: pd.DataFrame, experiments: list[str], statistic: str, ylabel: str):
    """Mean over seeds per epoch, with a band from the lowest to the highest seed."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    rows = scalars[scalars["statistic"] == statistic]
    for name in experiments:
        per_epoch = rows[rows["experiment"] == name].groupby("epoch")["value"]
        mean, low, high = per_epoch.mean(), per_epoch.min(), per_epoch.max()
        line, = ax.plot(mean.index, mean.values, label=f"{name} (mean of {rows[rows['experiment'] == name]['seed'].nunique()} seeds)")
        ax.fill_between(mean.index, low.values, high.values, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set(title=f"{ylabel} per epoch (band: min to max over seeds)", xlabel="epoch", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def per_layer_curves(scalars: pd.DataFrame, experiments: list[str], statistic: str, layers: dict[str, list[str]],
                     ylabel: str, title: str):
    """One panel per experiment: a line per layer over epochs (mean over seeds), log scale, shared y axis."""
    fig, axes = plt.subplots(1, len(experiments), figsize=(6 * len(experiments), 4.5), sharey=True, squeeze=False)
    rows = scalars[(scalars["statistic"] == statistic) & (scalars["epoch"] >= 1)]
    for ax, name in zip(axes[0], experiments):
        part = rows[rows["experiment"] == name]
        colours = plt.cm.viridis(np.linspace(0, 0.9, len(layers[name])))
        for layer, colour in zip(layers[name], colours):
            mean = part[part["layer"] == layer].groupby("epoch")["value"].mean()
            ax.plot(mean.index, mean.values, color=colour, label=layer)
        ax.set(title=name, xlabel="epoch", yscale="log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=9, title="layer (input to output)")
    axes[0][0].set_ylabel(f"{ylabel} (log scale)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def gradient_profile(profile: pd.DataFrame, experiments: list[str]):
    """Mean |gradient| per layer position, one line per experiment (from the metrics stage's plot data)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in experiments:
        part = profile[profile["experiment"] == name]
        ax.plot(part["layer_index"], part["grad_val_mean_abs"], marker="o", label=name)
    ax.set(title="Mean |validation gradient| per layer, averaged over epochs and seeds",
           xlabel="layer (1 = first hidden layer, last = output)", ylabel="mean |dLoss/dkernel|", yscale="log")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig
