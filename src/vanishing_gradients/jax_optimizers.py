"""Keras's optimiser rules for the fast engine, written once for both of its paths: XLA's, a whole layer of K
replicas at a time (jax_engine.py), and the GPU kernels', one parameter of one replica at a time
(gpu_kernels.py). Each rule is elementwise; per-replica settings are (K,) arrays, broadcast along the
replica axis, which is every array's last."""
from __future__ import annotations

import jax.numpy as jnp

DEFAULTS = {"sgd": {"momentum": 0.0}, "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}}
# the settings each rule takes, in its order, by their names in hyperparameters()
RULE_SETTINGS = {"sgd": ("learning_rate", "momentum"),
                 "adam": ("one_minus_beta_1", "one_minus_beta_2", "epsilon")}


def hyperparameters(settings: list[dict]) -> dict[str, jnp.ndarray]:
    """Per-replica optimiser settings, each a (K,) float32 array (replicas may differ). For Adam also
    1 - beta_1 and 1 - beta_2 as Keras forms them: from the Python floats, then cast. (1 - float32(0.999) is
    1.3e-5 away from float32(0.001): formed that way, an Adam step differed from Keras's by 7e-6 of its size.)"""
    name = settings[0]["name"]
    values = {k: [s.get(k, DEFAULTS[name].get(k)) for s in settings] for k in ["learning_rate", *DEFAULTS[name]]}
    if name == "adam":
        values.update({f"one_minus_{beta}": [1 - b for b in values[beta]] for beta in ("beta_1", "beta_2")})
    return {k: jnp.asarray(v, jnp.float32) for k, v in values.items()}


def zeros_state(params, optimizer: str):
    """The optimiser's state before the first step: per layer (m_kernel, m_bias), or ((m, v), (m, v)) for Adam."""
    zeros = [(jnp.zeros_like(w), jnp.zeros_like(b)) for w, b in params]
    return zeros if optimizer == "sgd" else [((zw, zw), (zb, zb)) for zw, zb in zeros]


def sgd_rule(p, g, m, learning_rate, momentum, nesterov: bool):
    """Keras's SGD: m = momentum * m - lr * g, then p + m, or with Nesterov p + momentum * m - lr * g.
    Returns the new p and m."""
    m = m * momentum - g * learning_rate
    return (p + (m * momentum - g * learning_rate) if nesterov else p + m), m


def adam_step_size(learning_rate, beta_1, beta_2, t):
    """Keras's Adam step size at step t (1, 2, ...): lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)."""
    return learning_rate * jnp.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)


def adam_rule(p, g, m, v, alpha, one_minus_beta_1, one_minus_beta_2, epsilon):
    """Keras's Adam with step size alpha (adam_step_size), 1 - beta_i as hyperparameters gives them: returns the
    new p, m and v."""
    m = m + (g - m) * one_minus_beta_1
    v = v + (g * g - v) * one_minus_beta_2
    return p - (m * alpha) / (jnp.sqrt(v) + epsilon), m, v


def sgd(params, grads, state, hp, step, nesterov):
    """One step of every layer: params, grads and state per layer (kernel, bias), each (..., K)."""
    settings, new_params, new_state = [hp[k] for k in RULE_SETTINGS["sgd"]], [], []
    for (w, b), (gw, gb), (mw, mb) in zip(params, grads, state):
        (w, mw), (b, mb) = [sgd_rule(p, g, m, *settings, nesterov) for p, g, m in ((w, gw, mw), (b, gb, mb))]
        new_params.append((w, b))
        new_state.append((mw, mb))
    return new_params, new_state


def adam(params, grads, state, hp, step, nesterov):
    """One step of every layer, `step` the steps taken before (as sgd; `nesterov` does not apply)."""
    alpha = adam_step_size(hp["learning_rate"], hp["beta_1"], hp["beta_2"], (step + 1).astype(jnp.float32))
    settings, new_params, new_state = [hp[k] for k in RULE_SETTINGS["adam"]], [], []
    for (w, b), (gw, gb), ((mw, vw), (mb, vb)) in zip(params, grads, state):
        (w, mw, vw), (b, mb, vb) = [adam_rule(p, g, m, v, alpha, *settings)
                                    for p, g, m, v in ((w, gw, mw, vw), (b, gb, mb, vb))]
        new_params.append((w, b))
        new_state.append(((mw, vw), (mb, vb)))
    return new_params, new_state


OPTIMIZERS = {"sgd": sgd, "adam": adam}
