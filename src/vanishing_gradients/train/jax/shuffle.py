"""Each replica's order of the training rows in each epoch: a uniform random permutation, a function of the
replica's seed and the epoch alone (never of its company), and the same on every backend.

An order is drawn by sorting 32-bit keys that hold random bits above each row's position. Keys are distinct,
so any sort gives the same order: a CPU runs a sorting network vectorised across replicas, a GPU XLA's sort.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from .initializers import bucket, draw_device, padded, seed_keys

SHUFFLE_BIAS = 2.0**-20  # bound on the chance that a row order is not exactly uniform (see _sort_plan)
LARGEST_KEY = 0xFFFFFFFF  # pads a sorting network's columns: above every real key (see _sort)


@jax.jit
def _shuffle_keys(seeds):
    """(K,) shuffle keys of (K,) uint32 seeds."""
    return jax.vmap(lambda key: jax.random.fold_in(key, 1_000_003))(seed_keys(seeds))


def shuffle_keys(seeds) -> jnp.ndarray:
    """One key per replica for its per-epoch permutations, independent of the initialisation keys (drawn as the
    initial weights are, for a bucket of replicas on the platform's first device: initializers.py)."""
    seeds = np.asarray(list(seeds), np.uint32)
    with jax.default_device(draw_device()):
        keys = _shuffle_keys(padded(seeds, bucket(len(seeds))))
    return jax.random.wrap_key_data(np.asarray(jax.random.key_data(keys))[:len(seeds)])


def _sort_plan(n: int) -> tuple[int, int]:
    """How n rows are shuffled: bits of a sort key that hold a row's position, and how many sorts (rounds).

    A round sorts keys made of random high bits and the position in the low ones. Rows whose random bits tie
    keep their earlier order; a tied pair is then swapped on a coin (exact), so an order can only be biased
    where three or more rows tie in the last round and two of them in every round: about n**3 / 2 *
    2**-(random bits * (rounds + 1)). Rounds are added until that is below SHUFFLE_BIAS (500 rows: one)."""
    index_bits = max(1, (n - 1).bit_length())
    random_bits = 32 - index_bits
    return index_bits, max(1, math.ceil((math.log2(max(n, 2) ** 3 / 2) - math.log2(SHUFFLE_BIAS)) / random_bits) - 1)


def _bits(keys: jnp.ndarray, epoch, n: int) -> jnp.ndarray:
    """(rounds, n, K) random words behind each replica's row order in `epoch`: of its key and the epoch only."""
    words = jax.vmap(lambda k: jax.random.bits(jax.random.fold_in(k, epoch), (_sort_plan(n)[1], n)))(keys)
    return jnp.transpose(words, (1, 2, 0))


def _bitonic(columns: jnp.ndarray) -> jnp.ndarray:
    """(N, M), N a power of two -> each of the M columns (one per replica) sorted ascending by a bitonic network.

    Its N log2(N)^2 / 4 compare-exchanges are fixed in advance, so each stage is an elementwise min and max,
    vectorised across the columns, where XLA's sort on a CPU sorts one replica at a time and its result then
    needs transposing into the batches' layout (faster by several times; benchmarks/README.md)."""
    n, m = columns.shape
    size = 2
    while size <= n:  # merge sorted runs of size / 2 into runs of `size`
        runs = columns.reshape(n // size, size, m)
        low, high = runs[:, :size // 2], runs[:, size // 2:][:, ::-1]  # each run's halves, the second reversed
        columns = jnp.concatenate([jnp.minimum(low, high), jnp.maximum(low, high)[:, ::-1]], axis=1).reshape(n, m)
        stride = size // 4
        while stride:  # then sort each half of every run: compare-exchange elements `stride` apart
            pairs = columns.reshape(n // (2 * stride), 2, stride, m)
            low, high = pairs[:, 0], pairs[:, 1]
            columns = jnp.stack([jnp.minimum(low, high), jnp.maximum(low, high)], axis=1).reshape(n, m)
            stride //= 2
        size *= 2
    return columns


def _sort(columns: jnp.ndarray, platform: str) -> jnp.ndarray:
    """(n, M) distinct keys -> each column sorted ascending: on a GPU by XLA's sort along the minor axis,
    elsewhere by the network, whose columns are padded to a power of two with LARGEST_KEY (never a real key:
    a real key's low bits hold a position below n, and n is below the padded size whenever there is padding)."""
    if platform == "gpu":
        return jax.lax.sort(columns.T, dimension=1).T
    n, m = columns.shape
    padding = jnp.full((2 ** (n - 1).bit_length() - n, m), LARGEST_KEY, jnp.uint32)
    return _bitonic(jnp.concatenate([columns, padding]))[:n]


def _orders(words: jnp.ndarray, platform: str) -> jnp.ndarray:
    """(rounds, n, M) random words -> (n, M): one uniform random permutation of range(n) per column (see
    _sort_plan), in the replica-minor layout the engine's batches take."""
    rounds, n, m = words.shape
    index_bits = _sort_plan(n)[0]
    low = jnp.uint32(2**index_bits - 1)
    position = jnp.arange(n, dtype=jnp.uint32)[:, None]
    order = None
    for r in range(rounds):  # a row's key: its random bits, then its place in the order so far
        keys = _sort((words[r] & ~low) | position, platform)
        places = (keys & low).astype(jnp.int32)
        order = places if order is None else jnp.take_along_axis(order, places, axis=0)
    tie = (keys[1:] >> index_bits) == (keys[:-1] >> index_bits)  # (n - 1, M): places i, i + 1 tie
    alone = jnp.zeros((1, m), bool)
    pair = tie & ~jnp.concatenate([alone, tie[:-1]]) & ~jnp.concatenate([tie[1:], alone])
    # the coin: bit 0 of the word drawn for place i, never part of a key (index_bits >= 1)
    swap = pair & ((words[-1][:-1] & 1) == 1)  # (n - 1, M): places i and i + 1 trade rows
    up, down = jnp.concatenate([swap, alone]), jnp.concatenate([alone, swap])
    return jnp.where(up, jnp.roll(order, -1, 0), jnp.where(down, jnp.roll(order, 1, 0), order))


def permutations(keys: jnp.ndarray, epoch, n: int, platform: str = "cpu") -> jnp.ndarray:
    """(n, K): each replica's order of the training rows in `epoch` (column k: replica k's), the same for
    every `platform`."""
    return _orders(_bits(keys, epoch, n), platform)


def all_permutations(keys: jnp.ndarray, epochs: jnp.ndarray, n: int, platform: str = "cpu") -> jnp.ndarray:
    """(epochs, n, K): the same orders as `permutations`, drawn in one pass (faster for few replicas)."""
    return jax.vmap(lambda epoch: permutations(keys, epoch, n, platform))(epochs)
