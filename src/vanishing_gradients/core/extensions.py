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

import numpy as np


@dataclass(frozen=True)
class Activation:
    """A hidden layer's activation."""

    forward: Callable  # (xp, z) -> a = phi(z)
    slope: Callable  # a -> phi'(z) from the output a, as JAX's rules differentiate `forward`
    keras: str  # the name keras.layers.Dense(activation=...) takes
    saturates: bool = True  # bounded: |a| > 0.99 means a flat slope (a failure kind reads it)


ACTIVATIONS = {
    "tanh": Activation(lambda xp, z: xp.tanh(z), lambda a: 1 - a * a, "tanh"),
    "relu": Activation(lambda xp, z: xp.maximum(z, 0.0), lambda a: (a > 0).astype(a.dtype), "relu", saturates=False),
    "sigmoid": Activation(lambda xp, z: 1.0 / (1.0 + xp.exp(-z)), lambda a: a * (1 - a), "sigmoid"),
}


def _symmetric(scale: float) -> tuple[float, float]:
    return -math.sqrt(scale), math.sqrt(scale)


@dataclass(frozen=True)
class Initializer:
    """A kernel initialiser as Keras draws it: uniform on [low, high), or (no bounds) orthogonal, Keras's QR of
    a standard normal matrix with the signs of R's diagonal moved into Q (a Haar-random orthogonal matrix)."""

    bounds: Callable | None  # (settings, fan_in, fan_out) -> (low, high) of a kernel of shape (fan_in, fan_out)
    keras: str  # its class in keras.initializers
    settings: tuple[str, ...] = ()  # keys params.yaml gives it ({name: ..., key: value}); none: a bare name


INITIALIZERS = {
    "glorot_uniform": Initializer(lambda s, fan_in, fan_out: _symmetric(6 / (fan_in + fan_out)), "GlorotUniform"),
    "he_uniform": Initializer(lambda s, fan_in, fan_out: _symmetric(6 / fan_in), "HeUniform"),
    "lecun_uniform": Initializer(lambda s, fan_in, fan_out: _symmetric(3 / fan_in), "LecunUniform"),
    "random_uniform": Initializer(lambda s, fan_in, fan_out: (s["minval"], s["maxval"]), "RandomUniform",
                                  ("minval", "maxval")),
    "orthogonal": Initializer(None, "Orthogonal"),  # gain 1, Keras's default
}


def initializer(init: str | dict) -> tuple[Initializer, dict]:
    """params.yaml's initialiser (a name, or {name, settings...}) as its table entry and its settings."""
    if isinstance(init, str):
        return INITIALIZERS[init], {}
    return INITIALIZERS[init["name"]], {k: v for k, v in init.items() if k != "name"}


def is_uniform(init: str | dict) -> bool:
    return initializer(init)[0].bounds is not None


def bounds(init: str | dict, fan_in: int, fan_out: int) -> tuple[float, float]:
    """(low, high) of a uniform initialiser's draw."""
    entry, settings = initializer(init)
    return entry.bounds(settings, fan_in, fan_out)


def moments(init: str | dict, fan_in: int, fan_out: int) -> tuple[float, float]:
    """Mean and variance of one kernel entry. An orthogonal matrix's entries have mean 0 and variance
    1 / max(fan_in, fan_out): its min(fan_in, fan_out) orthonormal rows or columns have unit norm."""
    if not is_uniform(init):
        return 0.0, 1.0 / max(fan_in, fan_out)
    low, high = bounds(init, fan_in, fan_out)
    return (low + high) / 2, (high - low) ** 2 / 12


def draw(init: str | dict, rng, fan_in: int, fan_out: int, size: int):
    """`size` kernels (size, fan_in, fan_out) drawn by numpy's Generator `rng` with the initialiser's law (the
    theory's Monte Carlo; each engine draws with its own random numbers)."""
    if is_uniform(init):
        low, high = bounds(init, fan_in, fan_out)
        return rng.uniform(low, high, (size, fan_in, fan_out))
    q, r = np.linalg.qr(rng.standard_normal((size, max(fan_in, fan_out), min(fan_in, fan_out))))
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    return q if fan_in >= fan_out else np.swapaxes(q, 1, 2)


@dataclass(frozen=True)
class Optimizer:
    """An optimiser, with Keras's meaning of its settings."""

    keras: str  # its class in keras.optimizers
    defaults: dict = field(default_factory=dict)  # its settings besides learning_rate, with Keras's defaults


OPTIMIZERS = {
    "sgd": Optimizer("SGD", {"momentum": 0.0, "nesterov": False}),
    "adam": Optimizer("Adam", {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
}
