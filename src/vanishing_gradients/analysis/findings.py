"""The original's claims and extensions, each beside our measurement and a verdict, computed from the
analysis tables (metrics.analyse) so the report's text follows the data."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .original import (CURRENT_KERAS, HEADLINE, ORIGINAL, ORIGINAL_GRADIENTS, ORIGINAL_RELU_CONVERGENCE,
                        ORIGINAL_RELU_LIMIT)


def find_variant(summary: pd.DataFrame, config: str, depth: int, width: int = 5) -> pd.Series | None:
    """The measurement of a variant, from the study that trained it with the most seeds; among those, the
    smallest study (a headline experiment, the one metrics.json reports). A variant trained in two studies
    can differ in a seed or two: programs of other shapes round differently, and 500 epochs amplify it."""
    rows = summary[(summary["config"] == config) & (summary["depth"] == depth) & (summary["width"] == width)]
    if rows.empty:
        return None
    size = summary.groupby("study")["variant"].transform("size").loc[rows.index]
    return rows.assign(size=-size).sort_values(["n_seeds", "size"], kind="stable").iloc[-1]


def headline_key(summary: pd.DataFrame, name: str) -> str | None:
    """'study/variant' of the headline experiment `name` (see find_variant), or None when not trained."""
    row = find_variant(summary, *HEADLINE[name])
    return None if row is None else f"{row.study}/{row.variant}"


def _acc(row) -> str:
    return (f"test accuracy {row.accuracy_test_mean:.3f} [{row.accuracy_test_low:.3f}, "
            f"{row.accuracy_test_high:.3f}]; {row.successes} of {row.n_seeds} seeds succeed "
            f"(rate {row.success_rate:.2f} [{row.success_low:.2f}, {row.success_high:.2f}])")


def _verdict(ok: bool | str | None) -> str:
    if isinstance(ok, str):
        return ok
    return "not measured" if ok is None else ("reproduced" if ok else "NOT reproduced")


def _learns(row) -> bool | str | None:
    """Most seeds learn: the success rate's Wilson interval lies above one half (below: they don't;
    across it: the seeds cannot tell)."""
    if row is None:
        return None
    return True if row.success_low > 0.5 else (False if row.success_high < 0.5 else "inconclusive")


def _fails(row) -> bool | str | None:
    learns = _learns(row)
    return learns if learns in (None, "inconclusive") else not learns


def _answer(ok: bool | str | None) -> str | None:
    """An extension the original proposed but did not run: a yes or no, not a reproduction."""
    return ok if ok is None or isinstance(ok, str) else ("yes" if ok else "no")


def claims(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per claim of the original (and per extension): what it said, what we measured, verdict."""
    summary, flow, trainable = tables["summary"], tables["flow"], tables["trainable_depth"]
    rows = []

    def add(claim, original, row_or_text, ok):
        measured = row_or_text if isinstance(row_or_text, str) else ("not in this run's studies" if row_or_text is None
                                                                    else _acc(row_or_text))
        rows.append({"claim": claim, "original": original, "measured (95% intervals)": measured,
                     "verdict": _verdict(ok)})

    for name, check, says in [("shallow_tanh", _learns, "1 tanh layer, uniform(0, 1) init, learns"),
                              ("deep_tanh", _fails, "5 tanh layers, uniform(0, 1) init, fail"),
                              ("deep_relu", _learns, "5 ReLU layers, He init, learn")]:
        row = find_variant(summary, *HEADLINE[name])
        train, test = ORIGINAL[name]
        add(says, f"one run: train {train:.3f} / test {test:.3f} (current Keras, seeds 1-3: test "
            f"{CURRENT_KERAS[name][1]:.3f})", row, check(row))
    relu = find_variant(summary, *HEADLINE["deep_relu"])
    if relu is not None:
        median = relu.epochs_to_target_median
        add("deep ReLU converges in about 100 epochs", f"about {ORIGINAL_RELU_CONVERGENCE} epochs",
            f"median epochs to test acc ≥ target: {median:.0f} ({relu.reached_target_share:.0%} of seeds reach it)",
            bool(np.isfinite(median) and 50 <= median <= 200))
    learn, fail = (find_variant(summary, "relu_he", d) for d in ORIGINAL_RELU_LIMIT)
    limit = trainable[(trainable["config"] == "relu_he") & (trainable["width"] == 5)]
    text = "; ".join(f"depth {d}: {r.successes}/{r.n_seeds} succeed [{r.success_low:.2f}, {r.success_high:.2f}]"
                     for d, r in zip(ORIGINAL_RELU_LIMIT, (learn, fail)) if r is not None)
    if not limit.empty:
        t = limit.iloc[0]
        text += f"; trainable depth {t.depth:.0f} [{t.low:.0f}, {t.high:.0f}]"
    if learn is None or fail is None:
        verdict = None
    else:
        halves = [_learns(learn) is True, _fails(fail) is True]
        verdict = all(halves) or ("partly reproduced" if any(halves) else False)
    add("ReLU/He: 15 layers still learn, 20 do not", "single runs", text or None, verdict)
    for name, stats in ORIGINAL_GRADIENTS.items():
        row = find_variant(summary, *HEADLINE[name])
        if row is None:
            continue
        f = flow[(flow["study"] == row.study) & (flow["variant"] == row.variant)].iloc[0]
        measured = {"hidden_1": f.grad_first_train, "output": f.grad_output_train}
        parts = [f"{layer} {measured[layer]:.3f} (original {lo}-{hi})" for layer, (lo, hi) in stats.items()]
        ok = all(lo <= measured[layer] <= hi for layer, (lo, hi) in stats.items())
        add(f"{name}: mean |gradient| per layer during training", "read off TensorBoard plots",
            ", ".join(parts) + f"; first/output ratio {f.ratio_first_output_train:.2f}", ok)
    extensions = [("Extension 1: does deep tanh learn with Xavier (Glorot) init?", "tanh_glorot", 5),
                  ("Extension 2: does deep tanh (uniform init) learn with Adam?", "tanh_uniform_adam", 5)]
    for claim, config, depth in extensions:
        row = find_variant(summary, config, depth)
        add(claim, "proposed, not run", row, _answer(_learns(row)))
    tanh = trainable[(trainable["config"] == "tanh_uniform") & (trainable["width"] == 5)]
    if not tanh.empty:
        t = tanh.iloc[0]
        add("Extension 4: tanh (uniform init) depth 1 to 10: where does learning stop?", "proposed, not run",
            f"trainable depth {t.depth:.0f} [{t.low:.0f}, {t.high:.0f}] of 1..{t.max_depth_tried}",
            "answered" if np.isfinite(t.depth) else "no depth trains")
    return pd.DataFrame(rows)


def sentences(claims_table: pd.DataFrame) -> list[str]:
    """Each claim as a plain sentence that starts with its verdict: 'Reproduced: 5 tanh layers ... fail. We
    measured ...'; a question (an extension) is asked first, then answered."""
    out = []
    for row in claims_table.itertuples(index=False):
        claim, measured, verdict = row.claim, row[2], row.verdict
        verdict = verdict[0].upper() + verdict[1:]
        if claim.endswith("?"):
            out.append(f"{claim} **{verdict}**: {measured}.")
        else:
            out.append(f"**{verdict}**: {claim}. We measured {measured}.")
    return out
