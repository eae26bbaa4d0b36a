"""The fast engine: K replicas of one MLP shape trained at once, the whole training one XLA program.

Each replica behaves as an independent `model.fit` (see keras.py and docs/study.md): its own
initial weights and its own shuffle each epoch, minibatches with the short last batch kept, Keras's
SGD-with-momentum or Adam update, binary cross-entropy from the logits, Keras's running train
metrics and end-of-epoch validation. Gradient statistics are computed inside the program.

Layout: the replica axis is the last (minor) axis of every array, so each operation is an
elementwise loop vectorised across replicas; replicas never mix, so a diverging one (NaN)
leaves the others untouched. Needs jax and numpy only (no TensorFlow).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

# Several jobs may share one GPU: allocate as needed rather than grabbing most of its memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def _default_xla_flag(name: str, value) -> None:
    """Add --name=value to XLA_FLAGS (read when JAX starts a backend) unless the user has set that flag."""
    if name not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS"), f"--{name}={value}"]))


# On CPU, one XLA device per core: the runs a group is split into (train.chunk) go side by side on them, which
# keeps every core busy (one program's threading leaves cores idle).
_default_xla_flag("xla_force_host_platform_device_count", os.cpu_count())
# On CPU, 512-bit vector instructions where the processor has them (AVX-512): XLA's default of 256 bits left
# half of each register unused in the loops across replicas. Without AVX-512 it is only a preference (capped at
# AVX2 there). Figures: benchmarks/README.md.
_default_xla_flag("xla_cpu_prefer_vector_width", 512)
# Compiled programs are kept on disk (JAX's persistent cache) and reused by any job that builds the same
# one: studies of one shape differ only in their arrays, and a re-run after a parameter change that does
# not touch shapes compiles nothing. Set JAX_COMPILATION_CACHE_DIR to move it, or to "" to turn it off.
XLA_CACHE_MAX_BYTES = 1 << 30
XLA_CACHE = os.environ.get("JAX_COMPILATION_CACHE_DIR", os.path.expanduser("~/.cache/vanishing-gradients/xla"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

if XLA_CACHE:
    jax.config.update("jax_compilation_cache_dir", XLA_CACHE)
    # bounded: beyond this many bytes JAX evicts the programs least recently used (JAX_COMPILATION_CACHE_MAX_SIZE,
    # in bytes, overrides it; -1 leaves the cache unbounded)
    if "JAX_COMPILATION_CACHE_MAX_SIZE" not in os.environ:
        jax.config.update("jax_compilation_cache_max_size", XLA_CACHE_MAX_BYTES)
    # every program, however quickly it compiles (JAX's default keeps those of a second or more): the initial
    # weights' small programs, a second or less each, are the same in every study of one width (initializers.py)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)

from .model import loss_and_grads, n_layers, pack, per_layer, unpack  # noqa: E402
from . import gpu_kernels, stored  # noqa: E402
from .initializers import current_device, init_params  # noqa: E402
from .optimizers import apply, hyperparameters, zeros_state  # noqa: E402
from .shuffle import all_permutations, permutations, shuffle_keys  # noqa: E402
from .statistics import (BUCKETS, anatomy, batches, kernel_l1, layer_histograms, loss_and_accuracy,  # noqa: E402
                             mean_abs, pass_rows, unit_states, update_ratio, val_grads, validation_batches)
from ...core.statistics import LAYER, LAYER_STATISTICS, MODEL_STATISTICS, histogram_epochs, stats_epochs  # noqa: E402
from ...core.models import ModelSpec  # noqa: E402

PER_REPLICA = ("history", "layer_stats", "final", "anatomy")  # results with the replica axis last
PRECOMPUTED_ORDERS = 2**22  # draw every epoch's row orders up front when they are at most this many int32s


@dataclass(frozen=True)
class Training:
    """What is shared by every replica of one program (static: changing it recompiles)."""

    activation: str  # hidden activation (the shapes come with the parameters)
    optimizer: str  # "sgd" | "adam"
    epochs: int
    batch_size: int
    threshold: float = 0.5
    stats_freq: int = 1  # per-layer statistics every N epochs, plus epoch 0 and the last
    histogram_freq: int = 0  # detail replicas' histograms every N epochs, plus epoch 0; 0: none
    nesterov: bool = False


def _slots(epochs: list[int], total: int) -> np.ndarray:
    """(total + 1,): each epoch's row in a buffer holding `epochs`, or -1 when it is not recorded."""
    slots = np.full(total + 1, -1, np.int32)
    slots[epochs] = np.arange(len(epochs))
    return slots


# ----------------------------------------------------------------------------- the program

def _training(cfg: Training, platform: str, mixed: bool, kernels: bool, params, hp, depth, detail, order, data):
    """Train K replicas for cfg.epochs on `platform` ("cpu" or "gpu": how row orders are sorted); with `kernels`,
    the hot loops run as the GPU kernels of gpu_kernels.py (interpreted off a GPU), else as XLA's fusions.
    depth (K,): hidden layers of each replica (params are padded to the deepest; `mixed`: some replica is
    shallower, see model.forward); detail (D,): replicas that get histograms; `order`: (K,) shuffle
    keys or (epochs, n_train, K) permutations. params come per layer (init_params's layout) and are kept packed
    (model.pack) inside: each per-layer step and statistic is then one operation over the middle layers' stack."""
    x_train, y_train, x_test, y_test = data  # (n, n_in), (n,), (m, n_in), (m,)
    n, B = x_train.shape[0], cfg.batch_size
    n_batches, mask = batches(n, B)
    val = validation_batches(x_test, y_test, B)
    act = cfg.activation
    params = pack(params)
    K, L, D = depth.shape[0], n_layers(params), detail.shape[0]
    active = jnp.arange(1, L)[:, None] <= depth[None, :]  # (L - 1, K): hidden layer i + 1 exists in replica k
    # model.forward's `exists`: None when every replica is L - 1 deep (`mixed` false)
    hidden_exists = active if mixed else None
    exists = jnp.concatenate([active, jnp.ones((1, K), bool)])  # (L, K), the output layer too
    stat_slots = _slots(stats_epochs(cfg.epochs, cfg.stats_freq), cfg.epochs)
    hist_slots = _slots(histogram_epochs(cfg.epochs, cfg.histogram_freq), cfg.epochs)
    n_stats, n_hist = int(stat_slots.max()) + 1, int(hist_slots.max()) + 1
    stat_slots, hist_slots = jnp.asarray(stat_slots), jnp.asarray(hist_slots)

    if kernels:  # each replica's network on chip (gpu_kernels.py); the histograms' gradients by XLA
        # (L - 1, K): hidden layer i + 1 is replica k's last, what the kernels read; None as `hidden_exists`
        top = jnp.arange(1, L)[:, None] == depth[None, :] if mixed else None
        evaluate = lambda p, x, y: gpu_kernels.shared_rows(unpack(p), x, y, act, top, cfg.threshold)
        detail_exists = None if hidden_exists is None else hidden_exists[:, detail]

        def val_statistics(params):
            chosen = jax.tree.map(lambda a: a[..., detail], params)
            grads = val_grads(chosen, val, act, detail_exists) if D else None
            return (*gpu_kernels.val_statistics(cfg, unpack(params), top, x_test, y_test),
                    (grads, chosen, jnp.arange(D)))
    else:
        # on a GPU all rows at once: the cache argument for passes of a few rows (pass_rows) is a CPU's
        rows = pass_rows(params[0][1].size) if platform == "cpu" else None
        evaluate = lambda p, x, y: loss_and_accuracy(p, x, y[:, None], act, hidden_exists, cfg.threshold, rows)

        def val_statistics(params):
            grads = val_grads(params, val, act, hidden_exists)
            saturated, dead = unit_states(params, x_test, act, hidden_exists, rows)
            return (per_layer([jnp.mean(jnp.abs(g), axis=(0, -3, -2)) for g in grads]), saturated, dead,
                    (grads, params, detail))

    def record(buffers, params, before, train_grad_mean, epoch):
        """Per-layer statistics (and histograms) of the weights after `epoch`, into their buffer rows."""
        stats, hist = buffers
        def write(stats):
            grad_means, saturated, dead, for_histograms = val_statistics(params)
            no_output = jnp.full((1, K), jnp.nan)
            values = {"grad_val_mean_abs": grad_means, "grad_train_mean_abs": train_grad_mean,
                      "kernel_l1": kernel_l1(params),
                      "update_ratio": update_ratio(params, before),
                      "saturated_share": jnp.concatenate([saturated, no_output]),
                      "dead_share": jnp.concatenate([dead, no_output])}  # each (L, K)
            values = jnp.stack([values[name] for name in LAYER_STATISTICS])  # (statistics, L, K), the table's order
            return stats.at[stat_slots[epoch]].set(jnp.where(exists[None], values, jnp.nan)), for_histograms
        def histograms(hist, for_histograms):
            counts, ranges = layer_histograms(*for_histograms)
            i = hist_slots[epoch]
            return (hist[0].at[i].set(counts), hist[1].at[i].set(ranges))
        # every histogram epoch is a statistics epoch (both include 0; freqs are checked to nest)
        def both(buffers):
            stats, grads = write(buffers[0])
            if not (n_hist and D):
                return stats, buffers[1]
            return stats, jax.lax.cond(hist_slots[epoch] >= 0, histograms, lambda h, g: h,
                                       buffers[1], grads)
        return jax.lax.cond(stat_slots[epoch] >= 0, both, lambda b: b, (stats, hist))

    def train_step(carry, batch):
        params, state, step = carry
        rows, bmask = batch  # (B, K): each replica's rows in this batch; (B,)
        # Gathered here rather than for the whole epoch: sliced from an epoch's gathered batches, the input
        # reached the first layer through a dynamic slice that XLA fused into that layer's loop, which then
        # ran several times slower than the other layers.
        x, y = jnp.moveaxis(x_train[rows], -1, 1), y_train[rows]  # (B, n_in, K), (B, K)
        losses, logits, grads = loss_and_grads(params, x, y, bmask, act, hidden_exists)
        correct = jnp.sum(((jax.nn.sigmoid(logits) > cfg.threshold) == (y > 0.5)) * bmask[:, None], axis=0)
        params, state = apply(cfg.optimizer, params, grads, state, hp, step, cfg.nesterov)
        return (params, state, step + 1), (losses * jnp.sum(bmask), correct, mean_abs(grads))

    def train_epoch(params, state, step, epoch, perm):
        """Epoch `epoch` (1..): the weights after it, its train metrics and validation (4, K), its mean |gradient|."""
        if perm is None:
            perm = permutations(order, epoch, n, platform)  # (n, K)
        index = jnp.concatenate([perm, jnp.zeros((n_batches * B - n, K), perm.dtype)])  # padded rows: masked
        if kernels:
            x, y = gpu_kernels.batches_for_kernels(x_train, y_train, index.reshape(n_batches, B, K), B)
            params, state, sums = gpu_kernels.train_epoch(cfg, n, unpack(params), unpack(state), hp, step, top, x, y)
            params, state = pack(params), pack(state)
            step, train_metrics, train_grad_mean = step + n_batches, sums[:2] / n, sums[2:] / n_batches
        else:
            (params, state, step), (loss_sums, correct, grad_means) = jax.lax.scan(
                train_step, (params, state, step), (index.reshape(n_batches, B, K), jnp.asarray(mask)))
            train_metrics = jnp.stack([jnp.sum(loss_sums, 0) / n, jnp.sum(correct, 0) / n])
            train_grad_mean = jnp.mean(grad_means, axis=0)
        history = jnp.concatenate([train_metrics, evaluate(params, x_test, y_test)])  # MODEL_STATISTICS' order
        return params, state, step, train_grad_mean, history

    def epoch_fn(carry, xs):
        """Record the weights after `epoch` (0: the initial ones), then train the next epoch, if any. Recording
        before training, rather than after, puts the initial record in the loop: traced once, compiled once."""
        params, state, step, buffers, before, train_grad_mean = carry
        epoch, perm = xs
        buffers = record(buffers, params, before, train_grad_mean, epoch)
        idle = lambda: (params, state, step, train_grad_mean, jnp.zeros((len(MODEL_STATISTICS), K), jnp.float32))
        trained = jax.lax.cond(epoch < cfg.epochs, lambda: train_epoch(params, state, step, epoch + 1, perm), idle)
        return (*trained[:3], buffers, params, trained[3]), trained[4]

    buffers = (jnp.full((n_stats, len(LAYER_STATISTICS), L, K), jnp.nan, jnp.float32),
               (jnp.zeros((n_hist, L, 2, D, BUCKETS), jnp.int32), jnp.zeros((n_hist, L, 2, D, 2), jnp.float32)))
    epochs = jnp.arange(0, cfg.epochs + 1)  # iteration e records epoch e and trains epoch e + 1
    if order.ndim == 1 and cfg.epochs * K * n <= PRECOMPUTED_ORDERS:
        order = all_permutations(order, epochs[1:], n, platform)  # one loop for all epochs: less overhead
    # (epochs + 1, n, K): epoch e + 1's order in row e; the last row, which no epoch uses, repeats the first
    xs = (epochs, None) if order.ndim == 1 else (epochs, jnp.concatenate([order, order[:1]]))
    carry = (params, zeros_state(params, cfg.optimizer), jnp.zeros((), jnp.int32), buffers, params,
             jnp.full((L, K), jnp.nan, jnp.float32))
    initial = params
    (params, _, _, (stats, hist), _, _), history = jax.lax.scan(epoch_fn, carry, xs)
    stats = stats.at[0, LAYER["update_ratio"]].set(jnp.nan)  # no update before training
    # the anatomy at initialisation and after the last epoch, one loop over the two: traced once
    both = jax.tree.map(lambda a, b: jnp.stack([a, b]), initial, params)
    at_both = jax.lax.map(lambda p: anatomy(p, x_train, y_train[:, None], act, hidden_exists), both)
    at_both = jnp.where(exists[None, None], at_both, jnp.nan)  # (2, A, L, K), NaN beyond a replica's depth
    final = jnp.concatenate([evaluate(params, x_train, y_train), history[-2, 2:]])  # the last epoch's validation
    return {"params": unpack(params), "history": history[:-1], "layer_stats": stats, "hist_counts": hist[0],
            "hist_ranges": hist[1], "final": final, "anatomy": at_both}


# On CPU without XLA's loop-invariant code motion: it hoisted broadcasts of arrays that do not change inside a
# loop (the validation rows, the weights while the validation batches run) out of it, so that each pass read
# them materialised, (rows, width, K) floats, instead of computing them in registers. Kept on a GPU, where
# validation was not slow.
# And with LLVM's lighter optimisation (level 1 of XLA's 0-3): the programs compile in about two thirds of the
# time and run as fast, XLA having written the loops vectorised itself. The multiply-adds fuse alike, so training
# is the same to the last bits (seven programs of the default study compared: their weights bit for bit); sums, as
# the statistics' and the losses', may differ in their last bits (tests/test_jax_engine.py).
CPU_OPTIONS = {"xla_disable_hlo_passes": "while-loop-invariant-code-motion", "xla_backend_optimization_level": 1}
# On CPU, mixed-depth programs of layers at most NARROW wide are compiled without XLA's fusion emitters (its older
# loop emitters instead): their scans over layers, rolled, ran 2 to 4 times slower with the fusion emitters. From
# width 20 the fusion emitters ran faster. Single-depth programs keep the default. Figures: benchmarks/README.md.
NARROW = 15
NARROW_OPTIONS = {**CPU_OPTIONS, "xla_cpu_use_fusion_emitters": False}
OPTIONS = {"cpu": CPU_OPTIONS, "cpu-narrow": NARROW_OPTIONS, "gpu": None}
_COMPILED = {kind: jax.jit(_training, static_argnums=(0, 1, 2, 3), compiler_options=options)
             for kind, options in OPTIONS.items()}


def _kind(platform: str, mixed: bool, width: int) -> str:
    """Which of OPTIONS a program is compiled with: "cpu-narrow" as NARROW says, else its platform's."""
    return "cpu-narrow" if platform == "cpu" and mixed and width <= NARROW else platform


def compiled(platform: str, mixed: bool, width: int):
    """The compiled _training for `platform` ("cpu" | "gpu"), mixed depths or not, layers `width` wide."""
    return _COMPILED[_kind(platform, mixed, width)]


# Where the train stage keeps its CPU programs' modules, beside JAX's cache (stored.py): a job making a program this
# code made before reads it instead of tracing and lowering it again. None with the disk cache off.
STORE = f"{os.path.normpath(XLA_CACHE)}-modules" if XLA_CACHE else ""


def _run(kind: str, static: tuple, args: tuple, store: str):
    """One run of the program of `kind` (OPTIONS) on `static` arguments (cfg, platform, mixed, kernels) and `args`
    (on one device); with a `store` folder (CPU programs only), its module kept there."""
    if store:
        return stored.program(_COMPILED[kind], static, args, OPTIONS[kind], store)(*args)
    return _COMPILED[kind](*static, *args)


# On a GPU, gpu_kernels.py's kernels instead of XLA's fusions: opt-in (VGRAD_GPU_KERNELS=1) until their speed at
# depth 20 is known and their tests pass on a GPU under the pinned JAX (so far only under a newer one; README, P3).
GPU_KERNELS = os.environ.get("VGRAD_GPU_KERNELS", "0") == "1"


# ----------------------------------------------------------------------------- public API

def _devices() -> list:
    """The devices a call's program runs are spread over: on CPU every CPU device (one per core, see
    above), whose runs go side by side; else the one device in use."""
    device = current_device()
    return jax.devices("cpu") if device.platform == "cpu" else [device]


def _parts(n: int, chunk: int) -> list[tuple[np.ndarray, int]]:
    """Per program run, its replicas' indices and how many are real: as few runs as `chunk` allows, all
    of one size (one compiled program; a short run repeats its first replica, whose copies' results are
    dropped). The split depends on n and chunk alone, never on the machine: a replica's results depend
    on its run's size in the last bits (XLA vectorises across replicas), so the same parameters give the
    same numbers on any number of cores."""
    size = -(-n // -(-n // chunk))
    return [(np.concatenate([np.arange(start, min(start + size, n)), np.full(max(start + size - n, 0), start)]),
             min(size, n - start)) for start in range(0, n, size)]


def _real_replicas(out: dict, real: int) -> dict:
    """A run's results for its first `real` replicas (the rest repeated its first replica to fill the run)."""
    trim = lambda a: a[..., :real]
    return {**{k: trim(out[k]) for k in PER_REPLICA},
            "params": jax.tree.map(trim, out["params"]),
            "hist_counts": out["hist_counts"], "hist_ranges": out["hist_ranges"]}  # detail replicas are real ones


def train_replicas(cfg: Training, specs: list[ModelSpec], seeds, optimizers: list[dict], data: dict,
                   detail=(), params=None, perms=None, chunk: int = 4096, first: int = 0, store: str = ""):
    """Train one replica per (spec, seed, optimizer settings): all of one width and activation, any depths;
    optimizers all of one name (settings may differ). Returns numpy arrays with the replica axis last
    (see _training): history (epochs, 4, K), layer_stats (stats epochs, 6, L, K) over the padded layers,
    hist_counts/hist_ranges (histogram epochs, L, 2, len(detail), ...), final (4, K), anatomy (2, A, L, K) at
    initialisation and after the last epoch.

    `detail`: replica indices that get histograms. `params`: initial weights (init_params's layout)
    instead of drawing them from the seeds. `perms`: (epochs, K, n_train) row orders instead of drawing
    them. Replicas are trained at most `chunk` per program run, so that any number fits in memory; on
    CPU the runs are spread over the cores and run side by side, the first on CPU device `first`. `store`: a
    folder where CPU programs' modules are kept (STORE; stored.py), for processes that trace only what the
    package's source says (the train stage; not code that patches the package at run time, as tests do).
    """
    seeds, detail = list(seeds), list(detail)
    arrays = tuple(jnp.asarray(a, jnp.float32) for a in
                   (data["train"][0], data["train"][1][:, 0], data["test"][0], data["test"][1][:, 0]))
    depth_all = max(s.depth for s in specs)  # every run padded alike, so results never depend on the split
    mixed = any(s.depth != depth_all for s in specs)  # one program for every run, whatever depths it holds
    devices = _devices()
    devices = devices[first % len(devices):] + devices[:first % len(devices)]
    parts = _parts(len(seeds), chunk)
    platform = "cpu" if devices[0].platform == "cpu" else "gpu"
    kernels = platform == "gpu" and GPU_KERNELS
    kind = _kind(platform, mixed, specs[0].width)
    store = store if platform == "cpu" else ""  # modules are exported for the CPU

    def start(index, real, device):
        """Dispatch one run (asynchronously: runs on other devices start before this one ends)."""
        with jax.default_device(device):
            pick = lambda items: [items[i] for i in index]
            p = (init_params(pick(specs), pick(seeds), depth_all) if params is None
                 else jax.tree.map(lambda a: jnp.asarray(a[..., index]), params))
            order = shuffle_keys(pick(seeds)) if perms is None else jnp.asarray(np.swapaxes(perms[:, index], 1, 2))
            depth = jnp.asarray([s.depth for s in pick(specs)], jnp.int32)
            local = jnp.asarray([k for k in range(real) if index[k] in detail], jnp.int32)
            return _run(kind, (cfg, platform, mixed, kernels),
                        (p, hyperparameters(pick(optimizers)), depth, local, order, arrays), store)

    done = []
    for wave in range(0, len(parts), len(devices)):
        running = [(real, start(index, real, device)) for (index, real), device in zip(parts[wave:], devices)]
        done += [_real_replicas(jax.tree.map(np.asarray, out), real) for real, out in running]
    if len(done) == 1:
        return done[0]
    joined = {k: np.concatenate([p[k] for p in done], axis=-1) for k in PER_REPLICA}
    for k in ("hist_counts", "hist_ranges"):  # (H, L, 2, D, BUCKETS | 2): detail replicas on axis -2
        joined[k] = np.concatenate([p[k] for p in done], axis=-2)
    joined["params"] = jax.tree.map(lambda *a: np.concatenate(a, axis=-1), *[p["params"] for p in done])
    return joined
