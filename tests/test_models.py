"""Each model is the one docs/study.md describes: layers, activations, initialiser ranges, zero biases."""
import math

import numpy as np
import pytest

from vanishing_gradients.train.keras import keras
from conftest import spec_for
from vanishing_gradients.train.keras import build_keras_model


@pytest.mark.parametrize("experiment, depth", [("shallow_tanh", 1), ("deep_tanh", 5), ("deep_relu", 5)])
def test_layers_and_activations(params, experiment, depth):
    keras.utils.set_random_seed(1)
    model = build_keras_model(spec_for(params, experiment))
    hidden, output = model.layers[:-1], model.layers[-1]
    assert len(hidden) == depth
    expected = "tanh" if "tanh" in experiment else "relu"
    assert all(layer.activation.__name__ == expected and layer.units == 5 for layer in hidden)
    assert output.units == 1 and output.activation.__name__ == "sigmoid"
    assert [layer.kernel.shape for layer in model.layers] == [(2, 5)] + [(5, 5)] * (depth - 1) + [(5, 1)]
    assert all(not np.any(layer.bias.numpy()) for layer in model.layers)


def _within(values, low, high):
    """All draws inside [low, high] and spread over it (not, say, all zero)."""
    return values.min() >= low and values.max() <= high and values.max() - values.min() > 0.3 * (high - low)


def test_tanh_uniform_draws_from_zero_to_one(params):
    keras.utils.set_random_seed(3)
    model = build_keras_model(spec_for(params, "deep_tanh"))
    kernels = np.concatenate([layer.kernel.numpy().ravel() for layer in model.layers])
    assert _within(kernels, 0.0, 1.0)


def test_relu_he_uses_he_hidden_and_glorot_output(params):
    keras.utils.set_random_seed(3)
    model = build_keras_model(spec_for(params, "deep_relu"))
    for layer in model.layers[:-1]:
        fan_in = layer.kernel.shape[0]
        limit = math.sqrt(6 / fan_in)
        assert _within(layer.kernel.numpy(), -limit, limit)
    glorot = math.sqrt(6 / (5 + 1))
    assert np.abs(model.layers[-1].kernel.numpy()).max() <= glorot


def test_same_seed_same_weights(params):
    spec = spec_for(params, "deep_relu")
    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(7)
        weights.append([w.numpy() for w in build_keras_model(spec).weights])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
