"""Statistics over seeds, from the extracted tables: intervals, success rates, trainable depth and
gradient flow per variant. Pure functions of pandas frames (tests/test_statistics.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95
BOOTSTRAP = 2000  # resamples for the trainable depth's interval
VARIANT = ["study", "variant", "config", "depth", "width"]
FLOW = ["study", "variant", "grad_first_init", "grad_output_init", "grad_first_train", "grad_output_train",
        "ratio_first_output_init", "ratio_first_output_train", "saturated_share", "dead_share", "update_ratio"]
TRAINABLE = ["config", "width", "depth", "low", "high", "max_depth_tried", "n_seeds"]


def mean_interval(values) -> tuple[float, float, float]:
    """Mean and its Student-t 95% interval (NaN interval for fewer than 2 values)."""
    values = np.asarray(values, float)
    mean = values.mean() if len(values) else np.nan
    if len(values) < 2 or np.std(values) == 0:
        return mean, mean if len(values) else np.nan, mean if len(values) else np.nan
    low, high = stats.t.interval(LEVEL, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, low, high


def wilson(successes: int, n: int) -> tuple[float, float]:
    """Wilson score interval of a success rate (well behaved at 0 and n successes)."""
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=LEVEL, method="wilson")
    return ci.low, ci.high


def variant_summary(seeds: pd.DataFrame, success_accuracy: float) -> pd.DataFrame:
    """One row per variant: test accuracy mean and interval, success rate and Wilson interval,
    epochs to reach the target accuracy (median over seeds that reached it), share diverged.
    A diverged seed counts as a failure; its accuracy is what its final evaluation gave."""
    rows = []
    for key, part in seeds.groupby(VARIANT, sort=False):
        accuracy = part["accuracy_test"].fillna(0.5).to_numpy()  # NaN output (diverged): a coin's accuracy
        success = int(((part["accuracy_test"] >= success_accuracy) & ~part["diverged"]).sum())
        mean, low, high = mean_interval(accuracy)
        s_low, s_high = wilson(success, len(part))
        reached = part["epochs_to_target"].dropna()
        rows.append({**dict(zip(VARIANT, key)), "n_seeds": len(part), "accuracy_test_mean": mean,
                     "accuracy_test_low": low, "accuracy_test_high": high,
                     "accuracy_train_mean": part["accuracy_train"].mean(), "successes": success,
                     "success_rate": success / len(part), "success_low": s_low, "success_high": s_high,
                     "reached_target_share": len(reached) / len(part),
                     "epochs_to_target_median": reached.median() if len(reached) else np.nan,
                     "diverged_share": part["diverged"].mean()})
    return pd.DataFrame(rows)


def trainable_depth(seeds: pd.DataFrame, success_accuracy: float, rng_seed: int = 0) -> dict:
    """Largest depth whose success rate is at least 50%, for the seeds of one config and width over
    its depths; interval: 2.5 and 97.5 percentiles over bootstrap resamples of the seeds at each depth.
    None where no depth reaches 50%."""
    by_depth = {d: ((p["accuracy_test"] >= success_accuracy) & ~p["diverged"]).to_numpy()
                for d, p in seeds.groupby("depth")}
    depths = np.array(sorted(by_depth))

    def largest(rates):  # rates (..., depths) -> (...): the largest depth at a rate of at least 0.5, NaN if none
        deepest = np.max(np.where(rates >= 0.5, depths, -np.inf), axis=-1)
        return np.where(np.isfinite(deepest), deepest, np.nan)

    point = float(largest(np.array([by_depth[d].mean() for d in depths])))
    rng = np.random.default_rng(rng_seed)
    # (BOOTSTRAP, depths): each resample's success rate at each depth, the seeds at a depth drawn with replacement,
    # every resample of one depth in one draw (a draw per resample and depth was most of the metrics' time)
    rates = np.stack([np.count_nonzero(ok[rng.integers(0, len(ok), (BOOTSTRAP, len(ok)))], axis=1) / len(ok)
                      for ok in (by_depth[d] for d in depths)], axis=1)
    draws = largest(rates)  # (BOOTSTRAP,)
    finite = draws[np.isfinite(draws)]
    low, high = (np.percentile(finite, [2.5, 97.5]) if len(finite) else (np.nan, np.nan))
    return {"depth": point, "low": float(low), "high": float(high), "max_depth_tried": int(depths.max()),
            "n_seeds": int(min(len(v) for v in by_depth.values()))}


def layer_index(layer: str, depth: int) -> int:
    """hidden_i -> i; output -> depth + 1."""
    return depth + 1 if layer == "output" else int(layer.removeprefix("hidden_"))


def gradient_flow(variants: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Per variant, from its mean-over-seeds statistics: mean |validation gradient| of the first hidden
    layer and of the output layer, their ratio at initialisation (epoch 0) and averaged over training
    (epochs >= 1), mean saturated and dead shares over hidden layers and training, mean update ratio."""
    # Every (statistic, layer) column, even one NaN throughout (every seed diverged), in sorted order; rows only for
    # the (study, variant, epoch) that exist: pivot_table(dropna=False) also built every study x variant x epoch
    # combination, which made this the slowest step of the metrics and the report.
    table = variants.pivot(index=["study", "variant", "epoch"], columns=["statistic", "layer"], values="value")
    table = table.reindex(columns=pd.MultiIndex.from_product(
        [sorted(variants["statistic"].unique()), sorted(variants["layer"].unique())], names=["statistic", "layer"]))
    rows = []
    with np.errstate(invalid="ignore", divide="ignore"):  # every seed dead: gradients 0, ratios 0 / 0 = NaN
        for (study, variant), part in table.groupby(level=[0, 1], sort=False):
            rows.append(_flow_row(study, variant, part.droplevel([0, 1])))
    return summary[["study", "variant", "config", "depth", "width"]].merge(pd.DataFrame(rows, columns=FLOW),
                                                                           on=["study", "variant"])


def _flow_row(study: str, variant: str, part: pd.DataFrame) -> dict:
    """gradient_flow's row for one variant from its (epoch x (statistic, layer)) table."""
    grad = part["grad_val_mean_abs"]
    init, trained = grad.loc[0], grad[grad.index >= 1].mean()
    return {"study": study, "variant": variant,
            "grad_first_init": init["hidden_1"], "grad_output_init": init["output"],
            "grad_first_train": trained["hidden_1"], "grad_output_train": trained["output"],
            "ratio_first_output_init": init["hidden_1"] / init["output"],
            "ratio_first_output_train": trained["hidden_1"] / trained["output"],
            "saturated_share": part["saturated_share"].iloc[1:].mean().mean(),  # hidden layers only
            "dead_share": part["dead_share"].iloc[1:].mean().mean(),
            "update_ratio": part["update_ratio"].iloc[1:].mean().mean()}
