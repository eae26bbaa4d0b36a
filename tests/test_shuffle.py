"""Each replica's per-epoch row orders (train/jax/shuffle.py): permutations, uniform, of its seed and epoch alone,
the same on every backend."""
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import chisquare

from vanishing_gradients.train.jax import shuffle as js


def test_row_orders_are_permutations_whatever_the_batching():
    keys = js.shuffle_keys([4, 5, 6])
    together = np.asarray(js.all_permutations(keys, np.arange(1, 4), 50)).swapaxes(1, 2)  # (epochs, K, n)
    for e in range(3):
        np.testing.assert_array_equal(together[e], np.asarray(js.permutations(keys, e + 1, 50)).T)
    assert all(sorted(row) == list(range(50)) for row in together.reshape(-1, 50))
    assert len({tuple(row) for row in together.reshape(-1, 50)}) == 9  # every replica and epoch its own order


def test_row_orders_are_uniform():
    """Each of the 24 orders of 4 rows is drawn equally often (chi-square over 12,000 replicas), and each
    row lands in each position equally often."""
    orders = np.asarray(js.permutations(js.shuffle_keys(range(12_000)), 7, 4)).T  # (K, 4)
    _, counts = np.unique(orders, axis=0, return_counts=True)
    assert len(counts) == 24 and chisquare(counts).pvalue > 1e-3
    for position in range(4):
        assert chisquare(np.bincount(orders[:, position], minlength=4)).pvalue > 1e-3


def test_tied_pairs_are_ordered_by_a_coin():
    """Rows whose random key bits tie would keep their index order; a tied pair is swapped on a coin, so
    both of its orders come equally often. Here rows 0, 1 always tie, as do rows 2, 3 (above them)."""
    rng = np.random.default_rng(0)
    high = np.array([5, 5, 9, 9], np.uint32) << 8  # the key bits above the 2 index bits
    words = high[:, None] | rng.integers(0, 4, (1, 4, 8000), dtype=np.uint32)  # (rounds, n, rows): random index bits
    orders = np.asarray(js._orders(jnp.asarray(words), "cpu")).T  # (rows, n)
    assert set(map(tuple, orders[:, :2])) == {(0, 1), (1, 0)} and set(map(tuple, orders[:, 2:])) == {(2, 3), (3, 2)}
    _, counts = np.unique(orders, axis=0, return_counts=True)
    assert len(counts) == 4 and chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("n, rounds", [(1, 1), (4, 1), (500, 1), (512, 1), (513, 2), (4096, 2), (2**20, 6)])
def test_more_rows_take_more_sorting_rounds(n, rounds):
    """Fewer random bits are left in a key as n grows: rounds are added until the bound on a biased order
    (see _sort_plan) is below SHUFFLE_BIAS, and no more."""
    index_bits, found = js._sort_plan(n)
    assert found == rounds and 2**index_bits >= n
    bound = lambda r: max(n, 2) ** 3 / 2 * 2.0 ** (-(32 - index_bits) * (r + 1))
    assert bound(rounds) <= js.SHUFFLE_BIAS and (rounds == 1 or bound(rounds - 1) > js.SHUFFLE_BIAS)


@pytest.mark.parametrize("n", [1, 2, 3, 500, 512, 5000])
def test_the_sorting_network_orders_as_xla_sorts(n):
    """The CPU's sorting network (padded to a power of two) and the GPU's sort give the same orders, also
    over several rounds (5,000 rows), and they are permutations."""
    keys = js.shuffle_keys(range(7))
    network, sort = (np.asarray(js.permutations(keys, 3, n, platform)).T for platform in ("cpu", "gpu"))
    np.testing.assert_array_equal(network, sort)
    assert network.dtype == np.int32 and all(sorted(row) == list(range(n)) for row in network)


def test_the_network_sorts_any_column():
    columns = np.random.default_rng(1).integers(0, 2**32, (64, 300), dtype=np.uint32)
    columns[:, :5] = columns[0, 0]  # equal keys too
    np.testing.assert_array_equal(np.asarray(js._bitonic(jnp.asarray(columns))), np.sort(columns, axis=0))
