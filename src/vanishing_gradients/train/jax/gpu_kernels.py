"""GPU kernels (Pallas on Triton) for the fast engine's hot loops: an epoch's training steps, the validation
gradients' statistic, and passes over rows shared by every replica (validation loss, accuracy, unit states).

Why: in XLA each layer's product is its own kernel, so every step moves every replica's activations through GPU
memory several times, and a step is bound by memory traffic (benchmarks/README.md). Here one program instance trains
one replica, one GPU thread per row of a batch: the rows go through the network side by side, activations stay in
registers, and a batch's gradients are summed across the threads (a warp's shuffles), then applied layer by layer
from the top, so that one layer's gradients are live at a time; memory sees the rows, the weights and optimiser
state (read and written once per step, in a replica-major layout: see _Packed), and the results. (One thread per
replica, with a batch's rows one after another, needed hundreds of values carried through the loops: Triton had not
compiled it after two minutes.)

The arithmetic is model.py's, optimizers.py's and statistics.py's (the same forward pass, loss, derivatives,
Keras update rules and statistics), written per unit, each unit's value a (lanes,) array over the batch's
rows; results agree with the XLA path to rounding (sums over rows run in another order). Off a GPU, Pallas
interprets the kernels: the tests compare them with the XLA path there.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from ...core.extensions import ACTIVATIONS
from ...core.statistics import SATURATED
from .model import _bce_slope, bce_with_logits
from .optimizers import rule


# ----------------------------------------------------------------------------- one row through one network
# A network is one replica's list of layers (kernel[i][o], bias[o]) of scalars; a batch is a list of (lanes,)
# arrays, one per unit, a row per GPU thread.

def _dot(h, kernel, o):
    """Unit o's input sum without its bias, in model.dense's order."""
    total = h[0] * kernel[0][o]
    for i in range(1, len(h)):
        total = total + h[i] * kernel[i][o]
    return total


def _forward(weights, x, activation, tops):
    """Each hidden layer's outputs, the output layer's input (the replica's last hidden layer: `tops[l]` says
    whether hidden layer l is it; None: the last) and the logits, as model.forward."""
    act, h, hidden = (lambda z: ACTIVATIONS[activation].forward(jnp, z)), x, []
    for kernel, bias in weights[:-1]:
        h = [act(_dot(h, kernel, o) + bias[o]) for o in range(len(bias))]
        hidden.append(h)
    last = hidden[-1]
    if tops is not None:
        last = hidden[0]
        for top, h in zip(tops[1:], hidden[1:]):
            last = [jnp.where(top, u, v) for u, v in zip(h, last)]
    kernel, bias = weights[-1]
    return hidden, last, _dot(last, kernel, 0) + bias[0]


def _backward(kernels, x, hidden, last, dlogit, activation, tops):
    """One row's gradients, as model.loss_and_grads, from d(loss)/d(logit): per layer (l, (kernel[i][o],
    bias[o])), yielded from the output layer down, each once layer l's kernel has had its last use (the caller
    may then update it). kernels(l) reads layer l's kernel afresh, so that it need not stay in registers
    since the forward pass."""
    slope, n_hidden = ACTIVATIONS[activation].slope, len(hidden)
    d_last = [dlogit * k[0] for k in kernels(n_hidden)]  # reaches each replica's last hidden layer only
    yield n_hidden, ([[u * dlogit] for u in last], [dlogit])
    dh = None  # from the layers above
    for l in range(n_hidden - 1, -1, -1):
        if tops is None:
            into = d_last if l == n_hidden - 1 else dh
        else:
            into = [jnp.where(tops[l], d, 0.0) for d in d_last]
            into = into if dh is None else [a + b for a, b in zip(dh, into)]
        dz = [d * slope(a) for d, a in zip(into, hidden[l])]
        h_in = x if l == 0 else hidden[l - 1]
        grads = ([[h * d for d in dz] for h in h_in], dz)
        if l > 0:  # model._dense_transposed: dh[i] = sum over o of dz[o] kernel[i][o], in o's order
            dh = [_dot(dz, [[w] for w in row], 0) for row in kernels(l)]
        yield l, grads


# ----------------------------------------------------------------------------- parameters in memory
# A program's parameters live in memory, read at each step (from the cache) and written back after each layer's
# update, rather than carried through the loop over steps in registers.

class _Packed:
    """A replica's parameters (or one optimiser state slot) packed in a row of a (K, P) array, the program's
    block (1, P): per layer its kernel row by row, then its bias. Replica-major, so that every entry is at a
    constant offset from the row's start (on a GPU a load with an immediate offset; replica-minor, each entry
    needed its own address arithmetic and pointer register)."""

    def __init__(self, ref, shapes):
        self.ref, self.shapes, self.starts = ref, shapes, [0]
        for fan_in, fan_out in shapes:
            self.starts.append(self.starts[-1] + (fan_in + 1) * fan_out)

    def layer(self, l):
        """Layer l's (kernel[i][o], bias[o]) as scalars."""
        (fan_in, fan_out), at = self.shapes[l], self.starts[l]
        return ([[self.ref[0, at + i * fan_out + o] for o in range(fan_out)] for i in range(fan_in)],
                [self.ref[0, at + fan_in * fan_out + o] for o in range(fan_out)])

    def load(self):
        return [self.layer(l) for l in range(len(self.shapes))]

    def flat_layer(self, l):
        """Layer l's entries in storage order: its kernel row by row, then its bias."""
        return _leaves([self.layer(l)])

    def store_layer(self, l, values):
        """Layer l's entries, in storage order."""
        for at, value in zip(range(self.starts[l], self.starts[l + 1]), values):
            self.ref[0, at] = value


def pack(tree):
    """Per-layer (kernel (fan_in, fan_out, K), bias (fan_out, K)) -> (K, P), as _Packed reads it; P padded to a
    power of two (Triton's blocks: a block of another width made every read compute its address)."""
    flat = jnp.concatenate([a.reshape(-1, a.shape[-1]) for layer in tree for a in layer])
    return jnp.pad(flat, [(0, _lanes(flat.shape[0]) - flat.shape[0]), (0, 0)]).T


def unpack(packed, shapes):
    """(K, P) -> per-layer (kernel (fan_in, fan_out, K), bias (fan_out, K))."""
    tree, at = [], 0
    for fan_in, fan_out in shapes:
        kernel = packed[:, at:at + fan_in * fan_out].T.reshape(fan_in, fan_out, -1)
        at += fan_in * fan_out
        tree.append((kernel, packed[:, at:at + fan_out].T))
        at += fan_out
    return tree


def _leaves(weights):
    """Per layer (kernel[i][o], bias[o]) -> their entries in storage order."""
    return [v for kernel, bias in weights for v in [u for row in kernel for u in row] + bias]


def _mean_abs(entries):
    """A layer's mean |kernel gradient| from its kernel's entries, as statistics.mean_abs."""
    total = jnp.abs(entries[0])
    for g in entries[1:]:
        total = total + jnp.abs(g)
    return total / len(entries)


def _tops_from(ref):
    """Whether each hidden layer is the replica's last, from its (n_hidden, 1) ref."""
    return [ref[l, 0] > 0 for l in range(ref.shape[0])]


# ----------------------------------------------------------------------------- kernels
# One program instance per replica, one GPU thread per row of a batch (lanes: the batch padded to a power of
# two). Refs come in one order: rows x, labels y, tops (n_hidden, 1) where replicas' depths differ, the
# optimiser's settings (2 | 3, 1) and step sizes (steps, 1) when training, the parameters (1, P) and the
# optimiser's state slots (1, P) (see _Packed); then the outputs.

def _steps_kernel(cfg, n, shapes, n_state, train, shared, mixed, compiled, *refs):
    """Batches of rows through one replica. x: (1, steps, lanes, n_in), the replica's own rows, or (steps, lanes,
    n_in) shared; y: (1, steps, lanes) or (steps, lanes); of each batch the first cfg.batch_size lanes are rows,
    and rows past the first n count for nothing. With `train`, each batch's gradients update the weights by
    Keras's rules; the parameters and state slots are then aliased to the outputs, which hold them from the
    start. Last output, sums (2 + L, 1): loss summed over the rows, correct predictions, and per layer the
    mean |kernel gradient| summed over the batches."""
    refs, n_layers = list(refs), len(shapes)
    x_ref, y_ref = refs.pop(0), refs.pop(0)
    tops = _tops_from(refs.pop(0)) if mixed else None
    if train:
        update = rule(cfg.optimizer).update  # one parameter by Keras's rule (optimizers.py)
        hp_ref, alpha_ref = refs.pop(0), refs.pop(0)
        hp = [hp_ref[i, 0] for i in range(hp_ref.shape[0])]
        outs = refs[1 + n_state:]  # the inputs' values, aliased
        params, slots = _Packed(outs[0], shapes), [_Packed(ref, shapes) for ref in outs[1:1 + n_state]]
    else:
        params = _Packed(refs[0], shapes)
    sums_ref, B = refs[-1], cfg.batch_size
    lane = jnp.arange(y_ref.shape[-1])

    def step(s, carry):
        loss, correct, grad_means = carry
        grad_means = list(grad_means)
        count = jnp.minimum(B, n - s * B).astype(jnp.float32)
        real = ((lane < B) & (s * B + lane < n)).astype(jnp.float32)
        x = [x_ref[s, :, i] if shared else x_ref[0, s, :, i] for i in range(x_ref.shape[-1])]  # n_in x (lanes,)
        y = y_ref[s, :] if shared else y_ref[0, s, :]
        hidden, last, logit = _forward(params.load(), x, cfg.activation, tops)
        row_loss, dlogit = bce_with_logits(logit, y), _bce_slope(logit, y)
        hit = ((ACTIVATIONS["sigmoid"].forward(jnp, logit) > cfg.threshold) == (y > 0.5)).astype(jnp.float32)
        kernels = lambda l: params.layer(l)[0]
        # each layer's gradients are summed over the rows (across the threads) and applied as soon as its weights
        # have had their last use: only one layer's gradients are live at a time
        for l, row_grads in _backward(kernels, x, hidden, last, dlogit * (real / count), cfg.activation, tops):
            grads = [jnp.sum(g) for g in _leaves([row_grads])]  # storage order: the kernel's entries come first
            grad_means[l] = grad_means[l] + _mean_abs(grads[:len(grads) - len(row_grads[1])])
            if train:
                stored = [slot.flat_layer(l) for slot in slots]
                new = [update(p, g, tuple(st[j] for st in stored), alpha_ref[s, 0], *hp, cfg.nesterov)
                       for j, (p, g) in enumerate(zip(params.flat_layer(l), grads))]
                for k, slot in enumerate(slots):
                    slot.store_layer(l, [state[k] for _, state in new])
                params.store_layer(l, [p for p, _ in new])
        if train and compiled:  # one thread stores what every thread reads at the next step: make it visible
            plgpu.debug_barrier()
        return loss + jnp.sum(row_loss * real), correct + jnp.sum(hit * real), grad_means

    zero = jnp.zeros((), jnp.float32)
    loss, correct, grad_means = jax.lax.fori_loop(0, x_ref.shape[-3], step, (zero, zero, [zero] * n_layers))
    for i, value in enumerate([loss, correct, *grad_means]):
        sums_ref[i, 0] = value


def _shared_rows_kernel(activation, threshold, m, shapes, stats, mixed, x_ref, y_ref, *refs):
    """Rows x (chunks, lanes, n_in), labels y (chunks, lanes) shared by every replica, the first m real, through
    one replica. Output (2, 1): mean loss and accuracy; with `stats` then per hidden layer the share of
    activations with |a| > SATURATED and the share of units that output 0 for every row ((2 + 2 n_hidden, 1))."""
    refs = list(refs)
    tops = _tops_from(refs.pop(0)) if mixed else None
    out_ref = refs[-1]
    weights = _Packed(refs[0], shapes).load()
    lane = jnp.arange(y_ref.shape[-1])
    zero = jnp.zeros(lane.shape, jnp.float32)  # sums per lane, added up at the end
    units = [len(bias) for _, bias in weights[:-1]]

    def chunk(c, acc):
        loss, correct, saturated, alive = acc
        saturated, alive = list(saturated), list(alive)
        real = (c * lane.shape[0] + lane < m).astype(jnp.float32)
        x, y = [x_ref[c, :, i] for i in range(x_ref.shape[-1])], y_ref[c, :]
        hidden, _, logit = _forward(weights, x, activation, tops)
        loss = loss + bce_with_logits(logit, y) * real
        hit = (ACTIVATIONS["sigmoid"].forward(jnp, logit) > threshold) == (y > 0.5)
        correct = correct + hit.astype(jnp.float32) * real
        if stats:
            for layer, (a, flags) in enumerate(zip(hidden, alive)):
                for u in a:
                    saturated[layer] = saturated[layer] + (jnp.abs(u) > SATURATED).astype(jnp.float32) * real
                alive[layer] = [jnp.maximum(f, (u != 0).astype(jnp.float32) * real) for f, u in zip(flags, a)]
        return loss, correct, saturated, alive

    start = (zero, zero, [zero] * len(units), [[zero] * w for w in units]) if stats else (zero, zero, [], [])
    loss, correct, saturated, alive = jax.lax.fori_loop(0, x_ref.shape[0], chunk, start)
    out_ref[0, 0], out_ref[1, 0] = jnp.sum(loss) / m, jnp.sum(correct) / m
    for layer, (count, flags, width) in enumerate(zip(saturated, alive, units)):
        dead = [1.0 - jnp.max(f) for f in flags]
        out_ref[2 + layer, 0] = jnp.sum(count) / (m * width)
        out_ref[2 + len(units) + layer, 0] = sum(dead[1:], dead[0]) / width


# ----------------------------------------------------------------------------- calls (XLA side)

def _lanes(rows: int) -> int:
    """Lanes for a batch of `rows`: the next power of two (Triton's tensors have power-of-two sizes)."""
    return 1 << max(rows - 1, 0).bit_length()


def _call(kernel, K, shared, blocked, outputs, aliases=None, lanes=32):
    """Run kernel(compiled, *refs) once per replica (K of them): `blocked` inputs and `outputs` (array or shape,
    replica axis: 0 or -1) give each program instance its replica's slice, the `shared` inputs go whole to every
    instance. `aliases`: blocked input index -> output index, an output that starts as that input."""
    one = lambda shape, axis: pl.BlockSpec(
        (1,) + shape[1:] if axis == 0 else shape[:-1] + (1,),
        lambda j, nd=len(shape), axis=axis: (j,) + (0,) * (nd - 1) if axis == 0 else (0,) * (nd - 1) + (j,))
    whole = lambda a: pl.BlockSpec(a.shape, lambda j, nd=a.ndim: (0,) * nd)
    interpret = jax.default_backend() != "gpu"  # elsewhere Pallas's interpreter (the tests)
    return pl.pallas_call(
        lambda *refs: kernel(not interpret, *refs), grid=(K,),
        out_shape=[jax.ShapeDtypeStruct(shape, jnp.float32) for shape, _ in outputs],
        in_specs=[whole(a) for a in shared] + [one(a.shape, axis) for a, axis in blocked],
        out_specs=[one(shape, axis) for shape, axis in outputs],
        input_output_aliases={len(shared) + i: o for i, o in (aliases or {}).items()}, interpret=interpret,
        compiler_params=plgpu.CompilerParams(num_warps=max(1, lanes // 32), num_stages=1),
    )(*shared, *[a for a, _ in blocked])


def _shapes(params):
    return tuple((kernel.shape[0], kernel.shape[1]) for kernel, _ in params)


def _tops(tops):
    return [] if tops is None else [(tops.astype(jnp.float32), -1)]


def batches_for_kernels(x, y, index, batch_size: int):
    """Each replica's batches in the kernels' layout: rows x (n, n_in), labels y (n,), index (steps, B, K)
    -> x (K, steps, lanes, n_in), y (K, steps, lanes), lanes past B repeating row 0 (they count for nothing)."""
    lanes = _lanes(batch_size)
    index = jnp.pad(jnp.moveaxis(index, -1, 0), [(0, 0), (0, 0), (0, lanes - batch_size)])
    return x[index], y[index]


def train_epoch(cfg, n: int, params, state, hp: dict, step, tops, x, y):
    """An epoch's steps, as program.py's scan of train_step computes them. params [(kernel (fan_in, fan_out, K),
    bias (fan_out, K))]; state as program.py's optimisers keep it; hp per-replica settings (K,); step: steps
    taken before; tops (n_hidden, K) or None (see model.forward); x (K, steps, lanes, n_in), y (K, steps,
    lanes): each replica's batches (batches_for_kernels). Returns params, state and (2 + L, K): the loss summed
    over the n rows, the correct predictions, and each layer's mean |kernel gradient| summed over the steps."""
    L, steps, K, shapes = len(params), x.shape[1], x.shape[0], _shapes(params)
    r = rule(cfg.optimizer)
    slots = [[(s_w[j], s_b[j]) for s_w, s_b in state] for j in range(r.slots)]  # per slot, per layer
    t = (step + 1 + jnp.arange(steps)).astype(jnp.float32)[:, None]  # (steps, 1): Keras's step counts
    alpha = r.scalar(hp, t) if r.scalar else jnp.zeros((steps, K), jnp.float32)  # (steps, K)
    settings = [hp[k] for k in r.settings]  # each (K,)
    packed = [pack(params)] + [pack(slot) for slot in slots]  # each (K, P)
    blocked = [(x, 0), (y, 0), *_tops(tops), (jnp.stack(settings), -1), (alpha, -1)] + [(a, 0) for a in packed]
    first = len(blocked) - len(packed)
    kernel = lambda compiled, *refs: _steps_kernel(cfg, n, shapes, len(slots), True, False, tops is not None,
                                                   compiled, *refs)
    found = _call(kernel, K, [], blocked, [(a.shape, 0) for a in packed] + [((2 + L, K), -1)],
                  {first + i: i for i in range(len(packed))}, lanes=y.shape[-1])
    params, slots = unpack(found[0], shapes), [unpack(a, shapes) for a in found[1:-1]]
    state = [(tuple(slot[l][0] for slot in slots), tuple(slot[l][1] for slot in slots)) for l in range(L)]
    return params, state, found[-1]


def _padded_rows(x, y, lanes):
    """Shared rows x (m, n_in), y (m,), padded with zeros to chunks: (chunks, lanes, n_in), (chunks, lanes)."""
    chunks = -(-x.shape[0] // lanes)
    pad = lambda a: jnp.pad(a, [(0, chunks * lanes - a.shape[0])] + [(0, 0)] * (a.ndim - 1))
    return pad(x).reshape(chunks, lanes, -1), pad(y).reshape(chunks, lanes)


def val_grad_means(cfg, params, tops, x, y):
    """Per layer (L, K), the mean |kernel gradient| of each validation batch's mean loss, averaged over the
    batches, as program.py's statistic from statistics.val_grads: rows x (m, n_in), y (m,) shared by every
    replica."""
    L, B, m = len(params), cfg.batch_size, x.shape[0]
    xb, yb = _padded_rows(x, y, B)
    lanes = _lanes(B)
    xb, yb = jnp.pad(xb, [(0, 0), (0, lanes - B), (0, 0)]), jnp.pad(yb, [(0, 0), (0, lanes - B)])
    kernel = lambda compiled, *refs: _steps_kernel(cfg, m, _shapes(params), 0, False, True, tops is not None,
                                                   compiled, *refs)
    K = params[0][0].shape[-1]
    sums = _call(kernel, K, [xb, yb], [*_tops(tops), (pack(params), 0)], [((2 + L, K), -1)], lanes=lanes)[0]
    return sums[2:] / xb.shape[0]


def shared_rows(params, x, y, activation: str, tops, threshold: float, stats: bool = False):
    """Loss and accuracy (2, K) over rows x (m, n_in) with labels y (m,), as statistics.loss_and_accuracy; with
    `stats` also the saturated and dead shares per hidden layer, as statistics.unit_states: (2 + 2 n_hidden, K)."""
    L, m = len(params), x.shape[0]
    xc, yc = _padded_rows(x, y, 32)
    kernel = lambda compiled, *refs: _shared_rows_kernel(activation, threshold, m, _shapes(params), stats,
                                                         tops is not None, *refs)
    K = params[0][0].shape[-1]
    return _call(kernel, K, [xc, yc], [*_tops(tops), (pack(params), 0)], [((2 + 2 * (L - 1) * stats, K), -1)])[0]


def val_statistics(cfg, params, tops, x, y):
    """On validation rows x (m, n_in), y (m,): per layer the mean |kernel gradient| (L, K) as val_grad_means,
    and per hidden layer the saturated and dead shares (n_hidden, K) as shared_rows."""
    rows, L = shared_rows(params, x, y, cfg.activation, tops, cfg.threshold, stats=True), len(params)
    return val_grad_means(cfg, params, tops, x, y), rows[2:L + 1], rows[L + 1:]
