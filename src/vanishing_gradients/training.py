"""The train stage for either engine: per seed, an event file written as the model trains (keras)
or from the replicas' arrays once all seeds are trained together (jax)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .events import EventWriter
from .models import ModelSpec

SEED_DIR = "seed_{seed}"


def seed_dir(run_dir: str | Path, seed: int) -> Path:
    return Path(run_dir) / SEED_DIR.format(seed=seed)


def hparams(experiment: str, spec: ModelSpec, optimizer: dict, train: dict, seed: int) -> dict:
    """One run's settings as TensorBoard hparams (numbers and strings)."""
    def init(i):
        return i if isinstance(i, str) else f"{i['name']}({i['minval']}, {i['maxval']})"
    return {"experiment": experiment, "depth": spec.depth, "width": spec.width, "activation": spec.activation,
            "hidden_init": init(spec.hidden_init), "output_init": init(spec.output_init), "engine": train["engine"],
            "epochs": train["epochs"], "batch_size": train["batch_size"], "seed": seed,
            **{f"optimizer_{k}": v for k, v in optimizer.items()}}


def train_seeds(experiment: str, spec: ModelSpec, optimizer: dict, train: dict, histogram_freq: int, data: dict,
                out_dir: Path, threads: int) -> tuple[str, Iterator[tuple[int, list[dict], dict]]]:
    """The device used, and an iterator that trains (or writes) one seed per step, yielding
    (seed, per-epoch history rows, final metrics) after that seed's event file is closed."""
    if train["engine"] == "keras":
        from . import keras_engine

        keras_engine.configure(threads)
        device = keras_engine.select_device(train["device"])

        def run(seed, writer):
            return keras_engine.train_one(spec, optimizer, train, histogram_freq, data, seed, writer)
    else:
        from . import jax_train

        jax_device, device = jax_train.select_device(train["device"])
        arrays = jax_train.train_experiment(spec, optimizer, train, histogram_freq, data, jax_device)

        def run(seed, writer):
            return jax_train.write_replica(writer, arrays, train["seeds"].index(seed), spec.layer_names,
                                           histogram_freq)

    def seeds():
        for seed in train["seeds"]:
            writer = EventWriter(seed_dir(out_dir, seed))
            writer.hparams(hparams(experiment, spec, optimizer, train, seed), f"{experiment}/seed_{seed}")
            try:
                history, final = run(seed, writer)
            finally:
                writer.close()
            yield seed, history, final

    return device, seeds()
