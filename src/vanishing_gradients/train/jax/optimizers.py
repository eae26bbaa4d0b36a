"""Keras's optimiser rules for the fast engine, one entry per optimiser of core/extensions.py's OPTIMIZERS, written
once for both of its paths: XLA's, a whole layer of K replicas at a time (program.py), and the GPU kernels', one
parameter of one replica at a time (gpu_kernels.py). Each rule is elementwise; per-replica settings are (K,)
arrays, broadcast along the replica axis, which is every array's last."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp

from ...core.extensions import OPTIMIZERS


@dataclass(frozen=True)
class Rule:
    """One optimiser's update of one parameter array p with gradient g."""

    settings: tuple[str, ...]  # the hyperparameters() it reads, in the order `update` takes them
    slots: int  # state arrays kept per parameter array (momentum; Adam's m and v)
    update: Callable  # (p, g, slots tuple, scalar, *settings, nesterov) -> (new p, new slots tuple)
    scalar: Callable | None = None  # (hp, t) -> the per-replica scalar of step t = 1, 2, ... (Adam's step size)
    derived: Callable | None = None  # settings dict -> further settings, computed as Keras computes them


def sgd_update(p, g, slots, scalar, learning_rate, momentum, nesterov: bool):
    """Keras's SGD: m = momentum * m - lr * g, then p + m, or with Nesterov p + momentum * m - lr * g."""
    m = slots[0] * momentum - g * learning_rate
    return (p + (m * momentum - g * learning_rate) if nesterov else p + m), (m,)


def adam_step_size(hp, t):
    """Keras's Adam step size at step t (1, 2, ...): lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)."""
    return hp["learning_rate"] * jnp.sqrt(1 - hp["beta_2"] ** t) / (1 - hp["beta_1"] ** t)


def adam_update(p, g, slots, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, nesterov: bool):
    """Keras's Adam with step size alpha (adam_step_size), 1 - beta_i as Keras forms them (adam_derived)."""
    m, v = slots
    m = m + (g - m) * one_minus_beta_1
    v = v + (g * g - v) * one_minus_beta_2
    return p - (m * alpha) / (jnp.sqrt(v) + epsilon), (m, v)


def adam_derived(values: dict) -> dict:
    """1 - beta_1 and 1 - beta_2 as Keras forms them: from the Python floats, then cast. (1 - float32(0.999) is
    1.3e-5 away from float32(0.001): formed that way, an Adam step differed from Keras's by 7e-6 of its size.)"""
    return {f"one_minus_{beta}": [1 - b for b in values[beta]] for beta in ("beta_1", "beta_2")}


RULES = {
    "sgd": Rule(("learning_rate", "momentum"), 1, sgd_update),
    "adam": Rule(("one_minus_beta_1", "one_minus_beta_2", "epsilon"), 2, adam_update, adam_step_size, adam_derived),
}


def rule(name: str) -> Rule:
    """The fast engine's rule for optimiser `name`; an optimiser without one is an error, never another's rule."""
    if name not in RULES:
        raise ValueError(f"optimizer {name!r} has no update rule in the fast engine (train/jax/optimizers.py RULES; "
                         f"rules exist for {', '.join(RULES)})")
    return RULES[name]


def hyperparameters(settings: list[dict]) -> dict[str, jnp.ndarray]:
    """Per-replica optimiser settings (one dict per replica, all of one optimiser), each a (K,) float32 array:
    learning_rate, the optimiser's numeric settings (Keras's defaults where not given) and its derived ones."""
    name = settings[0]["name"]
    numeric = {k: d for k, d in OPTIMIZERS[name].defaults.items() if not isinstance(d, bool)}
    values = {k: [s.get(k, numeric.get(k)) for s in settings] for k in ["learning_rate", *numeric]}
    derived = rule(name).derived
    values |= derived(values) if derived else {}
    return {k: jnp.asarray(v, jnp.float32) for k, v in values.items()}


def zeros_state(params, optimizer: str):
    """The optimiser's state before the first step: per layer (kernel slots, bias slots), each a tuple of
    rule(optimizer).slots zero arrays."""
    slots = rule(optimizer).slots
    return [(tuple(jnp.zeros_like(w) for _ in range(slots)), tuple(jnp.zeros_like(b) for _ in range(slots)))
            for w, b in params]


def apply(optimizer: str, params, grads, state, hp, step, nesterov: bool):
    """One step of every layer: params, grads and state per layer (kernel, bias), each (..., K); `step` the
    steps taken before. Returns the new params and state."""
    r = rule(optimizer)
    scalar = r.scalar(hp, (step + 1).astype(jnp.float32)) if r.scalar else None
    settings, new_params, new_state = [hp[k] for k in r.settings], [], []
    for (w, b), (gw, gb), (sw, sb) in zip(params, grads, state):
        (w, sw), (b, sb) = [r.update(p, g, s, scalar, *settings, nesterov) for p, g, s in ((w, gw, sw), (b, gb, sb))]
        new_params.append((w, b))
        new_state.append((sw, sb))
    return new_params, new_state
