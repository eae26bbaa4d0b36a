"""Each seed's anatomy (core/statistics.py's ANATOMY_STATISTICS) is the same in both engines on the same weights:
at initialisation, after training, and where the interesting cases are (a dead ReLU layer, a collapsed tanh
network, orthogonal kernels)."""
import numpy as np
import pytest

from conftest import spec_for
from test_jax_engine import SGD, _as_replica
from vanishing_gradients.core.statistics import ANATOMY
from vanishing_gradients.train.jax import program as je
from vanishing_gradients.train.keras import build_keras_model

pytest.importorskip("tensorflow", reason="the Keras reference needs TensorFlow")


def _reference(weights, spec, data):
    """The Keras engine's anatomy (statistics, L) of a model holding `weights`."""
    from vanishing_gradients.train.keras import StatisticsRecorder, keras
    model = build_keras_model(spec)
    model.set_weights(weights)
    model.compile(optimizer="sgd", loss=keras.losses.BinaryCrossentropy())
    recorder = StatisticsRecorder(None, *data["test"], 32, 1, {"stats_freq": 1, "histogram_freq": 1}, False,
                                  train=data["train"])
    recorder.set_model(model)
    recorder.on_train_begin()
    return recorder.arrays()["anatomy"][0]


def _keras_weights(spec, seed):
    from vanishing_gradients.train.keras import keras
    keras.utils.set_random_seed(seed)
    return [w.numpy() for w in build_keras_model(spec).weights]


def _assert_same(ours, reference):
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
    for name, row in ANATOMY.items():  # the gradient to float32 rounding; shares of counts exactly
        np.testing.assert_allclose(ours[row], reference[row], rtol=2e-4, atol=1e-6, err_msg=name)


def _dead_third_layer(weights):
    """ReLU weights whose third hidden layer outputs 0 for every input (all its kernel entries negative on
    non-negative inputs)."""
    weights = [w.copy() for w in weights]
    weights[4] = -np.abs(weights[4]) - 0.1
    return weights


# deep_relu and dead_layer share one compiled program; tanh_uniform_d12 is deep_tanh's model, collapsed at birth
CASES = {"deep_relu": ("deep_relu", None, lambda w: w), "dead_layer": ("deep_relu", None, _dead_third_layer),
         "tanh_uniform_d12": ("deep_tanh", 12, lambda w: w), "tanh_orthogonal": ("depth_tanh_orthogonal", 6,
                                                                                  lambda w: w)}


@pytest.mark.parametrize("case", CASES)
def test_anatomy_at_initialisation_and_after_training_matches_keras(params, data, case):
    study, depth, change = CASES[case]
    spec = spec_for(params, study, depth=depth)
    weights = change(_keras_weights(spec, seed=5))
    cfg = je.Training(spec.activation, "sgd", 2, 32, stats_freq=1)
    out = je.train_replicas(cfg, [spec], [0], [SGD], data, params=_as_replica(weights))
    _assert_same(out["anatomy"][0, ..., 0], _reference(weights, spec, data))
    trained = [a[..., 0] for layer in out["params"] for a in layer]  # kernel, bias, ... after 2 epochs
    _assert_same(out["anatomy"][1, ..., 0], _reference(trained, spec, data))
    if case == "dead_layer":
        assert out["anatomy"][0, ANATOMY["inputs_all_zero"], 2:5, 0].tolist() == [1.0] * 3
        assert out["anatomy"][0, ANATOMY["units_dead"], 2, 0] == 1.0


def test_mixed_depths_in_one_program_give_each_replica_its_own_anatomy(params, data):
    """A replica trained beside deeper ones has the anatomy it has alone (padded layers are NaN)."""
    shallow, deep = spec_for(params, "deep_relu", depth=3), spec_for(params, "deep_relu", depth=6)
    cfg = je.Training("relu", "sgd", 1, 32, stats_freq=1)
    both = je.train_replicas(cfg, [shallow, deep], [1, 2], [SGD, SGD], data)
    alone = je.train_replicas(cfg, [shallow], [1], [SGD], data)
    ours, own = both["anatomy"][..., 0], alone["anatomy"][..., 0]  # (2, statistics, 7 | 4 layers)
    np.testing.assert_allclose(ours[..., :3], own[..., :3], rtol=1e-5, atol=1e-7)  # hidden layers 1-3
    assert np.isnan(ours[..., 3:6]).all()  # the padding
    np.testing.assert_allclose(ours[..., 6], own[..., 3], rtol=1e-5, atol=1e-7)  # the output layer


def test_a_constant_layer_counts_as_collapsed(params, data):
    """All units dead: no variance at all, which the statistic reads as one line (share 1)."""
    spec = spec_for(params, "deep_relu")  # deep_relu's program, already compiled by the cases above
    weights = _keras_weights(spec, seed=1)
    weights[0] = np.zeros_like(weights[0])  # every first-layer output 0
    cfg = je.Training("relu", "sgd", 2, 32, stats_freq=1)
    out = je.train_replicas(cfg, [spec], [0], [SGD], data, params=_as_replica(weights))
    assert out["anatomy"][0, ANATOMY["top_component_share"], :5, 0].tolist() == [1.0] * 5
    _assert_same(out["anatomy"][0, ..., 0], _reference(weights, spec, data))
