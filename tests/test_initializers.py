"""The fast engine's initial weights: drawn in two programs (the uniform numbers compiled quickly, their scaling
optimised), bit for bit what one optimised program draws; drawn for a bucket of replicas on the platform's first
device, each replica's its own whatever the bucket or device; and those small programs kept in the disk cache."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vanishing_gradients.core.models import ModelSpec
from vanishing_gradients.train.jax import initializers
from vanishing_gradients.train.jax import program  # noqa: F401  (before JAX starts: a CPU device per core)
from vanishing_gradients.train.jax.shuffle import shuffle_keys


@jax.jit
def _one_program(keys, fold, low, high, active):
    """The reference: uniform numbers and their scaling in one program, compiled with XLA's defaults."""
    u = jax.vmap(lambda key, i: jax.random.uniform(jax.random.fold_in(key, i), (5, 5)))(keys, fold)
    kernel = jnp.maximum(low[:, None, None], u * (high - low)[:, None, None] + low[:, None, None])
    return jnp.moveaxis(jnp.where(active[:, None, None], kernel, 0.0), 0, -1)


@pytest.mark.parametrize("replicas", [3, 140])
def test_uniform_kernels_are_one_optimised_programs_bit_for_bit(replicas):
    keys = jax.vmap(jax.random.key)(jnp.arange(1, replicas + 1, dtype=jnp.uint32))
    fold = np.arange(replicas) % 7
    rng = np.random.default_rng(0)  # bounds of every kind: He/Glorot's symmetric ones and arbitrary ones
    low = rng.uniform(-1.5, 0.5, replicas).astype(np.float32)
    high = (low + rng.uniform(0.1, 2.0, replicas)).astype(np.float32)
    active = np.arange(replicas) % 5 != 4
    two = initializers._scale(initializers._uniform(5, 5, keys, fold), low, high, active)
    one = _one_program(keys, fold, low, high, active)
    assert two.shape == (5, 5, replicas)
    assert np.asarray(two).tobytes() == np.asarray(one).tobytes()
    assert not np.asarray(two)[..., ~active].any()


def test_small_programs_are_kept_in_the_disk_cache(tmp_path):
    """A train job's small programs (here the uniform numbers') are written to the disk cache, for the next job."""
    code = ("from vanishing_gradients.train.jax import program, initializers; import jax, jax.numpy as jnp; "
            "keys = jax.vmap(jax.random.key)(jnp.arange(3, dtype=jnp.uint32)); "
            "initializers._uniform(2, 5, keys, jnp.zeros(3, jnp.int32)).block_until_ready()")
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path)}
    env.pop("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", None)
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("jit__uniform")]


def _draws(specs, seeds, device):
    """Initial weights (kernels and biases) and shuffle keys drawn with `device` in use, as numpy arrays."""
    with jax.default_device(device):
        weights = initializers.init_params(specs, seeds, 4)
        keys = shuffle_keys(seeds)
        assert {next(iter(a.devices())) for a in jax.tree.leaves(weights) + [keys]} == {device}  # where they run
    keys = np.asarray(jax.random.key_data(keys)).T  # (2, K): the replica axis last, as the weights'
    return [np.asarray(a) for a in jax.tree.leaves(weights)] + [keys]


def test_each_replica_draws_its_own_in_any_bucket_and_on_any_device():
    """A replica's initial weights and shuffle key, drawn among 130 (a bucket of 256), alone (a bucket of 64) or
    with the second CPU device in use, are bit for bit the same; and drawing for another replica count of the same
    bucket, on another device, compiles nothing new."""
    glorot, uniform = "glorot_uniform", {"name": "random_uniform", "minval": -0.5, "maxval": 2.0}
    specs = [ModelSpec(1 + k % 4, 3, "tanh", "orthogonal" if k % 3 == 0 else glorot, uniform) for k in range(130)]
    seeds = [7 * k + 3 for k in range(130)]
    devices = jax.devices("cpu")
    many = _draws(specs, seeds, devices[0])
    for k in (0, 1, 77, 129):  # orthogonal and uniform, depths 1 to 4
        alone = _draws([specs[k]], [seeds[k]], devices[-1])
        for a, b in zip(many, alone):
            assert a[..., k].tobytes() == b[..., 0].tobytes()
    made = []
    listener = lambda event, duration, **_: made.append(event) if event.endswith("backend_compile_duration") else None
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        _draws(specs[:5], seeds[:5], devices[-1])  # 5 replicas: the bucket of the single replicas above
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert made == []
