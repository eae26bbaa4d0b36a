"""Figures of the report's sections on why networks stop learning (why.py): outcomes per depth, finite-width theory
over the measurements, and the two predictions. Configurations keep their colour (figures.palette); outcomes have
their own, in OUTCOME_COLOURS."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..analysis.anatomy import FAILURE_KINDS, OUTCOMES, SUCCEEDED

OUTCOME_COLOURS = dict(zip(OUTCOMES, ["#4daf4a", "#000000", "#e41a1c", "#ff7f00", "#984ea3", "#a65628", "#377eb8",
                                      "#999999"]))
LABEL = {SUCCEEDED: "succeeded", **{k: v.label for k, v in FAILURE_KINDS.items()}}


def _grid(n: int, panel: tuple[float, float] = (4.4, 3.6)):
    """n panels, three to a row."""
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel[0] * cols, panel[1] * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def outcomes(counts: pd.DataFrame, sweeps: list[tuple[str, int]]):
    """Stacked bars per depth, one panel per (config, width): the share of seeds per outcome."""
    fig, axes = _grid(len(sweeps))
    for ax, (config, width) in zip(axes, sweeps):
        part = counts[(counts["config"] == config) & (counts["width"] == width)].drop_duplicates("depth")
        part = part.sort_values("depth")
        total = part[OUTCOMES].sum(axis=1).to_numpy()
        bottom = np.zeros(len(part))
        step = np.min(np.diff(part["depth"])) if len(part) > 1 else 1
        for kind in OUTCOMES:
            share = part[kind].to_numpy() / total
            ax.bar(part["depth"], share, bottom=bottom, width=0.85 * step, color=OUTCOME_COLOURS[kind],
                   label=LABEL[kind])
            bottom += share
        ax.set(title=f"{config}, width {width}", xlabel="hidden layers (depth)", ylabel="share of seeds",
               ylim=(0, 1))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(OUTCOMES), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def mechanism(curves: dict, sweeps: list[tuple[str, int]], colours: dict, lines: dict):
    """Per sweep: measured failure share (solid, config colour) and the measured share in the mechanism's state at
    initialisation (circles) against the Monte Carlo's prediction of that share (dashed), plus `lines`:
    {column of the prediction: label} drawn dotted."""
    fig, axes = _grid(len(sweeps))
    for ax, key in zip(axes, sweeps):
        measured, predicted = curves[key]
        colour = colours[key[0]]
        state, label = ("born_dead", "born dead") if "dead_one_input" in predicted else ("collapsed", "collapsed")
        measured_state = measured[state] if state == "born_dead" else measured["collapsed_init"]
        ax.plot(measured["depth"], measured["failed"], color=colour, lw=2, label="failed (measured)")
        ax.plot(measured["depth"], measured_state, "o", color=colour, ms=4, mfc="none",
                label=f"{label} at init (measured)")
        ax.plot(predicted["depth"], predicted[state], "--", color="black", lw=1.2, label=f"{label} at init (theory)")
        for column, text in lines.items():
            if column in predicted:
                ax.plot(predicted["depth"], predicted[column], ":", color="grey", lw=1.5, label=text)
        ax.set(title=f"{key[0]}, width {key[1]}", xlabel="hidden layers (depth)", ylabel="share of seeds",
               ylim=(-0.02, 1.02))
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fluctuations(table: pd.DataFrame, colours: dict):
    """Variance over seeds of the log size of the last hidden layer's activations (left) and of the first layer's
    gradient (right) at initialisation against beta = depth / width, with the closed form's slope from the
    shallowest point and the Monte Carlo's variance."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    for (config, width), part in table.groupby(["config", "width"]):
        part = part.sort_values("beta")
        colour, marker = colours[config], "osD^v<>"[sorted(table["width"].unique()).index(width) % 7]
        start = part.iloc[0]
        line = lambda v0: v0 + part["slope_per_layer"] * (part["depth"] - start["depth"])
        left.plot(part["beta"], part["var_log_rms"], marker, color=colour, ms=4, label=f"width {width} (measured)")
        left.plot(part["beta"], part["mc_var_log_rms"], "--", color=colour, lw=1)
        left.plot(part["beta"], line(start["var_log_rms"]), ":", color="black", lw=1)
        right.plot(part["beta"], part["var_log_grad"], marker, color=colour, ms=4, label=f"width {width} (measured)")
        right.plot(part["beta"], line(start["var_log_grad"]), ":", color="black", lw=1)
    left.set(title="log size of the last hidden layer at init", xlabel="β = depth / width",
             ylabel="variance over seeds of ln RMS")
    right.set(title="log first-layer gradient at init", xlabel="β = depth / width",
              ylabel="variance over seeds of ln mean |dL/dW|")
    left.legend(fontsize=8, title="dashed: Monte Carlo; dotted: closed form")
    right.legend(fontsize=8, title="dotted: closed form's slope")
    fig.tight_layout()
    return fig


def width_limit(table: pd.DataFrame, colour: str):
    """Trainable depth against width with its interval, and the two theories' lines."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    t = table.dropna(subset=["depth"])
    ax.errorbar(t["width"], t["depth"], yerr=[t["depth"] - t["low"], t["high"] - t["depth"]], fmt="o", color=colour,
                capsize=4, label="measured trainable depth (95% bootstrap)")
    ax.plot(table["width"], table["proportional"], "--", color="black", label="depth ∝ width (finite-width theory, "
            "through width 5)")
    ax.plot(table["width"], table["dead_one_input_half"], ":", color="grey", lw=2,
            label="half dead at one input: ln 2 / −ln(1 − 2⁻ⁿ)")
    ax.set(title="ReLU/He: trainable depth against width", xlabel="width (units per hidden layer)",
           ylabel="hidden layers (depth)", ylim=(0, max(table["high"].max(), table["proportional"].max()) * 1.3))
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig
