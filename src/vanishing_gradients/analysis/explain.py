"""Each configuration's failures beside finite-width theory (finite_width.py): per depth, what the theory predicts
at initialisation and what the seeds showed, the depth at which each mechanism predicts half the seeds lost,
a verdict, and the two predictions the study puts to the test. Pure functions of metrics.analyse's tables, the
parameters and the training inputs."""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from . import finite_width as fw
from ..core.extensions import moments

SWEEP = ["config", "width"]
# The verdict compares, at the depth where half the seeds were measured lost, the share the mechanism predicts
# lost with the share measured lost: it explains the failures when it predicts at least EXPLAINS of them, part of
# them from PARTLY on, and overshoots beyond OVERSHOOTS (it would lose many seeds that learned).
EXPLAINS, PARTLY, OVERSHOOTS = 0.75, 0.25, 1.5
MECHANISMS = {
    "born_dead": "born dead on every training input (ReLU; Lu et al. 2020, Monte Carlo)",
    "collapsed": "last hidden layer on one line at initialisation (Monte Carlo; Newman 1986 for zero-mean kernels)",
}


def sweeps(seeds: pd.DataFrame) -> list[tuple[str, int]]:
    """(config, width) pairs trained at three depths or more."""
    counts = seeds.drop_duplicates(SWEEP + ["depth"]).groupby(SWEEP).size()
    return [key for key, n in counts.items() if n >= 3]


def by_depth(seeds: pd.DataFrame, config: str, width: int, collapsed: float) -> pd.DataFrame:
    """Per depth of one sweep, over its seeds: the share that failed, that were born dead and that were collapsed
    at initialisation (top component's share >= `collapsed`), and the seeds' rms_last_init and grad_first_init."""
    part = seeds[(seeds["config"] == config) & (seeds["width"] == width)].drop_duplicates(["depth", "seed"])
    part = part.assign(failed=part["outcome"] != "succeeded", collapsed_init=part["top_share_init"] >= collapsed)
    return part.groupby("depth").agg(
        n_seeds=("seed", "size"), failed=("failed", "mean"), born_dead=("born_dead", "mean"),
        collapsed_init=("collapsed_init", "mean"), rms=("rms_last_init", lambda s: s.to_numpy()),
        grad=("grad_first_init", lambda s: s.to_numpy())).reset_index()


def predict(params: dict, config: str, width: int, depths, x: np.ndarray) -> pd.DataFrame:
    """Per depth 1..max(depths): the Monte Carlo's born-dead and collapsed-at-initialisation shares, and for ReLU
    the one-input death probability."""
    c = params["configs"][config]
    top = int(max(depths))
    mc = fw.init_monte_carlo(c["activation"], c["hidden_init"], width, top, x)
    out = pd.DataFrame({"depth": np.arange(1, top + 1), "born_dead": fw.born_dead_share(mc),
                        "collapsed": fw.collapsed_share(mc, params["events"]["failure"]["collapsed"]),
                        "log_rms_var": np.nanvar(np.where(np.isfinite(mc["log_rms"]), mc["log_rms"], np.nan), axis=1)})
    if c["activation"] == "relu":
        out["dead_one_input"] = fw.dead_at_one_input(width, out["depth"])
    return out


def _edge(table: pd.DataFrame, trainable: float) -> tuple[float, int]:
    """Where half the seeds were lost: the depth at which the failure share first reaches one half beyond the
    trainable depth (interpolated from the depth before; shallow failures, such as slow Adam at depth 1, are not
    the limit), and the first measured depth there (the deepest tried when it never does)."""
    beyond = table[table["depth"] >= trainable] if math.isfinite(trainable) else table
    lost = beyond[beyond["failed"] >= 0.5]
    at = int(lost["depth"].iloc[0]) if len(lost) else int(table["depth"].iloc[-1])
    return fw.half_depth(beyond["depth"], beyond["failed"]), at


def verdicts(params: dict, tables: dict, x: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """One row per sweep and mechanism: the measured trainable depth with its interval, the depth where half the
    seeds were measured lost, where the mechanism predicts half lost, the share it predicts lost there against
    the share measured, and a verdict with a sentence. Also the per-depth tables {(config, width): (measured,
    predicted)} the report draws."""
    trainable = tables["trainable_depth"].set_index(SWEEP)
    rows, curves = [], {}
    found = sweeps(tables["seeds"])
    measured_all = [by_depth(tables["seeds"], config, width, params["events"]["failure"]["collapsed"])
                    for config, width in found]
    # the Monte Carlos side by side, one per core: numpy leaves Python's lock while it computes
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        predicted_all = list(pool.map(lambda sweep, measured: predict(params, *sweep, measured["depth"], x), found,
                                      measured_all))
    for (config, width), measured, predicted in zip(found, measured_all, predicted_all):
        curves[(config, width)] = (measured, predicted)
        t = trainable.loc[(config, width)]
        half, at_depth = _edge(measured, t["depth"])
        at = measured.set_index("depth").loc[at_depth]
        seeds = tables["seeds"]
        there = seeds[(seeds["config"] == config) & (seeds["width"] == width) & (seeds["depth"] == at_depth)]
        kinds = there.drop_duplicates("seed")["outcome"].value_counts()
        failed_as = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in kinds.items() if kind != "succeeded")
        mechanisms = ["born_dead", "collapsed"] if params["configs"][config]["activation"] == "relu" else ["collapsed"]
        for mechanism in mechanisms:
            by = predicted.set_index("depth")[mechanism]
            share = float(by.loc[at_depth])
            early = float(by.loc[int(t["depth"])]) if math.isfinite(t["depth"]) else 0.0
            rows.append({"config": config, "width": width, "trainable_depth": t["depth"], "low": t["low"],
                         "high": t["high"], "half_lost_measured": half, "mechanism": mechanism,
                         "half_lost_predicted": fw.half_depth(predicted["depth"], predicted[mechanism]),
                         "at_depth": at_depth, "lost_measured": float(at["failed"]), "lost_predicted": share,
                         "predicted_at_trainable": early, "verdict": verdict(share, float(at["failed"]), early),
                         "failed_as": failed_as})
    return pd.DataFrame(rows), curves


def verdict(predicted: float, measured: float, at_trainable: float = 0.0) -> str:
    """The mechanism's predicted share of lost seeds against the measured share where half were lost (see
    EXPLAINS); it overshoots too when it predicts half or more lost at the trainable depth, where at least half of
    the seeds learn (networks in that state can still learn)."""
    if measured == 0:
        return "no failures" if predicted == 0 else "overshoots"
    fraction = predicted / measured
    if fraction > OVERSHOOTS or at_trainable >= 0.5:
        return "overshoots"
    return "explained" if fraction >= EXPLAINS else "partly" if fraction >= PARTLY else "not explained"


def sentence(row) -> str:
    """A verdict row in words."""
    what = MECHANISMS[row.mechanism].split(" (")[0]
    at = (f"at depth {row.at_depth}, where {row.lost_measured:.0%} of the seeds were lost ({row.failed_as}), the "
          f"theory predicts {row.lost_predicted:.0%} {what}")
    if row.verdict == "no failures":
        return f"{row.config} (width {row.width}): no seed failed at the depths tried; nothing to explain."
    if row.verdict == "explained":
        return f"{row.config} (width {row.width}): explained: {at}."
    if row.verdict == "partly":
        return f"{row.config} (width {row.width}): partly explained: {at}; the failure kinds say what took the rest."
    if row.verdict == "overshoots":
        return (f"{row.config} (width {row.width}): the mechanism comes too early: {at}, and already "
                f"{row.predicted_at_trainable:.0%} at depth {row.trainable_depth:.0f}, where most seeds still learn; "
                "networks in that state at initialisation can learn, so it is not what stops them.")
    return f"{row.config} (width {row.width}): not explained by this mechanism: {at}."


def fluctuations(curves: dict, params: dict) -> pd.DataFrame:
    """Hanin's beta: per ReLU sweep and depth, over the seeds not born dead, the mean and variance of the log size
    of the last hidden layer's activations (ln RMS) and of the log first-layer gradient at initialisation, with the
    Monte Carlo's variance of ln RMS for the configured initialiser and the closed form's slopes per layer for
    Gaussian weights (relu_log_factor's mean / 2 and variance / 4: the log of a size, not of its square)."""
    rows = []
    for (config, width), (measured, predicted) in curves.items():
        if params["configs"][config]["activation"] != "relu":
            continue
        drift, spread = fw.relu_log_factor(width)
        mc = predicted.set_index("depth")["log_rms_var"]
        for row in measured.itertuples():
            logs = {name: np.log(values[values > 0]) for name, values in (("rms", row.rms), ("grad", row.grad))}
            rows.append({"config": config, "width": width, "depth": row.depth, "beta": row.depth / width,
                         **{f"{stat}_log_{name}": (float(getattr(np, stat)(v)) if len(v) > 1 else np.nan)
                            for name, v in logs.items() for stat in ("mean", "var")},
                         "mc_var_log_rms": float(mc.loc[row.depth]), "drift_per_layer": drift / 2,
                         "slope_per_layer": spread / 4})
    return pd.DataFrame(rows)


def fluctuation_slopes(table: pd.DataFrame) -> pd.DataFrame:
    """Per ReLU sweep: least-squares slopes per layer of the measured mean and variance of ln RMS and of the log
    first-layer gradient against depth, beside the closed form's drift and spread per layer."""
    rows = []
    for (config, width), part in table.groupby(["config", "width"]):
        slope = lambda column: float(np.polyfit(part["depth"], part[column], 1)[0]) if part[column].notna().all() \
            else np.nan
        rows.append({"config": config, "width": width, "drift_rms": slope("mean_log_rms"),
                     "drift_grad": slope("mean_log_grad"), "drift_predicted": part["drift_per_layer"].iloc[0],
                     "spread_rms": slope("var_log_rms"), "spread_grad": slope("var_log_grad"),
                     "spread_mc": slope("mc_var_log_rms"), "spread_predicted": part["slope_per_layer"].iloc[0]})
    return pd.DataFrame(rows)


def width_prediction(tables: dict, config: str = "relu_he") -> pd.DataFrame:
    """Trainable depth against width for one config (with its intervals), beside finite-width theory's line through
    the width-5 measurement (depth proportional to width, beta = depth / width fixed)."""
    t = tables["trainable_depth"]
    t = t[t["config"] == config].sort_values("width")
    if len(t) < 3 or 5 not in set(t["width"]):
        return pd.DataFrame()
    per_unit = float(t.loc[t["width"] == 5, "depth"].iloc[0]) / 5
    return t.assign(proportional=t["width"] * per_unit,
                    dead_one_input_half=math.log(2) / -np.log1p(-(2.0 ** -t["width"].astype(float))))


def width_verdict(table: pd.DataFrame) -> str:
    """'held' when the proportional line lies inside the trainable depth's interval at two thirds of the widths
    other than 5 (or more), 'not held' when at a third or fewer, else 'partly'."""
    other = table[table["width"] != 5]
    inside = ((other["low"] <= other["proportional"]) & (other["proportional"] <= other["high"])).mean()
    return "held" if inside >= 2 / 3 else "not held" if inside <= 1 / 3 else "partly held"


def orthogonal_verdict(trainable: pd.DataFrame, better: str, than: str, width: int = 5) -> str | None:
    """'held' when `better`'s trainable depth interval lies wholly above `than`'s, 'not held' when its point is at
    or below `than`'s, else 'inconclusive'; None when either was not swept."""
    t = trainable.set_index(SWEEP)
    if (better, width) not in t.index or (than, width) not in t.index:
        return None
    b, o = t.loc[(better, width)], t.loc[(than, width)]
    if b["low"] > o["high"]:
        return "held"
    return "not held" if not b["depth"] > o["depth"] else "inconclusive"


def common_mode_gains(params: dict, sweeps: list[tuple[str, int]]) -> dict[str, dict]:
    """For tanh configs whose kernels have a positive mean: finite_width.common_mode at each width."""
    out = {}
    for config, width in sweeps:
        c = params["configs"][config]
        if c["activation"] == "tanh" and moments(c["hidden_init"], width, width)[0] > 0:
            out[config] = fw.common_mode(c["hidden_init"], width)
    return out


def measured_gain(layers: pd.DataFrame, seeds: pd.DataFrame, config: str, width: int, h_star: float,
                  near: float = 0.01) -> tuple[float, int]:
    """The median, and the count, of the ratios g_l / g_(l+1) of consecutive hidden layers' training-set gradients
    at initialisation, over the seeds of `config` at `width` that were not born dead, where the activations both
    kernels read (layers l - 1 and l) have an RMS within `near` of the fixed point h_star: common_mode's gain, as
    measured. `layers`: metrics.analyse's `init_layers`."""
    chosen = seeds[(seeds["config"] == config) & (seeds["width"] == width) & ~seeds["born_dead"]]
    part = layers[layers["layer"] != "output"].merge(chosen[["study", "variant", "seed"]], on=["study", "variant",
                                                                                               "seed"])
    part = part.assign(index=part["layer"].str.removeprefix("hidden_").astype(int))
    wide = part.pivot_table(index=["study", "variant", "seed", "index"], columns="statistic", values="value")
    seed = wide.groupby(level=["study", "variant", "seed"])  # each seed's layers 1..depth, in order
    grad, rms = wide["grad_mean_abs"], wide["activation_rms"]
    before, above = seed["activation_rms"].shift(1), seed["grad_mean_abs"].shift(-1)  # layer l - 1's, l + 1's
    at_fixed_point = ((before - h_star).abs() < near) & ((rms - h_star).abs() < near) & (above > 0)
    ratios = (grad / above)[at_fixed_point].tolist()
    return (float(np.median(ratios)) if ratios else math.nan), len(ratios)
