"""Stage `metrics`: the study's analysis (summary.py over every study's tables), the headline
numbers DVC tracks (metrics.json) and the plot data of `dvc plots`. The report calls `analyse` too."""
from __future__ import annotations

import math

import pandas as pd

from ..core.fileio import atomic_path, write_json
from ..core.provenance import say
from ..core.study import variants
from ..record.tables import read_table
from .anatomy import OUTCOMES, outcome_counts, outcomes, per_seed
from .summary import TRAINABLE, gradient_flow, layer_index, trainable_depth, variant_summary

DIGITS = 4  # rounding keeps metrics.json readable and its diffs meaningful; far below seed-to-seed spread


def _num(value) -> float | None:
    """A JSON-safe rounded float; None for NaN/inf (JSON has neither)."""
    value = float(value)
    return round(value, DIGITS) if math.isfinite(value) else None


def headline_studies(params: dict) -> list[str]:
    """Studies of one variant: the original's experiments (shallow_tanh, deep_tanh, deep_relu)."""
    return [s for s in params["studies"] if len(variants(params, s)) == 1]


def analyse(params: dict, tables_dir) -> dict[str, pd.DataFrame]:
    """Every table the metrics and the report are built from."""
    studies = list(params["studies"])
    success = params["events"]["success_accuracy"]
    seeds, per_variant = read_table(tables_dir, studies, "seeds"), read_table(tables_dir, studies, "variants")
    anatomy = read_table(tables_dir, studies, "anatomy")
    seeds = per_seed(anatomy, seeds, params)
    seeds["outcome"] = outcomes(seeds, success, params["events"]["failure"])
    summary = variant_summary(seeds, success)
    sweeps = summary.groupby(["config", "width"])["depth"].nunique()
    depth_rows = []
    for config, width in sweeps[sweeps > 1].index:  # every config and width seen at several depths
        part = seeds[(seeds["config"] == config) & (seeds["width"] == width)].drop_duplicates(["depth", "seed"])
        depth_rows.append({"config": config, "width": width, **trainable_depth(part, success)})
    layers = per_variant[per_variant["statistic"] == "grad_val_mean_abs"].merge(
        summary[["study", "variant", "depth"]], on=["study", "variant"])
    layers["layer_index"] = [layer_index(layer, d) for layer, d in zip(layers["layer"], layers["depth"])]
    return {"seeds": seeds, "summary": summary, "trainable_depth": pd.DataFrame(depth_rows, columns=TRAINABLE),
            "flow": gradient_flow(per_variant, summary), "per_variant": per_variant, "layers": layers,
            "outcomes": outcome_counts(seeds, ["study", "variant", "config", "width", "depth"]),
            "init_layers": anatomy[anatomy["statistic"].isin(["grad_mean_abs", "activation_rms"])
                                   & (anatomy["epoch"] == 0)]}


def headline_metrics(params: dict, tables: dict[str, pd.DataFrame]) -> dict:
    """metrics.json: per headline study accuracy and success rate (with intervals), the first/last gradient
    ratio and its seeds' outcomes (succeeded or a failure kind); trainable depth per config and width."""
    out = {"studies": {}, "trainable_depth": {}}
    summary, flow = tables["summary"].set_index("study"), tables["flow"].set_index("study")
    counts = tables["outcomes"].set_index("study")
    for study in headline_studies(params):
        s, f = summary.loc[study], flow.loc[study]
        out["studies"][study] = {
            "variant": s["variant"], "n_seeds": int(s["n_seeds"]),
            "accuracy_test": {k: _num(s[f"accuracy_test_{k}"]) for k in ("mean", "low", "high")},
            "success_rate": {"rate": _num(s["success_rate"]), "low": _num(s["success_low"]),
                             "high": _num(s["success_high"])},
            "diverged_share": _num(s["diverged_share"]),
            "grad_ratio_first_output": {"init": _num(f["ratio_first_output_init"]),
                                        "training": _num(f["ratio_first_output_train"])},
            "outcomes": {kind: int(counts.loc[study, kind]) for kind in OUTCOMES}}
    for row in tables["trainable_depth"].itertuples():
        out["trainable_depth"][f"{row.config}-w{row.width:02d}"] = {
            "depth": _num(row.depth), "low": _num(row.low), "high": _num(row.high),
            "max_depth_tried": row.max_depth_tried}
    return out


def plot_data(params: dict, tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """CSV files of `dvc plots`, long format with a `series` column (one line each)."""
    head = headline_studies(params)
    curves = tables["per_variant"][tables["per_variant"]["study"].isin(head)
                                   & (tables["per_variant"]["layer"] == "model")]
    curves = curves.pivot_table(index=["study", "epoch"], columns="statistic", values="value",
                                dropna=False).reset_index()
    depth = tables["summary"].drop_duplicates(["config", "width", "depth"])
    depth = depth[depth.groupby(["config", "width"])["depth"].transform("nunique") > 1]
    layers = tables["layers"][tables["layers"]["study"].isin(head) & (tables["layers"]["epoch"] >= 1)]
    return {
        "learning_curves.csv": curves.rename(columns={"study": "series"})[
            ["series", "epoch", "accuracy_test", "accuracy_train", "loss_test", "loss_train"]],
        "depth_curves.csv": depth.assign(series=[f"{c}-w{w:02d}" for c, w in zip(depth["config"], depth["width"])])[
            ["series", "depth", "success_rate", "accuracy_test_mean"]].sort_values(["series", "depth"]),
        "gradients_per_layer.csv": layers.groupby(["study", "layer_index"])["value"].mean().reset_index()
        .rename(columns={"study": "series", "value": "grad_val_mean_abs"})}


def round_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda c: c.round(6) if pd.api.types.is_float_dtype(c) else c)


def run(args, params: dict, timing: dict) -> None:
    """Stage `metrics`: metrics.json and the plot data, from every study's tables."""
    tables = analyse(params, args.tables)
    metrics = headline_metrics(params, tables)
    with atomic_path(args.plots, is_dir=True) as plots:
        for name, frame in plot_data(params, tables).items():
            round_frame(frame).to_csv(plots / name, index=False)
    write_json(args.out, metrics)
    for name, entry in metrics["studies"].items():
        say("metrics", f"{name}: test acc {entry['accuracy_test']['mean']} {entry['accuracy_test']['low']}.."
            f"{entry['accuracy_test']['high']}, success rate {entry['success_rate']['rate']}")
    for name, entry in metrics["trainable_depth"].items():
        say("metrics", f"trainable depth {name}: {entry['depth']} ({entry['low']}..{entry['high']})")
