"""What every run measures: one table of statistics, read by both engines, the event files, the tables and the
report. Arrays of statistics are stacked in the table's order; code addresses a row by its name (MODEL[name],
LAYER[name]), never by a number, so a statistic is added as one entry here plus the code that computes it
in each engine (docs/engines.md)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Statistic:
    label: str  # how the report names it, with its unit
    description: str
    hidden_only: bool = False  # not defined for the (linear) output layer
    after_training: bool = False  # not defined at epoch 0 (it needs an epoch of training)


# Per epoch, for the model: Keras's running training loss and accuracy, then validation after the epoch.
MODEL_STATISTICS = {
    "loss_train": Statistic("training loss (BCE)", "Keras's running mean of the loss over the epoch's batches"),
    "accuracy_train": Statistic("training accuracy", "Keras's running accuracy over the epoch's batches"),
    "loss_test": Statistic("test loss (BCE)", "loss on the test (= validation) set after the epoch"),
    "accuracy_test": Statistic("test accuracy", "accuracy on the test (= validation) set after the epoch"),
}
# Per layer, every `events.stats_freq` epochs:
LAYER_STATISTICS = {
    "grad_val_mean_abs": Statistic("mean |dL/dW| (validation)", "mean |dLoss/dkernel| on the validation data, in "
                                   "batches, as Keras 2's TensorBoard(write_grads=True)"),
    "grad_train_mean_abs": Statistic("mean |dL/dW| (training steps)", "mean over the epoch's training steps of "
                                     "mean |dLoss/dkernel|", after_training=True),
    "kernel_l1": Statistic("kernel L1 norm", "sum |kernel| (docs/study.md, extension 3)"),
    "update_ratio": Statistic("relative update ||ΔW|| / ||W||", "||W_epoch - W_previous epoch|| / "
                              "||W_previous epoch||", after_training=True),
    "saturated_share": Statistic("saturated share", "share of the layer's validation activations with |a| > "
                                 "SATURATED (saturated tanh)", hidden_only=True),
    "dead_share": Statistic("dead share", "share of the layer's units that output 0 for every validation input "
                            "(dead ReLU)", hidden_only=True),
}
MODEL = {name: i for i, name in enumerate(MODEL_STATISTICS)}  # row of each in arrays of model statistics
LAYER = {name: i for i, name in enumerate(LAYER_STATISTICS)}  # row of each in arrays of layer statistics
SATURATED = 0.99


def stats_epochs(epochs: int, freq: int) -> list[int]:
    """Epochs at which per-layer statistics are taken: 0, freq, 2 freq, ..., and always the last."""
    return sorted(set(range(0, epochs + 1, freq)) | {epochs})


def histogram_epochs(epochs: int, freq: int) -> list[int]:
    return list(range(0, epochs + 1, freq)) if freq else []
