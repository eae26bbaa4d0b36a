"""How each seed failed: its anatomy (the train stage's ANATOMY_STATISTICS at initialisation and at the end, and
the slope of its training loss) reduced to one row per seed, and one outcome per seed, the first failure kind of
FAILURE_KINDS that applies (thresholds: params.yaml's events.failure). Pure functions of the extracted tables."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from ..core.extensions import ACTIVATIONS

SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class FailureKind:
    label: str  # how the report names it
    meaning: str  # one sentence for the report's table of kinds
    applies: Callable  # (per-seed anatomy frame, events.failure thresholds) -> boolean Series


# A failed seed's kind is the first of these that applies, in this order (a born-dead network is also collapsed
# and its loss flat, so the more specific kinds come first).
FAILURE_KINDS = {
    "diverged": FailureKind("diverged", "the loss or the weights overflowed (not finite)", lambda a, t: a["diverged"]),
    "born_dead": FailureKind("born dead", "at initialisation a hidden layer outputs all zeros for every training "
                             "input: the output is constant and only the output bias can learn",
                             lambda a, t: a["born_dead"]),
    "died_in_training": FailureKind("died in training", "alive at initialisation, but at the end a hidden layer "
                                    "outputs all zeros for every training input", lambda a, t: a["dead_end"]),
    "collapsed": FailureKind("collapsed", "at the end the last hidden layer holds the training inputs on "
                             "essentially one line (its top principal component has at least events.failure."
                             "collapsed of the variance): one direction cannot separate two circles",
                             lambda a, t: a["top_share_end"] >= t["collapsed"]),
    "saturated": FailureKind("saturated", "at the end at least events.failure.saturated of the hidden "
                             "activations are saturated (|a| > 0.99; bounded activations only)",
                             lambda a, t: a["saturates"] & (a["saturated_end"] >= t["saturated"])),
    "still_learning": FailureKind("still learning", "the training loss was still falling by more than events."
                                  "failure.still_learning per 100 epochs at the end: more epochs would help",
                                  lambda a, t: a["loss_slope"] < -t["still_learning"]),
    "other": FailureKind("other", "none of the above", lambda a, t: pd.Series(True, index=a.index)),
}
OUTCOMES = [SUCCEEDED, *FAILURE_KINDS]
SEED = ["study", "variant", "seed"]


def per_seed(anatomy: pd.DataFrame, seeds: pd.DataFrame, params: dict) -> pd.DataFrame:
    """One row per seed: the seeds table plus what the failure kinds read, at initialisation (epoch 0) and at the
    end: born_dead / dead_end (some hidden layer all zeros on every training input), partly_dead_init (some unit
    dead at initialisation), top_share_init / top_share_end (of the last hidden layer), saturated_end (mean over
    hidden layers), rms_last_init (the last hidden layer's activation RMS), grad_first_init (the first layer's
    mean |gradient| on the training set)."""
    epochs = params["train"]["epochs"]
    hidden = anatomy[anatomy["layer"] != "output"].join(seeds.set_index(SEED)["depth"], on=SEED)
    last = hidden["layer"] == "hidden_" + hidden["depth"].astype(str)  # each seed's last hidden layer
    wide = lambda frame, statistic, epoch, how: (frame[(frame["statistic"] == statistic) & (frame["epoch"] == epoch)]
                                                 .groupby(SEED)["value"].agg(how))
    columns = {
        "born_dead": wide(hidden, "inputs_all_zero", 0, "max") >= 1, "dead_end": wide(hidden, "inputs_all_zero",
                                                                                      epochs, "max") >= 1,
        "partly_dead_init": wide(hidden, "units_dead", 0, "max") > 0,
        "top_share_init": wide(hidden[last], "top_component_share", 0, "first"),
        "top_share_end": wide(hidden[last], "top_component_share", epochs, "first"),
        "saturated_end": wide(hidden, "activations_saturated", epochs, "mean"),
        "rms_last_init": wide(hidden[last], "activation_rms", 0, "first"),
        "grad_first_init": wide(anatomy[anatomy["layer"] == "hidden_1"], "grad_mean_abs", 0, "first")}
    out = seeds.merge(pd.DataFrame(columns).reset_index(), on=SEED, how="left")
    activation = {name: c["activation"] for name, c in params["configs"].items()}
    out["saturates"] = [ACTIVATIONS[activation[c]].saturates for c in out["config"]]
    for flag in ("born_dead", "dead_end", "partly_dead_init"):
        out[flag] = out[flag].fillna(False).astype(bool)
    return out


def outcomes(seeds: pd.DataFrame, success_accuracy: float, failure: dict) -> pd.Series:
    """Each seed's outcome: SUCCEEDED, or the first FAILURE_KINDS entry that applies. `seeds`: per_seed's frame."""
    success = (seeds["accuracy_test"] >= success_accuracy) & ~seeds["diverged"]
    kind = pd.Series(SUCCEEDED, index=seeds.index, dtype=object)
    open_ = ~success
    for name, entry in FAILURE_KINDS.items():
        hit = open_ & entry.applies(seeds, failure).fillna(False).astype(bool)
        kind[hit] = name
        open_ &= ~hit
    return kind


def outcome_counts(seeds: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Seeds per outcome (a column each, in OUTCOMES' order) per group of `by`; `seeds` has an `outcome` column."""
    table = seeds.groupby(by + ["outcome"]).size().unstack("outcome", fill_value=0)
    return table.reindex(columns=OUTCOMES, fill_value=0).reset_index()
