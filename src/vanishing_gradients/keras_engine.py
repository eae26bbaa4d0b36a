"""The reference engine: Keras 3 `model.fit` on TensorFlow, exactly as STUDY.md describes.

Two additions, neither of which changes training (tests/test_keras_engine.py proves it):
- the optimiser also accumulates each kernel's mean |gradient| over the epoch's steps;
- a callback writes per-epoch statistics to a TensorBoard event file, among them the
  gradient of the loss on the validation data in batches, as Keras 2's `write_grads` did.
"""
from __future__ import annotations

import os
from contextlib import suppress

os.environ["KERAS_BACKEND"] = "tensorflow"  # the reference is Keras on TensorFlow, whatever the shell says
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow C++ chatter (harmless) hides real messages in logs

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .events import EventWriter, record_final  # noqa: E402
from .models import ModelSpec, build_keras_model, keras_optimizer  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"the reference engine needs Keras on TensorFlow; keras was already loaded "
                      f"with the {keras.backend.backend()!r} backend")


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


class EventLogger(keras.callbacks.Callback):
    """Writes scalars every epoch and histograms every `histogram_freq` epochs (epoch 0 = init)."""

    def __init__(self, writer: EventWriter, recorder: GradientRecorder, x_val, y_val,
                 batch_size: int, histogram_freq: int):
        super().__init__()
        self.writer, self.recorder, self.histogram_freq = writer, recorder, histogram_freq
        self.data = (x_val, y_val, batch_size)
        self.history: list[dict] = []

    def on_train_begin(self, logs=None):
        self._val_grads = validation_gradients(self.model, *self.data)
        self._write_layers(0, train_grad_means=None)

    def on_epoch_end(self, epoch, logs=None):
        step = epoch + 1
        row = {"epoch": step, "loss_train": logs["loss"], "accuracy_train": logs["accuracy"],
               "loss_test": logs["val_loss"], "accuracy_test": logs["val_accuracy"]}
        self.history.append(row)
        for tag, value in row.items():
            if tag != "epoch":
                self.writer.scalar(tag, value, step)
        self._write_layers(step, train_grad_means=self.recorder.pop_means())

    def _write_layers(self, step: int, train_grad_means: dict | None) -> None:
        with_histograms = step % self.histogram_freq == 0
        per_batch = self._val_grads()  # batches x layers, each (fan_in, fan_out)
        for i, layer in enumerate(self.model.layers):
            grads = np.stack([batch[i] for batch in per_batch])  # (batches, fan_in, fan_out)
            kernel = layer.kernel.numpy()  # (fan_in, fan_out)
            self.writer.scalar(f"grad_val_mean_abs/{layer.name}", np.mean(np.abs(grads)), step)
            self.writer.scalar(f"kernel_l1/{layer.name}", np.sum(np.abs(kernel)), step)
            if train_grad_means is not None:
                self.writer.scalar(f"grad_train_mean_abs/{layer.name}", train_grad_means[layer.name], step)
            if with_histograms:
                self.writer.histogram(f"grad_val/{layer.name}", grads, step)
                self.writer.histogram(f"kernel/{layer.name}", kernel, step)


def train_one(spec: ModelSpec, optimizer: dict, train: dict, histogram_freq: int,
              data: dict[str, tuple[np.ndarray, np.ndarray]], seed: int, writer: EventWriter):
    """Train one model with `model.fit`; returns (per-epoch history rows, final metrics)."""
    keras.utils.set_random_seed(seed)
    model = build_keras_model(spec)
    recorder = GradientRecorder(model)
    model.compile(optimizer=recording_optimizer(optimizer, recorder),
                  loss=keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=train["threshold"])])
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    logger = EventLogger(writer, recorder, x_test, y_test, train["batch_size"], histogram_freq)
    model.fit(x_train, y_train, batch_size=train["batch_size"], epochs=train["epochs"], shuffle=True,
              validation_data=(x_test, y_test), callbacks=[logger], verbose=0)
    final = {}
    for split, (x, y) in data.items():
        loss, accuracy = model.evaluate(x, y, batch_size=train["batch_size"], verbose=0)
        final[f"loss_{split}"], final[f"accuracy_{split}"] = float(loss), float(accuracy)
    return logger.history, record_final(writer, final, logger.history, train["epochs"])


def select_device(device: str) -> str:
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
