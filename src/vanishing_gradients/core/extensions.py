"""The study's extension points, one table each. Every engine, the theory, the parameter schema and the
report read these tables, so a new activation, initialiser or optimiser is one entry here (for an
optimiser, plus its update rule in the fast engine's train/jax/optimizers.py); docs/engines.md says how.

Functions take an array module `xp` (numpy or jax.numpy) and use only the plain operations every backend
lowers, the GPU kernels' included, so one definition serves the fast engine, its kernels and the theory.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Activation:
    """A hidden layer's activation."""

    forward: Callable  # (xp, z) -> a = phi(z)
    slope: Callable  # a -> phi'(z) from the output a, as JAX's rules differentiate `forward`
    keras: str  # the name keras.layers.Dense(activation=...) takes


ACTIVATIONS = {
    "tanh": Activation(lambda xp, z: xp.tanh(z), lambda a: 1 - a * a, "tanh"),
    "relu": Activation(lambda xp, z: xp.maximum(z, 0.0), lambda a: (a > 0).astype(a.dtype), "relu"),
    "sigmoid": Activation(lambda xp, z: 1.0 / (1.0 + xp.exp(-z)), lambda a: a * (1 - a), "sigmoid"),
}


def _symmetric(scale: float) -> tuple[float, float]:
    return -math.sqrt(scale), math.sqrt(scale)


@dataclass(frozen=True)
class Initializer:
    """A kernel initialiser, uniform on [low, high) as Keras draws it."""

    bounds: Callable  # (settings, fan_in, fan_out) -> (low, high) for a kernel of shape (fan_in, fan_out)
    keras: str  # its class in keras.initializers
    settings: tuple[str, ...] = ()  # keys params.yaml gives it ({name: ..., key: value}); none: a bare name


INITIALIZERS = {
    "glorot_uniform": Initializer(lambda s, fan_in, fan_out: _symmetric(6 / (fan_in + fan_out)), "GlorotUniform"),
    "he_uniform": Initializer(lambda s, fan_in, fan_out: _symmetric(6 / fan_in), "HeUniform"),
    "lecun_uniform": Initializer(lambda s, fan_in, fan_out: _symmetric(3 / fan_in), "LecunUniform"),
    "random_uniform": Initializer(lambda s, fan_in, fan_out: (s["minval"], s["maxval"]), "RandomUniform",
                                  ("minval", "maxval")),
}


def initializer(init: str | dict) -> tuple[Initializer, dict]:
    """params.yaml's initialiser (a name, or {name, settings...}) as its table entry and its settings."""
    if isinstance(init, str):
        return INITIALIZERS[init], {}
    return INITIALIZERS[init["name"]], {k: v for k, v in init.items() if k != "name"}


def bounds(init: str | dict, fan_in: int, fan_out: int) -> tuple[float, float]:
    """(low, high) of a kernel's uniform draw."""
    entry, settings = initializer(init)
    return entry.bounds(settings, fan_in, fan_out)


@dataclass(frozen=True)
class Optimizer:
    """An optimiser, with Keras's meaning of its settings."""

    keras: str  # its class in keras.optimizers
    defaults: dict = field(default_factory=dict)  # its settings besides learning_rate, with Keras's defaults


OPTIMIZERS = {
    "sgd": Optimizer("SGD", {"momentum": 0.0, "nesterov": False}),
    "adam": Optimizer("Adam", {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
}
