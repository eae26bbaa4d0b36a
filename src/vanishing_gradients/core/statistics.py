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
# Per seed and layer, on the training inputs, at initialisation (epoch 0) and after the last epoch: how a network
# is built to fail or learn (analysis/anatomy.py reads them to tell each failed seed's kind).
ANATOMY_STATISTICS = {
    "inputs_all_zero": Statistic("inputs with an all-zero layer", "share of the training inputs for which every "
                                 "unit of the layer outputs 0 (all of them: the network's output is constant)",
                                 hidden_only=True),
    "units_dead": Statistic("dead units", "share of the layer's units that output 0 for every training input",
                            hidden_only=True),
    "activations_saturated": Statistic("saturated activations", "share of the layer's activations on the "
                                       "training inputs with |a| > SATURATED", hidden_only=True),
    "top_component_share": Statistic("variance in the top component", "share of the variance of the layer's "
                                     "centred activations over the training inputs in its first principal "
                                     "component (1: the inputs lie on one line there; 1 too when constant)",
                                     hidden_only=True),
    "activation_rms": Statistic("activation RMS", "root mean square of the layer's activations over the training "
                                "inputs (the forward signal's size)", hidden_only=True),
    "grad_mean_abs": Statistic("mean |dL/dW| (training set)", "mean |dLoss/dkernel| of the mean loss over all the "
                               "training inputs (one full batch)"),
}
ANATOMY_EPOCHS = ("init", "end")  # epoch 0 and the last epoch
MODEL = {name: i for i, name in enumerate(MODEL_STATISTICS)}  # row of each in arrays of model statistics
LAYER = {name: i for i, name in enumerate(LAYER_STATISTICS)}  # row of each in arrays of layer statistics
ANATOMY = {name: i for i, name in enumerate(ANATOMY_STATISTICS)}  # row of each in arrays of anatomy statistics
SATURATED = 0.99


def stats_epochs(epochs: int, freq: int) -> list[int]:
    """Epochs at which per-layer statistics are taken: 0, freq, 2 freq, ..., and always the last."""
    return sorted(set(range(0, epochs + 1, freq)) | {epochs})


def histogram_epochs(epochs: int, freq: int) -> list[int]:
    return list(range(0, epochs + 1, freq)) if freq else []
