"""A seed's anatomy reduced to one row and one outcome (analysis/anatomy.py), the loss slope recorded per seed, and
the verdicts on the two predictions (analysis/explain.py), on inputs whose answers are known."""
import warnings

import numpy as np
import pandas as pd
import pytest

from vanishing_gradients.analysis import anatomy, explain
from vanishing_gradients.core.statistics import MODEL
from vanishing_gradients.record.runs import loss_slope

FAILURE = {"collapsed": 0.99, "saturated": 0.5, "still_learning": 0.01}
PARAMS = {"train": {"epochs": 100}, "configs": {"r": {"activation": "relu"}, "t": {"activation": "tanh"}}}


def _seed(seed, config="r", depth=2, accuracy=0.5, slope=0.0, diverged=False, zero=(0, 0), end_zero=(0, 0),
          dead_units=(0, 0), top_end=0.5, saturated=(0, 0)):
    """One seed's seeds-table row and its anatomy rows (two hidden layers, epochs 0 and 100)."""
    key = {"study": "s", "variant": f"{config}-d{depth:02d}-w05", "seed": seed}
    row = {**key, "config": config, "depth": depth, "width": 5, "accuracy_test": accuracy, "loss_slope": slope,
           "diverged": diverged}
    records = []
    for epoch, zeros in ((0, zero), (100, end_zero)):
        for i in range(depth):
            layer = f"hidden_{i + 1}"
            values = {"inputs_all_zero": zeros[i], "units_dead": dead_units[i] if epoch == 0 else 0,
                      "activations_saturated": saturated[i] if epoch == 100 else 0,
                      "top_component_share": top_end if epoch == 100 else 0.4, "activation_rms": 0.5,
                      "grad_mean_abs": 0.01}
            records += [{**key, "statistic": s, "layer": layer, "epoch": epoch, "value": v} for s, v in values.items()]
        records.append({**key, "statistic": "grad_mean_abs", "layer": "output", "epoch": epoch, "value": 0.1})
    return row, records


def _classify(*seeds):
    rows, records = zip(*seeds)
    table = anatomy.per_seed(pd.DataFrame([r for rs in records for r in rs]), pd.DataFrame(rows), PARAMS)
    return list(anatomy.outcomes(table, 0.7, FAILURE)), table


def test_each_seed_gets_the_first_kind_that_applies():
    kinds, table = _classify(
        _seed(1, accuracy=0.9, dead_units=(0.2, 0)),  # learned although partly dead at birth
        _seed(2, zero=(0.3, 1.0), end_zero=(1.0, 1.0)),  # born dead beats died in training
        _seed(3, end_zero=(0, 1.0), top_end=1.0),  # died in training beats collapsed
        _seed(4, top_end=0.995, slope=-0.5),  # collapsed beats still learning
        _seed(5, config="t", saturated=(0.6, 0.7), slope=-0.5),  # saturated beats still learning
        _seed(6, saturated=(0.9, 0.9), slope=-0.5),  # ReLU never "saturates": still learning
        _seed(7, slope=-0.005),  # falling, but not clearly: other
        _seed(8, accuracy=np.nan, diverged=True, zero=(1.0, 1.0)))  # diverged first
    assert kinds == ["succeeded", "born_dead", "died_in_training", "collapsed", "saturated", "still_learning",
                     "other", "diverged"]
    assert table.set_index("seed").loc[1, "partly_dead_init"] and not table.set_index("seed").loc[2, "dead_end"] \
        is False
    counts = anatomy.outcome_counts(table.assign(outcome=kinds), ["config"])
    assert list(counts.columns) == ["config", *anatomy.OUTCOMES]
    assert counts.set_index("config").loc["r"].sum() == 7


def test_failure_thresholds_move_the_kinds():
    seed = _seed(1, top_end=0.97)
    assert _classify(seed)[0] == ["other"]
    rows, records = zip(seed)
    table = anatomy.per_seed(pd.DataFrame(records[0]), pd.DataFrame(rows), PARAMS)
    assert list(anatomy.outcomes(table, 0.7, {**FAILURE, "collapsed": 0.95})) == ["collapsed"]


def test_loss_slope_is_the_least_squares_slope_per_100_epochs_over_the_last_tenth():
    epochs = np.arange(1, 201)
    history = np.zeros((200, 4, 4), np.float32)
    history[:, MODEL["loss_train"], 0] = 0.7 - 0.002 * epochs  # falling 0.2 per 100 epochs
    history[:, MODEL["loss_train"], 1] = 0.69
    history[:150, MODEL["loss_train"], 2] = 0.3  # flat at the end, whatever came before
    history[150:, MODEL["loss_train"], 2] = 0.2
    history[190:, MODEL["loss_train"], 3] = np.inf  # diverged: no slope, and no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(loss_slope(history), [-0.2, 0.0, 0.0, np.nan], atol=1e-5)


def _trainable(rows):
    return pd.DataFrame(rows, columns=["config", "width", "depth", "low", "high", "max_depth_tried", "n_seeds"])


def test_orthogonal_prediction_verdicts():
    t = _trainable([["o", 5, 30, 26, 34, 40, 20], ["g", 5, 17, 17, 19, 25, 20], ["n", 5, 18, 12, 22, 25, 20],
                    ["w", 5, 15, 13, 17, 25, 20]])
    assert explain.orthogonal_verdict(t, "o", "g") == "held"
    assert explain.orthogonal_verdict(t, "n", "g") == "inconclusive"
    assert explain.orthogonal_verdict(t, "w", "g") == "not held"
    assert explain.orthogonal_verdict(t, "missing", "g") is None


def test_width_prediction_draws_the_proportional_line_through_width_5():
    t = _trainable([["relu_he", w, d, lo, hi, 30, 10] for w, d, lo, hi in
                    [(2, 4, 3, 6), (4, 11, 9, 13), (5, 14, 13, 16), (8, 18, 16, 20)]])
    table = explain.width_prediction({"trainable_depth": t})
    assert table["proportional"].tolist() == pytest.approx([5.6, 11.2, 14.0, 22.4])
    assert table["dead_one_input_half"].iloc[2] == pytest.approx(np.log(2) / -np.log(1 - 1 / 32))
    assert explain.width_verdict(table) == "held"  # inside the interval at widths 2 and 4 of 2, 4 and 8
    assert explain.width_verdict(table.assign(high=table["depth"])) == "not held"  # inside at width 2 alone


@pytest.mark.parametrize("predicted, measured, expected", [
    (0.45, 0.5, "explained"), (0.8, 0.5, "overshoots"), (0.2, 0.5, "partly"), (0.05, 0.5, "not explained"),
    (0.0, 0.0, "no failures"), (0.1, 0.0, "overshoots")])
def test_verdict_compares_predicted_and_measured_losses(predicted, measured, expected):
    assert explain.verdict(predicted, measured) == expected
    assert explain.verdict(predicted, measured, at_trainable=0.6) == ("no failures" if expected == "no failures"
                                                                     else "overshoots")


def test_measured_gain_reads_only_layers_at_the_fixed_point():
    """Gradients growing towards the input in the first layers (not at the fixed point) and shrinking by 0.1 per
    layer once there: the measured gain is 0.1, from the layers at the fixed point alone."""
    rms = {1: 0.4, 2: 0.8, 3: 0.985, 4: 0.986, 5: 0.986, 6: 0.985}
    grad = {1: 1.0, 2: 0.5, 3: 1e-4, 4: 1e-3, 5: 1e-2, 6: 1e-1}
    rows = [{"study": "s", "variant": "t-d06-w05", "seed": 1, "layer": f"hidden_{l}", "statistic": name,
             "value": values[l]} for name, values in (("activation_rms", rms), ("grad_mean_abs", grad)) for l in rms]
    seeds = pd.DataFrame([{"study": "s", "variant": "t-d06-w05", "seed": 1, "config": "t", "width": 5,
                           "born_dead": False}])
    gain, count = explain.measured_gain(pd.DataFrame(rows), seeds, "t", 5, h_star=0.9856)
    assert gain == pytest.approx(0.1) and count == 2  # l = 4 and 5 (layers 3-4 and 4-5 at h*)
