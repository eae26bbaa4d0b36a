"""The reference engine: Keras 3 `model.fit` on TensorFlow, exactly as docs/study.md describes.

Two additions, neither of which changes training (tests/test_keras_engine.py proves it):
- the optimiser also accumulates each kernel's mean |gradient| over the epoch's steps;
- a callback collects the statistics the fast engine computes (core/statistics.py), among them the
  gradient of the loss on the validation data in batches, as Keras 2's `write_grads` did.
The train stage writes both engines' arrays to event files alike (record/runs.py).
"""
from __future__ import annotations

import os
from contextlib import suppress

os.environ["KERAS_BACKEND"] = "tensorflow"  # the reference is Keras on TensorFlow, whatever the shell says
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow C++ chatter (harmless) hides real messages in logs

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ..core.extensions import ACTIVATIONS, OPTIMIZERS, initializer  # noqa: E402
from ..core.models import ModelSpec  # noqa: E402
from ..core.statistics import (ANATOMY_STATISTICS, LAYER_STATISTICS, MODEL_STATISTICS, SATURATED,  # noqa: E402
                               histogram_epochs, stats_epochs)
from ..record.events import tensorboard_buckets  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"the reference engine needs Keras on TensorFlow; keras was already loaded "
                      f"with the {keras.backend.backend()!r} backend")
# Keras's names for the model statistics in `logs`
KERAS_LOGS = {"loss_train": "loss", "accuracy_train": "accuracy", "loss_test": "val_loss",
              "accuracy_test": "val_accuracy"}


def keras_initializer(init: str | dict) -> keras.initializers.Initializer:
    """params.yaml's initialiser as its Keras object (extension table: core/extensions.py)."""
    entry, settings = initializer(init)
    return getattr(keras.initializers, entry.keras)(**settings)


def build_keras_model(spec: ModelSpec) -> keras.Sequential:
    """An uncompiled keras.Sequential; draw the weights after keras.utils.set_random_seed."""
    layers = [keras.Input(shape=(spec.n_inputs,))]
    for name in spec.layer_names[:-1]:
        layers.append(keras.layers.Dense(spec.width, activation=ACTIVATIONS[spec.activation].keras, name=name,
                                         kernel_initializer=keras_initializer(spec.hidden_init),
                                         bias_initializer="zeros"))
    layers.append(keras.layers.Dense(1, activation="sigmoid", name="output",
                                     kernel_initializer=keras_initializer(spec.output_init),
                                     bias_initializer="zeros"))
    return keras.Sequential(layers, name="mlp")


def keras_optimizer(settings: dict) -> keras.optimizers.Optimizer:
    """params.yaml's optimiser as its Keras object."""
    kwargs = {k: v for k, v in settings.items() if k != "name"}
    return getattr(keras.optimizers, OPTIMIZERS[settings["name"]].keras)(**kwargs)


def epoch_orders(seed: int, epochs: int, n: int) -> np.ndarray:
    """(epochs, n): a fresh uniform order of the n training rows for every epoch, drawn from the seed.

    `model.fit(shuffle=True)` is documented to reshuffle before each epoch, and unseeded it does; seeded with
    `keras.utils.set_random_seed`, Keras 3 on TensorFlow repeats one order every epoch (docs/engines.md). The
    reference therefore draws the orders itself and feeds them in (`epoch_batches`)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n) for _ in range(epochs)])


def epoch_batches(x: np.ndarray, y: np.ndarray, orders: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Every epoch's rows in its order (`orders`: (epochs, n)), batched within the epoch as `fit` batches
    arrays (the last batch short): ceil(n / batch_size) batches per epoch, all epochs one after another."""
    def one_epoch(order):
        return tf.data.Dataset.from_tensor_slices((tf.gather(x, order), tf.gather(y, order))).batch(batch_size)
    return tf.data.Dataset.from_tensor_slices(orders).flat_map(one_epoch)


def fit(model: keras.Model, data: dict, train: dict, seed: int, callbacks=()) -> None:
    """`model.fit` for train["epochs"] epochs on the training rows in `epoch_orders(seed)`, in batches of
    train["batch_size"], validating on the test rows after each epoch. Given `steps_per_epoch`, `fit` keeps
    one iterator over the dataset, so epoch e reads exactly the batches of orders[e]."""
    (x, y), n, batch = data["train"], len(data["train"][0]), train["batch_size"]
    orders = epoch_orders(seed, train["epochs"], n)  # (epochs, n)
    model.fit(epoch_batches(x, y, orders, batch), epochs=train["epochs"], steps_per_epoch=-(-n // batch),
              validation_data=data["test"], validation_batch_size=batch, shuffle=False, callbacks=list(callbacks),
              verbose=0)


class GradientRecorder:
    """Per kernel, the sum over training steps of mean |gradient|, and the step count."""

    def __init__(self, model: keras.Model):
        self.layers = [layer.name for layer in model.layers]
        self._sums = {layer.kernel.path: keras.Variable(0.0, trainable=False, name=f"{layer.name}_grad_abs")
                      for layer in model.layers}
        self._steps = keras.Variable(0.0, trainable=False, name="grad_steps")

    def accumulate(self, grads, variables) -> None:
        for grad, var in zip(grads, variables):
            if var.path in self._sums:
                self._sums[var.path].assign_add(keras.ops.mean(keras.ops.abs(grad)))
        self._steps.assign_add(1.0)

    def pop_means(self) -> dict[str, float]:
        """Mean over the steps since the last call, per layer; then reset."""
        steps = float(self._steps.numpy())
        means = {name: float(total.numpy()) / steps for name, total in zip(self.layers, self._sums.values())}
        for total in self._sums.values():
            total.assign(0.0)
        self._steps.assign(0.0)
        return means


def recording_optimizer(settings: dict, recorder: GradientRecorder) -> keras.optimizers.Optimizer:
    """The Keras optimiser of `settings`, which also hands each step's gradients to `recorder`."""
    base = type(keras_optimizer(settings))

    class Recording(base):
        def apply(self, grads, trainable_variables=None):
            variables = self._trainable_variables if trainable_variables is None else trainable_variables
            recorder.accumulate(grads, variables)
            return super().apply(grads, trainable_variables)

    return Recording(**{k: v for k, v in settings.items() if k != "name"})


def validation_gradients(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int):
    """Kernel gradients of the loss on each validation batch: list over batches of list over layers."""
    bounds = range(0, len(x), batch_size)
    xs = [tf.constant(x[i:i + batch_size]) for i in bounds]  # each (batch, n_inputs)
    ys = [tf.constant(y[i:i + batch_size]) for i in bounds]  # each (batch, 1)
    kernels = [layer.kernel for layer in model.layers]

    @tf.function
    def grads_per_batch(xs, ys):
        out = []
        for xb, yb in zip(xs, ys):
            with tf.GradientTape() as tape:
                loss = model.loss(yb, model(xb, training=False))
            out.append(tape.gradient(loss, kernels))
        return out

    return lambda: [[g.numpy() for g in batch] for batch in grads_per_batch(xs, ys)]


class StatisticsRecorder(keras.callbacks.Callback):
    """Collects what the fast engine computes in its program, as arrays of the same layout: history
    (epochs, model statistics); per-layer statistics (stats epochs, layer statistics, L), in core/statistics.py's
    order; for a detail seed, histograms of validation gradients and kernels (histogram epochs, L, 2, buckets | 2)."""

    def __init__(self, recorder: GradientRecorder, x_val, y_val, batch_size: int, epochs: int, events: dict,
                 detail: bool, train: tuple | None = None):
        super().__init__()
        self.recorder, self.x_val, self.train = recorder, x_val, train
        self.data = (x_val, y_val, batch_size)
        self.stat_epochs = set(stats_epochs(epochs, events["stats_freq"]))
        self.hist_epochs = set(histogram_epochs(epochs, events["histogram_freq"])) if detail else set()
        self.history, self.stats, self.counts, self.ranges, self.anatomy = [], [], [], [], []

    def on_train_begin(self, logs=None):
        self._val_grads = validation_gradients(self.model, *self.data)
        hidden_layers = self.model.layers[:-1]
        self._hidden = tf.function(lambda x: list(_outputs(hidden_layers, x)))
        self._kernels = self._kernel_values()
        self._record(0, train_grad_means=None, before=None)
        if self.train is not None:
            self.anatomy.append(self._anatomy())

    def on_train_end(self, logs=None):
        if self.train is not None:
            self.anatomy.append(self._anatomy())

    def _anatomy(self) -> np.ndarray:
        """ANATOMY_STATISTICS on the training inputs: (statistics, L), NaN for the output's hidden-only ones."""
        x, y = self.train
        hidden = [a.numpy().astype(np.float64) for a in self._hidden(tf.constant(x))]  # each (n, width)
        (grads,) = validation_gradients(self.model, x, y, len(x))()  # one batch of every training input
        rows = []
        for i, grad in enumerate(grads):
            values = {"grad_mean_abs": np.mean(np.abs(grad))}
            if i < len(hidden):
                a = hidden[i]
                cov = np.cov(a, rowvar=False, bias=True).reshape(a.shape[1], a.shape[1])
                # a diverged model's NaN: some LAPACKs refuse it ("did not converge"); the JAX engine's gives NaN
                eig = np.linalg.eigvalsh(cov) if np.isfinite(cov).all() else np.full(a.shape[1], np.nan)
                values |= {"inputs_all_zero": np.mean(np.all(a == 0, axis=1)),
                           "units_dead": np.mean(np.all(a == 0, axis=0)),
                           "activations_saturated": np.mean(np.abs(a) > SATURATED),
                           "top_component_share": eig[-1] / eig.sum() if eig.sum() > 0 else 1.0,
                           "activation_rms": np.sqrt(np.mean(a * a))}
            rows.append([values.get(name, np.nan) for name in ANATOMY_STATISTICS])
        return np.array(rows, np.float32).T

    def on_epoch_end(self, epoch, logs=None):
        self.history.append([logs[KERAS_LOGS[name]] for name in MODEL_STATISTICS])
        before, self._kernels = self._kernels, self._kernel_values()
        self._record(epoch + 1, train_grad_means=self.recorder.pop_means(), before=before)

    def _kernel_values(self):
        return [layer.kernel.numpy() for layer in self.model.layers]

    def _record(self, epoch: int, train_grad_means: dict | None, before) -> None:
        if epoch not in self.stat_epochs:
            return
        per_batch = self._val_grads()  # batches x layers, each (fan_in, fan_out)
        hidden = [a.numpy() for a in self._hidden(tf.constant(self.x_val))]  # each (rows, width)
        rows, counts, ranges = [], [], []
        for i, (layer, kernel) in enumerate(zip(self.model.layers, self._kernels)):
            grads = np.stack([batch[i] for batch in per_batch])  # (batches, fan_in, fan_out)
            is_hidden = i < len(hidden)
            values = {
                "grad_val_mean_abs": np.mean(np.abs(grads)),
                "grad_train_mean_abs": train_grad_means[layer.name] if train_grad_means else np.nan,
                "kernel_l1": np.sum(np.abs(kernel)),
                "update_ratio": np.linalg.norm(kernel - before[i]) / np.linalg.norm(before[i]) if before else np.nan,
                "saturated_share": np.mean(np.abs(hidden[i]) > SATURATED) if is_hidden else np.nan,
                "dead_share": np.mean(np.all(hidden[i] == 0, axis=0)) if is_hidden else np.nan}
            rows.append([values[name] for name in LAYER_STATISTICS])
            if epoch in self.hist_epochs:
                (cg, rg), (ck, rk) = tensorboard_buckets(grads), tensorboard_buckets(kernel)
                counts.append([cg, ck])
                ranges.append([rg, rk])
        self.stats.append(np.array(rows, np.float32).T)  # (statistics, L)
        if counts:
            self.counts.append(np.array(counts))
            self.ranges.append(np.array(ranges, np.float32))

    def arrays(self) -> dict:
        out = {"history": np.array(self.history, np.float32), "layer_stats": np.stack(self.stats)}
        if self.anatomy:
            out["anatomy"] = np.stack(self.anatomy)  # (2, statistics, L): at initialisation and at the end
        if self.hist_epochs:
            out |= {"hist_counts": np.stack(self.counts), "hist_ranges": np.stack(self.ranges)}
        return out


def _outputs(layers, x):
    for layer in layers:
        x = layer(x)
        yield x


def train_one(spec: ModelSpec, optimizer: dict, train: dict, events: dict,
              data: dict[str, tuple[np.ndarray, np.ndarray]], seed: int, detail: bool) -> dict:
    """Train one model with `model.fit`; returns its arrays (StatisticsRecorder.arrays) and `final`
    (4,): loss and accuracy per split from model.evaluate after training, as the original reports."""
    keras.utils.set_random_seed(seed)
    model = build_keras_model(spec)
    recorder = GradientRecorder(model)
    model.compile(optimizer=recording_optimizer(optimizer, recorder),
                  loss=keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=train["threshold"])])
    stats = StatisticsRecorder(recorder, *data["test"], train["batch_size"], train["epochs"], events, detail,
                               train=data["train"])
    fit(model, data, train, seed, callbacks=[stats])
    final = [model.evaluate(x, y, batch_size=train["batch_size"], verbose=0) for x, y in (data["train"], data["test"])]
    return {**stats.arrays(), "final": np.array([v for pair in final for v in pair], np.float32)}


def configure_device(device: str) -> str:
    """Apply train.device to TensorFlow and return a description of the device used."""
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise RuntimeError("train.device is 'gpu' but TensorFlow sees no GPU")
    if device == "cpu" or not gpus:
        if gpus:
            tf.config.set_visible_devices([], "GPU")
        return "cpu"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"gpu: {details.get('device_name', gpus[0].name)}"


def configure(threads: int) -> None:
    """Deterministic ops and a thread budget matching the job's share of the machine."""
    tf.config.experimental.enable_op_determinism()
    with suppress(RuntimeError):  # TensorFlow already started in this process (a test session): keep its pools
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
