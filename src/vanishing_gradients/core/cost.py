"""What a study costs before any work: models, model-epochs, programs, event files, the memory of its largest
program and a rough time. The parameter check refuses what cannot run (naming the key to change), the train stage
prints the estimate as it starts, the fast engine groups a study's variants into the programs that this estimate
says cost least (programs), and splits a program whose replicas would not fit in PROGRAM_BYTES (run_size)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .statistics import LAYER_STATISTICS, MODEL_STATISTICS
from .study import Variant, shape_key, variants

PROGRAM_BYTES = 4 << 30  # one program run's arrays at most; a larger group of replicas is split into runs that fit
MAX_FILES = 250_000  # event files one study may write (one per variant and one per seed)
MAX_PROGRAMS = 400  # programs one study may compile (each takes seconds to compile)
# Rough seconds of one core of the project's 2-core machine (fitted to each program of the default study, timed alone
# with a cold compile cache: benchmarks/README.md). Training, per epoch: each replica's hidden unit costs
# UNIT_ROW_S + UNIT_ROW_S_PER_WIDTH x width per row (a unit's multiply-adds grow with the width of the layer below),
# each unit UNIT_EPOCH_S whatever the replica count, and the program PROGRAM_EPOCH_S (row orders, loop overhead).
# Making a program: COMPILE_S, plus COMPILE_S_PER_LAYER per layer of its deepest model and COMPILE_S_PER_WIDTH per
# unit of its width. Fitted while the per-layer statistics were traced layer by layer, before the middle layers
# were stacked (model.pack); not refitted, since other programs would move replicas' last bits.
UNIT_ROW_S, UNIT_ROW_S_PER_WIDTH, UNIT_EPOCH_S, PROGRAM_EPOCH_S = 7.0e-9, 5.7e-10, 1.0e-4, 4.6e-3
COMPILE_S, COMPILE_S_PER_LAYER, COMPILE_S_PER_WIDTH = 10.0, 0.54, 0.30
# Programs of fewer replicas than this are not cut off a larger group: split so, `breadth`'s wide programs took more
# CPU in the train job than whole, though the estimate (fitted to programs timed alone) says less, while the depth
# studies' larger pieces took less, as estimated (figures: benchmarks/README.md).
MIN_REPLICAS = 100
MAX_GROUP = 64  # variants one program may hold (bounds the search in programs, and a program's padding)
FLOAT = 4


def _weights(variant: Variant) -> int:
    """Kernel entries and biases of one model (ModelSpec.kernel_shapes, in closed form: depths may be large)."""
    spec, w = variant.spec, variant.width
    return (spec.n_inputs + 1) * w + (spec.depth - 1) * (w + 1) * w + w + 1


def replica_bytes(variant: Variant, train: dict, events: dict, n_rows: int) -> int:
    """Peak bytes one replica of `variant` holds in a program (an upper bound, twice the arrays for XLA's
    temporaries): per-epoch history, per-layer statistics and histograms over all epochs, weights with gradients,
    optimiser state and the previous epoch's, a training step's activations and those of a pass over a whole split
    (validation, or the anatomy's forward and backward pass over the training rows). n_rows: the larger split."""
    epochs, layers, width = train["epochs"], variant.depth + 1, variant.width
    weights = _weights(variant)
    n_stats = epochs // events["stats_freq"] + 1 + (epochs % events["stats_freq"] > 0)  # as stats_epochs counts them
    n_hist = epochs // events["histogram_freq"] + 1  # as histogram_epochs
    buffers = (epochs * len(MODEL_STATISTICS) + n_stats * len(LAYER_STATISTICS) * layers
               + n_hist * layers * 2 * 32)
    state = weights * (2 + 2 + 1)  # weights, gradients, up to two optimiser slots, the previous epoch's weights
    activations = (train["batch_size"] + n_rows) * 4 * width * layers  # a step, a split (forward, backward)
    validation_grads = -(-n_rows // train["batch_size"]) * weights
    return 2 * FLOAT * (buffers + state + activations + validation_grads)


def program_seconds(group: list[Variant], epochs: int, rows: int) -> float:
    """Rough seconds one program takes on one core: making it, and training its replicas, each as deep as the
    deepest (shallower replicas are padded with idle layers). rows: the training and test rows together."""
    return _seconds(sum(len(v.seeds) for v in group), max(group, key=lambda v: v.depth), epochs, rows)


def making_seconds(deepest: Variant) -> float:
    """Rough seconds making (compiling) a program whose deepest variant is `deepest`."""
    return COMPILE_S + COMPILE_S_PER_LAYER * deepest.depth + COMPILE_S_PER_WIDTH * deepest.width


def _seconds(replicas, deepest: Variant, epochs: int, rows: int):
    units, width = deepest.depth * deepest.width, deepest.width
    per_epoch = units * (replicas * rows * (UNIT_ROW_S + UNIT_ROW_S_PER_WIDTH * width) + UNIT_EPOCH_S) + PROGRAM_EPOCH_S
    return making_seconds(deepest) + epochs * per_epoch


def _program_key(group: list[Variant]) -> tuple:
    """What two programs must share to be one compiled program (train/jax/program.py's shapes and static
    arguments): the shape key, replicas, detail replicas (one set per variant), the deepest model, mixed depths."""
    depths = [v.depth for v in group]
    return shape_key(group[0]), sum(len(v.seeds) for v in group), len(group), max(depths), min(depths) != max(depths)


def priority_seconds(params: dict, study: str) -> float:
    """A study's estimated seconds, less making the programs that a study before it in params.yaml makes too: the
    train jobs start in this order (the Snakemake rule's priority), so the later one reads them from the disk cache
    rather than making them at the same time."""
    epochs, rows = params["train"]["epochs"], params["data"]["n_samples"]
    made = set()
    for earlier in list(params["studies"])[:list(params["studies"]).index(study)]:
        made |= {_program_key(g) for g in programs(variants(params, earlier), epochs, rows)}
    return sum(program_seconds(g, epochs, rows) - (making_seconds(max(g, key=lambda v: v.depth))
                                                   if _program_key(g) in made else 0.0)
               for g in programs(variants(params, study), epochs, rows))


def programs(todo: list[Variant], epochs: int, rows: int) -> list[list[Variant]]:
    """The fast engine's programs for `todo`: variants of one shape_key, in runs of consecutive depths, split where
    this estimate says a program's padding costs more than making another one; of all such groupings (at most
    MAX_GROUP variants and at least MIN_REPLICAS replicas each, unless the key has fewer), the one of least estimated
    seconds. Cheap variants share one program (making it is most of their cost); costly deep ones get programs of a
    few depths. Longest first: the fast engine runs a few at a time (train/jax/groups.py), so the short ones fill
    the end and no core waits alone on a long one."""
    by_key: dict[tuple, list[Variant]] = {}
    for variant in todo:
        by_key.setdefault(shape_key(variant), []).append(variant)
    out = []
    for group in by_key.values():
        group = sorted(group, key=lambda v: v.depth)  # stable: equal depths keep params order
        replicas = np.cumsum([0] + [len(v.seeds) for v in group])  # (n + 1,): seeds of the first j variants
        best, cut = np.zeros(len(group) + 1), np.zeros(len(group) + 1, int)  # for the first j variants: least
        for j in range(1, len(group) + 1):  # seconds, and where their last program starts
            i = np.arange(max(0, j - MAX_GROUP), j)  # the last program's first variant
            whole = (i == 0) & (j == len(group))  # the one program of a group of fewer than MIN_REPLICAS
            seconds = np.where((replicas[j] - replicas[i] >= MIN_REPLICAS) | whole,  # else infinite, as is best[i]
                               best[i] + _seconds(replicas[j] - replicas[i], group[j - 1], epochs, rows), np.inf)
            best[j], cut[j] = seconds.min(), i[seconds.argmin()]
        runs, j = [], len(group)
        while j:
            runs.append(group[cut[j]:j])
            j = cut[j]
        out += runs[::-1]
    return sorted(out, key=lambda g: -program_seconds(g, epochs, rows))


def run_size(group: list[Variant], train: dict, events: dict, n_rows: int) -> int:
    """Replicas per program run for a group: train.chunk, or fewer where that many would not fit in PROGRAM_BYTES
    (the split depends on the parameters alone, never on the machine, so the numbers do too)."""
    return _fitting(max(replica_bytes(v, train, events, n_rows) for v in group), train["chunk"])


def _fitting(per_replica: int, chunk: int) -> int:
    """Replicas per program run: `chunk`, or as many as fit in PROGRAM_BYTES (at least one)."""
    return max(1, min(chunk, PROGRAM_BYTES // per_replica))


@dataclass(frozen=True)
class Estimate:
    variants: int
    models: int
    model_epochs: int
    programs: int
    files: int
    program_bytes: int  # the largest program run
    replica_bytes: int  # the largest replica
    seconds: float  # rough, on one core

    def __str__(self) -> str:
        return (f"{self.variants:,} variants, {self.models:,} models, {self.model_epochs:,} model-epochs in "
                f"{self.programs:,} programs; largest program run {_size(self.program_bytes)}; {self.files:,} event "
                f"files; roughly {_duration(self.seconds)} on one core")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024


def _duration(seconds: float) -> str:
    return (f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200
            else f"{seconds / 3600:,.0f} h")


def estimate(params: dict, study: str) -> Estimate:
    todo = variants(params, study)
    train, events, rows = params["train"], params["events"], params["data"]["n_samples"]
    n_rows, epochs = max(rows - params["data"]["n_train"], params["data"]["n_train"]), train["epochs"]
    groups = programs(todo, epochs, rows)
    models = sum(len(v.seeds) for v in todo)
    per_replica = [max(replica_bytes(v, train, events, n_rows) for v in g) for g in groups]
    runs = [(min(_fitting(b, train["chunk"]), sum(len(v.seeds) for v in g)), b) for g, b in zip(groups, per_replica)]
    return Estimate(len(todo), models, models * epochs, len(groups), len(todo) + models,
                    max(k * b for k, b in runs), max(b for _, b in runs),
                    sum(program_seconds(g, epochs, rows) for g in groups))


def memory_bytes() -> int:
    """This machine's memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def problems(params: dict) -> list[str]:
    """What no run of these parameters can do here, one message per study, each with its estimate and the key to
    change."""
    found = []
    for study, entry in params["studies"].items():
        where = f"studies.{study}"
        seeds_key = f"{where}.seeds" if "seeds" in entry else "train.seeds"
        cost = estimate(params, study)
        limit = min(PROGRAM_BYTES, memory_bytes() // 2)
        if cost.replica_bytes > limit:
            found.append(f"{where}: one model needs about {_size(cost.replica_bytes)} in training, more than "
                         f"{_size(limit)}: lower train.epochs (its per-epoch records), {where}.widths or "
                         f"{where}.depths ({cost})")
        elif cost.files > MAX_FILES:
            found.append(f"{where}: would write {cost.files:,} event files, more than {MAX_FILES:,}: lower "
                         f"{seeds_key} or the variants ({cost})")
        elif cost.programs > MAX_PROGRAMS:
            found.append(f"{where}: would compile {cost.programs:,} programs, more than {MAX_PROGRAMS}: fewer "
                         f"{where}.depths or {where}.widths ({cost})")
    return found
