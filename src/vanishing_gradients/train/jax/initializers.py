"""The fast engine's initial weights, by Keras's initialiser rules (core/extensions.py's INITIALIZERS: uniform
or orthogonal), as functions of each replica's seed alone (never of its company).

Drawing is microseconds of work but a compiled program per shape, and a shape holds the replica count: the draws
are made for a bucket of replicas (the count rounded up to a power of two, padding repeating the first replica,
whose copies are dropped) on the first device of the platform in use, so that programs of other replica counts
and on other CPU devices read the same compiled draws (from memory, or from the disk cache in another job)."""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .linalg import qr
from ...core.extensions import bounds, is_uniform
from ...core.models import ModelSpec


MIN_BUCKET = 64  # replicas drawn at least (tests and small studies share one bucket)


def bucket(k: int) -> int:
    """Replicas drawn for k: k rounded up to a power of two, at least MIN_BUCKET."""
    return max(MIN_BUCKET, 1 << (k - 1).bit_length())


def padded(a, size: int) -> np.ndarray:
    """a (k, ...) with its first row repeated to `size` rows."""
    a = np.asarray(a)
    return np.concatenate([a, np.repeat(a[:1], size - len(a), axis=0)])


def current_device():
    """The device in use: jax.default_device's, else JAX's default."""
    device = jax.config.jax_default_device
    return jax.devices(device)[0] if isinstance(device, str) else device or jax.devices()[0]


def draw_device():
    """The first device of the platform in use: the draws' compiled programs are then the same for every device
    of that platform."""
    return jax.devices(current_device().platform)[0]


@jax.jit
def seed_keys(seeds):
    """(K,) JAX keys of (K,) uint32 seeds."""
    return jax.vmap(jax.random.key)(seeds)


def _distinct(inits: list) -> tuple[list, np.ndarray]:
    """The distinct initialisers among the replicas' (K,), and each replica's index into them: bounds are
    then computed once per distinct one (a program may hold 100,000 replicas)."""
    index = {}
    codes = [index.setdefault(id(i), len(index)) for i in inits]
    distinct = {code: i for i, code in zip(inits, codes)}
    return [distinct[c] for c in range(len(distinct))], np.asarray(codes)


# Drawing is microseconds of work, but XLA's optimising compile of threefry's rounds took about a second of CPU per
# layer shape and replica count, several per program. The uniform numbers are integer work and exact however they
# are compiled: on the CPU they are compiled unoptimised, in about a third of the time. Their scaling, floating
# point (XLA fuses its multiply and add), stays in an optimised program of its own.
QUICK_COMPILE = {"xla_backend_optimization_level": 0}


def _quick_on_cpu(fun):
    """jax.jit(fun) with its first two arguments static, compiled with QUICK_COMPILE when its third (the
    replicas' keys) lives on a CPU."""
    versions = {"cpu": jax.jit(fun, static_argnums=(0, 1), compiler_options=QUICK_COMPILE),
                "other": jax.jit(fun, static_argnums=(0, 1))}

    def call(fan_in, fan_out, keys, *args):
        on_cpu = next(iter(keys.devices())).platform == "cpu"
        return versions["cpu" if on_cpu else "other"](fan_in, fan_out, keys, *args)
    return call


@_quick_on_cpu
def _uniform(fan_in: int, fan_out: int, keys, fold):
    """(K, fan_in, fan_out): replica k's jax.random.uniform (in [0, 1)) from fold_in(its key, fold[k])."""
    return jax.vmap(lambda key, i: jax.random.uniform(jax.random.fold_in(key, i), (fan_in, fan_out)))(keys, fold)


@jax.jit
def _scale(u, low, high, active):
    """One layer's kernels (fan_in, fan_out, K) from _uniform's u: uniform in [low[k], high[k]) as
    jax.random.uniform(minval, maxval) computes it; zeros where not `active`."""
    kernel = jnp.maximum(low[:, None, None], u * (high - low)[:, None, None] + low[:, None, None])
    return jnp.moveaxis(jnp.where(active[:, None, None], kernel, 0.0), 0, -1)


@partial(jax.jit, static_argnums=(0, 1))
def _orthogonal(fan_in: int, fan_out: int, keys, fold):
    """Orthogonal kernels (K, fan_in, fan_out) as keras.initializers.Orthogonal draws them: the QR of a standard
    normal (max, min) matrix, Q's columns times the signs of R's diagonal, transposed when fan_in < fan_out."""
    shape = (max(fan_in, fan_out), min(fan_in, fan_out))
    a = jax.vmap(lambda key, i: jax.random.normal(jax.random.fold_in(key, i), shape))(keys, fold)
    q, r = qr(a)
    q = q * jnp.sign(jnp.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    return q if fan_in >= fan_out else jnp.swapaxes(q, 1, 2)


@jax.jit
def _with_orthogonal(kernel, orthogonal, chosen):
    """kernel (fan_in, fan_out, K) with replica k's from orthogonal (K, fan_in, fan_out) where chosen (K,)."""
    return jnp.where(chosen, jnp.moveaxis(orthogonal, 0, -1), kernel)


def init_params(specs: list[ModelSpec], seeds,
                n_hidden: int | None = None) -> list[tuple[jnp.ndarray, jnp.ndarray]]:
    """Per layer (kernel (fan_in, fan_out, K), bias (fan_out, K)) for replicas of one width and any depths,
    padded to `n_hidden` (default: the deepest): hidden layers 1..n_hidden, then the output layer.
    Replica k's layer i is drawn from its seed and i alone (its output layer from its own depth), so a
    replica starts the same in any company; layers beyond its depth are zeros and never used. Drawn for
    bucket(K) replicas on draw_device() (see above)."""
    K, size = len(specs), bucket(len(specs))
    depths = np.asarray([s.depth for s in specs])
    n_hidden, width = n_hidden or int(depths.max()), specs[0].width
    shapes = [(specs[0].n_inputs, width)] + [(width, width)] * (n_hidden - 1) + [(width, 1)]
    hidden_inits, output_inits = _distinct([s.hidden_init for s in specs]), _distinct([s.output_init for s in specs])

    def layer(keys, i, fold, inits, active):
        fan_in, fan_out = shapes[i]
        distinct, codes = inits
        uniform = np.asarray([is_uniform(init) for init in distinct])[codes]  # (K,)
        limits = np.asarray([bounds(init, fan_in, fan_out) if is_uniform(init) else (0, 0) for init in distinct],
                            np.float32)[codes]  # (K, 2)
        fold, active, uniform, limits = (padded(a, size) for a in (fold, active, uniform, limits))  # (size, ...)
        kernel = _scale(_uniform(fan_in, fan_out, keys, fold), limits[:, 0], limits[:, 1], active)
        if not uniform.all():  # some replicas' kernels are orthogonal
            kernel = _with_orthogonal(kernel, _orthogonal(fan_in, fan_out, keys, fold), ~uniform & active)
        return np.asarray(kernel)[..., :K], np.zeros((fan_out, K), np.float32)

    with jax.default_device(draw_device()):
        keys = seed_keys(padded(np.asarray(list(seeds), np.uint32), size))  # (size,)
        params = [layer(keys, i, np.full(K, i), hidden_inits, i < depths) for i in range(n_hidden)]
        params.append(layer(keys, n_hidden, depths, output_inits, depths >= 0))
    return jax.tree.map(jax.device_put, params)  # on the device in use (a transfer: nothing to compile)
