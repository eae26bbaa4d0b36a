"""TensorBoard event files, written and read with the `tensorboard` package alone (no TensorFlow).

Tag convention: a model-level statistic is a bare tag (`loss_train`); a per-layer one is
`<statistic>/<layer>` (`grad_val_mean_abs/hidden_1`), so TensorBoard groups layers by statistic.
Summaries are TF2-style tensors (scalars: float32 scalar; histograms: a float64 [k, 3] tensor of
left edge, right edge, count), built directly as protos: tensorboard's `scalar_pb` is about four
times slower. A step's scalars go in one record (a Summary holds many values, as TF1's merged
summaries did): reading a record costs more than reading a value, and a full study holds millions.
"""
from __future__ import annotations

import itertools
import os
import socket
import sys
import time
import types
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
# With TensorFlow installed, the tensorboard package imports it (slow, and large in memory) to open files;
# `tensorboard.compat.notf` is its own switch to use its built-in file layer instead, as without TF.
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))

import google_crc32c  # noqa: E402
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader  # noqa: E402
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow  # noqa: E402
from tensorboard.compat.proto import event_pb2, summary_pb2, types_pb2  # noqa: E402
from tensorboard.plugins.hparams.summary_v2 import hparams_pb  # noqa: E402
from tensorboard.plugins.histogram import metadata as histogram_metadata  # noqa: E402
from tensorboard.plugins.scalar import metadata as scalar_metadata  # noqa: E402
from tensorboard.summary.writer.record_writer import RecordWriter  # noqa: E402

if TYPE_CHECKING:  # imported where read: the train stage only writes event files, and pandas' import is slow
    import pandas as pd

SCALAR_COLUMNS = ["layer", "epoch", "statistic", "value"]
HISTOGRAM_COLUMNS = ["layer", "epoch", "statistic", "bin_left", "bin_right", "count"]
MODEL_LEVEL = "model"  # the `layer` of a model-level statistic in the tables
SCALARS, HISTOGRAMS = scalar_metadata.PLUGIN_NAME, histogram_metadata.PLUGIN_NAME
_UIDS = itertools.count()
# That built-in file layer checksums every record it writes or reads (CRC-32C) in pure Python, which was most of
# the time of writing and of reading event files; google-crc32c computes the same checksum in C (its writer and
# reader look the function up in that module at each call). tests/test_events.py checks the two agree.
pywrap_tensorflow.crc32c = google_crc32c.value
_METADATA = {SCALARS: scalar_metadata.create_summary_metadata(display_name=None, description=None),
             HISTOGRAMS: histogram_metadata.create_summary_metadata(display_name=None, description=None)}


class EventWriter:
    """Appends scalar and histogram summaries to a new event file in `logdir`, named and begun as
    tensorboard's EventFileWriter does; records are written in this thread (its queue and writer
    thread cost more than the writing itself)."""

    def __init__(self, logdir: str | Path):
        Path(logdir).mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_UIDS)}"
        self._writer = RecordWriter(open(Path(logdir) / name, "wb"))
        self._writer.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
        self._described: set[str] = set()  # tags whose metadata is written (TensorBoard reads it once per tag)

    def _value(self, summary, tag: str, plugin: str):
        if tag in self._described:
            return summary.value.add(tag=tag)
        self._described.add(tag)
        return summary.value.add(tag=tag, metadata=_METADATA[plugin])

    def _write(self, summary, step: int) -> None:
        self._writer.write(event_pb2.Event(summary=summary, step=int(step), wall_time=time.time()).SerializeToString())

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Every scalar of one step ({tag: value}), as one record."""
        summary = summary_pb2.Summary()
        for tag, value in values.items():
            tensor = self._value(summary, tag, SCALARS).tensor
            tensor.dtype = types_pb2.DT_FLOAT
            tensor.float_val.append(float(value))
        self._write(summary, step)

    def histogram_counts(self, tag: str, low: float, high: float, counts: np.ndarray, step: int) -> None:
        """A histogram already bucketed (equal-width buckets from low to high), stored as
        tensorboard's `histogram_pb` stores one. Skipped when the range is not finite (diverged)."""
        if not (np.isfinite(low) and np.isfinite(high)):
            return
        k = len(counts)
        edges = np.linspace(low, high, k + 1) if high > low else np.full(k + 1, low, dtype=np.float64)
        buckets = np.stack([edges[:-1], edges[1:], np.asarray(counts, np.float64)], axis=1)  # (k, 3)
        summary = summary_pb2.Summary()
        tensor = self._value(summary, tag, HISTOGRAMS).tensor
        tensor.dtype = types_pb2.DT_DOUBLE
        tensor.tensor_shape.dim.add(size=k)
        tensor.tensor_shape.dim.add(size=3)
        tensor.tensor_content = buckets.astype("<f8").tobytes()
        self._write(summary, step)

    def hparams(self, values: dict, trial_id: str) -> None:
        """The run's settings, for TensorBoard's HParams dashboard (it compares runs by these)."""
        self._write(hparams_pb(values, trial_id=trial_id), 0)

    def close(self) -> None:
        self._writer.close()


def tensorboard_buckets(values: np.ndarray, buckets: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Counts (buckets,) and range (2,) of equal-width buckets from min to max, as TensorBoard buckets
    (and as train/jax/statistics.py's histogram does in the program); one distinct value fills the last bucket."""
    values = np.asarray(values, np.float32).ravel()
    low, high = values.min(), values.max()
    width = (high - low) / np.float32(buckets)
    index = np.minimum(np.floor((values - low) / width), buckets - 1).astype(int) if width > 0 else \
        np.full(values.shape, buckets - 1)
    return np.bincount(index, minlength=buckets), np.array([low, high], np.float32)


def split_tag(tag: str) -> tuple[str, str]:
    """'grad_val/hidden_1' -> ('grad_val', 'hidden_1'); 'loss_train' -> ('loss_train', 'model')."""
    statistic, _, layer = tag.partition("/")
    return statistic, layer or MODEL_LEVEL


def _tensor_values(tensor) -> np.ndarray:
    if tensor.tensor_content:
        dtype = {types_pb2.DT_FLOAT: "<f4", types_pb2.DT_DOUBLE: "<f8"}[tensor.dtype]
        return np.frombuffer(tensor.tensor_content, dtype)
    return np.asarray(tensor.float_val or tensor.double_val, np.float64)


def read_events(logdir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All scalars and histograms of the event files directly in `logdir`, as tidy tables
    (SCALAR/HISTOGRAM_COLUMNS). Reads records with tensorboard's loader; the plugin of a tag is
    taken from its first record's metadata, as TensorBoard does. Records are read as written, without the
    loader's migration of older summary formats (EventWriter writes none)."""
    import pandas as pd

    files = sorted(Path(logdir).glob("events.out.tfevents.*"))
    if not files:
        raise FileNotFoundError(f"{logdir}: no TensorBoard event file")
    tags: dict[str, tuple[str, str, str]] = {}  # tag -> (plugin, statistic, layer), from its first record
    scalars, histograms = [], []
    for path in files:
        for event in LegacyEventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag not in tags:
                    tags[value.tag] = (value.metadata.plugin_data.plugin_name, *split_tag(value.tag))
                plugin, statistic, layer = tags[value.tag]
                if plugin == SCALARS:  # ours hold float_val; a scalar in tensor_content goes the slow way
                    number = value.tensor.float_val
                    scalars.append((layer, event.step, statistic,
                                    number[0] if number else float(_tensor_values(value.tensor)[0])))
                elif plugin == HISTOGRAMS:
                    histograms.extend((layer, event.step, statistic, left, right, count)
                                      for left, right, count in _tensor_values(value.tensor).reshape(-1, 3))
    return (pd.DataFrame(scalars, columns=SCALAR_COLUMNS),
            pd.DataFrame(histograms, columns=HISTOGRAM_COLUMNS))
