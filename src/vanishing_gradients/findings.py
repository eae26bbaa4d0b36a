"""Sentences and tables of the report, computed from the metrics so the text follows the data."""
from __future__ import annotations

import pandas as pd

from .reference import CURRENT_KERAS, EXPECTED_TEST_ACCURACY, ORIGINAL


def _pm(stat: dict) -> str:
    return f"{stat['mean']:.3f} ± {stat['sd']:.3f}" if stat["sd"] is not None else f"{stat['mean']:.3f}"


def results_table(metrics: dict, params: dict) -> pd.DataFrame:
    """Our mean ± sd over seeds beside the original's single runs and current-Keras runs."""
    rows = []
    for name, m in metrics.items():
        exp = params["experiments"][name]
        ref = ORIGINAL.get(name)
        cur = CURRENT_KERAS.get(name)
        rows.append({"experiment": name, "depth": exp["depth"], "width": exp["width"], "config": exp["config"],
                     "seeds": m["n_seeds"], "train acc (mean ± sd)": _pm(m["train_accuracy"]),
                     "test acc (mean ± sd)": _pm(m["test_accuracy"]), "success rate": f"{m['success_rate']:.2f}",
                     "diverged": m["diverged"],
                     "original train / test": f"{ref[0]:.3f} / {ref[1]:.3f}" if ref else "—",
                     "Keras 3.15 seeds 1-3 train / test": f"{cur[0]:.3f} / {cur[1]:.3f}" if cur else "—"})
    return pd.DataFrame(rows).set_index("experiment")


def expectation_checks(metrics: dict) -> list[str]:
    """One line per STUDY.md expectation present in these results: measured value and verdict."""
    lines = []
    for name, low, high in EXPECTED_TEST_ACCURACY:
        if name not in metrics:
            continue
        value = metrics[name]["test_accuracy"]["mean"]
        ok = (low is None or value >= low) and (high is None or value <= high)
        bound = " and ".join(b for b in [f"≥ {low}" if low is not None else "", f"≤ {high}" if high is not None else ""] if b)
        lines.append(f"**{'met' if ok else 'NOT met'}**: `{name}` mean test accuracy {value:.3f} (expected {bound})")
    comparison = first_layer_comparison(metrics)
    if comparison:
        lines.append(comparison)
    return lines


def first_layer_comparison(metrics: dict, tanh: str = "deep_tanh", relu: str = "deep_relu") -> str | None:
    """Which deep model's first hidden layer sees larger gradients, in words and numbers."""
    if tanh not in metrics or relu not in metrics:
        return None
    g_tanh = metrics[tanh]["grad_val_mean_abs"].get("hidden_1")
    g_relu = metrics[relu]["grad_val_mean_abs"].get("hidden_1")
    if g_tanh is None or g_relu is None:
        return f"The first hidden layer's gradient could not be compared: a model diverged ({tanh}: {g_tanh}, {relu}: {g_relu})."
    verdict = "**met**: larger" if g_relu > g_tanh else "**NOT met**: not larger"
    return (f"{verdict} in `{relu}` than in `{tanh}`: the first hidden layer's mean |gradient| is {g_relu:.4f} in `{relu}` and {g_tanh:.4f} in "
            f"`{tanh}` ({g_relu / g_tanh:.1f}× as large), averaged over all epochs and seeds.")


def gradient_sentence(metrics: dict, name: str) -> str:
    """Where in the network an experiment's gradient is largest and how it falls towards the input."""
    grads = {k: v for k, v in metrics[name]["grad_val_mean_abs"].items() if v is not None}
    if not grads:
        return f"`{name}`: no finite gradient (diverged)."
    largest = max(grads, key=grads.get)
    first, last = grads.get("hidden_1"), grads.get("output")
    ratio = f"; first hidden layer / output = {first / last:.2f}" if first and last else ""
    return (f"`{name}`: largest mean |gradient| at `{largest}` ({grads[largest]:.4f}); first hidden layer "
            f"{first:.4f}, output {last:.4f}{ratio}.")
