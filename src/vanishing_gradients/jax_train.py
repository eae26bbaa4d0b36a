"""The train stage on the fast engine: every seed of an experiment in one program, then the same
per-seed outputs as the reference engine (event file with the same tags, history, final metrics)."""
from __future__ import annotations

from . import jax_engine as je
from .events import LAYER_STATISTICS, MODEL_STATISTICS, EventWriter, record_final
from .models import ModelSpec


def select_device(device: str):
    """The JAX device for train.device, and a description of it."""
    import jax

    if device == "cpu":
        chosen = jax.devices("cpu")[0]
    else:
        chosen = jax.devices()[0]  # the default backend: a GPU when JAX sees one
        if device == "gpu" and chosen.platform != "gpu":
            raise RuntimeError("train.device is 'gpu' but JAX sees no GPU")
    return chosen, f"{chosen.platform}: {chosen.device_kind}"


def write_replica(writer: EventWriter, out: dict, k: int, layers: list[str], histogram_freq: int):
    """Replica k's statistics as events, tag for tag as keras_engine.EventLogger writes them."""
    history, stats = out["history"][..., k], out["layer_stats"][..., k]  # (E, 4), (E + 1, 3, L)
    epochs = history.shape[0]
    for epoch in range(epochs + 1):
        if epoch:
            for tag, value in zip(MODEL_STATISTICS, history[epoch - 1]):
                writer.scalar(tag, value, epoch)
        for i, layer in enumerate(layers):
            for name, value in zip(LAYER_STATISTICS, stats[epoch, :, i]):
                if epoch or name != "grad_train_mean_abs":  # no training step before epoch 1
                    writer.scalar(f"{name}/{layer}", value, epoch)
    counts, ranges = out["hist_counts"][..., k, :], out["hist_ranges"][..., k, :]  # (H, L, 2, BUCKETS|2)
    for h in range(counts.shape[0]):
        for i, layer in enumerate(layers):
            for j, kind in enumerate(("grad_val", "kernel")):
                writer.histogram_counts(f"{kind}/{layer}", *ranges[h, i, j], counts[h, i, j], h * histogram_freq)
    rows = [{"epoch": e + 1, **dict(zip(MODEL_STATISTICS, map(float, history[e])))} for e in range(epochs)]
    final = dict(zip(MODEL_STATISTICS, map(float, out["final"][:, k])))
    return rows, record_final(writer, final, rows, epochs)


def train_experiment(spec: ModelSpec, optimizer: dict, train: dict, histogram_freq: int, data: dict, device):
    """Train every seed at once on `device`; returns the engine's arrays (replica axis last)."""
    import jax

    cfg = je.Training(spec.activation, optimizer["name"], train["epochs"], train["batch_size"], train["threshold"],
                      histogram_freq, optimizer.get("nesterov", False))
    with jax.default_device(device):
        return je.train_replicas(cfg, spec, train["seeds"], optimizer, data, chunk=train["chunk"])
