"""GPU kernels (Pallas on Triton) for the fast engine's hot loops: an epoch's training steps, the validation
gradients' statistic, and passes over rows shared by every replica (validation loss, accuracy, unit states).

Why: in XLA each layer's product is its own kernel, so every step moves every replica's activations through
GPU memory several times (H100, 100,000 replicas of depth 5: 16 steps in about 41 ms, bound by memory traffic;
see README). Here one program instance trains one replica, one GPU thread per row of a batch: the rows go
through the network side by side, activations stay in registers, and a batch's gradients are summed across
the threads (a warp's shuffles); memory sees the rows, the weights and optimiser state once per step, and
the results. (One thread per replica, with a batch's rows one after another, needed hundreds of values
carried through the loops: Triton had not compiled it after two minutes.)

The arithmetic is jax_model's and jax_engine's (the same forward pass, loss, derivatives and Keras update
rules), written per unit, each unit's value a (lanes,) array over the batch's rows; results agree with the
XLA path to rounding (sums over rows run in another order). Off a GPU, Pallas interprets the kernels: the
tests compare them with the XLA path there.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from .measures import SATURATED

_sigmoid = lambda z: 1.0 / (1.0 + jnp.exp(-z))
ACTIVATIONS = {"tanh": jnp.tanh, "relu": lambda z: jnp.maximum(z, 0.0), "sigmoid": _sigmoid}
# each activation's derivative from its output a, as jax_model.SLOPES
SLOPES = {"tanh": lambda a: 1.0 - a * a, "relu": lambda a: (a > 0).astype(jnp.float32),
          "sigmoid": lambda a: a * (1.0 - a)}


# ----------------------------------------------------------------------------- one row through one network
# A network is a list of layers (kernel[i][o], bias[o]) whose entries are (R,) arrays; a row is a list of
# (R,) arrays (each replica its own row) or of scalars (a row shared by every replica).

def _dot(h, kernel, o):
    """Unit o's input sum without its bias, in jax_model.dense's order."""
    total = h[0] * kernel[0][o]
    for i in range(1, len(h)):
        total = total + h[i] * kernel[i][o]
    return total


def _forward(weights, x, activation, tops):
    """Each hidden layer's outputs, the output layer's input (each replica's last hidden layer: `tops[l]`
    says whether hidden layer l is it; None: the last for every replica) and the logit, as jax_model.forward."""
    act, h, hidden = ACTIVATIONS[activation], x, []
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


def _loss_and_slope(z, y):
    """jax_model.bce_with_logits and its derivative (jax_model._bce_slope) at logit z, label y."""
    positive = z >= 0
    e = jnp.exp(jnp.where(positive, -z, z))
    loss = jnp.where(positive, z, 0.0) - z * y + jnp.log1p(e)
    return loss, jnp.where(positive, 1.0, 0.0) - y + e / (1.0 + e) * jnp.where(positive, -1.0, 1.0)


def _backward(weights, x, hidden, last, dlogit, activation, tops):
    """One row's gradients, structured as the weights, from d(loss)/d(logit), as jax_model.loss_and_grads."""
    slope, n_hidden = SLOPES[activation], len(weights) - 1
    grads = [None] * len(weights)
    grads[-1] = ([[u * dlogit] for u in last], [dlogit])
    d_last = [dlogit * k[0] for k in weights[-1][0]]  # reaches each replica's last hidden layer only
    dh = None  # from the layers above
    for l in range(n_hidden - 1, -1, -1):
        if tops is None:
            into = d_last if l == n_hidden - 1 else dh
        else:
            into = [jnp.where(tops[l], d, 0.0) for d in d_last]
            into = into if dh is None else [a + b for a, b in zip(dh, into)]
        dz = [d * slope(a) for d, a in zip(into, hidden[l])]
        h_in = x if l == 0 else hidden[l - 1]
        grads[l] = ([[h * d for d in dz] for h in h_in], dz)
        if l > 0:  # jax_model._dense_transposed: dh[i] = sum over o of dz[o] kernel[i][o], in o's order
            dh = [_dot(dz, [[w] for w in row], 0) for row in weights[l][0]]
    return grads


# ----------------------------------------------------------------------------- parameters in memory
# A program's parameters live in memory (its block of each array holds one replica), read at each step from the
# cache and written back after the update, rather than carried through the loop over steps.

def _pairs(refs):
    return [(refs[2 * l], refs[2 * l + 1]) for l in range(len(refs) // 2)]


def _load(refs):
    """Per layer (kernel[i][o], bias[o]) of scalars from refs (kernel (fan_in, fan_out, 1), bias (fan_out, 1))."""
    return [([[k[i, o, 0] for o in range(k.shape[1])] for i in range(k.shape[0])], [b[o, 0] for o in range(b.shape[0])])
            for k, b in _pairs(refs)]


def _store(refs, weights):
    for (k, b), (kernel, bias) in zip(_pairs(refs), weights):
        for i, row in enumerate(kernel):
            for o, value in enumerate(row):
                k[i, o, 0] = value
        for o, value in enumerate(bias):
            b[o, 0] = value


def _leaves(weights):
    return [v for kernel, bias in weights for v in [u for row in kernel for u in row] + bias]


def _unflatten(flat, like):
    it = iter(flat)
    return [([[next(it) for _ in row] for row in kernel], [next(it) for _ in bias]) for kernel, bias in like]


def _kernel_mean_abs(grads):
    """Per layer, the mean |kernel gradient|, as jax_engine._mean_abs."""
    out = []
    for kernel, _ in grads:
        entries = [g for row in kernel for g in row]
        total = jnp.abs(entries[0])
        for g in entries[1:]:
            total = total + jnp.abs(g)
        out.append(total / len(entries))
    return out


def _update(optimizer, nesterov, p, g, state, hp, alpha):
    """One parameter by Keras's rule, as jax_engine._sgd and _adam: its new value and state."""
    if optimizer == "sgd":
        lr, momentum = hp
        m = state[0] * momentum - g * lr
        return (p + (m * momentum - g * lr) if nesterov else p + m), (m,)
    beta_1, beta_2, epsilon = hp
    m = state[0] + (g - state[0]) * (1 - beta_1)
    v = state[1] + (g * g - state[1]) * (1 - beta_2)
    return p - (m * alpha) / (jnp.sqrt(v) + epsilon), (m, v)


def _tops_from(ref):
    """Whether each hidden layer is the replica's last, from its (n_hidden, 1) ref."""
    return [ref[l, 0] > 0 for l in range(ref.shape[0])]


# ----------------------------------------------------------------------------- kernels
# One program instance per replica, one GPU thread per row of a batch (lanes: the batch padded to a power of
# two). Refs come in one order: rows x, labels y, tops (n_hidden, 1) where replicas' depths differ, the
# optimiser's settings (2 | 3, 1) and step sizes (steps, 1) when training, the parameters, the optimiser's
# state slots; then the outputs.

def _steps_kernel(cfg, n, n_layers, n_state, train, shared, mixed, compiled, *refs):
    """Batches of rows through one replica. x: (1, steps, lanes, n_in), the replica's own rows, or (steps, lanes,
    n_in) shared; y: (1, steps, lanes) or (steps, lanes); of each batch the first cfg.batch_size lanes are rows,
    and rows past the first n count for nothing. With `train`, each batch's gradients update the weights by
    Keras's rules; the parameters and state slots are then aliased to the outputs, which hold them from the
    start. Last output, sums (2 + L, 1): loss summed over the rows, correct predictions, and per layer the
    mean |kernel gradient| summed over the batches."""
    refs, P = list(refs), 2 * n_layers
    x_ref, y_ref = refs.pop(0), refs.pop(0)
    tops = _tops_from(refs.pop(0)) if mixed else None
    if train:
        hp_ref, alpha_ref = refs.pop(0), refs.pop(0)
        hp = [hp_ref[i, 0] for i in range(hp_ref.shape[0])]
        outs = refs[P * (1 + n_state):]  # the inputs' values, aliased
        param_refs, slots = outs[:P], [outs[P * (1 + k):P * (2 + k)] for k in range(n_state)]
    else:
        param_refs = refs[:P]
    sums_ref, B = refs[-1], cfg.batch_size
    lane = jnp.arange(y_ref.shape[-1])

    def step(s, carry):
        loss, correct, grad_means = carry
        weights = _load(param_refs)
        count = jnp.minimum(B, n - s * B).astype(jnp.float32)
        real = ((lane < B) & (s * B + lane < n)).astype(jnp.float32)
        x = [x_ref[s, :, i] if shared else x_ref[0, s, :, i] for i in range(x_ref.shape[-1])]  # n_in x (lanes,)
        y = y_ref[s, :] if shared else y_ref[0, s, :]
        hidden, last, logit = _forward(weights, x, cfg.activation, tops)
        row_loss, dlogit = _loss_and_slope(logit, y)
        hit = ((_sigmoid(logit) > cfg.threshold) == (y > 0.5)).astype(jnp.float32)
        row_grads = _backward(weights, x, hidden, last, dlogit * (real / count), cfg.activation, tops)
        grads = _unflatten([jnp.sum(g) for g in _leaves(row_grads)], weights)
        grad_means = [a + b for a, b in zip(grad_means, _kernel_mean_abs(grads))]
        if train:
            stored = [_leaves(_load(slot)) for slot in slots]
            new = [_update(cfg.optimizer, cfg.nesterov, p, g, [st[j] for st in stored], hp, alpha_ref[s, 0])
                   for j, (p, g) in enumerate(zip(_leaves(weights), _leaves(grads)))]
            for k, slot in enumerate(slots):
                _store(slot, _unflatten([state[k] for _, state in new], weights))
            _store(param_refs, _unflatten([p for p, _ in new], weights))
            if compiled:  # one thread stores what every thread reads at the next step: make it visible
                plgpu.debug_barrier()
        return loss + jnp.sum(row_loss * real), correct + jnp.sum(hit * real), grad_means

    zero = jnp.zeros((), jnp.float32)
    loss, correct, grad_means = jax.lax.fori_loop(0, x_ref.shape[-3], step, (zero, zero, [zero] * n_layers))
    for i, value in enumerate([loss, correct, *grad_means]):
        sums_ref[i, 0] = value


def _shared_rows_kernel(activation, threshold, m, n_layers, stats, mixed, x_ref, y_ref, *refs):
    """Rows x (chunks, lanes, n_in), labels y (chunks, lanes) shared by every replica, the first m real, through
    one replica. Output (2, 1): mean loss and accuracy; with `stats` then per hidden layer the share of
    activations with |a| > SATURATED and the share of units that output 0 for every row ((2 + 2 n_hidden, 1))."""
    refs = list(refs)
    tops = _tops_from(refs.pop(0)) if mixed else None
    out_ref = refs[-1]
    weights = _load(refs[:2 * n_layers])
    lane = jnp.arange(y_ref.shape[-1])
    zero = jnp.zeros(lane.shape, jnp.float32)  # sums per lane, added up at the end
    units = [len(bias) for _, bias in weights[:-1]]

    def chunk(c, acc):
        loss, correct, saturated, alive = acc
        saturated, alive = list(saturated), list(alive)
        real = (c * lane.shape[0] + lane < m).astype(jnp.float32)
        x, y = [x_ref[c, :, i] for i in range(x_ref.shape[-1])], y_ref[c, :]
        hidden, _, logit = _forward(weights, x, activation, tops)
        loss = loss + _loss_and_slope(logit, y)[0] * real
        correct = correct + ((_sigmoid(logit) > threshold) == (y > 0.5)).astype(jnp.float32) * real
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


def _call(kernel, shared, blocked, outputs, aliases=None, lanes=32):
    """Run kernel(compiled, *refs) once per replica: `blocked` inputs (array, replica axis 0 or -1) give each
    program instance its replica's slice, the `shared` ones go whole to every instance; outputs (shapes,
    replica axis last). `aliases`: blocked input index -> output index, an output that starts as that input."""
    K = blocked[-1][0].shape[-1]
    one = lambda shape, axis: pl.BlockSpec(
        (1,) + shape[1:] if axis == 0 else shape[:-1] + (1,),
        lambda j, nd=len(shape), axis=axis: (j,) + (0,) * (nd - 1) if axis == 0 else (0,) * (nd - 1) + (j,))
    whole = lambda a: pl.BlockSpec(a.shape, lambda j, nd=a.ndim: (0,) * nd)
    out_shape = [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in outputs]
    interpret = jax.default_backend() != "gpu"  # elsewhere Pallas's interpreter (the tests)
    return pl.pallas_call(
        lambda *refs: kernel(not interpret, *refs), out_shape=out_shape, grid=(K,),
        in_specs=[whole(a) for a in shared] + [one(a.shape, axis) for a, axis in blocked],
        out_specs=[one(o.shape, -1) for o in out_shape],
        input_output_aliases={len(shared) + i: o for i, o in (aliases or {}).items()}, interpret=interpret,
        compiler_params=plgpu.CompilerParams(num_warps=max(1, lanes // 32), num_stages=1),
    )(*shared, *[a for a, _ in blocked])


def _flat(tree):
    return [a for layer in tree for a in layer]


def _tops(tops):
    return [] if tops is None else [(tops.astype(jnp.float32), -1)]


def batches_for_kernels(x, y, index, batch_size: int):
    """Each replica's batches in the kernels' layout: rows x (n, n_in), labels y (n,), index (steps, B, K)
    -> x (K, steps, lanes, n_in), y (K, steps, lanes), lanes past B repeating row 0 (they count for nothing)."""
    lanes = _lanes(batch_size)
    index = jnp.pad(jnp.moveaxis(index, -1, 0), [(0, 0), (0, 0), (0, lanes - batch_size)])
    return x[index], y[index]


def train_epoch(cfg, n: int, params, state, hp: dict, step, tops, x, y):
    """An epoch's steps, as jax_engine's scan of train_step computes them. params [(kernel (fan_in, fan_out, K),
    bias (fan_out, K))]; state as jax_engine's optimisers keep it; hp per-replica settings (K,); step: steps
    taken before; tops (n_hidden, K) or None (see jax_model.forward); x (K, steps, lanes, n_in), y (K, steps,
    lanes): each replica's batches (batches_for_kernels). Returns params, state and (2 + L, K): the loss summed
    over the n rows, the correct predictions, and each layer's mean |kernel gradient| summed over the steps."""
    L, steps = len(params), x.shape[1]
    if cfg.optimizer == "sgd":
        slots, settings = [state], [hp["learning_rate"], hp["momentum"]]
        alpha = jnp.zeros((steps,) + hp["learning_rate"].shape, jnp.float32)
    else:
        slots = [[(m_w, m_b) for (m_w, _), (m_b, _) in state], [(v_w, v_b) for (_, v_w), (_, v_b) in state]]
        settings = [hp["beta_1"], hp["beta_2"], hp["epsilon"]]
        t = (step + 1 + jnp.arange(steps)).astype(jnp.float32)[:, None]  # as jax_engine._adam, per step
        alpha = hp["learning_rate"] * jnp.sqrt(1 - hp["beta_2"] ** t) / (1 - hp["beta_1"] ** t)
    tensors = _flat(params) + [a for slot in slots for a in _flat(slot)]
    blocked = [(x, 0), (y, 0), *_tops(tops), (jnp.stack(settings), -1), (alpha, -1)] + [(a, -1) for a in tensors]
    first = len(blocked) - len(tensors)
    kernel = lambda compiled, *refs: _steps_kernel(cfg, n, L, len(slots), True, False, tops is not None, compiled,
                                                   *refs)
    found = _call(kernel, [], blocked, [a.shape for a in tensors] + [(2 + L, y.shape[0])],
                  {first + i: i for i in range(len(tensors))}, lanes=y.shape[-1])
    new = [_pairs(found[2 * L * k:2 * L * (k + 1)]) for k in range(1 + len(slots))]
    if cfg.optimizer == "sgd":
        return new[0], new[1], found[-1]
    return new[0], [((mw, vw), (mb, vb)) for (mw, mb), (vw, vb) in zip(new[1], new[2])], found[-1]


def _padded_rows(x, y, lanes):
    """Shared rows x (m, n_in), y (m,), padded with zeros to chunks: (chunks, lanes, n_in), (chunks, lanes)."""
    chunks = -(-x.shape[0] // lanes)
    pad = lambda a: jnp.pad(a, [(0, chunks * lanes - a.shape[0])] + [(0, 0)] * (a.ndim - 1))
    return pad(x).reshape(chunks, lanes, -1), pad(y).reshape(chunks, lanes)


def val_grad_means(cfg, params, tops, x, y):
    """Per layer (L, K), the mean |kernel gradient| of each validation batch's mean loss, averaged over the
    batches, as jax_engine's statistic from _val_grads: rows x (m, n_in), y (m,) shared by every replica."""
    L, B, m = len(params), cfg.batch_size, x.shape[0]
    xb, yb = _padded_rows(x, y, B)
    lanes = _lanes(B)
    xb, yb = jnp.pad(xb, [(0, 0), (0, lanes - B), (0, 0)]), jnp.pad(yb, [(0, 0), (0, lanes - B)])
    kernel = lambda compiled, *refs: _steps_kernel(cfg, m, L, 0, False, True, tops is not None, compiled, *refs)
    sums = _call(kernel, [xb, yb], [*_tops(tops), *[(a, -1) for a in _flat(params)]],
                 [(2 + L, params[0][0].shape[-1])], lanes=lanes)[0]
    return sums[2:] / xb.shape[0]


def shared_rows(params, x, y, activation: str, tops, threshold: float, stats: bool = False):
    """Loss and accuracy (2, K) over rows x (m, n_in) with labels y (m,), as jax_engine._evaluate; with
    `stats` also the saturated and dead shares per hidden layer, as jax_engine._unit_states: (2 + 2 n_hidden, K)."""
    L, m = len(params), x.shape[0]
    xc, yc = _padded_rows(x, y, 32)
    kernel = lambda compiled, *refs: _shared_rows_kernel(activation, threshold, m, L, stats, tops is not None,
                                                         *refs)
    return _call(kernel, [xc, yc], [*_tops(tops), *[(a, -1) for a in _flat(params)]],
                 [(2 + 2 * (L - 1) * stats, params[0][0].shape[-1])])[0]


def val_statistics(cfg, params, tops, x, y):
    """On validation rows x (m, n_in), y (m,): per layer the mean |kernel gradient| (L, K) as val_grad_means,
    and per hidden layer the saturated and dead shares (n_hidden, K) as shared_rows."""
    rows, L = shared_rows(params, x, y, cfg.activation, tops, cfg.threshold, stats=True), len(params)
    return val_grad_means(cfg, params, tops, x, y), rows[2:L + 1], rows[L + 1:]
