"""Figures of the report, built from the extracted event tables and the statistics over them. Every figure
that shows configurations takes `colours` (palette): one colour per configuration, the same in every figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "figure.dpi": 100, "axes.grid": True,
                     "grid.alpha": 0.3})


def palette(configs: list[str]) -> dict[str, str]:
    """One colour per configuration, in params.yaml's order, for every figure of the report."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {config: cycle[i % len(cycle)] for i, config in enumerate(configs)}


def _input_to_output(layers) -> list[str]:
    """hidden_1, hidden_2, ..., hidden_10, output (numeric order, not string order)."""
    return sorted(layers, key=lambda layer: (layer == "output", 0 if layer == "output" else int(layer.split("_")[1])))


def learning_curves(per_variant: pd.DataFrame, studies: dict[str, str], statistic: str, ylabel: str,
                    n_seeds: dict, colours: dict):
    """One line per study ({study: config}, coloured by its config, dashed where a config repeats): the per-epoch
    statistic averaged over its seeds."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    rows = per_variant[(per_variant["statistic"] == statistic) & (per_variant["layer"] == "model")]
    seen = []
    for study, config in studies.items():
        part = rows[rows["study"] == study].sort_values("epoch")
        ax.plot(part["epoch"], part["value"], color=colours[config], ls=["-", "--", ":"][seen.count(config) % 3],
                label=f"{study} ({config}, mean of {n_seeds[study]} seeds)")
        seen.append(config)
    ax.set(title=f"{ylabel} per epoch, mean over seeds", xlabel="epoch", ylabel=ylabel)
    ax.legend()
    fig.tight_layout()
    return fig


def depth_curves(summary: pd.DataFrame, trainable: pd.DataFrame, width: int, colours: dict):
    """Success rate (Wilson 95% band) and mean test accuracy (95% band) against depth, one line per config."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    rows = summary[summary["width"] == width].drop_duplicates(["config", "depth"])
    for config in trainable[trainable["width"] == width]["config"]:
        part = rows[rows["config"] == config].sort_values("depth")
        colour = colours[config]
        left.plot(part["depth"], part["success_rate"], marker="o", ms=3, color=colour, label=config)
        left.fill_between(part["depth"], part["success_low"], part["success_high"], color=colour, alpha=0.15)
        right.plot(part["depth"], part["accuracy_test_mean"], marker="o", ms=3, color=colour, label=config)
        right.fill_between(part["depth"], part["accuracy_test_low"], part["accuracy_test_high"], color=colour,
                           alpha=0.15)
    left.axhline(0.5, color="grey", ls="--", lw=1)
    left.set(title=f"Success rate (final test accuracy ≥ threshold), width {width}", xlabel="hidden layers (depth)",
             ylabel="share of seeds that succeed", ylim=(-0.02, 1.02))
    right.set(title=f"Final test accuracy, width {width}", xlabel="hidden layers (depth)",
              ylabel="test accuracy (mean over seeds)")
    left.legend(fontsize=9, title="config (band: 95% Wilson)")
    right.legend(fontsize=9, title="config (band: 95% t interval)")
    fig.tight_layout()
    return fig


def width_depth_heatmap(summary: pd.DataFrame, study: str):
    """Success rate and mean test accuracy over width x depth, values written in the cells."""
    part = summary[summary["study"] == study]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    # (column, label, colour range, value above which a cell is light enough for black text)
    panels = [("success_rate", "success rate", (0, 1), 0.5),
              ("accuracy_test_mean", "mean test accuracy", (0.45, 0.9), 0.65)]
    for ax, (column, label, (vmin, vmax), light) in zip(axes, panels):
        grid = part.pivot_table(index="width", columns="depth", values=column)
        image = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
        for (i, j), value in np.ndenumerate(grid.to_numpy()):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if value >= light else "white")
        ax.set(xticks=range(grid.shape[1]), xticklabels=grid.columns, yticks=range(grid.shape[0]),
               yticklabels=grid.index, xlabel="hidden layers (depth)", ylabel="units per hidden layer (width)",
               title=f"{label} ({part['config'].iloc[0]}, {part['n_seeds'].iloc[0]} seeds per cell)")
        ax.grid(False)
        fig.colorbar(image, ax=ax, label=label)
    fig.tight_layout()
    return fig


def layer_epoch_heatmaps(per_variant: pd.DataFrame, panels: dict[str, str], statistic: str, label: str):
    """One panel per (title -> variant key 'study/variant'): layer (input at the bottom) x epoch, log colour,
    on one shared colour scale so panels compare."""
    rows = per_variant[per_variant["statistic"] == statistic]
    grids = {}
    for title, key in panels.items():
        study, variant = key.split("/")
        part = rows[(rows["study"] == study) & (rows["variant"] == variant)]
        grid = part.pivot_table(index="layer", columns="epoch", values="value")
        grids[title] = grid.loc[_input_to_output(grid.index)]
    values = np.concatenate([g.to_numpy().ravel() for g in grids.values()])
    values = values[np.isfinite(values) & (values > 0)]
    norm = plt.matplotlib.colors.LogNorm(values.min(), values.max())
    # constrained layout: tight_layout cannot place a colour bar shared by several panels
    fig, axes = plt.subplots(1, len(grids), figsize=(6.5 * len(grids), 4), squeeze=False, layout="constrained")
    for ax, (title, grid) in zip(axes[0], grids.items()):
        epochs = grid.columns.to_numpy()
        image = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", norm=norm, cmap="magma",
                          extent=(epochs.min(), epochs.max(), -0.5, len(grid) - 0.5), interpolation="nearest")
        ax.set(yticks=range(len(grid)), yticklabels=grid.index, xlabel="epoch", title=title)
        ax.grid(False)
    fig.colorbar(image, ax=axes[0].tolist(), label=f"{label} (log scale)")
    return fig


def layer_lines(per_variant: pd.DataFrame, panels: dict[str, str], statistic: str, ylabel: str, log: bool = False):
    """One panel per variant: a line per layer over epochs (mean over seeds), shared y axis."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.3), sharey=True, squeeze=False)
    rows = per_variant[per_variant["statistic"] == statistic]
    for ax, (title, key) in zip(axes[0], panels.items()):
        study, variant = key.split("/")
        part = rows[(rows["study"] == study) & (rows["variant"] == variant)]
        layers = _input_to_output(part["layer"].unique())
        for layer, colour in zip(layers, plt.cm.viridis(np.linspace(0, 0.9, len(layers)))):
            line = part[part["layer"] == layer].sort_values("epoch")
            ax.plot(line["epoch"], line["value"], color=colour, label=layer)
        ax.set(title=title, xlabel="epoch", yscale="log" if log else "linear")
        ax.legend(fontsize=8, title="layer")
    axes[0][0].set_ylabel(ylabel)
    fig.tight_layout()
    return fig


def ratio_vs_depth(flow: pd.DataFrame, width: int, colours: dict):
    """First-hidden / output-layer gradient ratio against depth, at initialisation and over training."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    rows = flow[flow["width"] == width].drop_duplicates(["config", "depth"])
    for config, part in rows.groupby("config"):
        part = part.sort_values("depth")
        for ax, column in zip(axes, ["ratio_first_output_init", "ratio_first_output_train"]):
            ax.plot(part["depth"], part[column], marker="o", ms=3, color=colours[config], label=config)
    for ax, when in zip(axes, ["at initialisation (epoch 0)", "averaged over training"]):
        ax.axhline(1, color="grey", ls="--", lw=1)
        ax.set(yscale="log", xlabel="hidden layers (depth)", title=f"First hidden / output layer gradient, {when}")
        ax.legend(fontsize=9)
    axes[0].set_ylabel("ratio of mean |dLoss/dkernel| (log scale)")
    fig.tight_layout()
    return fig


def theory_overlay(measured: dict[str, pd.Series], predicted: dict[str, np.ndarray], colours: dict):
    """Per panel ('config, depth N'): measured gradient of each hidden layer relative to the last hidden
    layer at initialisation (mean over seeds, solid) against the mean-field prediction (dashed), in the
    config's colour."""
    cols = min(3, len(measured))
    rows = -(-len(measured) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.8 * rows), sharey=True, squeeze=False)
    for ax in axes.ravel()[len(measured):]:
        ax.remove()
    for ax, (title, series) in zip(axes.ravel(), measured.items()):
        colour = colours[title.split(",")[0]]
        ax.plot(series.index, series.to_numpy(), marker="o", ms=3, color=colour, label="measured (mean |g|)")
        ax.plot(np.arange(1, len(predicted[title]) + 1), predicted[title], ls="--", color=colour,
                label="mean-field (RMS g)")
        ax.set(title=title, xlabel="hidden layer (1 = first)", yscale="log")
        ax.legend(fontsize=9)
    for row in axes:
        row[0].set_ylabel("gradient / last hidden layer's")
    fig.tight_layout()
    return fig
