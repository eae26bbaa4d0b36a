"""Statistics the fast engine (jax_engine.py) computes inside its program, every array with the replica axis
last: validation loss and accuracy, the kernels' gradients on the validation batches, unit states (saturated,
dead), how far each kernel moved, and TensorBoard's histogram bucketing of a replica's values."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .linalg import eigvalsh
from .model import bce_with_logits, forward, loss_and_grads, n_layers, per_layer
from ...core.statistics import SATURATED

BUCKETS = 30  # TensorBoard's default histogram bucket count
VMAP_REPLICAS = 64  # up to this many replicas, validation batches are differentiated all at once
# On CPU, forward passes over many rows (validation, the unit states, the final evaluation) go a few rows at a
# time, so that a pass's activations stay in cache: at least PASS_ROWS rows and about PASS_FLOATS activations
# per layer (see pass_rows).
PASS_ROWS, PASS_FLOATS = 32, 2**16


def mean_abs(groups) -> jnp.ndarray:
    """(L, K): mean |value| of each layer's kernel entry, of packed parameters or gradients (model.pack)."""
    return per_layer([jnp.mean(jnp.abs(kernel), axis=(-3, -2)) for kernel, _ in groups])


def batches(n: int, batch_size: int):
    """Number of batches of `batch_size` for n rows, and the (batches, batch_size) mask of real (unpadded) rows."""
    count = -(-n // batch_size)
    mask = (np.arange(count * batch_size) < n).astype(np.float32).reshape(count, batch_size)
    return count, mask


def validation_batches(x, y, batch_size: int):
    """Rows x (m, n_in) and labels y (m,) or (m, 1) as val_grads takes them: x (batches, B, n_in) and
    y (batches, B, 1), the last batch padded with zeros, and the mask (batches, B) of real rows."""
    count, mask = batches(x.shape[0], batch_size)
    pad = lambda a: jnp.concatenate([a, jnp.zeros((count * batch_size - a.shape[0],) + a.shape[1:], a.dtype)])
    return pad(x).reshape(count, batch_size, -1), pad(y).reshape(count, batch_size, 1), jnp.asarray(mask)


def histogram(values, real=None):
    """TensorBoard's bucketing of values (..., n, K), per replica: counts (..., K, BUCKETS), range (..., K, 2).
    real (..., n, 1): which values count (the rest are padding), or None for all."""
    pick = (lambda a, fill: a) if real is None else (lambda a, fill: jnp.where(real, a, fill))
    low, high = jnp.min(pick(values, jnp.inf), axis=-2), jnp.max(pick(values, -jnp.inf), axis=-2)  # (..., K)
    width = (high - low) / BUCKETS
    index = jnp.floor((values - low[..., None, :]) / jnp.where(width > 0, width, 1.0)[..., None, :]).astype(jnp.int32)
    index = jnp.where(width[..., None, :] > 0, jnp.minimum(index, BUCKETS - 1), BUCKETS - 1)  # one value: last bucket
    index = pick(index, BUCKETS)  # padding: in no bucket
    counts = jnp.sum(jax.nn.one_hot(index, BUCKETS, dtype=jnp.int32), axis=-3)  # (..., K, BUCKETS)
    return counts, jnp.stack([low, high], axis=-1)


def layer_histograms(grads, params, detail):
    """Per layer, histograms of the pooled validation gradients and of the kernel for the replicas
    `detail` (D,): counts (L, 2, D, BUCKETS), ranges (L, 2, D, 2). grads: per group of packed parameters
    (model.pack), the kernels' gradients with the validation batches first (val_grads). All layers' values are
    padded to one length and bucketed at once: one histogram per layer made the program several seconds longer
    to compile."""
    def by_layer(a, stacked: bool):  # (batches?, M?, fan_in, fan_out, K) -> (layers, values, D)
        a = jnp.take(a, detail, axis=-1)
        a = jnp.moveaxis(a, -4, 0) if stacked else a[None]  # the middle group's layer axis first
        return a.reshape(a.shape[0], int(np.prod(a.shape[1:-1])), a.shape[-1])  # -1 fails on an empty stack
    pooled = [(by_layer(g, stacked), by_layer(w, stacked))
              for g, (w, _), stacked in zip(grads, params, (False, True, False))]
    n = max(a.shape[1] for pair in pooled for a in pair)
    pad = lambda a: jnp.pad(a, ((0, 0), (0, n - a.shape[1]), (0, 0)))
    values = jnp.concatenate([jnp.stack([pad(g), pad(w)], axis=1) for g, w in pooled])  # (L, 2, n, D)
    sizes = np.concatenate([np.tile([g.shape[1], w.shape[1]], g.shape[0]) for g, w in pooled])  # (2L,)
    values = values.reshape(-1, n, values.shape[-1])  # (2L, n, D): per layer, gradients then kernel
    counts, ranges = histogram(values, (np.arange(n)[None, :] < sizes[:, None])[..., None])
    L = n_layers(params)
    return counts.reshape(L, 2, *counts.shape[1:]), ranges.reshape(L, 2, *ranges.shape[1:])


def val_grads(params, val, activation, exists):
    """Kernel gradients of each validation batch's mean loss, per group of packed parameters (model.pack):
    (batches, n_inputs, width, K), (batches, M, width, width, K), (batches, width, 1, K).

    With many replicas the batches run one after another (lax.map): each batch's activations then
    stay in cache, which on CPU makes the pass several times faster than all at once (vmap). With
    few replicas, all at once saves the loop's overhead.
    """
    def one_batch(batch):
        x, y, mask = batch  # (B, n_in) shared by every replica, (B, 1), (B,)
        return [kernel for kernel, _ in loss_and_grads(params, x, y, mask, activation, exists)[2]]

    replicas = params[0][0].shape[-1]
    return jax.vmap(one_batch)(val) if replicas <= VMAP_REPLICAS else jax.lax.map(one_batch, val)


def pass_rows(units: int) -> int:
    """Rows per forward pass on CPU for layers of `units` activations per row (width x replicas). Many replicas
    gain from passes of a few rows, whose activations stay in cache (all rows at once overflow it); few
    replicas lose, a pass's overhead outweighing the cache: hence passes of about PASS_FLOATS activations and
    at least PASS_ROWS rows (figures: benchmarks/README.md)."""
    return max(PASS_ROWS, -(-PASS_FLOATS // units))


def _row_passes(one, x, y, rows: int | None):
    """Sum over passes of one((x (rows, n_in), y (rows, 1), mask (rows,))) for rows x (n, n_in) with labels
    y (n, 1), `rows` at a time (None: all at once), the last pass padded (the mask says which rows are real)."""
    rows = x.shape[0] if rows is None else min(rows, x.shape[0])
    return jax.tree.map(lambda a: jnp.sum(a, axis=0), jax.lax.map(one, validation_batches(x, y, rows)))


def loss_and_accuracy(params, x, y, activation, exists, threshold, rows=None):
    """Loss and accuracy per replica over all rows of x (n, n_in) with labels y (n, 1), `rows` at a time
    (None: all at once; see pass_rows): (2, K)."""
    def sums(batch):
        x, y, mask = batch
        logits = forward(params, x, activation, exists)  # (rows, K), one pass's
        hit = ((jax.nn.sigmoid(logits) > threshold) == (y > 0.5)).astype(jnp.float32)
        return jnp.stack([jnp.sum(bce_with_logits(logits, y) * mask[:, None], axis=0),
                          jnp.sum(hit * mask[:, None], axis=0)])
    return _row_passes(sums, x, y, rows) / x.shape[0]


def unit_states(params, x, activation, exists, rows=None):
    """Per hidden layer, on inputs x (n, n_in) `rows` at a time (as loss_and_accuracy): share of activations with
    |a| > 0.99 (saturated, for tanh) and share of units that output 0 for every input (dead, for ReLU): two
    (n_hidden, K) arrays."""
    def counts(batch):
        x, _, mask = batch
        hidden = forward(params, x, activation, exists, hidden=True)[1]  # (n_hidden, rows, width, K)
        real = mask[None, :, None, None] > 0
        return (jnp.sum((jnp.abs(hidden) > SATURATED) & real, axis=(1, 2), dtype=jnp.float32),
                jnp.sum((hidden != 0) & real, axis=1, dtype=jnp.float32))  # (n_hidden, width, K): nonzero outputs
    saturated, nonzero = _row_passes(counts, x, jnp.zeros((x.shape[0], 1)), rows)  # no labels needed
    width = nonzero.shape[1]
    return saturated / (x.shape[0] * width), jnp.mean((nonzero == 0).astype(jnp.float32), axis=1)


def update_ratio(params, before) -> jnp.ndarray:
    """(L, K): ||W - W_before|| / ||W_before|| per kernel (Frobenius) of packed parameters: how much a layer moved."""
    norm = lambda a: jnp.sqrt(jnp.sum(a * a, axis=(-3, -2)))
    return per_layer([norm(w - w0) / norm(w0) for (w, _), (w0, _) in zip(params, before)])


def kernel_l1(params) -> jnp.ndarray:
    """(L, K): each layer's kernel's L1 norm, of packed parameters."""
    return per_layer([jnp.sum(jnp.abs(w), axis=(-3, -2)) for w, _ in params])


def anatomy(params, x, y, activation, exists):
    """core/statistics.py's ANATOMY_STATISTICS on the training inputs x (n, n_in) with labels y (n, 1), in the
    table's order: (statistics, L, K), NaN where a statistic is hidden-only (the output layer). `exists`
    (n_hidden, K) as model.forward takes it (None: every replica has every layer); a layer beyond a replica's depth
    gets values here, which the caller masks as it masks every per-layer record."""
    _, hidden, _ = forward(params, x, activation, exists, hidden=True)  # (n_hidden, n, width, K)
    zero = hidden == 0
    centred = hidden - jnp.mean(hidden, axis=1, keepdims=True)
    cov = jnp.einsum("lnik,lnjk->lkij", centred, centred, precision=jax.lax.Precision.HIGHEST) / x.shape[0]
    eig = eigvalsh(cov)  # (n_hidden, K, width), ascending
    total = jnp.sum(eig, axis=-1)
    top_share = jnp.where(total > 0, eig[..., -1] / jnp.where(total > 0, total, 1.0), 1.0)
    no_output = jnp.full((1, hidden.shape[-1]), jnp.nan)
    per_hidden = [jnp.mean(jnp.all(zero, axis=2), axis=1), jnp.mean(jnp.all(zero, axis=1), axis=1),
                  jnp.mean(jnp.abs(hidden) > SATURATED, axis=(1, 2)), jnp.clip(top_share, 0.0, 1.0),
                  jnp.sqrt(jnp.mean(hidden * hidden, axis=(1, 2)))]  # each (n_hidden, K)
    grads = loss_and_grads(params, x, y, jnp.ones(x.shape[0]), activation, exists)[2]
    return jnp.stack([jnp.concatenate([v, no_output]) for v in per_hidden] + [mean_abs(grads)])
