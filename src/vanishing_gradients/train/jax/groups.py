"""The train stage on the fast engine: a study's variants grouped into as few compiled programs as
their shapes allow, each program training every seed of its variants at once."""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from . import program
from ...core.cost import programs, run_size
from ...core.study import Variant

# JAX's own timings of making a program: tracing, lowering, and XLA's compile (or its read from the disk cache)
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")
_compiling = {"s": 0.0, "listening": False}


def _count_compiling(event: str, duration: float, **_) -> None:
    if event in COMPILE_EVENTS:
        _compiling["s"] += duration


def compile_seconds() -> float:
    """Seconds this process has spent making programs since the first call (a listener on JAX's monitoring)."""
    import jax

    if not _compiling["listening"]:
        jax.monitoring.register_event_duration_secs_listener(_count_compiling)
        _compiling["listening"] = True
    return _compiling["s"]


def jax_device(device: str):
    """The JAX device for train.device, and a description of it (which says when the GPU kernels train)."""
    import jax

    if device == "cpu":
        chosen = jax.devices("cpu")[0]
    else:
        chosen = jax.devices()[0]  # the default backend: a GPU when JAX sees one
        if device == "gpu" and chosen.platform != "gpu":
            raise RuntimeError("train.device is 'gpu' but JAX sees no GPU")
    kernels = " with the GPU kernels (VGRAD_GPU_KERNELS=1)" if chosen.platform == "gpu" and program.GPU_KERNELS else ""
    kind = "" if chosen.device_kind.lower() == chosen.platform else f": {chosen.device_kind}"
    return chosen, f"{chosen.platform}{kind}{kernels}"


def split(out: dict, group: list[Variant], detail_seeds: int) -> Iterator[tuple[Variant, dict]]:
    """Each variant's share of a program's arrays, its layers only (hidden 1..depth, output)."""
    start, d_start = 0, 0
    for variant in group:
        k, d = len(variant.seeds), min(detail_seeds, len(variant.seeds))
        layers = list(range(variant.depth)) + [-1]
        yield variant, {
            "history": out["history"][..., start:start + k],  # (epochs, 4, seeds)
            "final": out["final"][:, start:start + k],  # (4, seeds)
            "layer_stats": out["layer_stats"][:, :, layers, start:start + k],  # (stats epochs, 6, L, seeds)
            "anatomy": out["anatomy"][:, :, layers, start:start + k],  # (2, A, L, seeds): at init and end
            "hist_counts": out["hist_counts"][:, layers, :, d_start:d_start + d],  # (H, L, 2, detail, BUCKETS)
            "hist_ranges": out["hist_ranges"][:, layers, :, d_start:d_start + d]}  # (H, L, 2, detail, 2)
        start, d_start = start + k, d_start + d


def _train_program(i: int, group: list[Variant], train: dict, events: dict, data: dict, device, log, first: int):
    """One program's arrays: every seed of the group's variants (run in a worker thread, see train_groups)."""
    import jax

    specs, seeds, optimizers, detail = [], [], [], []
    for variant in group:
        detail += [len(seeds) + j for j in range(min(events["detail_seeds"], len(variant.seeds)))]
        specs += [variant.spec] * len(variant.seeds)
        seeds += list(variant.seeds)
        optimizers += [variant.optimizer] * len(variant.seeds)
    first_variant = group[0]
    cfg = program.Training(first_variant.spec.activation, first_variant.optimizer["name"], train["epochs"],
                           train["batch_size"], train["threshold"], events["stats_freq"], events["histogram_freq"],
                           first_variant.optimizer.get("nesterov", False))
    log(f"program {i}: {len(group)} variants, {len(seeds)} replicas (width {first_variant.width}, "
        f"depth {min(v.depth for v in group)}-{max(v.depth for v in group)}, {cfg.activation}, {cfg.optimizer})")
    with jax.default_device(device):
        largest = max(len(data["train"][0]), len(data["test"][0]))  # rows of the larger split
        chunk = run_size(group, train, events, largest)  # train.chunk, or fewer to fit in memory
        return program.train_replicas(cfg, specs, seeds, optimizers, data, detail=detail, chunk=chunk, first=first,
                                      store=program.STORE)


def train_groups(variants: list[Variant], train: dict, events: dict, data: dict, device, log,
                 parts: dict, in_flight: int | None = None) -> Iterator[tuple[Variant, dict]]:
    """Train every seed of every variant; yields (variant, arrays with the seed axis last), program by program in
    order. Adds to `parts` (a defaultdict(float)) the seconds of this generator's wall time spent making programs
    ("compile", JAX's own timings, at most the time waited) and waiting for them to run ("programs").

    On a CPU, up to `in_flight` programs (default: one per CPU device) are made and run at once, program i's
    first run on device i: a program of one run then uses one core, and the next one is compiled and run on
    another meanwhile. Each program's numbers are the same whatever runs beside it."""
    import jax

    rows = len(data["train"][0]) + len(data["test"][0])
    in_flight = in_flight or (len(jax.devices("cpu")) if device.platform == "cpu" else 1)
    todo = enumerate(programs(variants, train["epochs"], rows), 1)
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        running = deque()

        def submit() -> None:
            i, group = next(todo, (0, None))  # the next program, if any
            if group is not None:
                running.append((group, pool.submit(_train_program, i, group, train, events, data, device, log,
                                                   (i - 1) % in_flight)))

        for _ in range(in_flight):
            submit()
        while running:
            start, compiled = time.perf_counter(), compile_seconds()
            group, future = running.popleft()
            out = future.result()
            submit()
            waited = time.perf_counter() - start
            compiling = min(waited, compile_seconds() - compiled)  # programs compile beside running ones
            parts["compile"] += compiling
            parts["programs"] += waited - compiling
            yield from split(out, group, events["detail_seeds"])
