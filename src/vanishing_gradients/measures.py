"""What every run measures, named once for both engines, the event files and the tables."""

# Per epoch, for the model: Keras's running training loss and accuracy, then validation after the epoch.
MODEL_STATISTICS = ("loss_train", "accuracy_train", "loss_test", "accuracy_test")

# Per layer, every `events.stats_freq` epochs, in this order (the engines' arrays follow it):
LAYER_STATISTICS = (
    "grad_val_mean_abs",  # mean |dLoss/dkernel| on the validation data, in batches (Keras 2's write_grads)
    "grad_train_mean_abs",  # mean over the epoch's training steps of mean |dLoss/dkernel| (NaN at epoch 0)
    "kernel_l1",  # sum |kernel| (STUDY.md extension 3)
    "update_ratio",  # ||W_epoch - W_previous epoch|| / ||W_previous epoch|| (NaN at epoch 0)
    "saturated_share",  # hidden layers: share of validation activations with |a| > SATURATED
    "dead_share",  # hidden layers: share of units that output 0 for every validation input
)
HIDDEN_ONLY = ("saturated_share", "dead_share")  # not defined for the (linear) output layer
AFTER_TRAINING = ("grad_train_mean_abs", "update_ratio")  # not defined at epoch 0
SATURATED = 0.99


def stats_epochs(epochs: int, freq: int) -> list[int]:
    """Epochs at which per-layer statistics are taken: 0, freq, 2 freq, ..., and always the last."""
    return sorted(set(range(0, epochs + 1, freq)) | {epochs})


def histogram_epochs(epochs: int, freq: int) -> list[int]:
    return list(range(0, epochs + 1, freq)) if freq else []
