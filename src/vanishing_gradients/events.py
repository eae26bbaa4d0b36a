"""TensorBoard event files, written and read with the `tensorboard` package alone (no TensorFlow).

Tag convention: a model-level statistic is a bare tag (`loss_train`); a per-layer one is
`<statistic>/<layer>` (`grad_val_mean_abs/hidden_1`), so TensorBoard groups layers by statistic.
"""
from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
# With TensorFlow installed, the tensorboard package imports it (seconds, half a GB) to open files;
# `tensorboard.compat.notf` is its own switch to use its built-in file layer instead, as without TF.
sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))

from tensorboard.backend.event_processing import event_accumulator as ea  # noqa: E402
from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: E402
from tensorboard.plugins.hparams.summary_v2 import hparams_pb  # noqa: E402
from tensorboard.plugins.histogram import metadata as histogram_metadata  # noqa: E402
from tensorboard.plugins.histogram.summary_v2 import histogram_pb  # noqa: E402
from tensorboard.plugins.scalar.summary_v2 import scalar_pb  # noqa: E402
from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

# Statistics every run writes: per epoch for the model and for each layer, and once at the end
# (model.evaluate after training, as the original reports) under FINAL_PREFIX + a model statistic.
MODEL_STATISTICS = ("loss_train", "accuracy_train", "loss_test", "accuracy_test")
LAYER_STATISTICS = ("grad_val_mean_abs", "grad_train_mean_abs", "kernel_l1")
FINAL_PREFIX = "final_"
SCALAR_COLUMNS = ["layer", "epoch", "statistic", "value"]
HISTOGRAM_COLUMNS = ["layer", "epoch", "statistic", "bin_left", "bin_right", "count"]
MODEL_LEVEL = "model"  # the `layer` of a model-level statistic in the tables


class EventWriter:
    """Appends scalar and histogram summaries to one event file in `logdir`."""

    def __init__(self, logdir: str | Path):
        self._writer = EventFileWriter(str(logdir))

    def _write(self, summary, step: int) -> None:
        self._writer.add_event(event_pb2.Event(summary=summary, step=int(step), wall_time=time.time()))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self._write(scalar_pb(tag, float(value)), step)

    def histogram(self, tag: str, values: np.ndarray, step: int, buckets: int = 30) -> None:
        """Skipped when a value is not finite (a diverged model): numpy cannot bin NaN."""
        values = np.asarray(values, dtype=np.float64).ravel()
        if np.all(np.isfinite(values)):
            self._write(histogram_pb(tag, values, buckets=buckets), step)

    def histogram_counts(self, tag: str, low: float, high: float, counts: np.ndarray, step: int) -> None:
        """A histogram already bucketed (equal-width buckets from low to high), stored as
        `histogram_pb` stores one: a [k, 3] tensor of left edge, right edge, count."""
        if not (np.isfinite(low) and np.isfinite(high)):
            return
        k = len(counts)
        edges = np.linspace(low, high, k + 1) if high > low else np.full(k + 1, low, dtype=np.float64)
        buckets = np.stack([edges[:-1], edges[1:], np.asarray(counts, np.float64)], axis=1)
        summary = summary_pb2.Summary()
        summary.value.add(tag=tag, metadata=histogram_metadata.create_summary_metadata(display_name=None,
                                                                                      description=None),
                          tensor=tensor_util.make_tensor_proto(buckets, dtype=np.float64))
        self._write(summary, step)

    def hparams(self, values: dict, trial_id: str) -> None:
        """The run's settings, for TensorBoard's HParams dashboard (it compares runs by these)."""
        self._write(hparams_pb(values, trial_id=trial_id), 0)

    def close(self) -> None:
        self._writer.close()


def record_final(writer: EventWriter, final: dict, history: list[dict], step: int) -> dict:
    """Write a run's final loss and accuracy per split at `step`; return them with `diverged`: whether
    any loss, of an epoch or final, is not finite (a result to record, not an error)."""
    for statistic in MODEL_STATISTICS:
        writer.scalar(FINAL_PREFIX + statistic, final[statistic], step)
    losses = [row[k] for row in history for k in ("loss_train", "loss_test")] + [final["loss_train"]]
    return {**final, "diverged": not bool(np.all(np.isfinite(losses)))}


def split_tag(tag: str) -> tuple[str, str]:
    """'grad_val/hidden_1' -> ('grad_val', 'hidden_1'); 'loss_train' -> ('loss_train', 'model')."""
    statistic, _, layer = tag.partition("/")
    return statistic, layer or MODEL_LEVEL


def read_events(logdir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All scalars and histograms in `logdir`, as tidy tables (see SCALAR/HISTOGRAM_COLUMNS)."""
    files = sorted(Path(logdir).glob("events.out.tfevents.*"))
    if not files:
        raise FileNotFoundError(f"{logdir}: no TensorBoard event file")
    acc = ea.EventAccumulator(str(logdir), size_guidance={ea.TENSORS: 0, ea.SCALARS: 0, ea.HISTOGRAMS: 0})
    acc.Reload()
    scalars, histograms = [], []
    for tag in acc.Tags()["tensors"]:
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        statistic, layer = split_tag(tag)
        for event in acc.Tensors(tag):
            array = tensor_util.make_ndarray(event.tensor_proto)
            if plugin == "scalars":
                scalars.append((layer, event.step, statistic, float(array)))
            elif plugin == "histograms":
                histograms.extend((layer, event.step, statistic, left, right, count)
                                  for left, right, count in array.reshape(-1, 3))
    return (pd.DataFrame(scalars, columns=SCALAR_COLUMNS),
            pd.DataFrame(histograms, columns=HISTOGRAM_COLUMNS))

