"""The fast engine's model: the MLP's forward pass, Keras's loss, and its gradients, for K replicas at once.

Arrays keep the replica axis last (minor): a layer's values are (batch, units, K), its kernel
(fan_in, fan_out, K). Products are written as chains of elementwise multiply-adds over the units and
the batch rows rather than as batched matrix products: XLA fuses each chain into one loop vectorised
across replicas, where a batched product of K tiny matrices costs a library call and layout copies
per replica. The backward pass is written out too: derived by autodiff, the chains' gradients became
many small reductions, slower than the batched products. Written this way, a step is about twice as fast
on a CPU as with einsum and jax.grad, and faster on a GPU too (benchmarks/README.md). It computes what
JAX's rules give (tests compare it with jax.grad, and the engine with Keras).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ...core.extensions import ACTIVATIONS

CHAINED_ROWS = 64  # batches up to this size sum their rows' gradients as one chain of adds


def _replica_axis(h):
    """(batch, units, K), or (batch, units) rows shared by every replica as (batch, units, 1)."""
    return h if h.ndim == 3 else h[..., None]


def dense(h, kernel, bias):
    """h (batch, fan_in, K|1) . kernel (fan_in, fan_out, K) + bias (fan_out, K) -> (batch, fan_out, K)."""
    z = h[:, 0:1] * kernel[0][None]
    for i in range(1, kernel.shape[0]):
        z = z + h[:, i:i + 1] * kernel[i][None]
    return z + bias[None]


def _dense_transposed(dz, kernel):
    """dz (batch, fan_out, K) . kernel^T -> (batch, fan_in, K): the gradient reaching a layer's input."""
    dh = dz[:, 0:1] * kernel[:, 0][None]
    for o in range(1, kernel.shape[1]):
        dh = dh + dz[:, o:o + 1] * kernel[:, o][None]
    return dh


def _outer_sum(h, dz):
    """sum over rows of h (batch, fan_in, K|1) x dz (batch, fan_out, K) -> (fan_in, fan_out, K)."""
    if h.shape[0] > CHAINED_ROWS:  # full float32 products: on a GPU JAX's default would be TF32 (~1e-3)
        return jnp.einsum("bik,bok->iok", jnp.broadcast_to(h, h.shape[:2] + dz.shape[-1:]), dz,
                          precision=jax.lax.Precision.HIGHEST)
    total = h[0][:, None] * dz[0][None]
    for b in range(1, h.shape[0]):
        total = total + h[b][:, None] * dz[b][None]
    return total


def pack(layers):
    """Per-layer pairs [(kernel (fan_in, fan_out, K), bias (fan_out, K)), ...] of n_hidden + 1 layers (or any
    pytrees of those shapes per layer, as the optimiser's slots) -> the three groups the engine keeps:
    [first hidden layer, the hidden layers after it stacked (kernels (M, width, width, K), biases (M, width, K),
    M = n_hidden - 1, possibly 0), output layer]. Stacked once, the middle layers run as a scan and every per-layer
    statistic is one operation over the stack: a program's size then hardly grows with its depth."""
    first, middle, output = layers[0], layers[1:-1], layers[-1]
    if middle:
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *middle)
    else:  # the first layer's fan_out is every middle layer's fan_in and fan_out
        stacked = jax.tree.map(lambda a: jnp.zeros((0, a.shape[-2]) + a.shape[-2:] if a.ndim == 3 else (0,) + a.shape,
                                                   a.dtype), first)
    return [first, stacked, output]


def unpack(groups):
    """pack's inverse: per-layer pytrees, the middle group's stack split into its layers."""
    first, middle, output = groups
    count = jax.tree.leaves(middle)[0].shape[0]
    return [first, *[jax.tree.map(lambda a: a[i], middle) for i in range(count)], output]


def n_layers(groups) -> int:
    """Layers (hidden and output) of packed parameters."""
    return groups[1][0].shape[0] + 2


def per_layer(values) -> jnp.ndarray:
    """(L, K): a per-layer value of each group, [(K,), (M, K), (K,)], in layer order."""
    return jnp.concatenate([v.reshape(-1, v.shape[-1]) for v in values])


def forward(params, x, activation, exists=None, hidden=False):
    """Logits (batch, K) for inputs x: (batch, n_inputs, K), or (batch, n_inputs) shared by every replica;
    params packed (see pack).

    `exists` (n_hidden, K): whether hidden layer i exists in replica k (None: every replica has every layer).
    Replicas of different depths share one program: every replica runs all hidden layers, a layer beyond its
    depth passing its input on unchanged, so that the output layer reads the replica's own last hidden layer.
    With `hidden`, also the hidden layers' outputs, stacked (n_hidden, batch, width, K) (beyond a replica's depth,
    copies of its last), and the output layer's input.

    The layers after the first run as a scan, unrolled when every replica has the full depth (`exists` is None), where
    XLA fuses chains of operations across layers. In mixed depths the scan stays rolled: a layer's output there
    is also its pass-through input, and unrolled, XLA fused each layer into every later one that reads it and
    recomputed it (a deep ReLU step ran many times slower; tanh at width 25, with passing on, six times). Passing
    a layer's input on, rather than carrying each replica's last output beside the layers' (a select of every
    layer's whole output), lets the choice fuse into the layer's own loop: rolled, mixed-depth programs ran 1.2 to
    1.6 times faster so than with the last output carried (benchmarks/README.md).
    """
    act = lambda z: ACTIVATIONS[activation].forward(jnp, z)
    first = act(dense(_replica_axis(x), *params[0]))  # (batch, width, K)
    if n_layers(params) == 2:
        outputs, last = first[None], first
    else:
        def layer(h, layer_params):
            kernel, bias, here = layer_params  # here (K,): the layer exists in replica k, or None
            out = act(dense(h, kernel, bias))
            out = out if here is None else jnp.where(here[None, None, :], out, h)
            return out, out
        middle_exists = None if exists is None else exists[1:]
        last, rest = jax.lax.scan(layer, first, (*params[1], middle_exists), unroll=exists is None)
        outputs = jnp.concatenate([first[None], rest])
    logits = dense(last, *params[-1])[:, 0, :]
    return (logits, outputs, last) if hidden else logits


def bce_with_logits(logits, y):
    """TensorFlow's sigmoid_cross_entropy_with_logits, what Keras computes for a sigmoid output.

    Written with TensorFlow's `where(logits >= 0, ...)` rather than relu/abs: at a logit of exactly 0
    (common when every unit of a ReLU layer is dead) the gradient is then sigmoid(0) - y, as in Keras.
    """
    positive = logits >= 0
    relu_logits = jnp.where(positive, logits, 0.0)
    neg_abs_logits = jnp.where(positive, -logits, logits)
    return relu_logits - logits * y + jnp.log1p(jnp.exp(neg_abs_logits))


def _bce_slope(logits, y):
    """d bce_with_logits / d logits, as JAX's rules differentiate its where-form."""
    positive = logits >= 0
    e = jnp.exp(jnp.where(positive, -logits, logits))
    return jnp.where(positive, 1.0, 0.0) - y + e / (1 + e) * jnp.where(positive, -1.0, 1.0)


def loss_and_grads(params, x, y, mask, activation, exists=None):
    """Each replica's mean loss over the rows where mask (batch,) is 1 (K,), the logits (batch, K), and
    the gradients of those losses, packed as params are (see pack), as jax.grad gives them (exactly zero for
    layers beyond a replica's depth).
    x: (batch, n_inputs, K) or shared (batch, n_inputs); y: (batch, K) or (batch, 1); exists as forward's."""
    logits, outputs, last = forward(params, x, activation, exists, hidden=True)  # (n_hidden, batch, width, K)
    count = jnp.sum(mask)
    losses = jnp.sum(bce_with_logits(logits, y) * mask[:, None], axis=0) / count
    dz = (_bce_slope(logits, y) * (mask / count)[:, None])[:, None, :]  # (batch, 1, K)
    output_grads = (_outer_sum(last, dz), jnp.sum(dz, axis=0))
    # the gradient reaching each replica's last hidden layer, passed down unchanged through the layers above it
    dh = _dense_transposed(dz, params[-1][0])  # (batch, width, K)
    slope = ACTIVATIONS[activation].slope
    kernels, _ = params[1]  # (M, width, width, K)
    middle = jax.tree.map(jnp.zeros_like, params[1])
    if n_layers(params) > 2:
        def layer(dh, layer_values):  # one hidden layer after the first, from the top down
            kernel, here, h_in, h_out = layer_values  # here (K,): the layer exists in replica k, or None
            dz = dh * slope(h_out)
            if here is None:
                return _dense_transposed(dz, kernel), (_outer_sum(h_in, dz), jnp.sum(dz, axis=0))
            dz = jnp.where(here[None, None, :], dz, 0.0)  # a layer beyond the replica's depth: no gradient
            dh = jnp.where(here[None, None, :], _dense_transposed(dz, kernel), dh)
            return dh, (_outer_sum(h_in, dz), jnp.sum(dz, axis=0))
        middle_exists = None if exists is None else exists[1:]
        dh, middle = jax.lax.scan(layer, dh, (kernels, middle_exists, outputs[:-1], outputs[1:]), reverse=True,
                                  unroll=exists is None)
    dz = dh * slope(outputs[0])
    first = (_outer_sum(_replica_axis(x), dz), jnp.sum(dz, axis=0))
    return losses, logits, [first, tuple(middle), output_grads]
