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

import threading
from contextlib import contextmanager

import jax
import jax.numpy as jnp

from ...core.extensions import ACTIVATIONS
CHAINED_ROWS = 64  # batches up to this size sum their rows' gradients as one chain of adds
UNROLLED_LAYERS = 20  # replicas of several depths: the scan over layers is unrolled up to this many (not ReLU)
# .rolled: set while a program is traced (rolled_layers); per thread, since programs may be traced side by side
_LOOPS = threading.local()


@contextmanager
def rolled_layers(rolled: bool):
    """While tracing a program: with `rolled`, every mixed-depth scan over layers stays rolled (see forward)."""
    before, _LOOPS.rolled = getattr(_LOOPS, "rolled", False), rolled
    try:
        yield
    finally:
        _LOOPS.rolled = before


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


def _tops(params, top):
    """`top` (n_hidden, K), or without it (every replica of full depth) the last hidden layer: (n_hidden, 1)."""
    return jnp.arange(len(params) - 1)[:, None] == len(params) - 2 if top is None else top


def _unrolled(params, top, activation) -> bool:
    """Whether the scan over layers is unrolled (see forward)."""
    rolled = getattr(_LOOPS, "rolled", False)
    return top is None or not (rolled or activation == "relu" or len(params) - 1 > UNROLLED_LAYERS)


def _middle(params, top):
    """The hidden layers after the first, stacked for a scan over layers: kernels (M, width, width, K),
    biases (M, width, K), and whether each is a replica's last (M, K)."""
    middle = params[1:-1]
    kernels, biases = jnp.stack([k for k, _ in middle]), jnp.stack([b for _, b in middle])
    return kernels, biases, jnp.broadcast_to(_tops(params, top)[1:], (len(middle), params[0][0].shape[-1]))


def forward(params, x, activation, top=None, hidden=False):
    """Logits (batch, K) for inputs x: (batch, n_inputs, K), or (batch, n_inputs) shared by every replica.

    `top` (n_hidden, K): whether hidden layer i is replica k's last. Replicas of different depths share
    one program: every replica runs all hidden layers (a layer beyond its depth has zero weights), and its
    output layer reads its own last hidden layer. With `hidden`, also the hidden layers' outputs, stacked
    (n_hidden, batch, width, K), and the output layer's input.

    The layers after the first run as a scan, unrolled when every replica has the full depth (`top` is
    None). Unrolled, XLA fuses chains of operations across layers; but where the output layer reads a
    different layer per replica, it fused cheap activations (ReLU) of many layers into that read and
    recomputed them (a deep ReLU step ran many times slower), so there a ReLU scan stays rolled and each
    layer's output is computed once. Tanh and sigmoid are not recomputed: their mixed-depth scans are
    unrolled up to UNROLLED_LAYERS, beyond which the gain was gone and the compile time still grew, and not at
    all where the program says so (rolled_layers: narrow layers on a CPU, see program.py).
    """
    act = lambda z: ACTIVATIONS[activation].forward(jnp, z)
    first = act(dense(_replica_axis(x), *params[0]))  # (batch, width, K)
    if len(params) == 2:
        outputs, last = first[None], first
    else:
        def layer(carry, layer_params):
            h, last = carry
            kernel, bias, is_top = layer_params
            h = act(dense(h, kernel, bias))
            return (h, jnp.where(is_top[None, None, :], h, last)), h
        unroll = _unrolled(params, top, activation)
        (_, last), rest = jax.lax.scan(layer, (first, first), _middle(params, top), unroll=unroll)
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


def loss_and_grads(params, x, y, mask, activation, top=None):
    """Each replica's mean loss over the rows where mask (batch,) is 1 (K,), the logits (batch, K), and
    the gradients of those losses per layer [(kernel (fan_in, fan_out, K), bias (fan_out, K))], as
    jax.grad gives them (exactly zero for layers beyond a replica's depth).
    x: (batch, n_inputs, K) or shared (batch, n_inputs); y: (batch, K) or (batch, 1); top as forward's."""
    logits, outputs, last = forward(params, x, activation, top, hidden=True)  # (n_hidden, batch, width, K)
    count = jnp.sum(mask)
    losses = jnp.sum(bce_with_logits(logits, y) * mask[:, None], axis=0) / count
    dz = (_bce_slope(logits, y) * (mask / count)[:, None])[:, None, :]  # (batch, 1, K)
    output_grads = (_outer_sum(last, dz), jnp.sum(dz, axis=0))
    d_last = _dense_transposed(dz, params[-1][0])  # reaches each replica's last hidden layer only
    slope = ACTIVATIONS[activation].slope
    dh = jnp.zeros_like(d_last)  # gradient reaching a hidden layer's output from the layers above it
    middle = []
    if len(params) > 2:
        def layer(dh, layer_values):  # one hidden layer after the first, from the top down
            kernel, is_top, h_in, h_out = layer_values
            dz = (dh + jnp.where(is_top[None, None, :], d_last, 0.0)) * slope(h_out)
            return _dense_transposed(dz, kernel), (_outer_sum(h_in, dz), jnp.sum(dz, axis=0))
        kernels, _, tops = _middle(params, top)
        dh, (kernel_grads, bias_grads) = jax.lax.scan(
            layer, dh, (kernels, tops, outputs[:-1], outputs[1:]), reverse=True,
            unroll=_unrolled(params, top, activation))
        middle = [(kernel_grads[i], bias_grads[i]) for i in range(len(params) - 2)]
    dz = (dh + jnp.where(_tops(params, top)[0][None, None, :], d_last, 0.0)) * slope(outputs[0])
    first = (_outer_sum(_replica_axis(x), dz), jnp.sum(dz, axis=0))
    return losses, logits, [first, *middle, output_grads]
