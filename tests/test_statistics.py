"""The statistics over seeds and the mean-field theory, on inputs whose answers are known."""
import math

import numpy as np
import pandas as pd
import pytest

from vanishing_gradients.analysis import summary as st
from vanishing_gradients.analysis import theory


def test_mean_interval_is_students_t():
    mean, low, high = st.mean_interval([0.8, 0.82, 0.84, 0.86])
    assert mean == pytest.approx(0.83)
    half = 3.182446 * np.std([0.8, 0.82, 0.84, 0.86], ddof=1) / 2  # t(0.975, 3) * sd / sqrt(4)
    assert (low, high) == pytest.approx((0.83 - half, 0.83 + half), rel=1e-5)
    assert st.mean_interval([0.5, 0.5]) == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("k, n, expected",
                         [(0, 20, (0.0, 0.1611)), (20, 20, (0.8389, 1.0)), (10, 20, (0.2993, 0.7007))])
def test_wilson_interval(k, n, expected):
    assert st.wilson(k, n) == pytest.approx(expected, abs=1e-4)


def _seeds(rates: dict[int, float], n=20, config="c", width=5):
    """Seeds of one config: at depth d, a share rates[d] of them succeed (accuracy 0.85, else 0.5)."""
    rows = []
    for depth, rate in rates.items():
        for seed in range(n):
            ok = seed < round(rate * n)
            rows.append({"study": "s", "variant": f"{config}-d{depth:02d}-w{width:02d}", "config": config,
                         "depth": depth, "width": width, "seed": seed, "accuracy_test": 0.85 if ok else 0.5,
                         "accuracy_train": 0.85,
                         "epochs_to_target": 40.0 + seed if ok else np.nan, "diverged": False})
    return pd.DataFrame(rows)


def test_variant_summary():
    seeds = _seeds({1: 1.0, 2: 0.5})
    seeds.loc[seeds.index[-1], ["accuracy_test", "diverged"]] = [np.nan, True]  # a diverged seed: a failure
    summary = st.variant_summary(seeds, 0.7).set_index("depth")
    assert summary.loc[1, "success_rate"] == 1.0 and summary.loc[2, "successes"] == 10
    assert summary.loc[2, "diverged_share"] == 0.05 and summary.loc[2, "reached_target_share"] == 0.5
    assert summary.loc[1, "epochs_to_target_median"] == pytest.approx(49.5)
    assert summary.loc[1, "accuracy_test_mean"] == pytest.approx(0.85)


def test_trainable_depth_and_its_interval():
    clear = st.trainable_depth(_seeds({1: 1.0, 2: 1.0, 3: 0.95, 4: 0.0, 5: 0.0}), 0.7)
    assert clear["depth"] == 3 and clear["low"] == 3 and clear["high"] == 3 and clear["max_depth_tried"] == 5
    borderline = st.trainable_depth(_seeds({1: 1.0, 2: 0.55, 3: 0.0}), 0.7)
    assert borderline["depth"] == 2 and borderline["low"] == 1 and borderline["high"] == 2
    never = st.trainable_depth(_seeds({1: 0.0, 2: 0.0}), 0.7)
    assert math.isnan(never["depth"])


def test_relu_with_he_init_is_critical():
    p = theory.propagate("relu", "he_uniform", 10, 5, 0.3)
    np.testing.assert_allclose(p["chi"], 1.0, rtol=1e-9)
    assert theory.sigma_w2("he_uniform", 5, 5) == pytest.approx(2.0)
    assert theory.depth_scale("relu", "he_uniform", 10, 5, 0.3) == math.inf


def test_tanh_with_glorot_init_decays_slowly():
    assert theory.sigma_w2("glorot_uniform", 5, 5) == pytest.approx(1.0)
    chi = theory.propagate("tanh", "glorot_uniform", 25, 5, 0.3)["chi"]
    assert all(0 < c < 1 for c in chi) and chi == sorted(chi)  # q shrinks, so chi creeps up towards 1
    assert 1 < theory.depth_scale("tanh", "glorot_uniform", 25, 5, 0.3) < math.inf
    ratio = theory.gradient_ratio_at_init("relu", "he_uniform", 6, 5, 0.3)
    assert ratio[-1] == pytest.approx(1.0) and len(ratio) == 6


def test_the_theory_excludes_non_zero_mean_weights():
    assert not theory.applies({"name": "random_uniform", "minval": 0.0, "maxval": 1.0})
    assert theory.applies("glorot_uniform") and theory.applies({"name": "random_uniform", "minval": -1, "maxval": 1})


def test_claims_follow_the_intervals():
    """Each verdict follows the success rate's Wilson interval: above one half, below it, or across it."""
    from vanishing_gradients.analysis import findings
    seeds = pd.concat([_seeds({1: 1.0, 5: 0.1}, config="tanh_uniform"),
                       _seeds({5: 1.0, 15: 0.9, 20: 0.0}, config="relu_he"),
                       _seeds({5: 0.55}, config="tanh_uniform_adam")])
    summary = st.variant_summary(seeds, 0.7)
    flow = summary[["study", "variant", "config", "depth", "width"]].assign(
        grad_first_train=0.1, grad_output_train=0.07, ratio_first_output_train=1.4)
    trainable = pd.DataFrame([{"config": c, "width": 5, **st.trainable_depth(seeds[seeds["config"] == c], 0.7)}
                              for c in ("tanh_uniform", "relu_he")])
    claims = findings.claims({"summary": summary, "flow": flow, "trainable_depth": trainable}).set_index("claim")
    verdicts = claims["verdict"].to_dict()
    assert verdicts["1 tanh layer, uniform(0, 1) init, learns"] == "reproduced"
    assert verdicts["5 tanh layers, uniform(0, 1) init, fail"] == "reproduced"
    assert verdicts["ReLU/He: 15 layers still learn, 20 do not"] == "reproduced"
    assert verdicts["deep_relu: mean |gradient| per layer during training"] == "NOT reproduced"  # 0.1, not 0.2-0.4
    assert verdicts["Extension 1: does deep tanh learn with Xavier (Glorot) init?"] == "not measured"
    assert verdicts["Extension 2: does deep tanh (uniform init) learn with Adam?"] == "inconclusive"  # 11/20
    adam = "Extension 2: does deep tanh (uniform init) learn with Adam?"
    assert "11 of 20 seeds succeed" in claims.loc[adam, "measured (95% intervals)"]
    sentences = findings.sentences(claims.reset_index())
    assert len(sentences) == len(claims) and "?." not in " ".join(sentences)
    assert sentences[0].startswith("**Reproduced**: 1 tanh layer, uniform(0, 1) init, learns. We measured test "
                                   "accuracy")
    assert [s for s in sentences if s.startswith(adam)] == [s for s in sentences if "Adam?" in s]  # asked, answered
    assert any(s.startswith(f"{adam} **Inconclusive**: ") for s in sentences)


def test_theory_beside_the_measurement():
    """compare() sets each zero-mean config's measured gradient profile at initialisation (relative to the last
    hidden layer) beside the mean-field prediction, and its depth scale beside the trainable depth."""
    params = {"configs": {"relu_he": {"activation": "relu", "hidden_init": "he_uniform"},
                          "tanh_uniform": {"activation": "tanh",
                                           "hidden_init": {"name": "random_uniform", "minval": 0.0, "maxval": 1.0}}}}
    summary = pd.DataFrame([{"config": c, "width": 5, "depth": d} for c in params["configs"] for d in (1, 5)])
    trainable = pd.DataFrame([{"config": c, "width": 5, "depth": 5.0, "low": 1.0, "high": 5.0, "max_depth_tried": 5}
                              for c in params["configs"]])
    layers = pd.DataFrame([{"variant": "relu_he-d05-w05", "epoch": 0, "layer": f"hidden_{i}", "layer_index": i,
                            "value": 2.0 ** -i} for i in range(1, 6)])
    measured, predicted, rows = theory.compare(params, summary, trainable, layers, 0.3)
    assert list(measured) == ["relu_he, depth 5"]  # tanh_uniform's weights are not zero-mean: no theory
    np.testing.assert_allclose(measured["relu_he, depth 5"].to_numpy(), [16, 8, 4, 2, 1])
    assert [r["config"] for r in rows] == ["relu_he"] and rows[0]["xi"] == math.inf
    gap = theory.gaps(measured, predicted)["relu_he, depth 5"]
    expected = np.mean(np.abs(np.log10(np.array([16, 8, 4, 2, 1]) / predicted["relu_he, depth 5"])))
    assert gap == pytest.approx(expected)
