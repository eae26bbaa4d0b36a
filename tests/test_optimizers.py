"""The fast engine's optimiser rules (train/jax/optimizers.py) against Keras's optimisers on the TensorFlow backend:
several steps on the same weights and gradients give the same weights, for three replicas side by side whose
settings differ (the replica axis last)."""
import jax.numpy as jnp
import numpy as np
import pytest

from vanishing_gradients.train.jax.optimizers import apply, hyperparameters, zeros_state
from vanishing_gradients.train.keras import keras, keras_optimizer

SETTINGS = {  # per case, one optimiser's settings for each of three replicas
    "sgd": [{"name": "sgd", "learning_rate": lr} for lr in (0.1, 0.01, 1.0)],
    "momentum": [{"name": "sgd", "learning_rate": 0.05, "momentum": m} for m in (0.0, 0.5, 0.9)],
    "nesterov": [{"name": "sgd", "learning_rate": 0.05, "momentum": m, "nesterov": True} for m in (0.3, 0.9, 0.99)],
    "adam": [{"name": "adam", "learning_rate": lr} for lr in (0.001, 0.01, 0.1)],
    "adam_betas": [{"name": "adam", "learning_rate": 0.01, "beta_1": b1, "beta_2": b2, "epsilon": eps}
                   for b1, b2, eps in ((0.5, 0.9, 1e-3), (0.9, 0.999, 1e-7), (0.0, 0.99, 1e-5))],
}


@pytest.mark.parametrize("case", SETTINGS)
def test_rules_match_keras(case):
    settings, steps = SETTINGS[case], 4
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(3, 2, 3)).astype(np.float32), rng.normal(size=(2, 3)).astype(np.float32)
    grads = [(rng.normal(size=kernel.shape).astype(np.float32), rng.normal(size=bias.shape).astype(np.float32))
             for _ in range(steps)]  # per step, (fan_in, fan_out, K) and (fan_out, K)
    params, hp = [(jnp.asarray(kernel), jnp.asarray(bias))], hyperparameters(settings)
    name = settings[0]["name"]
    state = zeros_state(params, name)
    for step, (gw, gb) in enumerate(grads):
        params, state = apply(name, params, [(jnp.asarray(gw), jnp.asarray(gb))], state, hp, jnp.asarray(step),
                              settings[0].get("nesterov", False))
    for k, setting in enumerate(settings):  # each replica trained alone by Keras
        variables = [keras.Variable(kernel[..., k]), keras.Variable(bias[..., k])]
        optimizer = keras_optimizer(setting)
        for gw, gb in grads:
            optimizer.apply_gradients([(gw[..., k], variables[0]), (gb[..., k], variables[1])])
        np.testing.assert_allclose(params[0][0][..., k], variables[0].numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(params[0][1][..., k], variables[1].numpy(), rtol=1e-6, atol=1e-7)


def test_every_optimizer_has_a_rule_and_an_unknown_one_is_an_error():
    """Each optimiser of the extension table has a fast-engine rule; a name without one is refused, on the
    XLA path and the GPU kernels' alike (both look rules up with `rule`), never trained by another's rule."""
    from vanishing_gradients.core.extensions import OPTIMIZERS
    from vanishing_gradients.train.jax.optimizers import RULES, rule

    assert set(RULES) == set(OPTIMIZERS)
    with pytest.raises(ValueError, match="'rmsprop' has no update rule"):
        rule("rmsprop")
