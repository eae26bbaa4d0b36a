"""The fast engine's hand-written backward pass against jax.grad of its own forward pass."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vanishing_gradients.core.extensions import ACTIVATIONS
from vanishing_gradients.train.jax import model as jm


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("shared, batch, mixed", [(False, 32, True), (True, 32, True), (False, 100, True),
                                                  (False, 32, False)],
                         ids=["own_rows", "shared_rows", "long_batch", "one_depth"])
def test_loss_and_grads_equal_jax_grad(activation, shared, batch, mixed):
    """Replicas of depths 1-3 in one program (weights beyond a replica's depth nonzero on purpose; the scan over
    layers then stays rolled), or all of depth 3 (unrolled), a partly masked batch: losses equal, gradients equal
    to rounding, and zero exactly where jax.grad's are."""
    rng = np.random.default_rng(0)
    K, shapes = 7, [(2, 5), (5, 5), (5, 5), (5, 1)]
    params = jm.pack([(jnp.asarray(rng.uniform(-1, 1, (a, b, K)), jnp.float32),
                       jnp.asarray(rng.uniform(-0.1, 0.1, (b, K)), jnp.float32)) for a, b in shapes])
    exists = jnp.arange(1, 4)[:, None] <= jnp.asarray([1, 2, 3, 3, 2, 1, 3])[None] if mixed else None  # (hidden, K)
    x = jnp.asarray(rng.normal(size=(batch, 2) if shared else (batch, 2, K)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 2, (batch, 1) if shared else (batch, K)), jnp.float32)
    mask = jnp.asarray(np.arange(batch) < 20, jnp.float32)

    def objective(p):
        losses = jnp.sum(jm.bce_with_logits(jm.forward(p, x, activation, exists), y) * mask[:, None], 0) / jnp.sum(mask)
        return jnp.sum(losses), losses

    (_, expected_losses), expected = jax.value_and_grad(objective, has_aux=True)(params)
    losses, logits, grads = jm.loss_and_grads(params, x, y, mask, activation, exists)
    np.testing.assert_array_equal(losses, expected_losses)
    np.testing.assert_array_equal(logits, jm.forward(params, x, activation, exists))
    for ours, theirs in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * float(jnp.max(jnp.abs(theirs))))
        np.testing.assert_array_equal(ours == 0, theirs == 0)


@pytest.mark.parametrize("n_hidden", [1, 2, 4])
def test_packed_layers_round_trip_and_one_hidden_layer_trains(n_hidden):
    """pack stacks the hidden layers after the first (none for one hidden layer: an empty stack), unpack gives
    the layers back; the optimiser's slots pack alike; with one hidden layer the gradients still equal jax.grad's."""
    rng = np.random.default_rng(1)
    K, shapes = 3, [(2, 5)] + [(5, 5)] * (n_hidden - 1) + [(5, 1)]
    layers = [(jnp.asarray(rng.normal(size=(a, b, K)), jnp.float32), jnp.asarray(rng.normal(size=(b, K)), jnp.float32))
              for a, b in shapes]
    packed = jm.pack(layers)
    assert jm.n_layers(packed) == n_hidden + 1 and packed[1][0].shape == (n_hidden - 1, 5, 5, K)
    for ours, theirs in zip(jax.tree.leaves(jm.unpack(packed)), jax.tree.leaves(layers)):
        np.testing.assert_array_equal(ours, theirs)
    slots = jm.pack([((k, k), (b, b)) for k, b in layers])  # Adam's two slots per kernel and bias
    assert slots[1][0][1].shape == (n_hidden - 1, 5, 5, K) and slots[1][1][0].shape == (n_hidden - 1, 5, K)
    np.testing.assert_array_equal(jm.per_layer([a[..., 0, 0, :] for a, _ in packed]),
                                  np.stack([k[0, 0] for k, _ in layers]))  # (L, K) in layer order
    x = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)
    y, mask = jnp.asarray(rng.integers(0, 2, (8, 1)), jnp.float32), jnp.ones(8)
    objective = lambda p: jnp.sum(jnp.mean(jm.bce_with_logits(jm.forward(p, x, "tanh"), y), axis=0))
    for ours, theirs in zip(jax.tree.leaves(jm.loss_and_grads(packed, x, y, mask, "tanh")[2]),
                            jax.tree.leaves(jax.grad(objective)(packed))):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
